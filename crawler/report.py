"""What one crawl of one site did, and the interface the crawler writes through.

The crawler's components (spider, pipeline) do not share this report: each states typed
facts (`CrawlFact`) through a Scrapy signal, and the crawl's runner adds them up here.
Health (monitor/health.py) is judged from the facts' kinds and statuses; their text is
only for people.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
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


# 403 Forbidden and 429 Too Many Requests: the site may be refusing us.
BLOCKED_STATUSES = frozenset({403, 429})


class FaultKind(StrEnum):
    """Why a page gave us nothing to use."""

    HTTP_STATUS = "http-status"  # it answered with a status other than 200
    NO_ANSWER = "no-answer"  # no usable answer: connection refused, timeout, too large, ...
    REFUSED = "refused"  # we did not ask: off the site, or robots.txt forbids it
    LISTING_EMPTY = "listing-empty"  # a listing's first page that shows no statement
    NOT_EXTRACTED = "not-extracted"  # a statement page without a usable statement
    NOT_READABLE = "not-readable"  # a hint source that is not a sitemap / a posts list


@dataclass(frozen=True)
class PageFault:
    """One page that failed, as a fact: its kind, its HTTP status, and what was said why."""

    url: str
    kind: FaultKind
    status: int | None = None
    reason: str = ""  # the error's or the extractor's words, for people

    @property
    def blocked(self) -> bool:
        return self.kind is FaultKind.HTTP_STATUS and self.status in BLOCKED_STATUSES

    def __str__(self) -> str:
        if self.kind is FaultKind.HTTP_STATUS:
            return f"{self.url}: HTTP {self.status}"
        if self.kind is FaultKind.LISTING_EMPTY:
            return f"{self.url}: the listing shows no statements"
        return f"{self.url}: {self.reason or self.kind}"


class Source(StrEnum):
    """Which kind of page a fault is about (they count apart: a listing fault fails a crawl)."""

    LISTING = "listing"
    STATEMENT = "statement"
    HINT = "hint"  # a sitemap or the REST API: unread hints cost nothing but the hints


@dataclass(frozen=True)
class PageFailed:
    source: Source
    fault: PageFault


@dataclass(frozen=True)
class ListingRead:
    """A listing page read (status 200), showing `statements` links on the site."""

    url: str
    statements: int


@dataclass(frozen=True)
class Refused:
    """An answer of 403/429 to a listing or statement page: the site may be refusing us."""

    url: str
    status: int


@dataclass(frozen=True)
class StatementRecorded:
    """A statement page recorded, with what that did to the archive."""

    url: str
    outcome: Outcome


@dataclass(frozen=True)
class Planned:
    """Once the listing is read: statements re-read on hints, listed ones left alone."""

    hinted: int
    skipped: int


@dataclass(frozen=True)
class ArchiveRefused:
    """The archive would not take a write (a full disk, a lost database): the crawl stops."""

    reason: str


CrawlFact = PageFailed | ListingRead | Refused | StatementRecorded | Planned | ArchiveRefused


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
    hint_errors: list[PageFault] = field(default_factory=list)  # hint sources unread: no failure
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    listing_errors: list[PageFault] = field(default_factory=list)
    fetch_errors: list[PageFault] = field(default_factory=list)
    extraction_failures: list[PageFault] = field(default_factory=list)
    fatal_error: str | None = None

    def note(self, fact: CrawlFact) -> None:
        """Add one fact the crawler stated (the handler of its `CRAWL_FACT` signal)."""
        match fact:
            case PageFailed(Source.LISTING, fault):
                self.listing_errors.append(fault)
            case PageFailed(Source.HINT, fault):
                self.hint_errors.append(fault)
            case PageFailed(Source.STATEMENT, fault) if fault.kind is FaultKind.NOT_EXTRACTED:
                self.extraction_failures.append(fault)
            case PageFailed(Source.STATEMENT, fault):
                self.fetch_errors.append(fault)
            case ListingRead(_, statements):
                self.listing_pages += 1
                self.statements_listed += statements
            case Refused():
                self.blocked_responses += 1
            case StatementRecorded(_, outcome):
                self.outcomes[outcome] += 1
            case Planned(hinted, skipped):
                self.hinted, self.statements_skipped = hinted, skipped
            case ArchiveRefused(reason):
                self.fatal_error = self.fatal_error or reason

    @property
    def listing_empty(self) -> PageFault | None:
        """The fault of a listing that shows no statement, if this crawl met one."""
        return next((f for f in self.listing_errors if f.kind is FaultKind.LISTING_EMPTY), None)

    @property
    def listing_blocked(self) -> bool:
        """The listing itself answered 403/429."""
        return any(fault.blocked for fault in self.listing_errors)

    @property
    def failed(self) -> bool:
        """The crawl could not do its job: no listing read, the archive refused, or cut short."""
        if self.fatal_error or self.finish_reason not in ("", "finished"):
            return True
        return self.listing_pages == 0 or bool(self.listing_errors)

    @property
    def problems(self) -> list[str]:
        """Each problem in one line, for people (judge health from the facts instead)."""
        fatal = [self.fatal_error] if self.fatal_error else []
        stopped = (
            [f"crawl stopped early: {self.finish_reason}"]
            if self.finish_reason not in ("", "finished")
            else []
        )
        faults = [*self.listing_errors, *self.fetch_errors, *self.extraction_failures]
        return [*fatal, *stopped, *(str(fault) for fault in faults)]

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
