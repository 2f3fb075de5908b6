"""The lists: statements and change events, filtered, sorted and paged by the database.

A statement's list row is the statement joined to its latest revision (the highest
number: revisions are numbered in the order they were observed, so that revision's
time is when the statement last changed). Only the page's rows leave the database,
with the count of all that match.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    case,
    cast,
    exists,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, aliased

from storage import models
from storage.events import event_record
from storage.mapping import summary_columns, summary_of
from storage.records import (
    MAX_NUMBER,
    ChangeEvent,
    EventFilter,
    EventPage,
    KnownStatement,
    StatementFilter,
    StatementOrder,
    StatementPage,
    StatementSummary,
)

_CURRENT = aliased(models.Revision, name="current")
_S = models.Statement
_E = models.ChangeEvent
_SUMMARY_COLUMNS = summary_columns(_S, _CURRENT)
_ORDER = {
    StatementOrder.ID: (_CURRENT.statement_id,),
    StatementOrder.LAST_CHANGED: (_CURRENT.observed_at.desc(), _CURRENT.statement_id.desc()),
}


def _with_current(*columns: Any) -> Select[Any]:
    """`columns` of each statement joined to its latest revision."""
    return _latest(*columns).join(_S, _S.id == _CURRENT.statement_id)


def _latest(*columns: Any) -> Select[Any]:
    """`columns` of each statement's latest revision (the statement table not read)."""
    # No later revision: an anti-join PostgreSQL runs over the whole table at once,
    # and SQLite as one index look-up a row.
    newer = exists().where(
        models.Revision.statement_id == _CURRENT.statement_id,
        models.Revision.number > _CURRENT.number,
    )
    return select(*columns).select_from(_CURRENT).where(~newer)


def statement_page(
    session: Session,
    where: StatementFilter,
    order: StatementOrder,
    limit: int | None,
    offset: int,
) -> StatementPage:
    """The statements matching `where` in `order`: `limit` of them from `offset`, and the total.

    The page's ids are found first, reading only indexed columns where it can, and only
    their rows are read whole: a deep page skips rows without reading them.
    """
    of_statement, of_revision = _statement_conditions(where), _revision_conditions(session, where)
    ids = _latest(_CURRENT.statement_id).where(*of_revision)
    if of_statement:
        ids = ids.join(_S, _S.id == _CURRENT.statement_id).where(*of_statement)
    if of_statement and order is StatementOrder.ID:
        # The same order, but by the column the site's index is in: SQLite does not sort.
        ids = ids.order_by(_S.id)
    else:
        ids = ids.order_by(*_ORDER[order])
    if limit is None:  # every one: in one pass (their ids may outnumber SQLite's parameters)
        whole = _with_current(*_SUMMARY_COLUMNS).where(*of_statement, *of_revision)
        rows = session.execute(whole.order_by(*_ORDER[order]).offset(offset)).all()
        page = tuple(summary_of(row) for row in rows)
    else:
        # A filter on the revision reads every statement anyway: count in the same pass.
        counted = ids.add_columns(func.count().over()) if of_revision else ids
        found = session.execute(counted.limit(limit).offset(offset)).all()
        page_ids = [row[0] for row in found]
        rows = session.execute(_with_current(*_SUMMARY_COLUMNS).where(_S.id.in_(page_ids))).all()
        by_id = {row.id: summary_of(row) for row in rows}
        page = tuple(by_id[statement_id] for statement_id in page_ids)
        if of_revision and found:
            return StatementPage(page, found[0][1])
    if (limit is None or len(page) < limit) and (page or offset == 0):
        return StatementPage(page, offset + len(page))  # the last page: no need to count
    if of_revision:
        total = session.scalar(ids.with_only_columns(func.count()).order_by(None))
    else:
        # Every statement is written with its first revision: counting statements will do.
        total = session.scalar(select(func.count()).select_from(_S).where(*of_statement))
    return StatementPage(page, total or 0)


def find_statement(session: Session, ref: str) -> StatementSummary | None:
    """A statement by numeric id or by any URL it has been known by."""
    query = _with_current(*_SUMMARY_COLUMNS)
    if ref.isdigit():
        if int(ref) > MAX_NUMBER:
            return None  # no such id can exist
        query = query.where(_S.id == int(ref))
    else:
        known = select(models.StatementUrl.statement_id).where(
            models.StatementUrl.url.in_(_url_variants(ref))
        )
        query = query.where(_S.id.in_(known))
    row = session.execute(query.limit(1)).first()
    return summary_of(row) if row else None


def known_statements(session: Session, site: str) -> list[KnownStatement]:
    """Every archived statement of a site with what the re-check policy weighs."""
    query = _with_current(
        _S.url,
        _CURRENT.title,
        _S.status,
        _CURRENT.observed_at.label("last_changed_at"),
        _S.last_checked_at,
        _S.last_listed_at,
    )
    rows = session.execute(query.where(_S.site == site).order_by(_S.id))
    return [KnownStatement(**row._asdict()) for row in rows]


def events(
    session: Session, where: EventFilter, before: int | None, limit: int
) -> list[ChangeEvent]:
    """Events matching `where`, newest first: `limit` of them older than event `before`."""
    query = select(_E).where(*_event_conditions(where)).order_by(_E.id.desc())
    if before is not None:
        query = query.where(_E.id < before)
    return [event_record(row) for row in session.scalars(query.limit(limit))]


def event_page(session: Session, where: EventFilter, before: int | None, limit: int) -> EventPage:
    """`events`, with how many match `where` and where the next (older) page starts."""
    found = events(session, where, before, limit + 1)  # one more: is there an older page?
    page = tuple(found[:limit])
    older = page[-1].id if len(found) > limit else None
    count = select(func.count()).select_from(_E).where(*_event_conditions(where))
    return EventPage(page, session.scalar(count) or 0, older)


def _statement_conditions(where: StatementFilter) -> list[ColumnElement[bool]]:
    """The conditions `where` sets on the statement's own columns."""
    conditions = []
    if where.site is not None:
        conditions.append(_S.site == where.site)
    if where.sites is not None:
        conditions.append(_S.site.in_(where.sites))
    if where.status is not None:
        conditions.append(_S.status == where.status)
    return conditions


def _revision_conditions(session: Session, where: StatementFilter) -> list[ColumnElement[bool]]:
    """The conditions `where` sets on the statement's latest revision."""
    conditions = []
    if where.published_from is not None:
        conditions.append(_CURRENT.published_at >= where.published_from)
    if where.published_to is not None:
        conditions.append(_CURRENT.published_at <= where.published_to)
    if where.changed_from is not None:
        conditions.append(_CURRENT.observed_at >= where.changed_from)
    if where.changed_to is not None:
        conditions.append(_CURRENT.observed_at <= where.changed_to)
    if where.tag is not None:
        conditions.append(_has_tag(session, where.tag))
    return conditions


def _has_tag(session: Session, tag: str) -> ColumnElement[bool]:
    """The latest revision's tags (a JSON list) hold `tag`.

    The stored text is searched for the tag as a JSON string first (as Python writes it,
    Chinese escaped or not), which is cheap and rules out most rows; only those left are
    parsed, which is exact.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    stored = cast(_CURRENT.tags, Text) if postgres else type_coerce(_CURRENT.tags, Text)
    spelled = {json.dumps(tag, ensure_ascii=ascii) for ascii in (True, False)}
    mentioned = or_(*(stored.contains(word, autoescape=True) for word in spelled))
    if postgres:
        tags: ColumnElement[Any] = _CURRENT.tags.cast(JSONB)
        exact = tags.contains(func.jsonb_build_array(tag))
    else:
        each = func.json_each(_CURRENT.tags).table_valued("value")
        exact = exists(select(1).select_from(each).where(each.c.value == tag))
    # CASE, not AND: the planner may not reorder it, so the cheap test comes first.
    return case((mentioned, exact), else_=False)


def _event_conditions(where: EventFilter) -> list[ColumnElement[bool]]:
    conditions = []
    if where.since is not None:
        conditions.append(_E.occurred_at >= where.since)
    if where.until is not None:
        conditions.append(_E.occurred_at <= where.until)
    if where.site is not None:
        conditions.append(_E.site == where.site)
    if where.sites is not None:
        conditions.append(_E.site.in_(where.sites))
    if where.statement_id is not None:
        conditions.append(_E.statement_id == where.statement_id)
    if where.kinds:
        conditions.append(_E.kind.in_([str(kind) for kind in where.kinds]))
    if not where.include_baseline:
        conditions.append(_E.baseline.is_(False))
    return conditions


def _url_variants(url: str) -> list[str]:
    """A user may type a statement URL with or without its trailing slash or query."""
    bare = url.split("#", 1)[0].split("?", 1)[0]
    return list(dict.fromkeys((url, bare, bare.rstrip("/") + "/", bare.rstrip("/"))))
