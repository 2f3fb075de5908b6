"""Keeping the audit trail small: forgetting repeated fetches that only said "still the same"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.orm import Session

from storage import models
from storage.sessions import Sessions

# Fetches forgotten per transaction while thinning: about 0.3 s of SQLite's write lock.
THIN_PER_TRANSACTION = 2_000


def thin_observations(
    sessions: Sessions,
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
    with sessions.reading() as session:
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
            with sessions.write.begin() as session:
                count = _thin_url(session, url, before, per_transaction)
            forgotten += count
            if count < per_transaction:
                break
    return forgotten


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
