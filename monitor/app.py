"""The composition root: the one place that turns settings into working parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from config import Settings, SiteSettings
from crawler.report import CrawlReport
from storage.archive import Archive


class ArchiveUnavailable(Exception):
    """The database could not be opened or migrated; the message says why, in one line."""


@dataclass
class App:
    settings: Settings
    archive: Archive

    def crawl(
        self,
        sites: tuple[SiteSettings, ...] | None = None,
        on_report: Callable[[CrawlReport], None] | None = None,
    ) -> list[CrawlReport]:
        from crawler.runner import run_crawls  # imports Scrapy: only when crawling

        return run_crawls(
            sites or self.settings.sites,
            self.settings.crawl,
            self.archive,
            self.archive.active_statement_urls,
            on_report,
        )

    def close(self) -> None:
        self.archive.close()


def build_app(settings: Settings) -> App:
    try:
        archive = Archive.open(settings.database.url)
    except SQLAlchemyError as error:
        raise ArchiveUnavailable(_one_line(error)) from error
    except OSError as error:
        raise ArchiveUnavailable(f"{settings.database.url}: {error.strerror or error}") from error
    return App(settings, archive)


def _one_line(error: SQLAlchemyError) -> str:
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()
    return text[0] if text else type(error).__name__
