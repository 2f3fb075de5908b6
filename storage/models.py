"""ORM tables. These rows never leave `storage/`: `mapping.py` converts them to records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

URL_LENGTH = 2048


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC on every backend; always read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware values")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Blob(Base):
    """A raw response body, stored once per SHA-256, zlib-compressed."""

    __tablename__ = "blob"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    compression: Mapped[str] = mapped_column(String(16))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Statement(Base):
    """A statement's identity: site + WordPress post id, else its canonical URL."""

    __tablename__ = "statement"
    __table_args__ = (UniqueConstraint("site", "post_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    post_id: Mapped[int | None] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(URL_LENGTH))
    language: Mapped[str | None] = mapped_column(String(16))
    twin_url: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    status: Mapped[str] = mapped_column(String(16), default="active")
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    missing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Consecutive crawls in which the page was gone (404/410/soft 404) and not listed.
    gone_streak: Mapped[int] = mapped_column(Integer, default=0)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_listed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StatementUrl(Base):
    """Every URL a statement has been known by, so a slug or domain change keeps its history."""

    __tablename__ = "statement_url"
    __table_args__ = (UniqueConstraint("site", "url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(URL_LENGTH))
    statement_id: Mapped[int] = mapped_column(ForeignKey("statement.id"), index=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Observation(Base):
    """Every fetch: what was asked, what came back, and which revision it confirmed."""

    __tablename__ = "observation"
    __table_args__ = (Index("ix_observation_requested_url_id", "requested_url", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    requested_url: Mapped[str] = mapped_column(String(URL_LENGTH))
    final_url: Mapped[str] = mapped_column(String(URL_LENGTH))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, str]] = mapped_column(JSON)
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    # Set only when the raw bytes were kept (see storage.recording, _keep_raw_body).
    blob_sha256: Mapped[str | None] = mapped_column(ForeignKey("blob.sha256"))
    # What the page yielded ("content:<hash>", "listing:<hash>", "failed:<reason>", "status:404").
    content_key: Mapped[str] = mapped_column(String(128))
    statement_id: Mapped[int | None] = mapped_column(ForeignKey("statement.id"), index=True)
    revision_id: Mapped[int | None] = mapped_column(ForeignKey("revision.id"))


class Revision(Base):
    """A version of a statement's content; created when its published text changes at all."""

    __tablename__ = "revision"
    __table_args__ = (UniqueConstraint("statement_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("statement.id"))
    number: Mapped[int] = mapped_column(Integer)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    changed_fields: Mapped[list[str]] = mapped_column(JSON)
    # Of changed_fields, those that changed only typographically (storage.content.compare).
    typographic_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    url: Mapped[str] = mapped_column(String(URL_LENGTH))
    language: Mapped[str | None] = mapped_column(String(16))
    post_id: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    subtitle: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_raw: Mapped[str | None] = mapped_column(String(128))
    modified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    author: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)
    twin_url: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    extractor_version: Mapped[str] = mapped_column(String(32))


class ChangeEvent(Base):
    """Something a reader should hear about; written with the revision that causes it."""

    __tablename__ = "change_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    statement_id: Mapped[int | None] = mapped_column(ForeignKey("statement.id"), index=True)
    url: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    title: Mapped[str | None] = mapped_column(Text)
    revision: Mapped[int | None] = mapped_column(Integer)
    previous_revision: Mapped[int | None] = mapped_column(Integer)
    reverted_to: Mapped[int | None] = mapped_column(Integer)
    changed_fields: Mapped[list[str]] = mapped_column(JSON)
    typographic_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    condition: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)


class Outbox(Base):
    """One row per (event, notification target): the durable queue alerts are sent from."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("event_id", "target_key"),
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("change_event.id"))
    target_key: Mapped[str] = mapped_column(String(64))
    target_label: Mapped[str] = mapped_column(String(URL_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # While "sending": the claim expires then, so a killed sender's row is retried.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SiteState(Base):
    """Per-site facts the monitor needs across restarts."""

    __tablename__ = "site_state"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    baseline_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_crawl_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    blocked_streak: Mapped[int] = mapped_column(Integer, default=0)  # crawls refused in a row
    # Raised health conditions: {"blocked": "detail", ...}; each is alerted once.
    conditions: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Counters since the archive began (Prometheus counters survive restarts this way).
    last_crawl_seconds: Mapped[float | None] = mapped_column(Float)
    crawls_total: Mapped[int] = mapped_column(Integer, default=0)
    pages_fetched_total: Mapped[int] = mapped_column(Integer, default=0)
    errors_total: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)


class EvidenceBatch(Base):
    """One hash tree: the raw pages a site's cycle kept, its root sent to the TSAs."""

    __tablename__ = "evidence_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    tree_size: Mapped[int] = mapped_column(Integer)
    root: Mapped[str] = mapped_column(String(64))
    # The newest observation this tree covers: the next one starts after it.
    last_observation_id: Mapped[int] = mapped_column(Integer)


class EvidenceLeaf(Base):
    """A kept raw page's place in its hash tree, with the path that proves it is there."""

    __tablename__ = "evidence_leaf"

    observation_id: Mapped[int] = mapped_column(ForeignKey("observation.id"), primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("evidence_batch.id"), index=True)
    leaf_index: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # Sibling hashes (hex) from the leaf up to the root, as RFC 9162 section 2.1.3 orders them.
    path: Mapped[list[str]] = mapped_column(JSON)


class EvidenceStamp(Base):
    """One (tree, TSA) timestamp: the durable queue its request is sent from, then its token."""

    __tablename__ = "evidence_stamp"
    __table_args__ = (
        UniqueConstraint("batch_id", "tsa_url"),
        Index("ix_evidence_stamp_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("evidence_batch.id"))
    tsa_url: Mapped[str] = mapped_column(String(URL_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # While "sending": the claim expires then, so a killed sender's request is retried.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    # The TSA's whole TimeStampResp (DER), its time and its signer, once stamped.
    token: Mapped[bytes | None] = mapped_column(LargeBinary)
    gen_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    tsa_name: Mapped[str | None] = mapped_column(Text)


class FleetWorker(Base):
    """A `run` process in a PostgreSQL fleet, by its Procrastinate worker id (monitor/fleet.py).

    Procrastinate's own worker table holds only an id and a heartbeat: this row says
    which machine and process the id is, for `status`, /healthz and /metrics.
    """

    __tablename__ = "fleet_worker"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))  # host:pid
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WaybackCapture(Base):
    """One revision's Save Page Now request: the durable queue it is sent from, then its snapshot.

    One row per revision (unique), so the Internet Archive is asked once per revision; a
    job once accepted is polled (job_id set), never submitted again unless it failed.
    """

    __tablename__ = "wayback_capture"
    __table_args__ = (
        Index("ix_wayback_capture_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("revision.id"), unique=True)
    url: Mapped[str] = mapped_column(String(URL_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # While "sending": the claim expires then, so a killed sender's row is taken up again.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(String(128))
    # When the last capture request was sent: the rate limit counts these, across processes.
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    snapshot_url: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    snapshot_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
