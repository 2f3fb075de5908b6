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

    @property
    def is_gone(self) -> bool:
        return self.status in (404, 410)


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


@dataclass(frozen=True)
class RevisionSummary:
    number: int
    observed_at: datetime
    content_hash: str
    changed_fields: tuple[str, ...]


@dataclass(frozen=True)
class Revision:
    statement_id: int
    number: int
    observed_at: datetime
    content_hash: str
    changed_fields: tuple[str, ...]
    content: StatementContent
