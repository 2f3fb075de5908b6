"""The durable alert queue: which event goes to which target, and how delivery went.

Rows are created with their event (storage.events.emit); this module only moves
them along: pending -> sending (a lease) -> delivered, or back to pending with a
later attempt time, or failed once retrying has been given up.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from storage import models
from storage.events import event_record
from storage.records import Delivery, DeliveryStatus, NotifyTarget

PENDING = str(DeliveryStatus.PENDING)
SENDING = str(DeliveryStatus.SENDING)
MAX_ERROR_LENGTH = 500


class Outbox:
    def __init__(self, write: sessionmaker[Session], read: sessionmaker[Session]) -> None:
        self._write = write
        self._read = read

    def due(self, now: datetime, limit: int = 100) -> list[Delivery]:
        """Rows to send now, oldest first: pending and due, or claimed by a sender that died."""
        with self._read() as session, session.begin():
            rows = session.execute(
                select(models.Outbox, models.ChangeEvent)
                .join(models.ChangeEvent, models.ChangeEvent.id == models.Outbox.event_id)
                .where(_is_due(now))
                .order_by(models.Outbox.id)
                .limit(limit)
            ).all()
            return [_delivery(outbox, event) for outbox, event in rows]

    def claim(self, delivery_id: int, now: datetime, lease_until: datetime) -> bool:
        """Take a row for sending; False if another sender has it or it is no longer due."""
        with self._write.begin() as session:
            result = session.execute(
                update(models.Outbox)
                .where(models.Outbox.id == delivery_id, _is_due(now))
                .values(status=SENDING, lease_until=lease_until)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def mark_delivered(self, delivery_id: int, at: datetime) -> None:
        with self._write.begin() as session:
            session.execute(
                update(models.Outbox)
                .where(models.Outbox.id == delivery_id)
                .values(
                    status=str(DeliveryStatus.DELIVERED),
                    attempts=models.Outbox.attempts + 1,
                    delivered_at=at,
                    lease_until=None,
                    last_error=None,
                )
            )

    def mark_attempt_failed(self, delivery_id: int, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt: retried at `retry_at`, or given up if it is None."""
        status = PENDING if retry_at is not None else str(DeliveryStatus.FAILED)
        values: dict[str, object] = {
            "status": status,
            "attempts": models.Outbox.attempts + 1,
            "last_error": error[:MAX_ERROR_LENGTH],
            "lease_until": None,
        }
        if retry_at is not None:
            values["next_attempt_at"] = retry_at
        with self._write.begin() as session:
            session.execute(
                update(models.Outbox).where(models.Outbox.id == delivery_id).values(**values)
            )

    def retry_failed(self, now: datetime) -> int:
        """Put every given-up row back in the queue (after fixing a target); returns how many."""
        with self._write.begin() as session:
            result = session.execute(
                update(models.Outbox)
                .where(models.Outbox.status == str(DeliveryStatus.FAILED))
                .values(status=PENDING, next_attempt_at=now)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def deliveries(self, status: DeliveryStatus | None = None, limit: int = 100) -> list[Delivery]:
        """Newest first."""
        query = select(models.Outbox, models.ChangeEvent).join(
            models.ChangeEvent, models.ChangeEvent.id == models.Outbox.event_id
        )
        if status is not None:
            query = query.where(models.Outbox.status == str(status))
        with self._read() as session, session.begin():
            rows = session.execute(query.order_by(models.Outbox.id.desc()).limit(limit)).all()
            return [_delivery(outbox, event) for outbox, event in rows]

    def oldest_waiting(self) -> datetime | None:
        """When the oldest alert still to be delivered was queued."""
        waiting = (str(DeliveryStatus.PENDING), str(DeliveryStatus.SENDING))
        with self._read() as session, session.begin():
            return session.scalar(
                select(func.min(models.Outbox.created_at)).where(models.Outbox.status.in_(waiting))
            )

    def counts(self) -> dict[DeliveryStatus, int]:
        with self._read() as session, session.begin():
            rows = session.execute(
                select(models.Outbox.status, func.count()).group_by(models.Outbox.status)
            ).all()
        found = {DeliveryStatus(status): count for status, count in rows}
        return {status: found.get(status, 0) for status in DeliveryStatus}


def _is_due(now: datetime):  # type: ignore[no-untyped-def]
    return or_(
        and_(models.Outbox.status == PENDING, models.Outbox.next_attempt_at <= now),
        and_(models.Outbox.status == SENDING, models.Outbox.lease_until < now),
    )


def _delivery(outbox: models.Outbox, event: models.ChangeEvent) -> Delivery:
    return Delivery(
        id=outbox.id,
        event=event_record(event),
        target=NotifyTarget(outbox.target_key, outbox.target_label),
        status=DeliveryStatus(outbox.status),
        attempts=outbox.attempts,
        created_at=outbox.created_at,
        next_attempt_at=outbox.next_attempt_at,
        last_error=outbox.last_error,
        delivered_at=outbox.delivered_at,
    )
