"""Typed records that cross layer boundaries (crawler -> storage -> commands).

Plain frozen dataclasses: no Scrapy, no SQLAlchemy. Times are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class PageKind(StrEnum):
    LISTING = "listing"
    DETAIL = "detail"


# Ids, revision numbers and counts are INTEGER columns: PostgreSQL's end at 2**31 - 1.
MAX_NUMBER = 2**31 - 1


@dataclass(frozen=True)
class Capture:
    """One HTTP fetch, as it came off the wire (or the error that prevented it)."""

    site: str
    kind: PageKind
    requested_url: str
    final_url: str
    fetched_at: datetime
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None
    # A 200 answer that is really "not found" (WordPress's 404 template, a redirect home).
    soft_404: bool = False

    @property
    def is_gone(self) -> bool:
        return self.status in (404, 410) or self.soft_404


@dataclass(frozen=True)
class StatementContent:
    """What a detail page says, extracted and cleaned; the listing excerpt is never the body."""

    url: str
    title: str
    body: str
    language: str | None = None
    post_id: int | None = None
    subtitle: str | None = None
    published_at: datetime | None = None
    published_raw: str | None = None
    modified_at: datetime | None = None
    author: str | None = None
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    twin_url: str | None = None
    extractor_version: str = ""


@dataclass(frozen=True)
class Change:
    """What differs between two versions of a statement (decided by `storage.content.compare`).

    `fields`: whose published text changed, in report order; `typographic_fields`: those of
    them equal once width variants, quote styles and spacing are folded away.
    """

    fields: tuple[str, ...] = ()
    typographic_fields: tuple[str, ...] = ()

    @property
    def typographic(self) -> bool:
        """Something changed, and only typographically (a restyle, not an edit)."""
        return bool(self.fields) and set(self.fields) == set(self.typographic_fields)

    @property
    def edited_fields(self) -> tuple[str, ...]:
        """The fields whose wording changed (not only their typography)."""
        return tuple(name for name in self.fields if name not in self.typographic_fields)


NO_CHANGE = Change()


@dataclass(frozen=True)
class ExtractionFailure:
    """A detail page that yielded no usable statement (no title, no body)."""

    reason: str


@dataclass(frozen=True)
class ListingItem:
    url: str
    title: str


@dataclass(frozen=True)
class ListingPage:
    items: tuple[ListingItem, ...]
    next_urls: tuple[str, ...] = ()


class Outcome(StrEnum):
    """What recording one detail fetch did to the archive."""

    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    GONE = "gone"
    EXTRACTION_FAILED = "extraction-failed"
    FETCH_FAILED = "fetch-failed"


@dataclass(frozen=True)
class RecordResult:
    outcome: Outcome
    statement_id: int | None = None
    revision_number: int | None = None


@dataclass(frozen=True)
class StatementSummary:
    id: int
    site: str
    url: str
    title: str | None
    published_at: datetime | None
    status: str
    revisions: int
    first_seen_at: datetime
    last_seen_at: datetime
    last_changed_at: datetime | None
    post_id: int | None = None
    language: str | None = None
    twin_url: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class StatementFilter:
    """Which statements a listing shows; every field optional. Times are UTC."""

    site: str | None = None
    status: str | None = None
    tag: str | None = None
    published_from: datetime | None = None
    published_to: datetime | None = None
    changed_from: datetime | None = None
    changed_to: datetime | None = None
    # Only these sites (a mission's, a language's); None: any site, (): none at all.
    sites: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RevisionSummary:
    number: int
    observed_at: datetime
    content_hash: str
    changed_fields: tuple[str, ...]
    typographic_fields: tuple[str, ...] = ()

    @property
    def change(self) -> Change:
        """What changed from the revision before (nothing for the first)."""
        return Change(self.changed_fields, self.typographic_fields)


@dataclass(frozen=True)
class Revision:
    statement_id: int
    number: int
    observed_at: datetime
    content_hash: str
    changed_fields: tuple[str, ...]
    content: StatementContent
    typographic_fields: tuple[str, ...] = ()

    @property
    def change(self) -> Change:
        """What changed from the revision before (nothing for the first)."""
        return Change(self.changed_fields, self.typographic_fields)


class EventKind(StrEnum):
    """What a change event says happened."""

    NEW = "new"
    CHANGED = "changed"
    REVERTED = "reverted"
    REMOVED = "removed"
    REAPPEARED = "reappeared"
    PROBLEM = "problem"  # a health condition was raised
    RECOVERED = "recovered"  # ... and has cleared


class HealthCondition(StrEnum):
    LISTING_EMPTY = "listing-empty"
    EXTRACTION_FAILING = "extraction-failing"
    NO_SUCCESSFUL_CRAWL = "no-successful-crawl"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class NotifyTarget:
    """One notification destination as storage sees it: a key and a printable label.

    The key is derived from the apprise URL, which may hold secrets and is never stored.
    """

    key: str
    label: str


@dataclass(frozen=True)
class EventPolicy:
    """How recording turns observations into events and alerts."""

    alert_to: tuple[NotifyTarget, ...] = ()
    baseline: bool = False  # the site's first crawl: events are archived, nobody is alerted
    removal_after: int = 2  # consecutive "gone" cycles before a take-down is concluded
    alert_typographic: bool = False  # alert revisions that only restyle the text ([notify])
    wayback: bool = False  # queue each new revision for Save Page Now ([evidence] wayback)


@dataclass(frozen=True)
class ChangeEvent:
    id: int
    site: str
    kind: EventKind
    occurred_at: datetime
    statement_id: int | None = None
    url: str | None = None
    title: str | None = None
    revision: int | None = None
    previous_revision: int | None = None
    reverted_to: int | None = None
    changed_fields: tuple[str, ...] = ()
    condition: HealthCondition | None = None
    detail: str | None = None
    baseline: bool = False
    typographic_fields: tuple[str, ...] = ()

    @property
    def change(self) -> Change:
        """What the revision behind this event changed (nothing for other events)."""
        return Change(self.changed_fields, self.typographic_fields)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after the configured time; kept for the record
    DROPPED = "dropped"  # its target was removed from the configuration before delivery


@dataclass(frozen=True)
class Delivery:
    id: int
    event: ChangeEvent
    target: NotifyTarget
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_error: str | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class Reconciled:
    """What bringing waiting alerts in line with the configured targets changed."""

    queued: int = 0  # rows added (or revived) for targets configured while an alert waits
    dropped: int = 0  # rows of targets no longer configured: never sent

    def __bool__(self) -> bool:
        return bool(self.queued or self.dropped)


@dataclass(frozen=True)
class KnownStatement:
    """What the re-check policy needs to know about an archived statement."""

    url: str
    title: str
    status: str
    last_changed_at: datetime
    last_checked_at: datetime | None
    last_listed_at: datetime | None


@dataclass(frozen=True)
class SiteState:
    site: str
    baseline_done_at: datetime | None = None
    last_crawl_at: datetime | None = None
    last_success_at: datetime | None = None
    blocked_streak: int = 0
    conditions: tuple[HealthCondition, ...] = ()
    last_crawl_seconds: float | None = None
    crawls_total: int = 0
    pages_fetched_total: int = 0
    errors_total: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CrawlStats:
    """What one crawl did, added to the site's running totals."""

    seconds: float
    pages_fetched: int
    errors: dict[str, int] = field(default_factory=dict)  # kind -> count, e.g. {"fetch": 2}


@dataclass(frozen=True)
class SearchHit:
    """A revision containing the query, with the text around its first occurrence: by
    default its statement's latest such revision, one hit per statement."""

    statement_id: int
    revision: int
    observed_at: datetime
    url: str
    title: str
    field: str  # "title" or "body": where the snippet comes from
    before: str
    match: str
    after: str
    matching_revisions: int = 1  # of the statement's revisions, how many contain the query


@dataclass(frozen=True)
class SearchResults:
    query: str
    total: int  # matching statements (revisions if all_revisions), exact up to a cap
    total_exact: bool  # False: at least `total` (storage.search.TOTAL_CAP)
    all_revisions: bool  # True: one hit per matching revision, not per statement
    hits: tuple[SearchHit, ...]


@dataclass(frozen=True)
class Tallies:
    """Archive-wide counts for `status` and /metrics."""

    statements: dict[str, int]  # by status
    revisions: int
    events: dict[str, int]  # by kind
    outbox: dict[str, int]  # by delivery status
    oldest_waiting_at: datetime | None  # the oldest alert not yet delivered nor given up
    sites: tuple[SiteState, ...]
    wayback: dict[str, int] = field(default_factory=dict)  # Save Page Now captures, by status


class StatementOrder(StrEnum):
    """How a list of statements is sorted."""

    ID = "id"  # oldest id first: the API and the command line
    LAST_CHANGED = "last-changed"  # latest change first (then newest id): the web list


@dataclass(frozen=True)
class StatementPage:
    """One page of a list of statements, and how many the whole list holds."""

    statements: tuple[StatementSummary, ...]
    total: int


@dataclass(frozen=True)
class EventFilter:
    """Which change events a list shows; every field optional. Times are UTC."""

    since: datetime | None = None
    site: str | None = None
    statement_id: int | None = None
    kinds: tuple[EventKind, ...] = ()
    include_baseline: bool = True
    until: datetime | None = None  # occurred at or before
    # Only these sites (a mission's, a language's); None: any site, (): none at all.
    sites: tuple[str, ...] | None = None


@dataclass(frozen=True)
class EventPage:
    """Events, newest first; `older` is the `before` that reads the next page (None: the last)."""

    events: tuple[ChangeEvent, ...]
    total: int
    older: int | None = None


@dataclass(frozen=True)
class KeptPage:
    """The raw page a revision was read from, as kept in the archive."""

    sha256: str
    size: int
    fetched_at: datetime
    url: str
    status: int | None
