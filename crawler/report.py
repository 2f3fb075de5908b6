"""What one crawl of one site did, and the interface the crawler writes through."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from storage.records import (
    Capture,
    ExtractionFailure,
    ListingPage,
    Outcome,
    RecordResult,
    StatementContent,
)


class ArchiveSink(Protocol):
    """Where the crawler puts what it fetched (storage.Archive in production)."""

    def record_listing(self, capture: Capture, page: ListingPage | None) -> None: ...

    def record_detail(
        self,
        capture: Capture,
        extraction: StatementContent | ExtractionFailure | None,
        *,
        unlisted: bool,
    ) -> RecordResult: ...


@dataclass(frozen=True)
class CrawlPlan:
    """What the archive already knows, so a crawl fetches only what may have changed.

    Listed statements are fetched when new, due, or shown under a title other than the
    archived one; unlisted ones when due or when they just dropped off the listing.
    """

    known_titles: Mapping[str, str] = field(default_factory=dict)  # URL -> archived title
    due: frozenset[str] = frozenset()
    recently_listed: frozenset[str] = frozenset()
    last_checked: Mapping[str, datetime] = field(default_factory=dict)  # for sitemap hints

    @classmethod
    def check_everything(cls, known_titles: Mapping[str, str]) -> CrawlPlan:
        return cls(known_titles, frozenset(known_titles))


@dataclass
class CrawlReport:
    """Filled in while a crawl runs; read by the command line and the scheduler."""

    site: str
    started_at: datetime
    finished_at: datetime | None = None
    finish_reason: str = ""
    listing_pages: int = 0
    statements_listed: int = 0
    statements_skipped: int = 0  # listed, archived, not due and unchanged in the listing
    blocked_responses: int = 0  # 403 and 429 answers: the site may be refusing us
    hinted: int = 0  # statements re-read because a sitemap or the REST API says they changed
    hint_errors: list[str] = field(default_factory=list)  # hint sources unread: no failure
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    listing_errors: list[str] = field(default_factory=list)
    fetch_errors: list[str] = field(default_factory=list)
    extraction_failures: list[str] = field(default_factory=list)
    fatal_error: str | None = None

    @property
    def failed(self) -> bool:
        """The crawl could not do its job: no listing read, the archive refused, or cut short."""
        if self.fatal_error or self.finish_reason not in ("", "finished"):
            return True
        return self.listing_pages == 0 or bool(self.listing_errors)

    @property
    def problems(self) -> list[str]:
        fatal = [self.fatal_error] if self.fatal_error else []
        stopped = (
            [f"crawl stopped early: {self.finish_reason}"]
            if self.finish_reason not in ("", "finished")
            else []
        )
        return [
            *fatal,
            *stopped,
            *self.listing_errors,
            *self.fetch_errors,
            *self.extraction_failures,
        ]

    @property
    def statements_fetched(self) -> int:
        return sum(self.outcomes.values())

    @property
    def stopped_by_shutdown(self) -> bool:
        return self.finish_reason == "shutdown"

    def summary_line(self) -> str:
        counts = ", ".join(
            f"{self.outcomes[outcome]} {outcome}" for outcome in Outcome if self.outcomes[outcome]
        )
        seconds = (self.finished_at - self.started_at).total_seconds() if self.finished_at else 0.0
        state = "FAILED" if self.failed else "done"
        return (
            f"{self.site}: {state} in {seconds:.1f}s: {self.listing_pages} listing pages, "
            f"{self.statements_listed} statements listed, {self.statements_fetched} fetched"
            f"{f' ({self.statements_skipped} not due)' if self.statements_skipped else ''}"
            f"{f', {self.hinted} on the site hints' if self.hinted else ''}"
            f"{' (' + counts + ')' if counts else ''}; "
            f"{len(self.listing_errors)} listing errors, {len(self.fetch_errors)} fetch errors, "
            f"{len(self.extraction_failures)} extraction failures"
        )
