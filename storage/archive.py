"""The versioned archive: every fetch an observation, a revision only when content changes.

Each `record_*` call is one short write transaction, so a crawl killed at any
moment leaves every page either fully recorded or not at all.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import zlib
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Engine,
    Row,
    Select,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from storage import models
from storage.content import compare, content_hash
from storage.engine import READ_ONLY, database_label, make_engine, sqlite_file
from storage.events import emit, event_record
from storage.migrate import upgrade
from storage.outbox import Outbox
from storage.records import (
    MAX_NUMBER,
    NO_CHANGE,
    Capture,
    Change,
    ChangeEvent,
    CrawlStats,
    EventKind,
    EventPolicy,
    ExtractionFailure,
    HealthCondition,
    KnownStatement,
    ListingPage,
    Outcome,
    PageKind,
    RecordResult,
    Revision,
    RevisionSummary,
    SearchResults,
    SiteState,
    StatementContent,
    StatementFilter,
    StatementSummary,
    Tallies,
)
from storage.search import search as search_revisions

# pg_try_advisory_lock key held by the one daemon allowed per database ("embw").
DAEMON_LOCK_KEY = 0x656D6277
# Alembic's table of the schema version: a database without it holds no archive.
SCHEMA_VERSION_TABLE = "alembic_version"
# Fetches forgotten per transaction while thinning: about 0.3 s of SQLite's write lock.
THIN_PER_TRANSACTION = 2_000
BLOB_ZLIB_LEVEL = 6

ACTIVE = "active"
MISSING = "missing"  # its page was gone at the last check; not yet concluded
REMOVED = "removed"  # gone and unlisted on enough consecutive crawls: a take-down
NO_POLICY = EventPolicy()
NO_FILTER = StatementFilter()


class ArchiveBusy(Exception):
    """Another daemon holds this archive; the message says which, in one line."""


class ArchiveMissing(Exception):
    """No archive at this database yet (and none was made); the message is where it looked."""


class Archive:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write = sessionmaker(engine, expire_on_commit=False)
        self._read = sessionmaker(engine.execution_options(**{READ_ONLY: True}))
        self.outbox = Outbox(self._write, self._read)

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> Archive:
        """Open the archive at a database URL, migrating it to the newest schema.

        With `create` false (the commands that only read), an archive that is not there yet
        is not made: ArchiveMissing. A SQLite folder that is missing or not writable is an
        OSError naming it.
        """
        file = sqlite_file(url)
        if file is not None:
            _check_sqlite_folder(file, create)
        # Migrations run with foreign keys off: SQLite's batch table rebuilds would
        # otherwise cascade-delete child rows (see tech-notes section 6).
        migration_engine = make_engine(url, foreign_keys=False)
        try:
            if not create and not inspect(migration_engine).has_table(SCHEMA_VERSION_TABLE):
                raise ArchiveMissing(database_label(url))
            upgrade(migration_engine)
        finally:
            migration_engine.dispose()
        return cls(make_engine(url))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def exclusive_daemon(self) -> Iterator[None]:
        """Held while a daemon runs, so that a second one on the same archive is refused."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as connection:
                held = connection.scalar(text(f"SELECT pg_try_advisory_lock({DAEMON_LOCK_KEY})"))
                connection.commit()  # a session-level lock outlives the transaction
                if not held:
                    raise ArchiveBusy("another `embassy-watch run` is using this database")
                try:
                    yield
                finally:
                    # The connection goes back to the pool, its session (and lock) alive.
                    connection.execute(text(f"SELECT pg_advisory_unlock({DAEMON_LOCK_KEY})"))
                    connection.commit()
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            yield
            return
        lock_path = f"{database}.daemon.lock"
        with open(lock_path, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "?"
                raise ArchiveBusy(
                    f"another `embassy-watch run` (pid {holder}) is using {database}"
                ) from None
            lock.seek(0)
            lock.truncate()
            lock.write(str(os.getpid()))
            lock.flush()
            yield

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session

    # -- writing -------------------------------------------------------------------------

    def record_listing(self, capture: Capture, page: ListingPage | None) -> None:
        if page is None:
            key = _failure_key(capture, "no listing")
        else:
            listed = "\n".join(item.url for item in page.items)
            key = "listing:" + hashlib.sha256(listed.encode()).hexdigest()
        with self._write.begin() as session:
            self._add_observation(session, capture, key, statement_id=None)
            if page is not None and page.items:
                shown = select(models.StatementUrl.statement_id).where(
                    models.StatementUrl.site == capture.site,
                    models.StatementUrl.url.in_([item.url for item in page.items]),
                )
                session.execute(
                    update(models.Statement)
                    .where(models.Statement.id.in_(shown))
                    .values(last_listed_at=capture.fetched_at)
                )

    def record_detail(
        self,
        capture: Capture,
        extraction: StatementContent | ExtractionFailure | None,
        *,
        unlisted: bool = False,
        policy: EventPolicy = NO_POLICY,
    ) -> RecordResult:
        """Record one detail-page fetch; `extraction` is None when there was nothing to parse.

        `unlisted`: the site's listing was read in this crawl and does not show this URL,
        which a take-down needs besides the page being gone.
        """
        with self._write.begin() as session:
            if isinstance(extraction, StatementContent) and capture.status == 200:
                return self._record_content(session, capture, extraction, policy)
            statement = self._find_by_urls(session, capture.site, _urls_of(capture))
            statement_id = statement.id if statement else None
            if statement is not None:
                statement.last_checked_at = capture.fetched_at
            if capture.is_gone:
                # Only the statement's current URL speaks for it: after a slug change
                # the old address answers 404 while the statement lives on.
                if statement is not None and statement.url in _urls_of(capture):
                    self._note_gone(session, statement, capture, unlisted, policy)
                self._add_observation(session, capture, _gone_key(capture), statement_id)
                return RecordResult(Outcome.GONE, statement_id)
            if isinstance(extraction, ExtractionFailure):
                key = "failed:" + extraction.reason
                self._add_observation(session, capture, key, statement_id)
                return RecordResult(Outcome.EXTRACTION_FAILED, statement_id)
            key = _failure_key(capture, "fetch failed")
            self._add_observation(session, capture, key, statement_id)
            return RecordResult(Outcome.FETCH_FAILED, statement_id)

    def _note_gone(
        self,
        session: Session,
        statement: models.Statement,
        capture: Capture,
        unlisted: bool,
        policy: EventPolicy,
    ) -> None:
        if statement.status == ACTIVE:
            statement.status, statement.missing_since = MISSING, capture.fetched_at
        if not unlisted or statement.status == REMOVED:
            return
        statement.gone_streak += 1
        if statement.gone_streak < policy.removal_after:
            return
        statement.status = REMOVED
        latest = self._latest_revision(session, statement.id)
        emit(
            session,
            policy,
            EventKind.REMOVED,
            statement.site,
            capture.fetched_at,
            statement=statement,
            title=latest.title if latest else None,
            revision=latest.number if latest else None,
            detail=(
                f"{_gone_reason(capture)} on {statement.gone_streak} consecutive checks "
                "and no longer listed"
            ),
        )

    def _record_content(
        self,
        session: Session,
        capture: Capture,
        content: StatementContent,
        policy: EventPolicy,
    ) -> RecordResult:
        statement = self._identify(session, capture, content)
        was_removed = statement.status == REMOVED
        # Set before the statement's next flush, so that it is written once (one INSERT
        # or UPDATE), not written and then updated.
        statement.last_seen_at = statement.last_checked_at = capture.fetched_at
        statement.status, statement.missing_since, statement.gone_streak = ACTIVE, None, 0
        statement.language = content.language or statement.language
        statement.twin_url = content.twin_url or statement.twin_url
        new_hash = content_hash(content)
        latest = self._latest_revision(session, statement.id) if statement.id else None
        if statement.id is None:
            session.add(statement)
            session.flush()
        self._remember_urls(session, statement, capture, content)

        change = compare(_content_of(latest), content) if latest is not None else NO_CHANGE
        if latest is not None and not change.fields:
            # Decided by comparing texts, not stored hashes: hashes written under an older
            # definition must not make every statement look changed after an upgrade.
            key = "content:" + latest.content_hash
            self._add_observation(session, capture, key, statement.id, revision_id=latest.id)
            if was_removed:
                emit(
                    session,
                    policy,
                    EventKind.REAPPEARED,
                    statement.site,
                    capture.fetched_at,
                    statement=statement,
                    title=latest.title,
                    revision=latest.number,
                )
            return RecordResult(Outcome.UNCHANGED, statement.id, latest.number)

        number = latest.number + 1 if latest else 1
        revision = _revision_row(
            statement.id, number, capture.fetched_at, new_hash, change, content
        )
        session.add(revision)
        session.flush()
        key = "content:" + new_hash
        self._add_observation(session, capture, key, statement.id, revision_id=revision.id)
        self._emit_revision_event(session, policy, statement, revision, latest, was_removed)
        return RecordResult(Outcome.CHANGED if latest else Outcome.NEW, statement.id, number)

    def _emit_revision_event(
        self,
        session: Session,
        policy: EventPolicy,
        statement: models.Statement,
        revision: models.Revision,
        previous: models.Revision | None,
        was_removed: bool,
    ) -> None:
        """new, reappeared, reverted (to an earlier identical revision) or changed."""
        reverted_to = None
        if previous is None:
            kind = EventKind.NEW
        elif was_removed:
            kind = EventKind.REAPPEARED
        else:
            reverted_to = self._earlier_identical(session, revision)
            kind = EventKind.CHANGED if reverted_to is None else EventKind.REVERTED
        emit(
            session,
            policy,
            kind,
            statement.site,
            revision.observed_at,
            statement=statement,
            title=revision.title,
            revision=revision.number,
            previous_revision=previous.number if previous else None,
            reverted_to=reverted_to,
            change=Change(tuple(revision.changed_fields), tuple(revision.typographic_fields)),
        )

    def _earlier_identical(self, session: Session, revision: models.Revision) -> int | None:
        return session.scalar(
            select(models.Revision.number)
            .where(
                models.Revision.statement_id == revision.statement_id,
                models.Revision.content_hash == revision.content_hash,
                models.Revision.number < revision.number - 1,
            )
            .order_by(models.Revision.number.desc())
            .limit(1)
        )

    def _identify(
        self, session: Session, capture: Capture, content: StatementContent
    ) -> models.Statement:
        """Post id first (it survives slug edits and domain moves), then any known URL."""
        statement = None
        if content.post_id is not None:
            statement = session.scalar(
                select(models.Statement).where(
                    models.Statement.site == capture.site,
                    models.Statement.post_id == content.post_id,
                )
            )
        if statement is None:
            urls = (content.url, *_urls_of(capture))
            statement = self._find_by_urls(session, capture.site, urls)
        if statement is None:
            return models.Statement(
                site=capture.site,
                post_id=content.post_id,
                url=content.url,
                language=content.language,
                twin_url=content.twin_url,
                status=ACTIVE,
                first_seen_at=capture.fetched_at,
                last_seen_at=capture.fetched_at,
            )
        if statement.post_id is None and content.post_id is not None:
            statement.post_id = content.post_id
        statement.url = content.url
        return statement

    def _remember_urls(
        self,
        session: Session,
        statement: models.Statement,
        capture: Capture,
        content: StatementContent,
    ) -> None:
        for url in dict.fromkeys((content.url, *_urls_of(capture))):
            known = session.scalar(
                select(models.StatementUrl).where(
                    models.StatementUrl.site == capture.site, models.StatementUrl.url == url
                )
            )
            if known is None:
                session.add(
                    models.StatementUrl(
                        site=capture.site,
                        url=url,
                        statement_id=statement.id,
                        first_seen_at=capture.fetched_at,
                    )
                )
            elif known.statement_id != statement.id:
                # A URL now serves another post (a slug reused): it follows the new owner.
                known.statement_id = statement.id

    def _find_by_urls(
        self, session: Session, site: str, urls: Sequence[str]
    ) -> models.Statement | None:
        """The statement owning the first of `urls` that one owns (in one query)."""
        wanted = list(dict.fromkeys(urls))  # a page's URLs are often one URL thrice
        query = (
            select(models.StatementUrl.url, models.Statement)
            .join(models.StatementUrl, models.StatementUrl.statement_id == models.Statement.id)
            .where(models.StatementUrl.site == site, models.StatementUrl.url.in_(wanted))
        )
        owners = {url: statement for url, statement in session.execute(query)}
        return next((owners[url] for url in wanted if url in owners), None)

    def _latest_revision(self, session: Session, statement_id: int) -> models.Revision | None:
        return session.scalar(
            select(models.Revision)
            .where(models.Revision.statement_id == statement_id)
            .order_by(models.Revision.number.desc())
            .limit(1)
        )

    def _add_observation(
        self,
        session: Session,
        capture: Capture,
        content_key: str,
        statement_id: int | None,
        revision_id: int | None = None,
    ) -> None:
        body_sha = hashlib.sha256(capture.body).hexdigest() if capture.body else None
        keep = body_sha is not None and self._keep_raw_body(session, capture, content_key)
        if keep and body_sha is not None:
            self._store_blob(session, body_sha, capture.body)
        # A Core insert in the session's transaction: nothing reads the row back, so the ORM's
        # object tracking and flush would be spent for nothing.
        session.connection().execute(
            insert(models.Observation).values(
                site=capture.site,
                kind=str(capture.kind),
                requested_url=capture.requested_url,
                final_url=capture.final_url,
                fetched_at=capture.fetched_at,
                status=capture.status,
                error=capture.error,
                headers=dict(capture.headers),
                body_sha256=body_sha,
                blob_sha256=body_sha if keep else None,
                content_key=content_key[:128],
                statement_id=statement_id,
                revision_id=revision_id,
            )
        )

    def _keep_raw_body(self, session: Session, capture: Capture, content_key: str) -> bool:
        """Raw bytes are kept when the page yields something new for its URL.

        Pages carry noise (nonces, asset versions, rotating sidebars), so their bytes
        differ on every fetch; keeping them only when what we extract changes means an
        idle re-crawl writes no body bytes while every revision keeps its source.
        """
        previous = session.connection().scalar(
            select(models.Observation.content_key)
            .where(models.Observation.requested_url == capture.requested_url)
            .order_by(models.Observation.id.desc())
            .limit(1)
        )
        return previous != content_key

    def _store_blob(self, session: Session, sha256: str, body: bytes) -> None:
        values = {
            "sha256": sha256,
            "size": len(body),
            "compression": "zlib",
            # Level 6, zlib's default: on the seed and fixture pages (25 KB on average) 16%
            # less CPU than level 9 for 0.2% more bytes; both decompress the same way.
            "data": zlib.compress(body, BLOB_ZLIB_LEVEL),
        }
        upsert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        session.connection().execute(upsert(models.Blob).values(values).on_conflict_do_nothing())

    # -- keeping the audit trail small ------------------------------------------------------

    def thin_observations(
        self,
        before: datetime,
        cancelled: Callable[[], bool] = lambda: False,
        per_transaction: int = THIN_PER_TRANSACTION,
    ) -> int:
        """Forget repeated confirmations fetched before `before`; how many were forgotten.

        A run of fetches of one URL that all yielded the same thing keeps its first and
        last observation (since when and until when it was seen so) and every one whose
        raw bytes were kept; those between only said "still the same". Revisions, events
        and raw pages are untouched. Short transactions (one URL, at most
        `per_transaction` rows each), so a running daemon is never held up for long;
        `cancelled` is asked before each.
        """
        with self._reading() as session:
            urls = session.scalars(
                select(models.Observation.requested_url)
                .where(models.Observation.fetched_at < before)
                .distinct()
                .order_by(models.Observation.requested_url)
            ).all()
        forgotten = 0
        for url in urls:
            while True:
                if cancelled():
                    return forgotten
                with self._write.begin() as session:
                    count = _thin_url(session, url, before, per_transaction)
                forgotten += count
                if count < per_transaction:
                    break
        return forgotten

    # -- per-site state and health ---------------------------------------------------------

    def site_state(self, site: str) -> SiteState:
        with self._reading() as session:
            row = session.get(models.SiteState, site)
            return _site_state(row) if row else SiteState(site)

    def finish_crawl(
        self,
        site: str,
        at: datetime,
        *,
        succeeded: bool,
        blocked: bool = False,
        stats: CrawlStats | None = None,
    ) -> SiteState:
        """Note a finished crawl; the first successful one ends the site's baseline."""
        with self._write.begin() as session:
            row = self._site_row(session, site)
            row.last_crawl_at = at
            if stats is not None:
                row.last_crawl_seconds = stats.seconds
                row.crawls_total += 1
                row.pages_fetched_total += stats.pages_fetched
                totals = dict(row.errors_total)
                for kind, count in stats.errors.items():
                    totals[kind] = totals.get(kind, 0) + count
                row.errors_total = totals
            row.blocked_streak = row.blocked_streak + 1 if blocked else 0
            if succeeded:
                row.last_success_at = at
                row.baseline_done_at = row.baseline_done_at or at
            return _site_state(row)

    def raise_condition(
        self,
        site: str,
        condition: HealthCondition,
        detail: str,
        at: datetime,
        policy: EventPolicy,
    ) -> ChangeEvent | None:
        """Alert once when a health condition starts; None if it was already raised."""
        with self._write.begin() as session:
            row = self._site_row(session, site)
            if str(condition) in row.conditions:
                return None
            row.conditions = {**row.conditions, str(condition): detail}
            event = emit(
                session, policy, EventKind.PROBLEM, site, at, condition=condition, detail=detail
            )
            return event_record(event)

    def clear_condition(
        self, site: str, condition: HealthCondition, at: datetime, policy: EventPolicy
    ) -> ChangeEvent | None:
        """Alert that a raised condition has cleared; None if it was not raised."""
        with self._write.begin() as session:
            row = self._site_row(session, site)
            if str(condition) not in row.conditions:
                return None
            detail = row.conditions[str(condition)]
            row.conditions = {k: v for k, v in row.conditions.items() if k != str(condition)}
            event = emit(
                session,
                policy,
                EventKind.RECOVERED,
                site,
                at,
                condition=condition,
                detail=f"was: {detail}",
            )
            return event_record(event)

    def _site_row(self, session: Session, site: str) -> models.SiteState:
        row = session.get(models.SiteState, site)
        if row is None:
            row = models.SiteState(
                site=site,
                conditions={},
                blocked_streak=0,
                crawls_total=0,
                pages_fetched_total=0,
                errors_total={},
            )
            session.add(row)
        return row

    # -- reading -------------------------------------------------------------------------

    def known_statements(self, site: str) -> list[KnownStatement]:
        """Every archived statement of a site with what the re-check policy weighs."""
        with self._reading() as session:
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
        with self._reading() as session:
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
        with self._reading() as session:
            rows = session.execute(query.order_by(models.Statement.id)).all()
            found = [_summary(row) for row in rows]
        # Tags are a JSON list per revision; an archive holds thousands, not millions.
        return [s for s in found if where.tag is None or where.tag in s.tags]

    def sites(self) -> list[str]:
        """Names of the sites with archived statements."""
        with self._reading() as session:
            query = select(models.Statement.site).distinct().order_by(models.Statement.site)
            return list(session.scalars(query))

    def find_statement(self, ref: str) -> StatementSummary | None:
        """A statement by numeric id or by any URL it has been known by."""
        with self._reading() as session:
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
        with self._reading() as session:
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
        with self._reading() as session:
            row = session.scalar(query.order_by(models.Revision.number.desc()).limit(1))
            return _revision(row) if row else None

    def revisions(self, statement_id: int) -> Iterator[Revision]:
        """Every revision of a statement in full, oldest first (streamed, for exports)."""
        with self._reading() as session:
            rows = session.scalars(
                select(models.Revision)
                .where(models.Revision.statement_id == statement_id)
                .order_by(models.Revision.number)
                .execution_options(yield_per=100)
            )
            for row in rows:
                yield _revision(row)

    def captures(self, statement_id: int | None = None) -> Iterator[Capture]:
        """Every fetch whose raw bytes were kept, oldest first (streamed, for WARC export)."""
        query = (
            select(models.Observation, models.Blob.data)
            .join(models.Blob, models.Blob.sha256 == models.Observation.blob_sha256)
            .order_by(models.Observation.id)
        )
        if statement_id is not None:
            query = query.where(models.Observation.statement_id == statement_id)
        with self._reading() as session:
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
        with self._reading() as session:
            return search_revisions(session, query, limit, offset)

    def raw_body(self, sha256: str) -> bytes | None:
        with self._reading() as session:
            blob = session.get(models.Blob, sha256)
            return zlib.decompress(blob.data) if blob else None

    def tallies(self) -> Tallies:
        statement, event = models.Statement, models.ChangeEvent
        with self._reading() as session:
            by_status = session.execute(
                select(statement.status, func.count()).group_by(statement.status)
            ).all()
            by_kind = session.execute(select(event.kind, func.count()).group_by(event.kind)).all()
            revisions = session.scalar(select(func.count()).select_from(models.Revision)) or 0
            sites = session.scalars(select(models.SiteState).order_by(models.SiteState.site))
            site_states = tuple(_site_state(row) for row in sites)
        return Tallies(
            statements={status: count for status, count in by_status},
            revisions=revisions,
            events={kind: count for kind, count in by_kind},
            outbox={str(status): count for status, count in self.outbox.counts().items()},
            oldest_waiting_at=self.outbox.oldest_waiting(),
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
        with self._reading() as session:
            return {
                name: session.scalar(select(func.count()).select_from(table)) or 0
                for name, table in tables.items()
            }


def _thin_url(session: Session, url: str, before: datetime, limit: int) -> int:
    """Forget up to `limit` of `url`'s repeated fetches (any subset keeps each run's ends)."""
    o = models.Observation
    runs = (
        select(
            o.id,
            o.content_key,
            o.blob_sha256,
            o.fetched_at,
            func.lag(o.content_key).over(order_by=o.id).label("previous"),
            func.lead(o.content_key).over(order_by=o.id).label("following"),
        )
        .where(o.requested_url == url)
        .subquery()
    )
    repeated = (
        select(runs.c.id)
        .where(
            runs.c.previous == runs.c.content_key,
            runs.c.following == runs.c.content_key,
            runs.c.blob_sha256.is_(None),
            runs.c.fetched_at < before,
        )
        .order_by(runs.c.id)
        .limit(limit)
    )
    # A DML statement's result is a CursorResult, which knows the rows it touched.
    result = cast("CursorResult[Any]", session.execute(delete(o).where(o.id.in_(repeated))))
    return result.rowcount


def _urls_of(capture: Capture) -> tuple[str, ...]:
    return tuple(dict.fromkeys((capture.final_url, capture.requested_url)))


def _url_variants(url: str) -> list[str]:
    """A user may type a statement URL with or without its trailing slash or query."""
    bare = url.split("#", 1)[0].split("?", 1)[0]
    return list(dict.fromkeys((url, bare, bare.rstrip("/") + "/", bare.rstrip("/"))))


def _gone_key(capture: Capture) -> str:
    return "soft-404" if capture.soft_404 else f"status:{capture.status}"


def _gone_reason(capture: Capture) -> str:
    return "a soft 404 page" if capture.soft_404 else f"HTTP {capture.status}"


def _site_state(row: models.SiteState) -> SiteState:
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


def _failure_key(capture: Capture, fallback: str) -> str:
    if capture.status is not None:
        return f"status:{capture.status}"
    return "error:" + (capture.error or fallback)


def _revision_row(
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
        url=content.url,
        language=content.language,
        post_id=content.post_id,
        title=content.title,
        subtitle=content.subtitle,
        published_at=content.published_at,
        published_raw=content.published_raw,
        modified_at=content.modified_at,
        author=content.author,
        body=content.body,
        tags=list(content.tags),
        categories=list(content.categories),
        twin_url=content.twin_url,
        extractor_version=content.extractor_version,
    )


def _content_of(row: models.Revision) -> StatementContent:
    return StatementContent(
        url=row.url,
        title=row.title,
        body=row.body,
        language=row.language,
        post_id=row.post_id,
        subtitle=row.subtitle,
        published_at=row.published_at,
        published_raw=row.published_raw,
        modified_at=row.modified_at,
        author=row.author,
        tags=tuple(row.tags),
        categories=tuple(row.categories),
        twin_url=row.twin_url,
        extractor_version=row.extractor_version,
    )


def _revision(row: models.Revision) -> Revision:
    return Revision(
        statement_id=row.statement_id,
        number=row.number,
        observed_at=row.observed_at,
        content_hash=row.content_hash,
        changed_fields=tuple(row.changed_fields),
        content=_content_of(row),
        typographic_fields=tuple(row.typographic_fields),
    )


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
    return StatementSummary(
        id=statement.id,
        site=statement.site,
        url=statement.url,
        title=current.title,
        published_at=current.published_at,
        status=statement.status,
        revisions=revisions,
        first_seen_at=statement.first_seen_at,
        last_seen_at=statement.last_seen_at,
        last_changed_at=last_changed_at,
        post_id=statement.post_id,
        language=statement.language,
        twin_url=statement.twin_url,
        tags=tuple(current.tags),
    )


def _check_sqlite_folder(file: Path, create: bool) -> None:
    """Refuse, naming the path, what SQLite would refuse as "unable to open database file"."""
    if not create and not file.is_file():
        raise ArchiveMissing(str(file))
    folder = file.parent
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"its folder {folder} does not exist", str(file))
    # Even a reader writes there: WAL mode keeps its -wal and -shm files beside the database.
    if not os.access(folder, os.W_OK):
        raise PermissionError(errno.EACCES, f"its folder {folder} is not writable", str(file))
