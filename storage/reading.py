"""Reading the archive: statements, their revisions and history, events, raw pages, tallies."""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterator
from datetime import datetime

from sqlalchemy import Row, Select, func, select

from storage import models
from storage.events import event_record
from storage.mapping import revision_record, site_state_of, summary
from storage.outbox import Outbox
from storage.records import (
    MAX_NUMBER,
    Capture,
    ChangeEvent,
    EventKind,
    KnownStatement,
    PageKind,
    Revision,
    RevisionSummary,
    SearchResults,
    StatementFilter,
    StatementSummary,
    Tallies,
)
from storage.search import search as search_revisions
from storage.sessions import Sessions

NO_FILTER = StatementFilter()


class Reading:
    def __init__(self, sessions: Sessions, outbox: Outbox) -> None:
        self._sessions = sessions
        self._outbox = outbox

    def known_statements(self, site: str) -> list[KnownStatement]:
        """Every archived statement of a site with what the re-check policy weighs."""
        with self._sessions.reading() as session:
            rows = session.execute(
                _summary_query().where(models.Statement.site == site).order_by(models.Statement.id)
            ).all()
            return [
                KnownStatement(
                    url=statement.url,
                    title=current.title,
                    status=statement.status,
                    last_changed_at=last_changed_at,
                    last_checked_at=statement.last_checked_at,
                    last_listed_at=statement.last_listed_at,
                )
                for statement, _, last_changed_at, current in rows
            ]

    def changes(
        self,
        *,
        since: datetime | None = None,
        site: str | None = None,
        statement_id: int | None = None,
        kinds: Collection[EventKind] = (),
        include_baseline: bool = True,
        before: int | None = None,
        limit: int = 100,
    ) -> list[ChangeEvent]:
        """Change events, newest first; `before` (an event id) pages back in time."""
        query = select(models.ChangeEvent)
        if kinds:
            query = query.where(models.ChangeEvent.kind.in_([str(kind) for kind in kinds]))
        if not include_baseline:
            query = query.where(models.ChangeEvent.baseline.is_(False))
        if before is not None:
            query = query.where(models.ChangeEvent.id < before)
        if since is not None:
            query = query.where(models.ChangeEvent.occurred_at >= since)
        if site is not None:
            query = query.where(models.ChangeEvent.site == site)
        if statement_id is not None:
            query = query.where(models.ChangeEvent.statement_id == statement_id)
        with self._sessions.reading() as session:
            rows = session.scalars(query.order_by(models.ChangeEvent.id.desc()).limit(limit))
            return [event_record(row) for row in rows]

    def statements(self, where: StatementFilter = NO_FILTER) -> list[StatementSummary]:
        """Statements matching `where`, oldest id first."""
        query = _summary_query()
        published, changed = models.Revision.published_at, query.selected_columns.last_changed_at
        if where.site is not None:
            query = query.where(models.Statement.site == where.site)
        if where.status is not None:
            query = query.where(models.Statement.status == where.status)
        if where.published_from is not None:
            query = query.where(published >= where.published_from)
        if where.published_to is not None:
            query = query.where(published <= where.published_to)
        if where.changed_from is not None:
            query = query.where(changed >= where.changed_from)
        if where.changed_to is not None:
            query = query.where(changed <= where.changed_to)
        with self._sessions.reading() as session:
            rows = session.execute(query.order_by(models.Statement.id)).all()
            found = [_summary(row) for row in rows]
        # Tags are a JSON list per revision; an archive holds thousands, not millions.
        return [s for s in found if where.tag is None or where.tag in s.tags]

    def sites(self) -> list[str]:
        """Names of the sites with archived statements."""
        with self._sessions.reading() as session:
            query = select(models.Statement.site).distinct().order_by(models.Statement.site)
            return list(session.scalars(query))

    def find_statement(self, ref: str) -> StatementSummary | None:
        """A statement by numeric id or by any URL it has been known by."""
        with self._sessions.reading() as session:
            query = _summary_query()
            if ref.isdigit():
                if int(ref) > MAX_NUMBER:
                    return None  # no such id can exist
                query = query.where(models.Statement.id == int(ref))
            else:
                known = select(models.StatementUrl.statement_id).where(
                    models.StatementUrl.url.in_(_url_variants(ref))
                )
                query = query.where(models.Statement.id.in_(known))
            row = session.execute(query.limit(1)).first()
            return _summary(row) if row else None

    def history(self, statement_id: int) -> list[RevisionSummary]:
        """A statement's revisions, oldest first, without their texts."""
        r = models.Revision
        query = (
            select(r.number, r.observed_at, r.content_hash, r.changed_fields, r.typographic_fields)
            .where(r.statement_id == statement_id)
            .order_by(r.number)
        )
        with self._sessions.reading() as session:
            rows = session.execute(query)
            return [
                RevisionSummary(number, observed_at, content_hash, tuple(changed), tuple(typo))
                for number, observed_at, content_hash, changed, typo in rows
            ]

    def revision(
        self, statement_id: int, *, number: int | None = None, at: datetime | None = None
    ) -> Revision | None:
        """Revision `number`, else the one in force at time `at`, else the latest."""
        query = select(models.Revision).where(models.Revision.statement_id == statement_id)
        if number is not None:
            query = query.where(models.Revision.number == number)
        if at is not None:
            query = query.where(models.Revision.observed_at <= at)
        with self._sessions.reading() as session:
            row = session.scalar(query.order_by(models.Revision.number.desc()).limit(1))
            return revision_record(row) if row else None

    def revisions(self, statement_id: int) -> Iterator[Revision]:
        """Every revision of a statement in full, oldest first (streamed, for exports)."""
        with self._sessions.reading() as session:
            rows = session.scalars(
                select(models.Revision)
                .where(models.Revision.statement_id == statement_id)
                .order_by(models.Revision.number)
                .execution_options(yield_per=100)
            )
            for row in rows:
                yield revision_record(row)

    def captures(self, statement_id: int | None = None) -> Iterator[Capture]:
        """Every fetch whose raw bytes were kept, oldest first (streamed, for WARC export)."""
        query = (
            select(models.Observation, models.Blob.data)
            .join(models.Blob, models.Blob.sha256 == models.Observation.blob_sha256)
            .order_by(models.Observation.id)
        )
        if statement_id is not None:
            query = query.where(models.Observation.statement_id == statement_id)
        with self._sessions.reading() as session:
            for observation, data in session.execute(query.execution_options(yield_per=50)):
                yield Capture(
                    site=observation.site,
                    kind=PageKind(observation.kind),
                    requested_url=observation.requested_url,
                    final_url=observation.final_url,
                    fetched_at=observation.fetched_at,
                    status=observation.status,
                    headers=dict(observation.headers),
                    body=zlib.decompress(data),
                )

    def search(self, query: str, *, limit: int = 20, offset: int = 0) -> SearchResults:
        """Every revision whose title or body contains `query` (any length, Chinese too)."""
        with self._sessions.reading() as session:
            return search_revisions(session, query, limit, offset)

    def raw_body(self, sha256: str) -> bytes | None:
        with self._sessions.reading() as session:
            blob = session.get(models.Blob, sha256)
            return zlib.decompress(blob.data) if blob else None

    def tallies(self) -> Tallies:
        statement, event = models.Statement, models.ChangeEvent
        with self._sessions.reading() as session:
            by_status = session.execute(
                select(statement.status, func.count()).group_by(statement.status)
            ).all()
            by_kind = session.execute(select(event.kind, func.count()).group_by(event.kind)).all()
            revisions = session.scalar(select(func.count()).select_from(models.Revision)) or 0
            sites = session.scalars(select(models.SiteState).order_by(models.SiteState.site))
            site_states = tuple(site_state_of(row) for row in sites)
        return Tallies(
            statements={status: count for status, count in by_status},
            revisions=revisions,
            events={kind: count for kind, count in by_kind},
            outbox={str(status): count for status, count in self._outbox.counts().items()},
            oldest_waiting_at=self._outbox.oldest_waiting(),
            sites=site_states,
        )

    def counts(self) -> dict[str, int]:
        """Row counts per table (for summaries and tests of what a crawl wrote)."""
        tables = {
            "statements": models.Statement,
            "revisions": models.Revision,
            "observations": models.Observation,
            "blobs": models.Blob,
            "events": models.ChangeEvent,
            "outbox": models.Outbox,
        }
        with self._sessions.reading() as session:
            return {
                name: session.scalar(select(func.count()).select_from(table)) or 0
                for name, table in tables.items()
            }


def _url_variants(url: str) -> list[str]:
    """A user may type a statement URL with or without its trailing slash or query."""
    bare = url.split("#", 1)[0].split("?", 1)[0]
    return list(dict.fromkeys((url, bare, bare.rstrip("/") + "/", bare.rstrip("/"))))


def _summary_query() -> Select[models.Statement, int, datetime, models.Revision]:
    latest = (
        select(
            models.Revision.statement_id.label("statement_id"),
            func.max(models.Revision.number).label("revisions"),
            func.max(models.Revision.observed_at).label("last_changed_at"),
        )
        .group_by(models.Revision.statement_id)
        .subquery()
    )
    current = models.Revision
    return (
        select(models.Statement, latest.c.revisions, latest.c.last_changed_at, current)
        .join(latest, latest.c.statement_id == models.Statement.id)
        .join(
            current,
            (current.statement_id == models.Statement.id) & (current.number == latest.c.revisions),
        )
    )


def _summary(row: Row[models.Statement, int, datetime, models.Revision]) -> StatementSummary:
    statement, revisions, last_changed_at, current = row
    return summary(statement, revisions, last_changed_at, current)
