"""Substring search over every revision's title and body, fit for Chinese.

Chinese has no spaces between words, so word tokenizers see whole sentences as one
token. Search is by substring instead: SQLite's FTS5 trigram index for queries of
three or more characters, LIKE on the revision table for shorter ones (trigrams
cannot match them, and SQLite 3.40's LIKE on the FTS table itself is wrong for
them); PostgreSQL ILIKE, served by pg_trgm indexes where the extension exists.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, func, or_, select, text
from sqlalchemy.orm import Session

from storage import models
from storage.records import SearchHit, SearchResults

MIN_TRIGRAM_QUERY = 3
SNIPPET_CONTEXT = 40
MAX_QUERY_LENGTH = 200
_SPACES = re.compile(r"\s+")


def search(session: Session, query: str, limit: int, offset: int) -> SearchResults:
    query = query.strip()[:MAX_QUERY_LENGTH]
    if not query:
        return SearchResults(query, 0, ())
    # One pass over the text: every matching id, newest first; then only the page's rows.
    ids = session.scalars(
        select(models.Revision.id)
        .where(_matching(session, query))
        .order_by(models.Revision.observed_at.desc(), models.Revision.id.desc())
    ).all()
    page = ids[offset : offset + limit]
    rows = list(
        session.execute(
            select(models.Revision, models.Statement.url)
            .join(models.Statement, models.Statement.id == models.Revision.statement_id)
            .where(models.Revision.id.in_(page))
        ).all()
    )
    order = {revision_id: index for index, revision_id in enumerate(page)}
    rows.sort(key=lambda row: order[row[0].id])
    hits = tuple(_hit(revision, url, query) for revision, url in rows)
    return SearchResults(query, len(ids), hits)


def _matching(session: Session, query: str) -> ColumnElement[bool]:
    """The condition on a revision: its title or body contains `query`."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite" and len(query) >= MIN_TRIGRAM_QUERY:
        phrase = '"' + query.replace('"', '""') + '"'  # a phrase: no FTS5 query syntax
        return models.Revision.id.in_(
            select(text("rowid"))
            .select_from(text("revision_fts"))
            .where(text("revision_fts MATCH :phrase").bindparams(phrase=phrase))
        )
    return _contains(query, dialect)


def _contains(query: str, dialect: str) -> ColumnElement[bool]:
    columns = (models.Revision.title, models.Revision.body)
    if len(query) < MIN_TRIGRAM_QUERY and query.upper() == query.lower():
        # No letter case to fold (Chinese): a plain substring test, faster than (I)LIKE.
        find = func.strpos if dialect == "postgresql" else func.instr
        return or_(*(find(column, query) > 0 for column in columns))
    pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if dialect == "postgresql":  # case-insensitive like SQLite's LIKE and FTS5
        return or_(*(column.ilike(pattern, escape="\\") for column in columns))
    return or_(*(column.like(pattern, escape="\\") for column in columns))


def _flat(text_value: str) -> str:
    return _SPACES.sub(" ", text_value)


def _hit(revision: models.Revision, url: str, query: str) -> SearchHit:
    field, text_value = "title", revision.title
    start = revision.title.casefold().find(query.casefold())
    if start < 0:
        field, text_value = "body", revision.body
        start = revision.body.casefold().find(query.casefold())
    start = max(start, 0)
    end = start + len(query)
    before = text_value[max(0, start - SNIPPET_CONTEXT) : start]
    after = text_value[end : end + SNIPPET_CONTEXT]
    return SearchHit(
        statement_id=revision.statement_id,
        revision=revision.number,
        observed_at=revision.observed_at,
        url=url,
        title=revision.title,
        field=field,
        before=("…" if start > SNIPPET_CONTEXT else "") + _flat(before),
        match=text_value[start:end],
        after=_flat(after) + ("…" if end + SNIPPET_CONTEXT < len(text_value) else ""),
    )
