"""Which raw page each revision was read from: the first kept fetch that confirmed it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import models
from storage.records import KeptPage


def revision_page(session: Session, statement_id: int, number: int) -> KeptPage | None:
    row = session.execute(
        select(
            models.Blob.sha256,
            models.Blob.size,
            models.Observation.fetched_at,
            models.Observation.final_url,
            models.Observation.status,
        )
        .join(models.Revision, models.Revision.id == models.Observation.revision_id)
        .join(models.Blob, models.Blob.sha256 == models.Observation.blob_sha256)
        .where(models.Revision.statement_id == statement_id, models.Revision.number == number)
        .order_by(models.Observation.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    sha256, size, fetched_at, url, status = row
    return KeptPage(sha256=sha256, size=size, fetched_at=fetched_at, url=url, status=status)
