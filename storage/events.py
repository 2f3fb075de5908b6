"""Change events and their outbox rows, written inside the caller's transaction.

An event and the alerts it causes are committed together with the revision (or
status change) behind them: a crash can lose neither one without the other.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from storage import models
from storage.records import (
    NO_CHANGE,
    Change,
    ChangeEvent,
    DeliveryStatus,
    EventKind,
    EventPolicy,
    HealthCondition,
)


def emit(
    session: Session,
    policy: EventPolicy,
    kind: EventKind,
    site: str,
    at: datetime,
    *,
    statement: models.Statement | None = None,
    title: str | None = None,
    revision: int | None = None,
    previous_revision: int | None = None,
    reverted_to: int | None = None,
    change: Change = NO_CHANGE,
    condition: HealthCondition | None = None,
    detail: str | None = None,
) -> models.ChangeEvent:
    event = models.ChangeEvent(
        site=site,
        kind=str(kind),
        occurred_at=at,
        statement_id=statement.id if statement else None,
        url=statement.url if statement else None,
        title=title,
        revision=revision,
        previous_revision=previous_revision,
        reverted_to=reverted_to,
        changed_fields=list(change.fields),
        typographic_fields=list(change.typographic_fields),
        condition=str(condition) if condition else None,
        detail=detail,
        baseline=policy.baseline,
    )
    session.add(event)
    session.flush()
    if _alerted(policy, kind, change):
        for target in policy.alert_to:
            session.add(
                models.Outbox(
                    event_id=event.id,
                    target_key=target.key,
                    target_label=target.label,
                    status=str(DeliveryStatus.PENDING),
                    attempts=0,
                    created_at=at,
                    next_attempt_at=at,
                )
            )
    return event


def event_record(row: models.ChangeEvent) -> ChangeEvent:
    return ChangeEvent(
        id=row.id,
        site=row.site,
        kind=EventKind(row.kind),
        occurred_at=row.occurred_at,
        statement_id=row.statement_id,
        url=row.url,
        title=row.title,
        revision=row.revision,
        previous_revision=row.previous_revision,
        reverted_to=row.reverted_to,
        changed_fields=tuple(row.changed_fields),
        condition=HealthCondition(row.condition) if row.condition else None,
        detail=row.detail,
        baseline=row.baseline,
        typographic_fields=tuple(row.typographic_fields),
    )


def _alerted(policy: EventPolicy, kind: EventKind, change: Change) -> bool:
    """Baseline events never are; a restyle (only typographic changes) only when asked for."""
    if policy.baseline:
        return False
    restyled = kind in (EventKind.CHANGED, EventKind.REVERTED) and change.typographic
    return policy.alert_typographic or not restyled
