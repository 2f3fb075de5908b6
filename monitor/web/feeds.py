"""Atom feeds of change events: everything, one site, one statement.

Entries are what an alert would say (the e-mail's HTML, diff included), so a feed
reader is one more alert channel. First-crawl (baseline) events and crawl-health
events are left out: they are about the archive, not about the statements. Every
text is shown as on a page (monitor/display.py): XML cannot carry control characters.
"""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request, Response
from feedgen.feed import FeedGenerator
from pydantic import AfterValidator

from monitor.display import one_line, visible
from monitor.messages import Format, render, what_changed
from monitor.missions import MissionIndex
from monitor.web.api import find_or_404
from monitor.web.params import Language, Mission, StatementId, Text, without_nul
from storage.archive import Archive
from storage.records import ChangeEvent, EventKind

FEED_ENTRIES = 50
MAX_ENTRY_CHARS = 100_000
STATEMENT_KINDS = (
    EventKind.NEW,
    EventKind.CHANGED,
    EventKind.REVERTED,
    EventKind.REMOVED,
    EventKind.REAPPEARED,
)
ATOM = "application/atom+xml; charset=utf-8"


def feeds(archive: Archive, missions: MissionIndex | None = None) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    index = missions or MissionIndex((), archive.sites)

    @router.get("/feeds/changes.atom")
    def everything(
        request: Request, site: Text = None, mission: Mission = None, language: Language = None
    ) -> Response:
        scope = " · ".join(part for part in (site, mission, language) if part)
        title = f"Changes · 变更: {scope}" if scope else "Changes · 变更"
        sites = index.sites(mission, language)
        return _feed(archive, request, title, archive_events(archive, site=site, sites=sites))

    @router.get("/feeds/sites/{site}.atom")
    def one_site(
        request: Request, site: Annotated[str, Path(), AfterValidator(without_nul)]
    ) -> Response:
        return _feed(archive, request, f"Changes · 变更: {site}", archive_events(archive, site))

    @router.get("/feeds/statements/{statement_id}.atom")
    def one_statement(request: Request, statement_id: StatementId) -> Response:
        found = find_or_404(archive, statement_id)
        events = archive_events(archive, statement_id=found.id)
        return _feed(archive, request, f"Changes · 变更: {found.title or found.url}", events)

    return router


def archive_events(
    archive: Archive,
    site: str | None = None,
    statement_id: int | None = None,
    sites: tuple[str, ...] | None = None,
) -> list[ChangeEvent]:
    return archive.changes(
        site=site,
        sites=sites,
        statement_id=statement_id,
        kinds=STATEMENT_KINDS,
        include_baseline=False,
        limit=FEED_ENTRIES,
    )


def _feed(archive: Archive, request: Request, title: str, events: list[ChangeEvent]) -> Response:
    base = str(request.base_url).rstrip("/")
    feed = FeedGenerator()
    feed.id(_stable_id(f"feed {request.url.path}?{request.url.query}"))
    feed.title(one_line(title))
    feed.subtitle("Statements new, edited, taken down · 美国驻华使领馆声明的变更")
    feed.author({"name": "embassy-watch"})
    feed.link(href=_self_link(request), rel="self")
    feed.link(href=base + "/changes", rel="alternate")
    feed.generator("embassy-watch")
    if events:
        feed.updated(events[0].occurred_at)
    for event in reversed(events):  # feedgen prepends; newest ends up first
        entry = feed.add_entry()
        entry.id(_stable_id(f"event {event.id} {event.occurred_at.isoformat()} {event.url}"))
        detail = what_changed(archive, event)
        message = render(
            event, detail.changes, Format.HTML, MAX_ENTRY_CHARS, detail.excerpt, detail.twin
        )
        entry.title(one_line(message.title))
        entry.link(href=base + _page_of(event), rel="alternate")
        entry.updated(event.occurred_at)
        entry.published(event.occurred_at)
        entry.content(visible(message.body), type="html")
    return Response(feed.atom_str(pretty=True), media_type=ATOM)


def _self_link(request: Request) -> str:
    """The feed's own address as it was asked for (Starlette hands over the path decoded)."""
    url = request.url
    return str(url.replace(path=quote(url.path), query=quote(url.query, safe="=&%+")))


def _page_of(event: ChangeEvent) -> str:
    if event.statement_id is None:
        return "/changes"
    if event.previous_revision and event.revision:
        return (
            f"/statements/{event.statement_id}/diff"
            f"?from={event.previous_revision}&to={event.revision}"
        )
    return f"/statements/{event.statement_id}"


def _stable_id(text: str) -> str:
    """Ids that survive a change of host name, so readers never show an entry twice."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "embassy-watch " + text).urn
