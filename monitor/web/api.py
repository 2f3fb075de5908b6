"""The JSON API: statements, revisions, as-of-time reads, diffs, change events, search.

Read-only: every route is a GET, every database session is a read-only one.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import AfterValidator

from monitor.diffing import DiffOp, diff_statements, diff_text
from monitor.messages import Format, render_diff
from monitor.missions import MissionIndex
from monitor.views import (
    event_json,
    revision_json,
    revision_summary_json,
    search_json,
    statement_json,
)
from monitor.web.params import (
    MAX_NUMBER,
    Language,
    Limit,
    Mission,
    Offset,
    RevisionNumber,
    StatementId,
    Text,
    Time,
    without_nul,
)
from storage.archive import Archive
from storage.records import Revision, StatementFilter, StatementSummary


def api(archive: Archive, missions: MissionIndex | None = None) -> APIRouter:
    router = APIRouter()
    index = missions or MissionIndex((), archive.sites)

    @router.get("/statements", summary="Statements, filtered and paginated")
    def statements(
        site: Text = None,
        mission: Mission = None,
        language: Language = None,
        status: Annotated[str | None, Query(pattern="^(active|missing|removed)$")] = None,
        tag: Text = None,
        published_from: Time = None,
        published_to: Time = None,
        changed_from: Time = None,
        changed_to: Time = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        where = StatementFilter(
            site=site,
            status=status,
            tag=tag,
            published_from=published_from,
            published_to=published_to,
            changed_from=changed_from,
            changed_to=changed_to,
            sites=index.sites(mission, language),
        )
        page = archive.statement_page(where, limit=limit, offset=offset)
        return {
            "total": page.total,
            "limit": limit,
            "offset": offset,
            "statements": [statement_json(row) for row in page.statements],
        }

    @router.get("/statements/{statement_id}", summary="A statement as it reads now, or at a time")
    def statement(
        statement_id: StatementId,
        at: Annotated[
            Time, Query(description="the revision in force at this ISO 8601 time")
        ] = None,
    ) -> dict[str, Any]:
        found = find_or_404(archive, statement_id)
        revision = archive.revision(found.id, at=at)
        if revision is None:
            raise HTTPException(404, f"statement {statement_id} was not yet archived at {at}")
        return revision_json(found, revision, archive.wayback_snapshot(found.id, revision.number))

    @router.get("/statements/{statement_id}/revisions", summary="A statement's revisions")
    def revisions(statement_id: StatementId) -> list[dict[str, Any]]:
        found = find_or_404(archive, statement_id)
        return [revision_summary_json(row) for row in archive.history(found.id)]

    @router.get("/statements/{statement_id}/revisions/{number}", summary="One revision")
    def revision(statement_id: StatementId, number: RevisionNumber) -> dict[str, Any]:
        found = find_or_404(archive, statement_id)
        row = archive.revision(found.id, number=number)
        if row is None:
            raise HTTPException(404, f"statement {statement_id} has no revision {number}")
        return revision_json(found, row, archive.wayback_snapshot(found.id, row.number))

    @router.get("/statements/{statement_id}/diff", summary="What changed between two revisions")
    def diff(
        statement_id: StatementId,
        old: Annotated[int | None, Query(alias="from", ge=1, le=MAX_NUMBER)] = None,
        new: Annotated[int | None, Query(alias="to", ge=1, le=MAX_NUMBER)] = None,
    ) -> dict[str, Any]:
        pair = revision_pair_or_404(archive, statement_id, old, new)
        changes = diff_statements(pair.before.content, pair.after.content)
        return {
            "statement_id": pair.statement.id,
            "from": pair.before.number,
            "to": pair.after.number,
            "fields": [
                {
                    "name": change.name,
                    "old": change.old,
                    "new": change.new,
                    "ops": _ops(diff_text(change.old, change.new)),
                }
                for change in changes.fields
            ],
            "body": _ops(changes.body),
            "html": render_diff(changes, Format.HTML),
        }

    @router.get("/changes", summary="Change events, newest first")
    def changes(
        since: Time = None,
        until: Time = None,
        site: Text = None,
        mission: Mission = None,
        language: Language = None,
        statement_id: Annotated[int | None, Query(ge=1, le=MAX_NUMBER)] = None,
        limit: Limit = 100,
    ) -> list[dict[str, Any]]:
        events = archive.changes(
            since=since,
            until=until,
            site=site,
            sites=index.sites(mission, language),
            statement_id=statement_id,
            limit=limit,
        )
        return [event_json(event) for event in events]

    @router.get("/search", summary="Statements whose title or body contain a text")
    def search(
        q: Annotated[
            str,
            Query(min_length=1, max_length=200, description="any text, e.g. 香港"),
            AfterValidator(without_nul),
        ],
        limit: Limit = 20,
        offset: Offset = 0,
        all_revisions: Annotated[
            bool, Query(description="every matching revision, not one per statement")
        ] = False,
    ) -> dict[str, Any]:
        results = archive.search(q, limit=limit, offset=offset, all_revisions=all_revisions)
        return search_json(results, limit, offset)

    return router


def find_or_404(archive: Archive, statement_id: int) -> StatementSummary:
    found = archive.find_statement(str(statement_id))
    if found is None:
        raise HTTPException(404, f"no statement {statement_id}")
    return found


@dataclass(frozen=True)
class RevisionPair:
    statement: StatementSummary
    before: Revision
    after: Revision


def revision_pair_or_404(
    archive: Archive, statement_id: int, old: int | None, new: int | None
) -> RevisionPair:
    """Revisions `old` and `new` of a statement; by default the last two (or the only one)."""
    found = find_or_404(archive, statement_id)
    newest = new or found.revisions
    oldest = old or max(newest - 1, 1)
    before = archive.revision(found.id, number=oldest)
    after = archive.revision(found.id, number=newest)
    if before is None or after is None:
        missing = oldest if before is None else newest
        raise HTTPException(404, f"statement {statement_id} has no revision {missing}")
    return RevisionPair(found, before, after)


def _ops(ops: Iterable[DiffOp]) -> list[dict[str, str]]:
    return [{"op": str(op.op), "text": op.text} for op in ops]


def docs_page(schema: dict[str, Any]) -> str:
    rows = []
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            parameters = ", ".join(
                p["name"] + ("" if not p.get("required") else " (required)")
                for p in operation.get("parameters", [])
            )
            rows.append(
                f"<tr><td><code>{html.escape(method.upper())} {html.escape(path)}</code></td>"
                f"<td>{html.escape(operation.get('summary', ''))}</td>"
                f"<td>{html.escape(parameters)}</td></tr>"
            )
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        "<title>embassy-watch API</title>"
        "<link rel=stylesheet href='/static/style.css'><main>"
        "<h1>embassy-watch API</h1><p>Read-only JSON. Machine-readable description: "
        "<a href='/openapi.json'>/openapi.json</a> (OpenAPI 3).</p>"
        "<table class=fields><tr><th>request</th><th>what</th><th>parameters</th></tr>"
        f"{''.join(rows)}</table></main>"
    )
