"""Run crawls: `Crawls.crawl_site` (a coroutine on the running reactor) and `run_crawls` (CLI).

Scrapy runs on Twisted's asyncio reactor, installed once per process; see
../shared/notes/tech-notes.md section 1 for why crawls share one reactor.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from config import CrawlSettings, SiteSettings
from crawler.report import ArchiveSink, CrawlPlan, CrawlReport
from storage.records import Outcome

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SHUTDOWN = "shutdown"  # Scrapy's finish reason for a crawl closed by `Crawls.stop`

log = logging.getLogger(__name__)


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
            "crawler.middlewares.PoliteRetryMiddleware": 550,
            # Before robots.txt (100) is fetched for a request's host, so that a host off
            # the site is never contacted at all; redirected requests pass here too.
            "crawler.middlewares.SiteBoundaryMiddleware": 50,
        },
        # Spider middlewares that rework every callback's output for features we do not
        # use (depth limits, a debugging check of copied meta); each adds an asynchronous
        # generator per response. URL length limits and Referer handling (which the
        # redirect middlewares rely on, warning without it) stay.
        "SPIDER_MIDDLEWARES": {
            "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
            "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
        },
        "ITEM_PIPELINES": {"crawler.pipelines.ArchivePipeline": 100},
        # Scrapy re-reads and parses a generator callback's source on every response to warn
        # about `return value` (its cache is keyed on bound methods, new each time): 2-7% of
        # a crawl's CPU. Ours return nothing (mypy checks that they are Iterators of items).
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        # Scrapy's byte counts, which rebuild each response's full HTTP text: unused.
        "DOWNLOADER_STATS": False,
        "HTTPCACHE_ENABLED": False,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_ENABLED": False,
        "LOGSTATS_INTERVAL": 0,
    }


class Crawls:
    """The crawls running on this reactor, so that a shutdown can stop them cleanly."""

    def __init__(self) -> None:
        self._running: dict[Any, CrawlReport] = {}  # Scrapy runner -> its crawl's report
        self._stopping = False

    async def crawl_site(
        self,
        site: SiteSettings,
        crawl: CrawlSettings,
        sink: ArchiveSink,
        plan: CrawlPlan,
    ) -> CrawlReport:
        """One crawl of one site, run on the already-running asyncio reactor."""
        from scrapy.crawler import AsyncCrawlerRunner

        from crawler.items import CRAWL_FACT
        from crawler.spider import NewsSpider

        report = CrawlReport(site=site.name, started_at=datetime.now(UTC))
        if self._stopping:  # a crawl asked for after `stop` is not started
            report.finished_at, report.finish_reason = report.started_at, SHUTDOWN
            return report
        runner = AsyncCrawlerRunner(
            {
                **scrapy_settings(crawl),
                "EMBASSY_WATCH_SITE": site.name,
                "EMBASSY_WATCH_SITE_HOSTS": sorted(site.hosts),
            }
        )
        crawler = runner.create_crawler(NewsSpider)
        # The spider and the pipeline state facts; only this report adds them up.
        crawler.signals.connect(report.note, signal=CRAWL_FACT)
        self._running[runner] = report
        try:
            await runner.crawl(
                crawler,
                site=site.name,
                listing_urls=site.listing_urls,
                sitemap_urls=site.sitemap_urls,
                rest_urls=site.rest_urls,
                timezone=site.timezone,
                plan=plan,
                max_listing_pages=crawl.max_listing_pages,
                sink=sink,
            )
        finally:
            self._running.pop(runner, None)
        report.finished_at = datetime.now(UTC)
        report.finish_reason = str(crawler.stats.get_value("finish_reason") or "")
        return report

    async def stop(self) -> None:
        """Close every running crawl: requests in flight finish, each page is recorded whole."""
        self._stopping = True
        for runner in list(self._running):
            await runner.stop()

    def in_progress(self) -> list[CrawlReport]:
        """The reports of the crawls running now, as far as they got."""
        return list(self._running.values())


def install_reactor() -> None:
    """Install Twisted's asyncio reactor, once, before anything imports the default one."""
    from scrapy.utils.reactor import install_reactor as scrapy_install_reactor

    try:
        scrapy_install_reactor(ASYNCIO_REACTOR)
    except Exception as error:  # already installed (a second call in one process)
        from twisted.internet import reactor

        if type(reactor).__name__ != "AsyncioSelectorReactor":
            raise RuntimeError(f"a non-asyncio Twisted reactor is installed: {error}") from error


def run_in_reactor(main: Callable[[], Awaitable[None]], on_signal: Callable[[str], None]) -> None:
    """Run `main()` on the asyncio reactor until it returns or `stop_reactor` is called.

    SIGINT and SIGTERM call `on_signal` with the signal's name instead of stopping the
    reactor (Twisted's own handlers would stop it under `main`, its crawl half done).
    """
    install_reactor()
    from twisted.internet import reactor as installed_reactor
    from twisted.internet.defer import Deferred

    reactor: Any = installed_reactor
    failure: list[BaseException] = []

    async def wrapped() -> None:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, on_signal, signal.Signals(signum).name)
        try:
            await main()
        except BaseException as error:
            failure.append(error)
        finally:
            reactor.callLater(0, stop_reactor)

    reactor.callWhenRunning(lambda: Deferred.fromFuture(asyncio.ensure_future(wrapped())))
    try:
        reactor.run(installSignalHandlers=False)
    finally:
        loop = asyncio.get_event_loop()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)  # back to KeyboardInterrupt and SIG_DFL
    if failure:
        raise failure[0]


def stop_reactor() -> None:
    """Stop the reactor now, whatever runs on it (once: a second call is no error)."""
    from twisted.internet import reactor as installed_reactor
    from twisted.internet.error import ReactorNotRunning

    reactor: Any = installed_reactor
    with suppress(ReactorNotRunning):
        reactor.stop()


@dataclass
class CrawlRun:
    """What `run_crawls` did: each site's report, and the signal that cut it short if any."""

    reports: list[CrawlReport] = field(default_factory=list)
    interrupted_by: str | None = None  # "SIGINT" or "SIGTERM"

    def kept_line(self) -> str:
        """After an interruption: what the archive kept, e.g. `3 listing pages and ...`."""
        outcomes: Counter[Outcome] = Counter()
        for report in self.reports:
            outcomes.update(report.outcomes)
        listing = sum(report.listing_pages for report in self.reports)
        counts = ", ".join(f"{outcomes[o]} {o}" for o in Outcome if outcomes[o])
        return (
            f"{listing} listing pages and {sum(outcomes.values())} statement pages recorded"
            f"{f' ({counts})' if counts else ''}"
        )


def run_crawls(
    sites: Sequence[SiteSettings],
    crawl_site: Callable[[SiteSettings], Awaitable[CrawlReport]],
    crawls: Crawls,
) -> CrawlRun:
    """Crawl each site once, one after another, on a reactor of their own (the `crawl` command).

    The first SIGINT or SIGTERM closes the running crawl (pages in flight are recorded
    whole) and starts no other; a second one stops at once. Either way every page
    recorded before is kept, each in a transaction of its own.
    """
    run = CrawlRun()
    closing: list[asyncio.Future[None]] = []  # referenced, so the task is not collected

    async def all_sites() -> None:
        for site in sites:
            if run.interrupted_by:
                return
            run.reports.append(await crawl_site(site))

    def interrupt(signal_name: str) -> None:
        if run.interrupted_by is not None:
            log.warning("%s again: stopping now", signal_name)
            run.reports += crawls.in_progress()
            stop_reactor()
            return
        run.interrupted_by = signal_name
        log.warning(
            "%s: closing the crawl (the pages in flight are recorded); again to stop now",
            signal_name,
        )
        closing.append(asyncio.ensure_future(crawls.stop()))

    run_in_reactor(all_sites, interrupt)
    return run
