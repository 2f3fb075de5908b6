"""The Save Page Now queue: each new revision's URL, once, to the Internet Archive.

A row is written with its revision (storage.recording, after a site's baseline) and
then moves as the alert outbox's rows do: pending -> sending (a lease) -> saved, or
back to pending with a later attempt time, or failed once retrying is given up. A
pending row with a job id was accepted by the Archive and is only polled from then on.
One row per revision (unique), so a revision is never submitted twice at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from storage import models
from storage.sessions import Sessions

MAX_ERROR_LENGTH = 500


class CaptureStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SAVED = "saved"
    FAILED = "failed"


@dataclass(frozen=True)
class CaptureDue:
    id: int
    revision_id: int
    url: str
    job_id: str | None  # None: still to submit; else: accepted, to poll
    attempts: int  # failed attempts so far
    submitted_at: datetime | None


@dataclass(frozen=True)
class Snapshot:
    """A revision's Wayback Machine capture: its state, and once saved, where and when."""

    status: CaptureStatus
    url: str | None
    captured_at: datetime | None
    attempts: int
    last_error: str | None


def queue_capture(session: Session, revision: models.Revision) -> None:
    """Owe the revision's URL a capture; in the transaction that writes the revision."""
    session.add(
        models.WaybackCapture(
            revision_id=revision.id,
            url=revision.url,
            status=str(CaptureStatus.PENDING),
            attempts=0,
            created_at=revision.observed_at,
            next_attempt_at=revision.observed_at,
        )
    )


def snapshot_of(session: Session, statement_id: int, number: int) -> Snapshot | None:
    capture, revision = models.WaybackCapture, models.Revision
    row = session.scalar(
        select(capture)
        .join(revision, revision.id == capture.revision_id)
        .where(revision.statement_id == statement_id, revision.number == number)
    )
    if row is None:
        return None
    return Snapshot(
        CaptureStatus(row.status), row.snapshot_url, row.snapshot_at, row.attempts, row.last_error
    )


class WaybackQueue:
    def __init__(self, engine: Engine) -> None:
        sessions = Sessions.of(engine)
        self._write: sessionmaker[Session] = sessions.write
        self._sessions = sessions

    def due(self, now: datetime, limit: int = 100) -> list[CaptureDue]:
        """Rows to work on now, oldest first: due, or claimed by a sender that died."""
        query = select(models.WaybackCapture).where(_is_due(now))
        with self._sessions.reading() as session:
            rows = session.scalars(query.order_by(models.WaybackCapture.id).limit(limit)).all()
            return [
                CaptureDue(r.id, r.revision_id, r.url, r.job_id, r.attempts, r.submitted_at)
                for r in rows
            ]

    def claim(self, capture_id: int, now: datetime, lease_until: datetime) -> bool:
        """Take a row; False if another sender has it or it is no longer due."""
        return self._set(
            capture_id,
            {"status": str(CaptureStatus.SENDING), "lease_until": lease_until},
            _is_due(now),
        )

    def mark_submitted(self, capture_id: int, job_id: str, at: datetime, poll_at: datetime) -> None:
        """Accepted by the Archive: from now on the job is polled, never submitted again."""
        values = {"job_id": job_id, "submitted_at": at, "last_error": None}
        self._set(capture_id, {**_waiting(poll_at), **values})

    def mark_polled(self, capture_id: int, poll_at: datetime) -> None:
        self._set(capture_id, _waiting(poll_at))

    def mark_saved(self, capture_id: int, snapshot_url: str, snapshot_at: datetime) -> None:
        values = {
            "status": str(CaptureStatus.SAVED),
            "snapshot_url": snapshot_url,
            "snapshot_at": snapshot_at,
            "lease_until": None,
            "last_error": None,
        }
        self._set(capture_id, values)

    def mark_attempt_failed(
        self, capture_id: int, error: str, retry_at: datetime | None, *, forget_job: bool
    ) -> None:
        """A failed attempt: retried at `retry_at` (resubmitted if `forget_job`), or given up."""
        values: dict[str, object] = {
            "status": str(CaptureStatus.PENDING if retry_at else CaptureStatus.FAILED),
            "attempts": models.WaybackCapture.attempts + 1,
            "last_error": error[:MAX_ERROR_LENGTH],
            "lease_until": None,
        }
        if retry_at is not None:
            values["next_attempt_at"] = retry_at
        if forget_job:
            values["job_id"] = None
        self._set(capture_id, values)

    def submitted_since(self, since: datetime) -> int:
        """Capture requests sent since then, by any process: what the rate limit counts."""
        capture = models.WaybackCapture
        with self._sessions.reading() as session:
            query = select(func.count()).where(capture.submitted_at >= since)
            return session.scalar(query) or 0

    def waiting(self, before: datetime) -> int:
        """Rows not finished that will be worked on before then (or are being now)."""
        capture = models.WaybackCapture
        with self._sessions.reading() as session:
            query = select(func.count()).where(
                or_(
                    and_(
                        capture.status == str(CaptureStatus.PENDING),
                        capture.next_attempt_at <= before,
                    ),
                    capture.status == str(CaptureStatus.SENDING),
                )
            )
            return session.scalar(query) or 0

    def counts(self) -> dict[CaptureStatus, int]:
        capture = models.WaybackCapture
        with self._sessions.reading() as session:
            rows = session.execute(select(capture.status, func.count()).group_by(capture.status))
            found = {CaptureStatus(status): count for status, count in rows.all()}
        return {status: found.get(status, 0) for status in CaptureStatus}

    def _set(self, capture_id: int, values: dict[str, object], *where: object) -> bool:
        capture = models.WaybackCapture
        with self._write.begin() as session:
            result = session.execute(
                update(capture).where(capture.id == capture_id, *where).values(**values)  # type: ignore[arg-type]
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]


def _waiting(next_attempt_at: datetime) -> dict[str, object]:
    return {
        "status": str(CaptureStatus.PENDING),
        "next_attempt_at": next_attempt_at,
        "lease_until": None,
    }


def _is_due(now: datetime):  # type: ignore[no-untyped-def]
    capture = models.WaybackCapture
    return or_(
        and_(capture.status == str(CaptureStatus.PENDING), capture.next_attempt_at <= now),
        and_(capture.status == str(CaptureStatus.SENDING), capture.lease_until < now),
    )
