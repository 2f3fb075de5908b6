"""JSON shapes of archive records, shared by the command line and the HTTP API.

These shapes are a documented, stable interface (README, "JSON output").
Times are ISO 8601 in UTC with a `Z` suffix; absent values are null.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitor.status import Health, SiteHealth, WorkerHealth
from storage.records import (
    ChangeEvent,
    Delivery,
    Revision,
    RevisionSummary,
    SearchHit,
    SearchResults,
    StatementSummary,
)
from storage.wayback import Snapshot


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def statement_json(row: StatementSummary) -> dict[str, Any]:
    return {
        "id": row.id,
        "site": row.site,
        "url": row.url,
        "title": row.title,
        "published_at": iso(row.published_at),
        "status": row.status,
        "revisions": row.revisions,
        "first_seen_at": iso(row.first_seen_at),
        "last_seen_at": iso(row.last_seen_at),
        "last_changed_at": iso(row.last_changed_at),
        "post_id": row.post_id,
        "language": row.language,
        "twin_url": row.twin_url,
        "tags": list(row.tags),
    }


def revision_summary_json(row: RevisionSummary) -> dict[str, Any]:
    return {
        "number": row.number,
        "observed_at": iso(row.observed_at),
        "content_hash": row.content_hash,
        "changed_fields": list(row.changed_fields),
        "typographic_fields": list(row.typographic_fields),
        "typographic": row.change.typographic,
    }


def revision_json(
    found: StatementSummary, revision: Revision, snapshot: Snapshot | None = None
) -> dict[str, Any]:
    content = revision.content
    return {
        "id": found.id,
        "site": found.site,
        "url": found.url,
        "revision_url": content.url,
        "revision": revision.number,
        "revisions": found.revisions,
        "observed_at": iso(revision.observed_at),
        "content_hash": revision.content_hash,
        "title": content.title,
        "subtitle": content.subtitle,
        "published_at": iso(content.published_at),
        "published_raw": content.published_raw,
        "modified_at": iso(content.modified_at),
        "author": content.author,
        "body": content.body,
        "tags": list(content.tags),
        "categories": list(content.categories),
        "language": content.language,
        "post_id": content.post_id,
        "twin_url": content.twin_url,
        "status": found.status,
        "wayback": wayback_json(snapshot),
    }


def wayback_json(snapshot: Snapshot | None) -> dict[str, Any] | None:
    """The Internet Archive capture of the revision's URL; null if none was asked for."""
    if snapshot is None:
        return None
    return {
        "status": str(snapshot.status),
        "snapshot_url": snapshot.url,
        "captured_at": iso(snapshot.captured_at),
    }


def event_json(event: ChangeEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "site": event.site,
        "kind": str(event.kind),
        "occurred_at": iso(event.occurred_at),
        "statement_id": event.statement_id,
        "url": event.url,
        "title": event.title,
        "revision": event.revision,
        "previous_revision": event.previous_revision,
        "reverted_to": event.reverted_to,
        "changed_fields": list(event.changed_fields),
        "typographic_fields": list(event.typographic_fields),
        "typographic": event.change.typographic,
        "condition": str(event.condition) if event.condition else None,
        "detail": event.detail,
        "baseline": event.baseline,
    }


def delivery_json(row: Delivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": str(row.status),
        "target": row.target.label,
        "attempts": row.attempts,
        "created_at": iso(row.created_at),
        "next_attempt_at": iso(row.next_attempt_at),
        "delivered_at": iso(row.delivered_at),
        "last_error": row.last_error,
        "event": event_json(row.event),
    }


def search_hit_json(hit: SearchHit) -> dict[str, Any]:
    return {
        "statement_id": hit.statement_id,
        "revision": hit.revision,
        "matching_revisions": hit.matching_revisions,
        "observed_at": iso(hit.observed_at),
        "url": hit.url,
        "title": hit.title,
        "field": hit.field,
        "snippet": {"before": hit.before, "match": hit.match, "after": hit.after},
    }


def search_json(results: SearchResults, limit: int, offset: int) -> dict[str, Any]:
    """`/api/search` and `search --json`: hits per statement, or per revision if asked."""
    return {
        "query": results.query,
        "total": results.total,
        "total_exact": results.total_exact,
        "all_revisions": results.all_revisions,
        "limit": limit,
        "offset": offset,
        "hits": [search_hit_json(hit) for hit in results.hits],
    }


def health_json(health: Health) -> dict[str, Any]:
    tallies = health.tallies
    return {
        "healthy": health.healthy,
        "problems": list(health.problems),
        "checked_at": iso(health.checked_at),
        "sites": [site_health_json(site) for site in health.sites],
        "statements": tallies.statements,
        "revisions": tallies.revisions,
        "events": tallies.events,
        "outbox": tallies.outbox,
        "oldest_waiting_alert_at": iso(tallies.oldest_waiting_at),
        "workers": [worker_json(worker) for worker in health.workers],
    }


def worker_json(worker: WorkerHealth) -> dict[str, Any]:
    member = worker.member
    return {
        "id": member.id,
        "name": member.name,
        "alive": worker.alive,
        "started_at": iso(member.started_at),
        "last_heartbeat_at": iso(member.last_heartbeat),
        "crawling": list(member.crawling),
    }


def site_health_json(site: SiteHealth) -> dict[str, Any]:
    state = site.state
    return {
        "site": state.site,
        "last_crawl_at": iso(state.last_crawl_at),
        "last_success_at": iso(state.last_success_at),
        "last_crawl_seconds": state.last_crawl_seconds,
        "stale_after_seconds": site.stale_limit.total_seconds(),
        "conditions": [str(condition) for condition in state.conditions],
        "crawls": state.crawls_total,
        "pages_fetched": state.pages_fetched_total,
        "errors": state.errors_total,
    }
