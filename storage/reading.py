"""Reading the archive: statements, their revisions and history, events, raw pages, tallies."""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterator
from datetime import datetime

from sqlalchemy import func, select

from storage import listing, models
from storage.kept_pages import revision_page
from storage.mapping import revision_record, site_state_of
from storage.outbox import Outbox
from storage.records import (
    Capture,
    ChangeEvent,
    EventFilter,
    EventKind,
    EventPage,
    KeptPage,
    KnownStatement,
    PageKind,
    Revision,
    RevisionSummary,
    SearchResults,
    StatementFilter,
    StatementOrder,
    StatementPage,
    StatementSummary,
    Tallies,
)
from storage.search import search as search_revisions
from storage.sessions import Sessions

NO_FILTER = StatementFilter()
NO_EVENT_FILTER = EventFilter()


class Reading:
    def __init__(self, sessions: Sessions, outbox: Outbox) -> None:
        self._sessions = sessions
        self._outbox = outbox

    def known_statements(self, site: str) -> list[KnownStatement]:
        """Every archived statement of a site with what the re-check policy weighs."""
        with self._sessions.reading() as session:
            return listing.known_statements(session, site)

    def statements(self, where: StatementFilter = NO_FILTER) -> list[StatementSummary]:
        """Every statement matching `where`, oldest id first."""
        return list(self.statement_page(where, limit=None).statements)

    def statement_page(
        self,
        where: StatementFilter = NO_FILTER,
        *,
        order: StatementOrder = StatementOrder.ID,
        limit: int | None = 50,
        offset: int = 0,
    ) -> StatementPage:
        """`limit` statements (None: all) matching `where` from `offset`, and the total."""
        with self._sessions.reading() as session:
            return listing.statement_page(session, where, order, limit, offset)

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
        until: datetime | None = None,
        sites: Collection[str] | None = None,
    ) -> list[ChangeEvent]:
        """Change events, newest first; `before` (an event id) pages back in time."""
        where = EventFilter(
            since,
            site,
            statement_id,
            tuple(kinds),
            include_baseline,
            until,
            None if sites is None else tuple(sites),
        )
        with self._sessions.reading() as session:
            return listing.events(session, where, before, limit)

    def event_page(
        self, where: EventFilter = NO_EVENT_FILTER, *, before: int | None = None, limit: int = 100
    ) -> EventPage:
        """`limit` events matching `where` older than event `before`, newest first; the total."""
        with self._sessions.reading() as session:
            return listing.event_page(session, where, before, limit)

    def sites(self) -> list[str]:
        """Names of the sites with archived statements."""
        with self._sessions.reading() as session:
            query = select(models.Statement.site).distinct().order_by(models.Statement.site)
            return list(session.scalars(query))

    def find_statement(self, ref: str) -> StatementSummary | None:
        """A statement by numeric id or by any URL it has been known by."""
        with self._sessions.reading() as session:
            return listing.find_statement(session, ref)

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

    def captures(
        self, statement_id: int | None = None, sites: Collection[str] | None = None
    ) -> Iterator[Capture]:
        """Every fetch whose raw bytes were kept, oldest first (streamed, for WARC export);
        of one statement, or of `sites` (listing pages included)."""
        query = (
            select(models.Observation, models.Blob.data)
            .join(models.Blob, models.Blob.sha256 == models.Observation.blob_sha256)
            .order_by(models.Observation.id)
        )
        if statement_id is not None:
            query = query.where(models.Observation.statement_id == statement_id)
        if sites is not None:
            query = query.where(models.Observation.site.in_(tuple(sites)))
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

    def search(
        self, query: str, *, limit: int = 20, offset: int = 0, all_revisions: bool = False
    ) -> SearchResults:
        """Statements whose title or body contains `query` in some revision (any length,
        Chinese too): each one's latest such revision, or every such revision."""
        with self._sessions.reading() as session:
            return search_revisions(session, query, limit, offset, all_revisions=all_revisions)

    def revision_page(self, statement_id: int, number: int) -> KeptPage | None:
        """The raw page revision `number` was read from, if its bytes were kept."""
        with self._sessions.reading() as session:
            return revision_page(session, statement_id, number)

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
            capture = models.WaybackCapture
            wayback = session.execute(
                select(capture.status, func.count()).group_by(capture.status)
            ).all()
        return Tallies(
            statements={status: count for status, count in by_status},
            revisions=revisions,
            events={kind: count for kind, count in by_kind},
            outbox={str(status): count for status, count in self._outbox.counts().items()},
            oldest_waiting_at=self._outbox.oldest_waiting(),
            sites=site_states,
            wayback={status: count for status, count in wayback},
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
