"""Downloader middlewares: the site boundary and polite retries.

Each is built by `from_crawler` from plain setting values and keeps its own state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response

from crawler.urls import host_of

log = logging.getLogger(__name__)

PERMANENT_REDIRECTS = (301, 308)


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
    all, not even for its robots.txt. The spider applies the same rule (`moves_site`)
    to the links it follows; neither changes the other's hosts.
    """

    def __init__(self, site: str, hosts: frozenset[str]) -> None:
        self.site = site
        self._hosts = hosts

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
            self._hosts |= {host}
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
