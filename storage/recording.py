"""Writing what a crawl saw: every fetch an observation, a revision only when content changes.

Each `record_*` call is one short write transaction, so a crawl killed at any
moment leaves every page either fully recorded or not at all. Identity (which
statement a page is), raw bodies kept once, and the events a change causes are
decided here, inside that transaction.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage import models
from storage.content import compare, content_hash
from storage.events import emit
from storage.mapping import content_of, revision_row
from storage.records import (
    NO_CHANGE,
    Capture,
    Change,
    EventKind,
    EventPolicy,
    ExtractionFailure,
    ListingPage,
    Outcome,
    RecordResult,
    StatementContent,
)
from storage.sessions import Sessions
from storage.wayback import queue_capture

ACTIVE = "active"
MISSING = "missing"  # its page was gone at the last check; not yet concluded
REMOVED = "removed"  # gone and unlisted on enough consecutive crawls: a take-down
NO_POLICY = EventPolicy()
BLOB_ZLIB_LEVEL = 6


class Recording:
    def __init__(self, sessions: Sessions) -> None:
        self._write = sessions.write

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

        change = compare(content_of(latest), content) if latest is not None else NO_CHANGE
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
        revision = revision_row(statement.id, number, capture.fetched_at, new_hash, change, content)
        session.add(revision)
        session.flush()
        key = "content:" + new_hash
        self._add_observation(session, capture, key, statement.id, revision_id=revision.id)
        self._emit_revision_event(session, policy, statement, revision, latest, was_removed)
        if policy.wayback and not policy.baseline:  # committed with the revision it archives
            queue_capture(session, revision)
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
        postgres = session.get_bind().dialect.name == "postgresql"
        upsert = pg_insert if postgres else sqlite_insert
        session.connection().execute(upsert(models.Blob).values(values).on_conflict_do_nothing())


def _urls_of(capture: Capture) -> tuple[str, ...]:
    return tuple(dict.fromkeys((capture.final_url, capture.requested_url)))


def _gone_key(capture: Capture) -> str:
    return "soft-404" if capture.soft_404 else f"status:{capture.status}"


def _gone_reason(capture: Capture) -> str:
    return "a soft 404 page" if capture.soft_404 else f"HTTP {capture.status}"


def _failure_key(capture: Capture, fallback: str) -> str:
    if capture.status is not None:
        return f"status:{capture.status}"
    return "error:" + (capture.error or fallback)
