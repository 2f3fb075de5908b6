"""The one mapping between ORM rows and the records that leave `storage/`.

A revision row holds a `StatementContent` field for field (same names); the mapping
is made from the record's fields, so a field added to `StatementContent` and to
`models.Revision` is carried both ways without another line here. Lists in rows
(JSON columns) are tuples in records (frozen).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from storage import models
from storage.records import (
    Change,
    HealthCondition,
    Revision,
    SiteState,
    StatementContent,
    StatementSummary,
)

CONTENT_FIELDS = tuple(field.name for field in fields(StatementContent))


def _to_column(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _to_record(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def revision_row(
    statement_id: int,
    number: int,
    observed_at: datetime,
    digest: str,
    change: Change,
    content: StatementContent,
) -> models.Revision:
    return models.Revision(
        statement_id=statement_id,
        number=number,
        observed_at=observed_at,
        content_hash=digest,
        changed_fields=list(change.fields),
        typographic_fields=list(change.typographic_fields),
        **{name: _to_column(getattr(content, name)) for name in CONTENT_FIELDS},
    )


def content_of(row: models.Revision) -> StatementContent:
    return StatementContent(**{name: _to_record(getattr(row, name)) for name in CONTENT_FIELDS})


def revision_record(row: models.Revision) -> Revision:
    return Revision(
        statement_id=row.statement_id,
        number=row.number,
        observed_at=row.observed_at,
        content_hash=row.content_hash,
        changed_fields=tuple(row.changed_fields),
        content=content_of(row),
        typographic_fields=tuple(row.typographic_fields),
    )


def summary_columns(statement: type[models.Statement], current: Any) -> tuple[Any, ...]:
    """A statement's list row: its own columns and its latest revision's (`current`), each
    named as the StatementSummary field it fills."""
    return (
        statement.id,
        statement.site,
        statement.url,
        current.title,
        current.published_at,
        statement.status,
        current.number.label("revisions"),
        statement.first_seen_at,
        statement.last_seen_at,
        current.observed_at.label("last_changed_at"),
        statement.post_id,
        statement.language,
        statement.twin_url,
        current.tags,
    )


def summary_of(row: Row[Any]) -> StatementSummary:
    """A row of `summary_columns`."""
    return StatementSummary(**{name: _to_record(value) for name, value in row._asdict().items()})


def site_state_of(row: models.SiteState) -> SiteState:
    return SiteState(
        site=row.site,
        baseline_done_at=row.baseline_done_at,
        last_crawl_at=row.last_crawl_at,
        last_success_at=row.last_success_at,
        blocked_streak=row.blocked_streak,
        conditions=tuple(HealthCondition(name) for name in row.conditions),
        last_crawl_seconds=row.last_crawl_seconds,
        crawls_total=row.crawls_total,
        pages_fetched_total=row.pages_fetched_total,
        errors_total=dict(row.errors_total),
    )
