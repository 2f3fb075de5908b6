"""The composition root: the one place that turns settings into working parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from config import ConfigError, Settings, SiteSettings
from crawler.report import CrawlReport
from monitor.evidence import Timestamper
from monitor.messages import what_changed
from monitor.notify import Dispatcher, NotifyConfigError, Target, make_targets
from monitor.status import Health, read_health
from monitor.wayback import Archivist
from storage.archive import Archive
from storage.engine import database_label
from storage.errors import first_line
from storage.evidence import Evidence
from storage.wayback import WaybackQueue

if TYPE_CHECKING:  # these import Scrapy or FastAPI: only when crawling or serving
    from fastapi import FastAPI

    from crawler.runner import CrawlRun, Crawls
    from monitor.cycle import Monitor


class ArchiveUnavailable(Exception):
    """The database could not be opened or migrated; the message says why, in one line."""


@dataclass
class App:
    settings: Settings
    archive: Archive
    targets: tuple[Target, ...]

    def monitor(self, crawls: Crawls) -> Monitor:
        from monitor.cycle import Monitor

        return Monitor(
            self.settings,
            self.archive,
            crawls,
            tuple(t.record for t in self.targets),
            self.timestamper(),
        )

    def timestamper(self) -> Timestamper:
        evidence = Evidence(self.archive.engine)
        return Timestamper(evidence, self.settings.evidence, self.settings.crawl.user_agent)

    def archivist(self) -> Archivist:
        queue = WaybackQueue(self.archive.engine)
        return Archivist(queue, self.settings.evidence, self.settings.crawl.user_agent)

    def dispatcher(self) -> Dispatcher:
        describe = partial(what_changed, self.archive)
        return Dispatcher(self.archive.outbox, self.targets, self.settings.notify, describe)

    def crawl(
        self,
        sites: tuple[SiteSettings, ...] | None = None,
        on_report: Callable[[CrawlReport], None] | None = None,
    ) -> CrawlRun:
        """One full cycle of each site now: every statement re-read, events recorded.

        SIGINT or SIGTERM end it early: see `run_crawls`.
        """
        from crawler.runner import Crawls, run_crawls  # imports Scrapy: only when crawling

        crawls = Crawls()
        monitor = self.monitor(crawls)

        async def crawl_site(site: SiteSettings) -> CrawlReport:
            report = await monitor.run_cycle(site, everything=True)
            if on_report is not None:
                on_report(report)
            return report

        return run_crawls(sites or self.settings.sites, crawl_site, crawls)

    def health(self) -> Health:
        return read_health(self.archive, self.settings, datetime.now(UTC))

    def web(self) -> FastAPI:
        from monitor.web.site import create_app  # imports FastAPI: only when serving

        return create_app(self.archive, self.health, self.settings.sites)

    def thin_observations(
        self, older_than: float | None = None, cancelled: Callable[[], bool] = lambda: False
    ) -> int:
        """Forget repeated fetches older than `older_than` seconds (default: the setting).

        0 means keep every fetch.
        """
        if older_than is None:
            older_than = self.settings.database.thin_observations_after
        if older_than == 0:
            return 0
        before = datetime.now(UTC) - timedelta(seconds=older_than)
        return self.archive.thin_observations(before, cancelled=cancelled)

    def close(self) -> None:
        self.archive.close()


def build_app(settings: Settings, *, create_archive: bool = True) -> App:
    """The parts, on an archive opened (or, with `create_archive`, made) at [database] url.

    Raises ArchiveMissing when there is no archive and `create_archive` is false.
    """
    try:
        targets = make_targets(settings.notify.urls)
    except NotifyConfigError as error:
        raise ConfigError(str(error)) from None
    where = database_label(settings.database.url)
    try:
        archive = Archive.open(settings.database.url, create=create_archive)
    except SQLAlchemyError as error:
        raise ArchiveUnavailable(f"{where}: {first_line(error)}") from error
    except OSError as error:
        raise ArchiveUnavailable(f"{where}: {error.strerror or error}") from error
    return App(settings, archive, targets)
