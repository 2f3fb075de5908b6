"""The spider: listing pages, statement pages and the site's hints of what changed.

Nothing outside `crawler/` imports Scrapy; callers use `crawler.runner.Crawls`. The
spider hands pages to the pipeline (crawler/pipelines.py) as items and states what it
met as typed facts (`CRAWL_FACT`); the middlewares are in crawler/middlewares.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.http import Request, Response, TextResponse
from scrapy.utils.sitemap import Sitemap
from twisted.python.failure import Failure

from crawler.dates import parse_iso_datetime
from crawler.extract import extract_listing, extract_statement, is_not_found_page
from crawler.items import CRAWL_FACT, DetailFetched, ListingFetched
from crawler.middlewares import OffSiteRedirect, moves_site
from crawler.report import (
    BLOCKED_STATUSES,
    ArchiveSink,
    CrawlFact,
    CrawlPlan,
    FaultKind,
    ListingRead,
    PageFailed,
    PageFault,
    Planned,
    Refused,
    Source,
)
from crawler.urls import host_of, normalise_url
from storage.content import fold_text
from storage.records import Capture, ExtractionFailure, PageKind, StatementContent

log = logging.getLogger(__name__)

# Every status but redirects reaches our callbacks, so a 404 or 503 is recorded, not dropped.
NON_REDIRECT_STATUSES = [*range(200, 300), *range(400, 600)]
LISTING_PRIORITY = 100  # listing pages before the detail pages they reveal
MAX_REST_POSTS = 1000
SECOND = timedelta(seconds=1)
MAX_HEADERS = 64
MAX_HEADER_VALUE = 2048


class NewsSpider(scrapy.Spider):
    """One crawl of one site; its arguments are this crawl's inputs, none shared to mutate.

    `sink` is the archive the pipeline writes to; the spider itself never writes.
    """

    name = "embassy-news"

    def __init__(
        self,
        *,
        site: str,
        listing_urls: tuple[str, ...],
        sitemap_urls: tuple[str, ...],
        rest_urls: tuple[str, ...],
        plan: CrawlPlan,
        max_listing_pages: int,
        sink: ArchiveSink,
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
        self.plan = plan
        self.max_listing_pages = max_listing_pages
        self.sink = sink
        self._hosts: frozenset[str] = frozenset()  # from the settings, in from_crawler
        self._listing_pages_requested = 0
        self._listing_pages_read = 0
        self._listing_failed = False
        self._listed: set[str] = set()
        self._requested: set[str] = set()
        self._hinted: set[str] = set()
        self._hint_pages_requested = 0
        self._probed = False

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> NewsSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        assert isinstance(spider, NewsSpider)
        spider._hosts = frozenset(crawler.settings.getlist("EMBASSY_WATCH_SITE_HOSTS"))
        crawler.signals.connect(spider._probe_unlisted, signal=signals.spider_idle)
        return spider

    def _state(self, fact: CrawlFact) -> None:
        """Tell the crawl's runner a fact (it keeps the report; the spider keeps none)."""
        self.crawler.signals.send_catch_log(CRAWL_FACT, fact=fact)

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
            reason = f"not a sitemap ({error})"
            self._state(
                PageFailed(
                    Source.HINT, PageFault(response.url, FaultKind.NOT_READABLE, 200, reason)
                )
            )
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
            reason = "not a WordPress posts list"
            self._state(
                PageFailed(
                    Source.HINT, PageFault(response.url, FaultKind.NOT_READABLE, 200, reason)
                )
            )
            return
        for post in posts[:MAX_REST_POSTS]:
            if isinstance(post, dict):
                self._note_modified(str(post.get("link", "")), str(post.get("modified_gmt", "")))

    def hint_failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        self._state(PageFailed(Source.HINT, _failure_fault(request.url, failure)))

    def _hint_readable(self, response: Response) -> bool:
        if response.status != 200:
            fault = PageFault(response.url, FaultKind.HTTP_STATUS, response.status)
            self._state(PageFailed(Source.HINT, fault))
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
        listing_read = self._listing_pages_read > 0 and not self._listing_failed
        dropped = self.plan.recently_listed - self._listed if listing_read else frozenset()
        hinted = self._hinted - self._requested
        probes = sorted(((self.plan.due - self._listed) | dropped | hinted) - self._requested)
        for url in probes:
            request = self._detail_request(url, unlisted=listing_read and url not in self._listed)
            self.crawler.engine.crawl(request)
        self._state(Planned(hinted=len(hinted), skipped=len(self._listed - self._requested)))
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
            self._hosts |= {host_of(response.url)}  # the site's new home
        capture = _capture(self.site, PageKind.LISTING, response)
        self._note_refusal(response)
        if response.status != 200:
            # Past the last page a WordPress listing answers 404: the end, not a failure.
            if first_page or response.status != 404:
                self._listing_failed_with(
                    PageFault(response.url, FaultKind.HTTP_STATUS, response.status)
                )
            yield ListingFetched(capture, None)
            return
        page = extract_listing(_text(response), response.url)
        on_site = [item for item in page.items if self._allowed(item.url)]
        self._listing_pages_read += 1
        self._state(ListingRead(response.url, len(on_site)))
        yield ListingFetched(capture, page)
        if first_page and not page.items:
            self._listing_failed_with(PageFault(response.url, FaultKind.LISTING_EMPTY, 200))
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
        self._listing_failed_with(_failure_fault(request.url, failure))
        yield ListingFetched(_failed_capture(self.site, PageKind.LISTING, request, failure), None)

    def _note_refusal(self, response: Response) -> None:
        if response.status in BLOCKED_STATUSES:
            self._state(Refused(response.url, response.status))

    def _listing_failed_with(self, fault: PageFault) -> None:
        self._listing_failed = True  # so no unlisted statement counts as taken down
        self._state(PageFailed(Source.LISTING, fault))

    def parse_detail(self, response: Response) -> Iterator[DetailFetched]:
        capture = _capture(self.site, PageKind.DETAIL, response)
        unlisted = bool(response.meta.get("unlisted"))
        self._note_refusal(response)
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
        fault = _failure_fault(capture.requested_url, failure)
        yield DetailFetched(capture, None, bool(request.meta.get("unlisted")), fault)

    def _allowed(self, url: str) -> bool:
        return host_of(url) in self._hosts


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


def _failure_fault(url: str, failure: Failure) -> PageFault:
    """No answer to use: a request we refused to make, or one the network or site failed."""
    error = failure.value
    kind = FaultKind.REFUSED if isinstance(error, IgnoreRequest) else FaultKind.NO_ANSWER
    status = error.status if isinstance(error, OffSiteRedirect) else None
    return PageFault(url, kind, status, _describe(failure))


def _describe(failure: Failure) -> str:
    error = failure.value
    name = type(error).__name__
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, IgnoreRequest):
        return message or "request refused (robots.txt or off-site)"
    return f"{name}: {message}" if message else name
