"""Evidence: each cycle's kept raw pages in a hash tree, the tree's RFC 3161 timestamps.

`seal` puts a site's raw pages kept since its last tree into a new one, with one
queued timestamp request per configured TSA, in one transaction. The requests then
move as the alert outbox's rows do: pending -> sending (a lease) -> stamped, or back to
pending with a later attempt time. One row per (tree, TSA), so a token is never asked
for twice once it is stored; a sender killed mid-request leaves a lease that expires.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from storage import hashtree, models
from storage.engine import READ_ONLY

MAX_ERROR_LENGTH = 500


class StampStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    STAMPED = "stamped"


@dataclass(frozen=True)
class Sealed:
    batch_id: int
    site: str
    tree_size: int
    root: str


@dataclass(frozen=True)
class StampDue:
    id: int
    batch_id: int
    root: str
    tsa_url: str
    attempts: int


@dataclass(frozen=True)
class Token:
    """A TSA's answer for one tree: the TimeStampResp as DER, when and by whom."""

    batch_id: int
    tsa_url: str
    response: bytes
    gen_time: datetime
    tsa_name: str


@dataclass(frozen=True)
class Batch:
    id: int
    site: str
    sealed_at: datetime
    tree_size: int
    root: str
    tokens: tuple[Token, ...]
    waiting: tuple[str, ...]  # TSAs whose token is still to come


@dataclass(frozen=True)
class Inclusion:
    """Where a page's hash sits in its tree: enough to recompute the tree's root."""

    batch: Batch
    leaf_index: int
    sha256: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class KeptCapture:
    """A raw page kept, its bytes as stored, and its evidence (None: not sealed yet)."""

    observation_id: int
    site: str
    kind: str
    requested_url: str
    final_url: str
    fetched_at: datetime
    status: int | None
    headers: dict[str, str]
    body: bytes
    recorded_sha256: str  # what the archive recorded when the page was fetched
    statement_id: int | None
    inclusion: Inclusion | None


class Evidence:
    def __init__(self, engine: Engine) -> None:
        self._write = sessionmaker(engine, expire_on_commit=False)
        self._read = sessionmaker(engine.execution_options(**{READ_ONLY: True}))

    def seal(self, site: str, now: datetime, tsa_urls: Sequence[str]) -> Sealed | None:
        """Put the site's raw pages kept since its last tree into a new tree; queue its stamps.

        None when there was nothing new. Two processes sealing one site at once: the one
        that commits second finds the pages taken (unique leaf) and seals nothing.
        """
        try:
            with self._write.begin() as session:
                return _seal(session, site, now, tsa_urls)
        except IntegrityError:
            return None

    def due(self, now: datetime, tsa_urls: Sequence[str], limit: int = 100) -> list[StampDue]:
        """Requests to send now to the configured TSAs, oldest first."""
        stamp, batch = models.EvidenceStamp, models.EvidenceBatch
        query = (
            select(stamp, batch.root)
            .join(batch, batch.id == stamp.batch_id)
            .where(_is_due(now), stamp.tsa_url.in_(list(tsa_urls)))
            .order_by(stamp.id)
            .limit(limit)
        )
        with self._read() as session, session.begin():
            return [
                StampDue(row.id, row.batch_id, root, row.tsa_url, row.attempts)
                for row, root in session.execute(query).all()
            ]

    def claim(self, stamp_id: int, now: datetime, lease_until: datetime) -> bool:
        """Take a request for sending; False if another sender has it or it is not due."""
        with self._write.begin() as session:
            result = session.execute(
                update(models.EvidenceStamp)
                .where(models.EvidenceStamp.id == stamp_id, _is_due(now))
                .values(status=str(StampStatus.SENDING), lease_until=lease_until)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def mark_stamped(
        self, stamp_id: int, response: bytes, gen_time: datetime, tsa_name: str
    ) -> None:
        with self._write.begin() as session:
            session.execute(
                update(models.EvidenceStamp)
                .where(models.EvidenceStamp.id == stamp_id)
                .values(
                    status=str(StampStatus.STAMPED),
                    attempts=models.EvidenceStamp.attempts + 1,
                    token=response,
                    gen_time=gen_time,
                    tsa_name=tsa_name,
                    lease_until=None,
                    last_error=None,
                )
            )

    def mark_attempt_failed(self, stamp_id: int, error: str, retry_at: datetime) -> None:
        with self._write.begin() as session:
            session.execute(
                update(models.EvidenceStamp)
                .where(models.EvidenceStamp.id == stamp_id)
                .values(
                    status=str(StampStatus.PENDING),
                    attempts=models.EvidenceStamp.attempts + 1,
                    next_attempt_at=retry_at,
                    lease_until=None,
                    last_error=error[:MAX_ERROR_LENGTH],
                )
            )

    def counts(self) -> dict[StampStatus, int]:
        stamp = models.EvidenceStamp
        with self._read() as session, session.begin():
            rows = session.execute(select(stamp.status, func.count()).group_by(stamp.status))
            found = {StampStatus(status): count for status, count in rows.all()}
        return {status: found.get(status, 0) for status in StampStatus}

    def last_errors(self) -> list[tuple[str, int, str]]:
        """(TSA, attempts, last error) of each request still waiting after a failure."""
        stamp = models.EvidenceStamp
        with self._read() as session, session.begin():
            rows = session.execute(
                select(stamp.tsa_url, stamp.attempts, stamp.last_error)
                .where(stamp.status != str(StampStatus.STAMPED), stamp.last_error.is_not(None))
                .order_by(stamp.id)
            ).all()
        return [(url, attempts, error or "") for url, attempts, error in rows]

    def kept_captures(
        self, statement_id: int | None = None, sites: tuple[str, ...] | None = None
    ) -> Iterator[KeptCapture]:
        """Every raw page kept, oldest first, with its evidence (streamed); of one statement,
        or of `sites` (listing pages included)."""
        observation, blob, leaf = models.Observation, models.Blob, models.EvidenceLeaf
        query = (
            select(observation, blob.data, leaf)
            .join(blob, blob.sha256 == observation.blob_sha256)
            .outerjoin(leaf, leaf.observation_id == observation.id)
            .order_by(observation.id)
        )
        if statement_id is not None:
            query = query.where(observation.statement_id == statement_id)
        if sites is not None:
            query = query.where(observation.site.in_(sites))
        batches: dict[int, Batch] = {}
        with self._read() as session, session.begin():
            for row, data, placed in session.execute(query.execution_options(yield_per=50)):
                inclusion = None
                if placed is not None:
                    if placed.batch_id not in batches:
                        batches[placed.batch_id] = _batch(session, placed.batch_id)
                    inclusion = Inclusion(
                        batches[placed.batch_id],
                        placed.leaf_index,
                        placed.sha256,
                        tuple(placed.path),
                    )
                yield _kept_capture(row, zlib.decompress(data), inclusion)


def _seal(session: Session, site: str, now: datetime, tsa_urls: Sequence[str]) -> Sealed | None:
    # The site's pages after the newest one already sealed: observation ids only grow, and
    # a site's pages are written by its one crawl, which has finished when this runs.
    observation, batch = models.Observation, models.EvidenceBatch
    covered = session.scalar(select(func.max(batch.last_observation_id)).where(batch.site == site))
    rows = session.execute(
        select(observation.id, observation.blob_sha256)
        .where(
            observation.site == site,
            observation.id > (covered or 0),
            observation.blob_sha256.is_not(None),
        )
        .order_by(observation.id)
    ).all()
    if not rows:
        return None
    digests = [bytes.fromhex(sha or "") for _, sha in rows]
    tree = hashtree.build(digests)
    sealed = models.EvidenceBatch(
        site=site,
        sealed_at=now,
        tree_size=len(rows),
        root=tree.root.hex(),
        last_observation_id=rows[-1][0],
    )
    session.add(sealed)
    session.flush()
    session.add_all(
        models.EvidenceLeaf(
            observation_id=observation_id,
            batch_id=sealed.id,
            leaf_index=index,
            sha256=sha,
            path=[sibling.hex() for sibling in tree.paths[index]],
        )
        for index, (observation_id, sha) in enumerate(rows)
    )
    session.add_all(
        models.EvidenceStamp(
            batch_id=sealed.id,
            tsa_url=url,
            status=str(StampStatus.PENDING),
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        for url in tsa_urls
    )
    session.flush()
    return Sealed(sealed.id, site, sealed.tree_size, sealed.root)


def _batch(session: Session, batch_id: int) -> Batch:
    row = session.get_one(models.EvidenceBatch, batch_id)
    stamps = session.scalars(
        select(models.EvidenceStamp)
        .where(models.EvidenceStamp.batch_id == batch_id)
        .order_by(models.EvidenceStamp.id)
    ).all()
    tokens = tuple(
        Token(batch_id, s.tsa_url, s.token, s.gen_time, s.tsa_name or "")
        for s in stamps
        if s.token is not None and s.gen_time is not None
    )
    waiting = tuple(s.tsa_url for s in stamps if s.token is None)
    return Batch(row.id, row.site, row.sealed_at, row.tree_size, row.root, tokens, waiting)


def _kept_capture(row: models.Observation, body: bytes, inclusion: Inclusion | None) -> KeptCapture:
    return KeptCapture(
        observation_id=row.id,
        site=row.site,
        kind=row.kind,
        requested_url=row.requested_url,
        final_url=row.final_url,
        fetched_at=row.fetched_at,
        status=row.status,
        headers=dict(row.headers),
        body=body,
        recorded_sha256=row.blob_sha256 or "",
        statement_id=row.statement_id,
        inclusion=inclusion,
    )


def _is_due(now: datetime):  # type: ignore[no-untyped-def]
    stamp = models.EvidenceStamp
    return or_(
        and_(stamp.status == str(StampStatus.PENDING), stamp.next_attempt_at <= now),
        and_(stamp.status == str(StampStatus.SENDING), stamp.lease_until < now),
    )
