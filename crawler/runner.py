"""Run crawls: `Crawls.crawl_site` (a coroutine on the running reactor) and `run_crawls` (CLI).

Scrapy runs on Twisted's asyncio reactor, installed once per process; see
../shared/notes/tech-notes.md section 1 for why crawls share one reactor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from config import CrawlSettings, SiteSettings
from crawler.report import ArchiveSink, CrawlPlan, CrawlReport

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
T = TypeVar("T")


def scrapy_settings(crawl: CrawlSettings) -> dict[str, Any]:
    polite_delay = crawl.delay > 0
    return {
        "TWISTED_REACTOR": ASYNCIO_REACTOR,
        "USER_AGENT": crawl.user_agent,
        "ROBOTSTXT_OBEY": crawl.obey_robots_txt,
        "DEFAULT_REQUEST_HEADERS": {
            "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5",
            # A cache between us and the site must not hide an edit.
            "Cache-Control": "max-age=0",
        },
        # One site is crawled per crawler: never more requests in the downloader than one
        # host may have, so a host put on hold (Retry-After, backoff) has none queued.
        "CONCURRENT_REQUESTS": crawl.concurrent_requests_per_host,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrent_requests_per_host,
        "DOWNLOAD_DELAY": crawl.delay,
        "DOWNLOAD_DELAY_JITTER": 0.5 if polite_delay else 0.0,
        "AUTOTHROTTLE_ENABLED": polite_delay,
        "AUTOTHROTTLE_START_DELAY": max(crawl.delay, 0.1),
        "AUTOTHROTTLE_MAX_DELAY": max(60.0, crawl.delay),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "DOWNLOAD_TIMEOUT": crawl.timeout,
        "DOWNLOAD_MAXSIZE": crawl.max_page_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "CLOSESPIDER_TIMEOUT": crawl.max_duration,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": crawl.retries,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "REDIRECT_MAX_TIMES": 5,
        "EMBASSY_WATCH_RETRY_BACKOFF": crawl.retry_backoff,
        "EMBASSY_WATCH_MAX_RETRY_AFTER": crawl.max_retry_after,
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "crawler.spider.PoliteRetryMiddleware": 550,
            # After RedirectMiddleware (600) has built the redirected request.
            "crawler.spider.SiteBoundaryMiddleware": 590,
        },
        "ITEM_PIPELINES": {"crawler.spider.ArchivePipeline": 100},
        "HTTPCACHE_ENABLED": False,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_ENABLED": False,
        "LOGSTATS_INTERVAL": 0,
    }


class Crawls:
    """The crawls running on this reactor, so that a shutdown can stop them cleanly."""

    def __init__(self) -> None:
        self._running: set[Any] = set()

    async def crawl_site(
        self,
        site: SiteSettings,
        crawl: CrawlSettings,
        sink: ArchiveSink,
        plan: CrawlPlan,
    ) -> CrawlReport:
        """One crawl of one site, run on the already-running asyncio reactor."""
        from scrapy.crawler import AsyncCrawlerRunner

        from crawler.spider import NewsSpider

        report = CrawlReport(site=site.name, started_at=datetime.now(UTC))
        runner = AsyncCrawlerRunner(scrapy_settings(crawl))
        crawler = runner.create_crawler(NewsSpider)
        self._running.add(runner)
        try:
            await runner.crawl(
                crawler,
                site=site.name,
                listing_urls=site.listing_urls,
                sitemap_urls=site.sitemap_urls,
                rest_urls=site.rest_urls,
                allowed_hosts=site.hosts,
                timezone=site.timezone,
                plan=plan,
                max_listing_pages=crawl.max_listing_pages,
                sink=sink,
                report=report,
            )
        finally:
            self._running.discard(runner)
        report.finished_at = datetime.now(UTC)
        report.finish_reason = str(crawler.stats.get_value("finish_reason") or "")
        return report

    async def stop(self) -> None:
        """Close every running crawl: requests in flight finish, each page is recorded whole."""
        for runner in list(self._running):
            await runner.stop()


def install_reactor() -> None:
    """Install Twisted's asyncio reactor, once, before anything imports the default one."""
    from scrapy.utils.reactor import install_reactor as scrapy_install_reactor

    try:
        scrapy_install_reactor(ASYNCIO_REACTOR)
    except Exception as error:  # already installed (a second call in one process)
        from twisted.internet import reactor

        if type(reactor).__name__ != "AsyncioSelectorReactor":
            raise RuntimeError(f"a non-asyncio Twisted reactor is installed: {error}") from error


def run_in_reactor(main: Callable[[], Awaitable[T]]) -> T:
    """Run `main()` to completion on the asyncio reactor, then stop the reactor."""
    install_reactor()
    from twisted.internet import reactor as installed_reactor
    from twisted.internet.defer import Deferred

    reactor: Any = installed_reactor
    outcome: dict[str, Any] = {}

    async def wrapped() -> None:
        try:
            outcome["value"] = await main()
        except BaseException as error:
            outcome["error"] = error
        finally:
            reactor.callLater(0, reactor.stop)

    reactor.callWhenRunning(lambda: Deferred.fromFuture(asyncio.ensure_future(wrapped())))
    reactor.run(installSignalHandlers=True)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def run_crawls(
    sites: Sequence[SiteSettings], crawl_site: Callable[[SiteSettings], Awaitable[CrawlReport]]
) -> list[CrawlReport]:
    """Crawl each site once, one after another, on a reactor of their own (the `crawl` command)."""

    async def all_sites() -> list[CrawlReport]:
        return [await crawl_site(site) for site in sites]

    return run_in_reactor(all_sites)
