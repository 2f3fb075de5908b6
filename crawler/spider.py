"""The Scrapy side: a spider for listing + detail pages, its pipeline and politeness middlewares.

Nothing outside `crawler/` imports Scrapy; callers use `crawler.runner.Crawls`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import DontCloseSpider, DropItem, IgnoreRequest
from scrapy.http import Request, Response, TextResponse
from scrapy.utils.sitemap import Sitemap
from twisted.python.failure import Failure

from crawler.dates import parse_iso_datetime
from crawler.extract import extract_listing, extract_statement, is_not_found_page
from crawler.report import ArchiveSink, CrawlPlan, CrawlReport
from crawler.urls import host_of, normalise_url
from storage.content import fold_text
from storage.errors import first_line
from storage.records import (
    Capture,
    ExtractionFailure,
    ListingPage,
    Outcome,
    PageKind,
    StatementContent,
)

log = logging.getLogger(__name__)

# Every status but redirects reaches our callbacks, so a 404 or 503 is recorded, not dropped.
NON_REDIRECT_STATUSES = [*range(200, 300), *range(400, 600)]
LISTING_PRIORITY = 100  # listing pages before the detail pages they reveal
BLOCKED_STATUSES = (403, 429)
PERMANENT_REDIRECTS = (301, 308)
MAX_REST_POSTS = 1000
SECOND = timedelta(seconds=1)
MAX_HEADERS = 64
MAX_HEADER_VALUE = 2048


@dataclass(frozen=True)
class ListingFetched:
    capture: Capture
    page: ListingPage | None


@dataclass(frozen=True)
class DetailFetched:
    capture: Capture
    extraction: StatementContent | ExtractionFailure | None
    unlisted: bool = False  # the listing was read and does not show this URL


class NewsSpider(scrapy.Spider):
    name = "embassy-news"

    def __init__(
        self,
        *,
        site: str,
        listing_urls: tuple[str, ...],
        sitemap_urls: tuple[str, ...],
        rest_urls: tuple[str, ...],
        allowed_hosts: frozenset[str],
        plan: CrawlPlan,
        max_listing_pages: int,
        sink: ArchiveSink,
        report: CrawlReport,
        timezone: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.site = site
        self.zone = ZoneInfo(timezone)  # the site's: a visible-only date is midnight there
        self.listing_urls = listing_urls
        self._listing_pages = frozenset(normalise_url(url) for url in listing_urls)
        self.sitemap_urls = sitemap_urls
        self.rest_urls = rest_urls
        self.allowed_hosts = set(allowed_hosts)
        self.plan = plan
        self.max_listing_pages = max_listing_pages
        self.sink = sink
        self.report = report
        self._listing_pages_requested = 0
        self._listed: set[str] = set()
        self._requested: set[str] = set()
        self._hinted: set[str] = set()
        self._hint_pages_requested = 0
        self._probed = False

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> NewsSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._probe_unlisted, signal=signals.spider_idle)
        assert isinstance(spider, NewsSpider)
        return spider

    async def start(self) -> AsyncIterator[Request]:
        for url in self.listing_urls:
            request = self._listing_request(url, first=True)
            if request is not None:
                yield request
        for url in self.sitemap_urls:
            yield self._hint_request(url, self.parse_sitemap)
        for url in self.rest_urls:
            yield self._hint_request(url, self.parse_rest_posts)

    # -- hints: the site saying a statement changed since we last read it ------------------

    def _hint_request(self, url: str, callback: Any) -> Request:
        self._hint_pages_requested += 1
        return Request(
            url,
            callback=callback,
            errback=self.hint_failed,
            priority=LISTING_PRIORITY,
            meta={"handle_httpstatus_list": NON_REDIRECT_STATUSES, "dont_retry": True},
        )

    def parse_sitemap(self, response: Response) -> Iterator[Request]:
        """Yoast sitemaps: an index pointing at post-sitemap*.xml, each <url> with <lastmod>."""
        if not self._hint_readable(response):
            return
        try:
            sitemap = Sitemap(response.body)
            entries = list(sitemap)
        except Exception as error:  # lxml refuses what is not XML
            self.report.hint_errors.append(f"{response.url}: not a sitemap ({error})")
            return
        if sitemap.type == "sitemapindex":
            for entry in entries:
                loc = str(entry.get("loc", ""))
                if self._allowed(loc) and "post-sitemap" in loc and self._more_hint_pages():
                    yield self._hint_request(loc, self.parse_sitemap)
            return
        for entry in entries:
            self._note_modified(str(entry.get("loc", "")), str(entry.get("lastmod", "")))

    def parse_rest_posts(self, response: Response) -> None:
        """WordPress REST `/wp-json/wp/v2/posts`: a JSON list of posts with `modified_gmt`."""
        if not self._hint_readable(response):
            return
        try:
            posts = json.loads(response.body)
        except ValueError:
            posts = None
        if not isinstance(posts, list):
            self.report.hint_errors.append(f"{response.url}: not a WordPress posts list")
            return
        for post in posts[:MAX_REST_POSTS]:
            if isinstance(post, dict):
                self._note_modified(str(post.get("link", "")), str(post.get("modified_gmt", "")))

    def hint_failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        self.report.hint_errors.append(f"{request.url}: {_describe(failure)}")

    def _hint_readable(self, response: Response) -> bool:
        if response.status != 200:
            self.report.hint_errors.append(f"{response.url}: HTTP {response.status}")
        return response.status == 200

    def _more_hint_pages(self) -> bool:
        return self._hint_pages_requested < self.max_listing_pages

    def _note_modified(self, url: str, modified_text: str) -> None:
        """An archived statement modified after our last read of it is read in this crawl."""
        url = normalise_url(url)
        checked = self.plan.last_checked.get(url)
        modified = parse_iso_datetime(modified_text)  # lastmod has an offset; modified_gmt not
        # These times have whole seconds: an edit in the second of our last read still counts.
        if checked is not None and modified is not None and modified + SECOND > checked:
            self._hinted.add(url)

    def _probe_unlisted(self) -> None:
        """Once the listing and the hint sources are read: fetch what they did not lead to.

        That is archived statements that are due but unlisted, that just dropped off the
        listing, or that a hint says changed. Waiting for the whole listing is what lets
        a fetch say "unlisted", which a take-down needs.
        """
        if self._probed:
            return
        self._probed = True
        listing_read = self.report.listing_pages > 0 and not self.report.listing_errors
        dropped = self.plan.recently_listed - self._listed if listing_read else frozenset()
        hinted = self._hinted - self._requested
        self.report.hinted = len(hinted)
        probes = sorted(((self.plan.due - self._listed) | dropped | hinted) - self._requested)
        for url in probes:
            request = self._detail_request(url, unlisted=listing_read and url not in self._listed)
            self.crawler.engine.crawl(request)
        self.report.statements_skipped = len(self._listed - self._requested)
        if probes:
            raise DontCloseSpider

    def _listing_request(self, url: str, *, first: bool) -> Request | None:
        if self._listing_pages_requested >= self.max_listing_pages:
            return None
        self._listing_pages_requested += 1
        return Request(
            url,
            callback=self.parse_listing,
            errback=self.listing_failed,
            priority=LISTING_PRIORITY,
            dont_filter=first,
            meta={"handle_httpstatus_list": NON_REDIRECT_STATUSES, "first_page": first},
        )

    def _detail_request(self, url: str, *, unlisted: bool = False) -> Request:
        self._requested.add(url)
        return Request(
            url,
            callback=self.parse_detail,
            errback=self.detail_failed,
            meta={"handle_httpstatus_list": NON_REDIRECT_STATUSES, "unlisted": unlisted},
        )

    def _worth_fetching(self, url: str, listed_title: str) -> bool:
        known_title = self.plan.known_titles.get(url)
        if known_title is None or url in self.plan.due:
            return True
        # A retitled listing entry is a hint that the statement itself was edited.
        return fold_text(known_title) != fold_text(listed_title)

    def parse_listing(self, response: Response) -> Iterator[Request | ListingFetched]:
        first_page = bool(response.meta.get("first_page"))
        if moves_site(response.meta):
            self.allowed_hosts.add(host_of(response.url))  # the site's new home
        capture = _capture(self.site, PageKind.LISTING, response)
        if response.status in BLOCKED_STATUSES:
            self.report.blocked_responses += 1
        if response.status != 200:
            # Past the last page a WordPress listing answers 404: the end, not a failure.
            if first_page or response.status != 404:
                self.report.listing_errors.append(f"{response.url}: HTTP {response.status}")
            yield ListingFetched(capture, None)
            return
        page = extract_listing(_text(response), response.url)
        self.report.listing_pages += 1
        yield ListingFetched(capture, page)
        if first_page and not page.items:
            self.report.listing_errors.append(f"{response.url}: the listing shows no statements")
        on_site = [item for item in page.items if self._allowed(item.url)]
        self.report.statements_listed += len(on_site)
        for item in on_site:
            self._listed.add(item.url)
            if item.url in self._requested:
                continue
            if self._worth_fetching(item.url, item.title):
                yield self._detail_request(item.url)
        for next_url in page.next_urls:
            if self._allowed(next_url) and on_site:
                request = self._listing_request(next_url, first=False)
                if request is not None:
                    yield request
                break

    def listing_failed(self, failure: Failure) -> Iterator[ListingFetched]:
        request = failure.request  # type: ignore[attr-defined]
        self.report.listing_errors.append(f"{request.url}: {_describe(failure)}")
        yield ListingFetched(_failed_capture(self.site, PageKind.LISTING, request, failure), None)

    def parse_detail(self, response: Response) -> Iterator[DetailFetched]:
        capture = _capture(self.site, PageKind.DETAIL, response)
        unlisted = bool(response.meta.get("unlisted"))
        if response.status in BLOCKED_STATUSES:
            self.report.blocked_responses += 1
        extraction: StatementContent | ExtractionFailure | None = None
        if response.status == 200 and self._soft_404(response):
            capture = replace(capture, soft_404=True)
        elif response.status == 200 and isinstance(response, TextResponse):
            extraction = extract_statement(_text(response), response.url, zone=self.zone)
        elif response.status == 200:
            extraction = ExtractionFailure("not an HTML page")
        yield DetailFetched(capture, extraction, unlisted)

    def _soft_404(self, response: Response) -> bool:
        """WordPress's "not found" page served as 200, or a statement redirected to a listing."""
        redirected = bool(response.meta.get("redirect_urls"))
        final = normalise_url(response.url)
        landed_on_index = redirected and (
            urlsplit(final).path.strip("/") in ("", "zh", "en") or final in self._listing_pages
        )
        return landed_on_index or is_not_found_page(_text(response))

    def detail_failed(self, failure: Failure) -> Iterator[DetailFetched]:
        request = failure.request  # type: ignore[attr-defined]
        capture = _failed_capture(self.site, PageKind.DETAIL, request, failure)
        yield DetailFetched(capture, None, bool(request.meta.get("unlisted")))

    def _allowed(self, url: str) -> bool:
        return host_of(url) in self.allowed_hosts


class ArchivePipeline:
    """Hands each fetched page to the archive (one transaction each) and tallies the outcome."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._closing: asyncio.Future[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivePipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        spider = self.crawler.spider
        assert isinstance(spider, NewsSpider)
        if spider.report.fatal_error:
            raise DropItem("the archive is not accepting writes")
        try:
            if isinstance(item, ListingFetched):
                spider.sink.record_listing(item.capture, item.page)
            elif isinstance(item, DetailFetched):
                result = spider.sink.record_detail(
                    item.capture, item.extraction, unlisted=item.unlisted
                )
                _tally(spider.report, item, result.outcome)
                level = logging.DEBUG if result.outcome is Outcome.UNCHANGED else logging.INFO
                log.log(level, "%s: %s", result.outcome, item.capture.requested_url)
        except Exception as error:
            # A full disk or a lost database: nothing more can be kept, so stop at once
            # rather than fetch pages whose content would be thrown away.
            spider.report.fatal_error = f"cannot write to the archive: {first_line(error)}"
            log.error("%s", spider.report.fatal_error)
            self._closing = asyncio.ensure_future(
                self.crawler.engine.close_spider_async(reason="archive-error")
            )
            raise DropItem(spider.report.fatal_error) from error
        return item


def _tally(report: CrawlReport, item: DetailFetched, outcome: Outcome) -> None:
    report.outcomes[outcome] += 1
    url = item.capture.requested_url
    if outcome is Outcome.EXTRACTION_FAILED and isinstance(item.extraction, ExtractionFailure):
        report.extraction_failures.append(f"{url}: {item.extraction.reason}")
    elif outcome is Outcome.FETCH_FAILED:
        status = item.capture.status
        report.fetch_errors.append(f"{url}: {item.capture.error or f'HTTP {status}'}")


class OffSiteRedirect(IgnoreRequest):
    """A page redirected us off the watched site: recorded as a failed fetch, never followed."""

    def __init__(self, location: str, status: int | None) -> None:
        super().__init__(f"redirected off the site to {location}")
        self.location = location
        self.status = status


def moves_site(meta: Mapping[str, Any]) -> bool:
    """Whether a redirected request is the site moving house rather than a page leaving it.

    Only the first page of a configured listing may move the site, and only by
    permanent redirects (301/308): a statement page, a later listing page or a hint
    source that points at another host never takes the crawl there.
    """
    reasons = meta.get("redirect_reasons") or []
    return bool(meta.get("first_page") and reasons) and all(
        reason in PERMANENT_REDIRECTS for reason in reasons
    )


class SiteBoundaryMiddleware:
    """Requests go only to the watched site's hosts (plus the host the site moved to).

    It runs before robots.txt is consulted, so an off-site host is never contacted at
    all, not even for its robots.txt.
    """

    def __init__(self, site: str, hosts: frozenset[str]) -> None:
        self.site = site
        self._hosts = set(hosts)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SiteBoundaryMiddleware:
        settings = crawler.settings
        hosts = frozenset(settings.getlist("EMBASSY_WATCH_SITE_HOSTS"))
        return cls(settings.get("EMBASSY_WATCH_SITE", ""), hosts)

    def process_request(self, request: Request) -> None:
        host = host_of(request.url)
        if host in self._hosts:
            return
        if moves_site(request.meta):
            log.info("site %s moved to host %s; following it", self.site, host)
            self._hosts.add(host)
            return
        if request.meta.get("redirect_urls"):
            reasons = request.meta.get("redirect_reasons") or [None]
            status = reasons[-1] if isinstance(reasons[-1], int) else None
            raise OffSiteRedirect(request.url, status)
        raise IgnoreRequest(f"off-site request refused: {request.url}")


class PoliteRetryMiddleware(RetryMiddleware):
    """Scrapy's retries, with exponential backoff and Retry-After obeyed (capped).

    A failure puts its host on hold: no request to it is sent until the wait is
    over (requests queue at `process_request`, and the crawl runs with only as many
    requests in the downloader as one host may have, so none is already past it).
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler.settings)
        self.crawler = crawler
        self.backoff = crawler.settings.getfloat("EMBASSY_WATCH_RETRY_BACKOFF", 2.0)
        self.max_wait = crawler.settings.getfloat("EMBASSY_WATCH_MAX_RETRY_AFTER", 300.0)
        self._hold_until: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PoliteRetryMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        host = host_of(request.url)
        while time.monotonic() < self._hold_until.get(host, 0.0) and not _closing(
            self.crawler.engine
        ):
            await asyncio.sleep(min(0.25, self._hold_until[host] - time.monotonic()))

    def process_response(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> Request | Response:
        if request.meta.get("dont_retry") or response.status not in self.retry_http_codes:
            return response
        retry_after = _retry_after_seconds(response)
        if retry_after is not None and retry_after > self.max_wait:
            log.warning(
                "%s asks us to wait %.0fs (over the %.0fs limit); giving up on %s",
                host_of(request.url),
                retry_after,
                self.max_wait,
                request.url,
            )
            return response
        retry = self._retry(request, f"HTTP {response.status}")
        if retry is None:
            return response
        self._hold(request, retry_after if retry_after is not None else self._backoff(request))
        return retry

    def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception
    ) -> Request | Response | None:
        if request.meta.get("dont_retry") or not isinstance(exception, self.exceptions_to_retry):
            return None
        retry = self._retry(request, exception)
        if retry is not None:
            self._hold(request, self._backoff(request))
        return retry

    def _backoff(self, request: Request) -> float:
        attempt = int(request.meta.get("retry_times", 0))
        return float(min(self.backoff * (2**attempt), self.max_wait))

    def _hold(self, request: Request, seconds: float) -> None:
        host = host_of(request.url)
        until = time.monotonic() + seconds
        self._hold_until[host] = max(until, self._hold_until.get(host, 0.0))


def _closing(engine: Any) -> bool:
    slot = getattr(engine, "_slot", None)
    return not engine.running or slot is None or slot.closing is not None


def _retry_after_seconds(response: Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    value = raw.decode("latin-1").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _text(response: Response) -> str:
    return response.text if isinstance(response, TextResponse) else ""


def _capture(site: str, kind: PageKind, response: Response) -> Capture:
    redirects = response.request.meta.get("redirect_urls") if response.request else None
    requested = redirects[0] if redirects else response.url
    return Capture(
        site=site,
        kind=kind,
        requested_url=normalise_url(requested),
        final_url=normalise_url(response.url),
        fetched_at=datetime.now(UTC),
        status=response.status,
        headers=_headers(response),
        body=response.body,
    )


def _failed_capture(site: str, kind: PageKind, request: Request, failure: Failure) -> Capture:
    # A refused redirect fails on the request it would have made: keep the URL asked for.
    requested = normalise_url((request.meta.get("redirect_urls") or [request.url])[0])
    error = failure.value
    return Capture(
        site=site,
        kind=kind,
        requested_url=requested,
        final_url=requested,
        fetched_at=datetime.now(UTC),
        status=error.status if isinstance(error, OffSiteRedirect) else None,
        error=_describe(failure),
    )


def _headers(response: Response) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, values in list(response.headers.items())[:MAX_HEADERS]:
        key = name.decode("latin-1").lower()
        headers[key] = ", ".join(v.decode("latin-1") for v in values)[:MAX_HEADER_VALUE]
    return headers


def _describe(failure: Failure) -> str:
    error = failure.value
    name = type(error).__name__
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, IgnoreRequest):
        return message or "request refused (robots.txt or off-site)"
    return f"{name}: {message}" if message else name
