"""The durable alert queue: which event goes to which target, and how delivery went.

Rows are created with their event (storage.events.emit); this module moves them
along: pending -> sending (a lease) -> delivered, or back to pending with a later
attempt time, or failed once retrying has been given up. An alert is owed to the
targets configured while it waits (reconcile): a target added meanwhile gets a row,
a removed target's row is dropped, and a delivered row is never touched again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from storage import models
from storage.events import event_record
from storage.records import Delivery, DeliveryStatus, NotifyTarget, Reconciled

PENDING = str(DeliveryStatus.PENDING)
SENDING = str(DeliveryStatus.SENDING)
FAILED = str(DeliveryStatus.FAILED)
DROPPED = str(DeliveryStatus.DROPPED)
TARGET_REMOVED = "target removed"
MAX_ERROR_LENGTH = 500
ROWS_PER_STATEMENT = 1000
_Item = TypeVar("_Item")


@dataclass
class _Plan:
    """The rows reconciling needs: added, revived (dropped, re-configured) and dropped."""

    add: list[tuple[int, datetime, NotifyTarget]] = field(default_factory=list)
    revive: list[int] = field(default_factory=list)
    drop: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.add or self.revive or self.drop)


class Outbox:
    def __init__(self, write: sessionmaker[Session], read: sessionmaker[Session]) -> None:
        self._write = write
        self._read = read

    def due(self, now: datetime, limit: int = 100, target_key: str | None = None) -> list[Delivery]:
        """Rows to send now, oldest first: pending and due, or claimed by a sender that died."""
        query = (
            select(models.Outbox, models.ChangeEvent)
            .join(models.ChangeEvent, models.ChangeEvent.id == models.Outbox.event_id)
            .where(_is_due(now))
        )
        if target_key is not None:
            query = query.where(models.Outbox.target_key == target_key)
        with self._read() as session, session.begin():
            rows = session.execute(query.order_by(models.Outbox.id).limit(limit)).all()
            return [_delivery(outbox, event) for outbox, event in rows]

    def reconcile(
        self, targets: Sequence[NotifyTarget], now: datetime, give_up_after: timedelta
    ) -> Reconciled:
        """Owe each waiting alert to the targets configured now (see the module's docstring).

        An alert waits while one of its rows is still to be sent (pending, sending, or failed
        less than `give_up_after` ago). Added rows keep the alert's own queue time, so
        `give_up_after` counts from the alert. Read first, so that an unchanged configuration
        costs no write; concurrent processes are safe: an added row that another process
        added first is skipped (unique event and target), the other changes are idempotent.
        """
        cutoff = now - give_up_after
        with self._read() as session, session.begin():
            if not _plan(session, targets, cutoff):
                return Reconciled()
        with self._write.begin() as session:
            plan = _plan(session, targets, cutoff)
            queued = _add_rows(session, plan.add, now)
            for ids in _chunks(plan.revive):
                session.execute(
                    update(models.Outbox)
                    .where(models.Outbox.id.in_(ids), models.Outbox.status == DROPPED)
                    .values(status=PENDING, next_attempt_at=now, last_error=None)
                )
            for ids in _chunks(plan.drop):
                session.execute(
                    update(models.Outbox)
                    .where(models.Outbox.id.in_(ids), models.Outbox.status.in_(_UNSENT))
                    .values(status=DROPPED, last_error=TARGET_REMOVED, lease_until=None)
                )
            return Reconciled(queued=queued + len(plan.revive), dropped=len(plan.drop))

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


_UNSENT = (PENDING, SENDING)


def _plan(session: Session, targets: Sequence[NotifyTarget], cutoff: datetime) -> _Plan:
    configured = {target.key: target for target in targets}
    still_to_send = or_(
        models.Outbox.status.in_(_UNSENT),
        and_(models.Outbox.status == FAILED, models.Outbox.created_at > cutoff),
    )
    waiting = select(models.Outbox.event_id).where(still_to_send).distinct()
    rows = session.execute(
        select(
            models.Outbox.id,
            models.Outbox.event_id,
            models.Outbox.target_key,
            models.Outbox.status,
            models.Outbox.created_at,
        )
        .where(models.Outbox.event_id.in_(waiting))
        .order_by(models.Outbox.id)
    ).all()
    plan = _Plan()
    by_event: dict[int, dict[str, str]] = {}
    queued_at: dict[int, datetime] = {}
    for row_id, event_id, key, status, created_at in rows:
        by_event.setdefault(event_id, {})[key] = status
        queued_at[event_id] = min(created_at, queued_at.get(event_id, created_at))
        if key not in configured and status in _UNSENT:
            plan.drop.append(row_id)
        elif key in configured and status == DROPPED:
            plan.revive.append(row_id)
    for event_id, keys in by_event.items():
        plan.add += [
            (event_id, queued_at[event_id], target)
            for key, target in configured.items()
            if key not in keys
        ]
    return plan


def _add_rows(
    session: Session, rows: list[tuple[int, datetime, NotifyTarget]], now: datetime
) -> int:
    """Pending rows, due now; one another process added meanwhile is skipped. How many added."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    values = [
        {
            "event_id": event_id,
            "target_key": target.key,
            "target_label": target.label,
            "status": PENDING,
            "attempts": 0,
            "created_at": queued_at,
            "next_attempt_at": now,
        }
        for event_id, queued_at, target in rows
    ]
    added = 0
    for chunk in _chunks(values):
        statement = insert(models.Outbox).values(chunk).on_conflict_do_nothing()
        added += len(session.scalars(statement.returning(models.Outbox.id)).all())
    return added


def _chunks(items: list[_Item]) -> Iterator[list[_Item]]:
    """At most ROWS_PER_STATEMENT at a time: 7 values a row stay within SQLite's 32,766."""
    for start in range(0, len(items), ROWS_PER_STATEMENT):
        yield items[start : start + ROWS_PER_STATEMENT]


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
