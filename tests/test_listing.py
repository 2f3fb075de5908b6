"""Lists paged by the database agree with the whole list, on every backend.

An archive of 23 statements on two sites (some edited, some tagged, some gone) is read
page by page in both orders and under each filter: the pages never overlap, together
they are the whole list, and the total is its length; the whole list is what filtering
and sorting every statement here in Python gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import timedelta

import pytest

from storage.archive import Archive
from storage.records import (
    EventFilter,
    EventKind,
    EventPolicy,
    StatementFilter,
    StatementOrder,
    StatementSummary,
)
from tests.conftest import postgres_database
from tests.test_archive import CONTENT, T0, URL, capture

STATEMENTS = 23
SITES = ("china-zh", "china-en")
GONE = EventPolicy(removal_after=1)


def _fill(archive: Archive) -> None:
    """Statement n: site n % 2, tag n % 3 (and "香港" on every fifth), edited when n % 4 == 0
    (late, so the order of last changes is not the order of ids), gone when n % 7 == 0."""
    for n in range(1, STATEMENTS + 1):
        url = f"{URL}{n}/"
        tags = (f"tag-{n % 3}", "香港") if n % 5 == 0 else (f"tag-{n % 3}",)
        content = replace(
            CONTENT,
            url=url,
            post_id=n,
            title=f"声明 {n}",
            published_at=CONTENT.published_at and CONTENT.published_at + timedelta(days=n % 6),
            tags=tags,
        )
        at = T0 + timedelta(minutes=n)
        archive.record_detail(replace(capture(at, url=url), site=SITES[n % 2]), content)
        if n % 4 == 0:
            later = T0 + timedelta(hours=10, minutes=-n)
            edited = replace(content, body=content.body + "又及。")
            archive.record_detail(replace(capture(later, url=url), site=SITES[n % 2]), edited)
        if n % 7 == 0:
            gone = replace(
                capture(T0 + timedelta(hours=20), url=url, status=404), site=SITES[n % 2]
            )
            archive.record_detail(gone, None, unlisted=True, policy=GONE)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Archive]:
    """One archive per backend, filled once: every test here only reads it."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('listing') / 'archive.db'}"
        else:
            url = stack.enter_context(postgres_database())
        archive = Archive.open(url)
        stack.callback(archive.close)
        _fill(archive)
        yield archive


FILTERS: dict[str, tuple[StatementFilter, Callable[[StatementSummary], bool]]] = {
    "none": (StatementFilter(), lambda s: True),
    "site": (StatementFilter(site=SITES[1]), lambda s: s.site == SITES[1]),
    "status": (StatementFilter(status="removed"), lambda s: s.status == "removed"),
    "tag": (StatementFilter(tag="香港"), lambda s: "香港" in s.tags),
    "site+tag": (
        StatementFilter(site=SITES[0], tag="tag-1"),
        lambda s: s.site == SITES[0] and "tag-1" in s.tags,
    ),
    "published": (
        StatementFilter(
            published_from=CONTENT.published_at + timedelta(days=2),
            published_to=CONTENT.published_at + timedelta(days=4),
        ),
        lambda s: (
            s.published_at is not None
            and timedelta(days=2) <= s.published_at - CONTENT.published_at <= timedelta(days=4)
        ),
    ),
    "changed": (
        StatementFilter(changed_from=T0 + timedelta(hours=1)),
        lambda s: s.last_changed_at is not None and s.last_changed_at >= T0 + timedelta(hours=1),
    ),
    "sites": (StatementFilter(sites=(SITES[0], "uk-en")), lambda s: s.site == SITES[0]),
    "sites+changed": (
        StatementFilter(
            sites=SITES,
            changed_from=T0 + timedelta(minutes=5),
            changed_to=T0 + timedelta(minutes=15),
        ),
        lambda s: (
            s.last_changed_at is not None
            and timedelta(minutes=5) <= s.last_changed_at - T0 <= timedelta(minutes=15)
        ),
    ),
    "nothing": (StatementFilter(tag="no such tag"), lambda s: False),
    "no sites": (StatementFilter(sites=()), lambda s: False),
}
SORTS = {
    StatementOrder.ID: lambda s: (s.id,),
    StatementOrder.LAST_CHANGED: lambda s: (-(s.last_changed_at or T0).timestamp(), -s.id),
}


def _pages(
    archive: Archive, where: StatementFilter, order: StatementOrder, size: int
) -> Iterator[tuple[list[StatementSummary], int]]:
    offset = 0
    while True:
        page = archive.statement_page(where, order=order, limit=size, offset=offset)
        yield list(page.statements), page.total
        if len(page.statements) < size:
            return
        offset += size


@pytest.mark.parametrize("order", list(StatementOrder))
@pytest.mark.parametrize("name", list(FILTERS))
def test_pages_of_statements_make_the_filtered_sorted_list(
    filled: Archive, name: str, order: StatementOrder
) -> None:
    where, keep = FILTERS[name]
    every = filled.statements()
    assert len(every) == STATEMENTS
    expected = sorted((s for s in every if keep(s)), key=SORTS[order])
    if name not in ("nothing", "no sites"):
        assert expected, "the filter keeps something here"

    for size in (1, 4, 50):
        pages = list(_pages(filled, where, order, size))
        seen = [s for rows, _ in pages for s in rows]
        assert seen == expected  # in order, none twice, none missing
        assert {total for _, total in pages} == {len(expected)}
    assert filled.statements(where) == sorted(expected, key=SORTS[StatementOrder.ID])


def test_a_page_past_the_end_is_empty_and_still_counts(filled: Archive) -> None:
    for limit in (5, None):
        page = filled.statement_page(StatementFilter(site=SITES[0]), limit=limit, offset=1000)
        assert page.statements == ()
        assert page.total == len(filled.statements(StatementFilter(site=SITES[0])))
    rest = filled.statement_page(StatementFilter(), limit=None, offset=STATEMENTS - 3)
    assert [s.id for s in rest.statements] == [STATEMENTS - 2, STATEMENTS - 1, STATEMENTS]
    assert rest.total == STATEMENTS


def test_a_listed_statement_reads_as_its_latest_revision(filled: Archive) -> None:
    (edited,) = filled.statement_page(StatementFilter(), limit=1, offset=3).statements
    assert edited.id == 4 and edited.revisions == 2
    latest = filled.revision(edited.id)
    assert latest is not None
    assert (edited.title, edited.published_at, edited.tags, edited.last_changed_at) == (
        latest.content.title,
        latest.content.published_at,
        latest.content.tags,
        latest.observed_at,
    )
    assert filled.find_statement(str(edited.id)) == edited
    assert filled.find_statement(f"{URL}4") == edited


EVENT_FILTERS = {
    "none": (EventFilter(), lambda e: True),
    "site": (EventFilter(site=SITES[0]), lambda e: e.site == SITES[0]),
    "kind": (
        EventFilter(kinds=(EventKind.CHANGED, EventKind.REMOVED)),
        lambda e: e.kind in (EventKind.CHANGED, EventKind.REMOVED),
    ),
    "since": (
        EventFilter(since=T0 + timedelta(hours=1)),
        lambda e: e.occurred_at >= T0 + timedelta(hours=1),
    ),
    "statement": (EventFilter(statement_id=8), lambda e: e.statement_id == 8),
    "until": (
        EventFilter(since=T0 + timedelta(minutes=3), until=T0 + timedelta(hours=9, minutes=50)),
        lambda e: T0 + timedelta(minutes=3) <= e.occurred_at <= T0 + timedelta(hours=9, minutes=50),
    ),
    "sites": (EventFilter(sites=(SITES[1],)), lambda e: e.site == SITES[1]),
    "no sites": (EventFilter(sites=()), lambda e: False),
}


@pytest.mark.parametrize("name", list(EVENT_FILTERS))
def test_pages_of_events_make_the_filtered_list(filled: Archive, name: str) -> None:
    where, keep = EVENT_FILTERS[name]
    every = filled.changes(limit=1000)
    assert [e.id for e in every] == sorted((e.id for e in every), reverse=True)
    expected = [e for e in every if keep(e)]
    assert expected or name == "no sites"

    for size in (1, 3, 100):
        seen, before, totals = [], None, set()
        while True:
            page = filled.event_page(where, before=before, limit=size)
            seen += page.events
            totals.add(page.total)
            assert len(page.events) <= size
            if page.older is None:
                break
            assert page.older == page.events[-1].id
            before = page.older
        assert seen == expected
        assert totals == {len(expected)}
