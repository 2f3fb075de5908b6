"""Server-rendered pages: statements, a statement's timeline, revisions, diffs, changes, search.

No JavaScript. Jinja2 escapes every value (autoescape is on for .html), and the
Content-Security-Policy set in `site.py` forbids scripts and any style but ours,
so nothing copied from the watched site can run here.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import AfterValidator

from config import SiteSettings
from monitor.captured import inert_page
from monitor.diffing import diff_statements, diff_text, edits, marked_paragraphs
from monitor.display import visible
from monitor.messages import LABELS, TYPOGRAPHIC, changed_fields_line, find_twin
from monitor.missions import MissionIndex
from monitor.web.api import find_or_404, revision_pair_or_404
from monitor.web.feeds import STATEMENT_KINDS
from monitor.web.params import (
    MAX_NUMBER,
    Day,
    Language,
    Mission,
    RevisionNumber,
    StatementId,
    Text,
    Time,
    day_end,
    day_start,
    without_nul,
)
from storage.archive import Archive
from storage.records import (
    ChangeEvent,
    EventFilter,
    EventKind,
    KeptPage,
    Revision,
    RevisionSummary,
    StatementFilter,
    StatementOrder,
    StatementSummary,
)
from storage.wayback import Snapshot

HERE = Path(__file__).parent
PAGE_SIZE = 50
PageNumber = Annotated[int, Query(ge=1, le=MAX_NUMBER // PAGE_SIZE)]
TIMELINE_EVENTS = 1000
LATEST_CHANGES = 5  # on the home page, across missions
MissionKey = Annotated[str, PathParam(max_length=64), AfterValidator(without_nul)]
From = Annotated[Day, Query(alias="from", description="from this day (UTC), inclusive")]
To = Annotated[Day, Query(alias="to", description="to this day (UTC), inclusive")]
STATUSES = {
    "active": ("online", "在线"),
    "missing": ("missing", "暂时无法访问"),
    "removed": ("removed", "已删除"),
}


# The frame a captured page is shown in: no script, no request, no navigation; our pages
# may frame it and nothing else may.
CAPTURED_PAGE_POLICY = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'self'; form-action 'none'; base-uri 'none'"
)
Sha256 = Annotated[str, PathParam(pattern="^[0-9a-f]{64}$", description="a raw page's SHA-256")]
_TO_THE_MINUTE = re.compile(r"T\d{1,2}:\d{2}(Z|[+-]\d{2}:?\d{2})?$")


@dataclass(frozen=True)
class SiteLabels:
    """What the pages say of each site: its mission's name and its local time."""

    zones: Mapping[str, ZoneInfo]
    missions: Mapping[str, str]

    @classmethod
    def of(cls, sites: Sequence[SiteSettings]) -> SiteLabels:
        return cls(
            zones={site.name: ZoneInfo(site.timezone) for site in sites},
            missions={site.name: site.mission for site in sites if site.mission},
        )

    def local(self, value: datetime | None, site: str) -> str:
        """`value` in the site's own time, e.g. "2026-11-23 17:12 Asia/Shanghai" ("" if unknown)."""
        zone = self.zones.get(site)
        if value is None or zone is None:
            return ""
        return f"{value.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}"


@dataclass(frozen=True)
class ListFilters:
    """What a list page was asked for, as its form and its links carry it."""

    site: str | None = None
    mission: str | None = None
    language: str | None = None
    status: str | None = None
    tag: str | None = None
    start: date | None = None
    end: date | None = None

    @classmethod
    def checked(cls, **asked: Any) -> ListFilters:
        """The filters asked for; refused (422) if the date range runs backwards."""
        filters = cls(**asked)
        if filters.start and filters.end and filters.start > filters.end:
            raise HTTPException(422, "from: must not be after to")
        return filters

    def query(self) -> dict[str, Any]:
        """As URL parameters (the template's `query` drops those left empty)."""
        return {
            "site": self.site,
            "mission": self.mission,
            "language": self.language,
            "status": self.status,
            "tag": self.tag,
            "from": self.start and self.start.isoformat(),
            "to": self.end and self.end.isoformat(),
        }


@dataclass(frozen=True)
class InForce:
    """When a revision was what the site showed, as the archive saw it."""

    since: datetime
    until: datetime | None  # the next revision's first sighting; None: the latest
    state: str  # for the latest: the statement's status (active, missing, removed)
    last_seen: datetime


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: EventKind | None  # None: a revision archived before change events existed
    revision: RevisionSummary | None
    event: ChangeEvent | None
    statement: StatementSummary  # the statement's own, or its other-language twin's


def templates() -> Jinja2Templates:
    engine = Jinja2Templates(directory=HERE / "templates")
    engine.env.finalize = _shown  # before any template is compiled: it applies to every {{ }}
    engine.env.filters["when"] = _when
    engine.env.filters["href"] = _safe_href
    engine.env.globals["kind_label"] = _kind_label
    engine.env.globals["status_label"] = lambda status: STATUSES.get(status, (status, status))
    engine.env.globals["query"] = _query
    engine.env.globals["fields_line"] = changed_fields_line
    engine.env.globals["TYPOGRAPHIC"] = TYPOGRAPHIC
    return engine


def pages(
    archive: Archive, labels: SiteLabels | None = None, missions: MissionIndex | None = None
) -> APIRouter:
    router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)
    labels = labels or SiteLabels({}, {})
    index = missions or MissionIndex((), archive.sites)
    engine = templates()
    engine.env.globals["local"] = labels.local
    render = engine.TemplateResponse

    def context(
        statement: StatementSummary, revision: Revision, at: datetime | None
    ) -> dict[str, Any]:
        return _revision_context(archive, labels, statement, revision, at)

    def statement_list(request: Request, filters: ListFilters, page: int) -> HTMLResponse:
        missions = index.now()
        sites = missions.sites(filters.mission, filters.language)
        where = StatementFilter(
            site=filters.site or None,
            sites=sites,
            status=filters.status,
            tag=filters.tag,
            changed_from=day_start(filters.start),
            changed_to=day_end(filters.end),
        )
        found = archive.statement_page(
            where, order=StatementOrder.LAST_CHANGED, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
        latest = archive.changes(
            site=filters.site or None,
            sites=sites,
            kinds=STATEMENT_KINDS,
            include_baseline=False,
            limit=LATEST_CHANGES,
        )
        return render(
            request,
            "statements.html",
            {
                "statements": found.statements,
                "total": found.total,
                "page": page,
                "pages": max(1, -(-found.total // PAGE_SIZE)),
                "filters": filters.query(),
                "sites": archive.sites(),
                "missions": missions,
                "mission": missions.find(filters.mission or ""),
                "latest": latest,
            },
        )

    @router.get("/")
    def home(
        request: Request,
        site: Text = None,
        mission: Mission = None,
        language: Language = None,
        status: Annotated[str | None, Query(pattern="^(active|missing|removed)$")] = None,
        tag: Text = None,
        start: From = None,
        end: To = None,
        page: PageNumber = 1,
    ) -> HTMLResponse:
        filters = ListFilters.checked(
            site=site,
            mission=mission,
            language=language,
            status=status,
            tag=tag,
            start=start,
            end=end,
        )
        return statement_list(request, filters, page)

    @router.get("/missions/{key}")
    def one_mission(
        request: Request,
        key: MissionKey,
        language: Language = None,
        page: PageNumber = 1,
    ) -> HTMLResponse:
        if index.now().find(key) is None:
            raise HTTPException(404, f"no mission {key}")
        return statement_list(request, ListFilters(mission=key, language=language), page)

    @router.get("/statements/{statement_id}")
    def timeline(request: Request, statement_id: StatementId) -> HTMLResponse:
        found = find_or_404(archive, statement_id)
        history = archive.history(found.id)
        twin = find_twin(archive, found)
        entries = _timeline(archive, found) + (_timeline(archive, twin) if twin else [])
        entries.sort(key=lambda entry: entry.at, reverse=True)
        return render(
            request,
            "timeline.html",
            {"statement": found, "twin": twin, "entries": entries, "history": history},
        )

    @router.get("/statements/{statement_id}/revisions/{number}")
    def revision(
        request: Request, statement_id: StatementId, number: RevisionNumber
    ) -> HTMLResponse:
        found = find_or_404(archive, statement_id)
        row = archive.revision(found.id, number=number)
        if row is None:
            raise HTTPException(404, f"statement {statement_id} has no revision {number}")
        return render(request, "revision.html", context(found, row, None))

    @router.get("/statements/{statement_id}/at")
    def as_of(
        request: Request, statement_id: StatementId, time: Annotated[Time, Query()]
    ) -> HTMLResponse:
        found = find_or_404(archive, statement_id)
        if time is not None and _TO_THE_MINUTE.search(request.query_params.get("time", "")):
            # "09:12" as the timeline shows it means that whole minute, 09:12:04 included.
            time = time + timedelta(minutes=1, microseconds=-1)
        row = archive.revision(found.id, at=time)
        if row is None:
            message = f"statement {statement_id} was not yet archived at {_when(time)}"
            raise HTTPException(404, message)
        return render(request, "revision.html", context(found, row, time))

    @router.get("/statements/{statement_id}/revisions/{number}/page")
    def captured_page(
        request: Request, statement_id: StatementId, number: RevisionNumber
    ) -> HTMLResponse:
        found = find_or_404(archive, statement_id)
        row = archive.revision(found.id, number=number)
        kept = archive.revision_page(found.id, number) if row else None
        if row is None or kept is None:
            message = f"no page kept for revision {number} of statement {statement_id}"
            raise HTTPException(404, message)
        return render(request, "captured.html", context(found, row, None))

    @router.get("/captures/{sha256}.html")
    def inert_capture(sha256: Sha256) -> Response:
        raw = archive.raw_body(sha256)
        if raw is None:
            raise HTTPException(404, f"no raw page {sha256}")
        headers = {"Content-Security-Policy": CAPTURED_PAGE_POLICY}
        return HTMLResponse(inert_page(raw).html, headers=headers)

    @router.get("/captures/{sha256}.raw")
    def raw_capture(sha256: Sha256) -> Response:
        raw = archive.raw_body(sha256)
        if raw is None:
            raise HTTPException(404, f"no raw page {sha256}")
        digest = base64.b64encode(hashlib.sha256(raw).digest()).decode()
        headers = {
            "Content-Disposition": f'attachment; filename="{sha256}.html"',
            "Repr-Digest": f"sha-256=:{digest}:",  # RFC 9530: the receiver can check the bytes
        }
        return Response(raw, media_type="application/octet-stream", headers=headers)

    @router.get("/statements/{statement_id}/diff")
    def diff(
        request: Request,
        statement_id: StatementId,
        old: Annotated[int | None, Query(alias="from", ge=1, le=MAX_NUMBER)] = None,
        new: Annotated[int | None, Query(alias="to", ge=1, le=MAX_NUMBER)] = None,
        view: Annotated[str, Query(pattern="^(inline|side)$")] = "inline",
    ) -> HTMLResponse:
        pair = revision_pair_or_404(archive, statement_id, old, new)
        before, after = pair.before.content, pair.after.content
        changes = diff_statements(before, after)
        body = changes.body or diff_text(before.body, after.body)  # unchanged: the whole text
        return render(
            request,
            "diff.html",
            {
                "statement": pair.statement,
                "before": pair.before,
                "after": pair.after,
                "fields": [(c, diff_text(c.old, c.new)) for c in changes.fields],
                "paragraphs": marked_paragraphs(tuple(body)),
                "edits": edits(body),
                "unchanged": changes.is_empty,
                "typographic": changes.change.typographic,
                "body_typographic": changes.body_typographic,
                "view": view,
                "numbers": range(1, pair.statement.revisions + 1),
            },
        )

    @router.get("/changes")
    def changes(
        request: Request,
        site: Text = None,
        mission: Mission = None,
        language: Language = None,
        kind: EventKind | None = None,
        start: From = None,
        end: To = None,
        before: Annotated[int | None, Query(ge=1, le=MAX_NUMBER)] = None,
    ) -> HTMLResponse:
        filters = ListFilters.checked(
            site=site, mission=mission, language=language, start=start, end=end
        )
        missions = index.now()
        where = EventFilter(
            since=day_start(start),
            until=day_end(end),
            site=site or None,
            sites=missions.sites(mission, language),
            kinds=(kind,) if kind else (),
        )
        found = archive.event_page(where, before=before, limit=PAGE_SIZE)
        return render(
            request,
            "changes.html",
            {
                "events": found.events,
                "total": found.total,
                "older": found.older,
                "filters": {**filters.query(), "kind": kind and str(kind)},
                "kinds": list(EventKind),
                "missions": missions,
            },
        )

    @router.get("/search")
    def search(
        request: Request,
        q: Annotated[str, Query(max_length=200), AfterValidator(without_nul)] = "",
        page: PageNumber = 1,
        all_revisions: bool = False,
    ) -> HTMLResponse:
        offset = (page - 1) * PAGE_SIZE
        results = (
            archive.search(q, limit=PAGE_SIZE, offset=offset, all_revisions=all_revisions)
            if q
            else None
        )
        total = results.total if results else 0
        # Past the cap the total is a lower bound: offer the next page while this one is full.
        more = results is not None and not results.total_exact and len(results.hits) == PAGE_SIZE
        return render(
            request,
            "search.html",
            {
                "q": q,
                "results": results,
                "all_revisions": all_revisions,
                "page": page,
                "pages": max(1, -(-total // PAGE_SIZE), page + 1 if more else page),
            },
        )

    return router


def _timeline(archive: Archive, statement: StatementSummary) -> list[TimelineEntry]:
    """Revisions and the events about them (and take-downs) in one list, newest first."""
    history = archive.history(statement.id)
    events = archive.changes(statement_id=statement.id, limit=TIMELINE_EVENTS)
    by_revision = {
        e.revision: e for e in events if e.revision is not None and e.kind is not EventKind.REMOVED
    }
    entries = [
        TimelineEntry(
            at=r.observed_at,
            kind=by_revision[r.number].kind if r.number in by_revision else None,
            revision=r,
            event=by_revision.get(r.number),
            statement=statement,
        )
        for r in history
    ]
    shown = {e.id for e in by_revision.values()}
    entries += [
        TimelineEntry(at=e.occurred_at, kind=e.kind, revision=None, event=e, statement=statement)
        for e in events
        if e.id not in shown
    ]
    return sorted(entries, key=lambda entry: entry.at, reverse=True)


def _revision_context(
    archive: Archive,
    labels: SiteLabels,
    statement: StatementSummary,
    revision: Revision,
    at: datetime | None,
) -> dict[str, Any]:
    history = archive.history(statement.id)
    kept = archive.revision_page(statement.id, revision.number)
    snapshot = archive.wayback_snapshot(statement.id, revision.number)
    mission = labels.missions.get(statement.site, "")
    return {
        "statement": statement,
        "revision": revision,
        "at": at,
        "in_force": in_force(history, statement, revision.number),
        "kept": kept,
        "snapshot": snapshot,
        "citation": citation(statement, revision, kept, mission, snapshot),
    }


def in_force(history: list[RevisionSummary], statement: StatementSummary, number: int) -> InForce:
    since = next(r.observed_at for r in history if r.number == number)
    later = [r.observed_at for r in history if r.number == number + 1]
    return InForce(
        since=since,
        until=later[0] if later else None,
        state=statement.status,
        last_seen=statement.last_seen_at,
    )


def citation(
    statement: StatementSummary,
    revision: Revision,
    kept: KeptPage | None,
    mission: str = "",
    snapshot: Snapshot | None = None,
) -> str:
    """One line a reader can paste into a story or a filing; every part checkable here."""
    c = revision.content
    parts = [
        f"U.S. mission: {mission} ({statement.site})" if mission else statement.site,
        f"“{c.title}”",
        f"revision {revision.number} of {statement.revisions}",
        f"first archived {_iso(revision.observed_at)}",
        f"captured {_iso(kept.fetched_at)}, SHA-256 {kept.sha256}" if kept else "",
        c.url,
        _wayback_part(snapshot),
        f"embassy-watch statement {statement.id}",
    ]
    return ". ".join(part for part in parts if part) + "."


def _wayback_part(snapshot: Snapshot | None) -> str:
    """The second witness, once the Internet Archive has it: a copy anyone can open."""
    if snapshot is None or snapshot.url is None or snapshot.captured_at is None:
        return ""
    return f"Internet Archive snapshot {_iso(snapshot.captured_at)}: {snapshot.url}"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shown(value: Any) -> Any:
    """What a template prints, hidden characters made visible (see monitor/display.py).

    Markup is left alone: it is what a macro made, its own values already shown so.
    """
    return visible(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _safe_href(url: str | None) -> str | None:
    """Only http(s) links are ever made from scraped URLs (no javascript:, data:, ...)."""
    if not url:
        return None
    return url if urlsplit(url).scheme in ("http", "https") else None


def _kind_label(kind: EventKind | str | None) -> tuple[str, str]:
    if kind is None:
        return ("Archived", "已存档")
    return LABELS[EventKind(kind)]


def _query(values: dict[str, Any], **changes: Any) -> str:
    merged = {**values, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})
