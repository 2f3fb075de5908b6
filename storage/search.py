"""Substring search over every revision's title and body, fit for Chinese.

Chinese has no spaces between words, and its most common queries are two characters
(人权, 香港), which no word or trigram index can serve. One index serves every length:
the set of *grams* of each revision, every character and every pair of adjacent
characters of its title and body (on SQLite an FTS5 side table, `detail=none`; on
PostgreSQL a GIN index over `search_grams(title, body)`). A query's grams narrow the
revisions to candidates; the exact substring test decides (a query's pairs can all be
present without being adjacent). For one or two characters the index alone is exact.

Matches are read newest first (by revision id, the order they were archived) and the
reading stops once the page and the count are filled (TOTAL_CAP matches, VERIFY_CAP
exact tests), so a pair found in 85% of the archive costs no more than a rare one.
Letters A-Z match either case; every other character matches only itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import (
    ColumnElement,
    Integer,
    Text,
    bindparam,
    case,
    column,
    false,
    func,
    or_,
    select,
    text,
    true,
)
from sqlalchemy import table as sql_table
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from storage import models
from storage.records import SearchHit, SearchResults

# Totals are exact up to this many results; past it they read "at least TOTAL_CAP".
TOTAL_CAP = 500
SNIPPET_CONTEXT = 40
MAX_QUERY_LENGTH = 200
MAX_QUERY_GRAMS = 24  # more grams narrow no further, they only add doclists to merge
CHUNK = 256  # candidate rows read (and tested) per SQL query
# Past this many exact tests (queries of 3+ characters, whose pairs can all be present
# without the text) the total reads "at least": common pairs cannot cost a full scan.
VERIFY_CAP = 1000
PROBE = 64  # PostgreSQL: newest revisions tested before choosing walk or index
FEW = 2000  # SQLite: candidates few enough to count a page's statements from FTS5
GIN_PAGE = 2048  # PostgreSQL: candidates read from GIN at a time, newest first
DENSE = 4  # ... walk (no index) when at least 1 in DENSE of them match
_SPACES = re.compile(r"\s+")
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FOLD = str.maketrans(_UPPER, _UPPER.lower())
_GRAMS = sql_table("revision_grams", column("rowid", Integer))

# SQLite: a contentless FTS5 table of each revision's grams (rowid = revision id), kept
# in step by triggers that call search_grams(), a function every connection registers
# (storage.engine). The `ascii` tokenizer keeps each non-ASCII gram whole; grams with
# ASCII punctuation or spaces are left out of both the index and the queries.
SQLITE_INDEX = [
    "CREATE VIRTUAL TABLE revision_grams USING fts5("
    "grams, content='', detail='none', tokenize='ascii')",
    "CREATE TRIGGER revision_grams_insert AFTER INSERT ON revision BEGIN "
    "INSERT INTO revision_grams(rowid, grams) VALUES (new.id, search_grams(new.title, new.body));"
    " END",
    "CREATE TRIGGER revision_grams_delete AFTER DELETE ON revision BEGIN "
    "INSERT INTO revision_grams(revision_grams, rowid, grams) "
    "VALUES ('delete', old.id, search_grams(old.title, old.body)); END",
    "CREATE TRIGGER revision_grams_update AFTER UPDATE OF title, body ON revision BEGIN "
    "INSERT INTO revision_grams(revision_grams, rowid, grams) "
    "VALUES ('delete', old.id, search_grams(old.title, old.body)); "
    "INSERT INTO revision_grams(rowid, grams) VALUES (new.id, search_grams(new.title, new.body));"
    " END",
]
SQLITE_INDEX_FILL = (
    "INSERT INTO revision_grams(rowid, grams) SELECT id, search_grams(title, body) FROM revision"
)
# PostgreSQL: the same grams as an array, computed in SQL, indexed by GIN (which drops the
# repeated ones itself: a DISTINCT here made building the index a third slower). Its COST
# keeps the planner from computing it per row at query time; 100000 made every plan JIT.
POSTGRES_FUNCTION = f"""
CREATE FUNCTION search_grams(title text, body text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS $$
  SELECT ARRAY(
    SELECT g FROM (
      SELECT string_to_array(translate(title || ' ' || body, '{_UPPER}', '{_UPPER.lower()}'), NULL)
    ) AS t(c),
    LATERAL (
      SELECT unnest(t.c)
      UNION ALL
      SELECT x || y FROM unnest(t.c, t.c[2:]) AS u(x, y) WHERE y IS NOT NULL
    ) AS s(g))
$$"""
POSTGRES_INDEX = (
    "CREATE INDEX ix_revision_search_grams ON revision USING gin (search_grams(title, body))"
)


def fold(value: str) -> str:
    """What the search compares: A-Z as a-z, everything else as it is."""
    return value.translate(_FOLD)


def _indexed(gram: str) -> bool:
    """A gram the `ascii` tokenizer keeps whole: non-ASCII characters, ASCII letters, digits."""
    return all(not char.isascii() or char.isalnum() for char in gram)


def search_grams(title: str | None, body: str | None) -> str:
    """SQLite's index text for a revision: its grams, separated by spaces."""
    folded = fold(title or "") + " " + fold(body or "")
    grams = set(folded) | {folded[i : i + 2] for i in range(len(folded) - 1)}
    return " ".join(gram for gram in grams if _indexed(gram))


def query_grams(folded: str) -> list[str]:
    """The grams every revision containing `folded` has: its pairs, and lone characters
    that no indexed pair covers. Empty when nothing of the query is indexed."""
    pairs = [folded[i : i + 2] for i in range(len(folded) - 1)]
    pairs = list(dict.fromkeys(pair for pair in pairs if _indexed(pair)))
    covered = set("".join(pairs))
    singles = [char for char in dict.fromkeys(folded) if _indexed(char) and char not in covered]
    grams = pairs + singles
    step = max(1, -(-len(grams) // MAX_QUERY_GRAMS))
    return grams[::step]


@dataclass(frozen=True)
class _Query:
    text: str  # folded
    grams: tuple[str, ...]
    dialect: str
    dense: bool | None = None  # PostgreSQL: common enough to walk rather than use GIN

    @property
    def index_is_exact(self) -> bool:
        """One or two characters, all indexed: having the gram is containing the text."""
        return len(self.text) <= 2 and "".join(self.grams) != "" and _indexed(self.text)


# Many thousands a query, so plain tuples: (revision id, statement id) and, for a
# candidate, whether it passed the exact test.
_Match = tuple[int, int]
_Candidate = tuple[int, int, bool]


def search(
    session: Session, query: str, limit: int, offset: int, *, all_revisions: bool = False
) -> SearchResults:
    query = query.strip()[:MAX_QUERY_LENGTH]
    if not query:
        return SearchResults(query, 0, True, all_revisions, ())
    folded = fold(query)
    dialect = session.get_bind().dialect.name
    request = _Query(folded, tuple(query_grams(folded)), dialect)
    if dialect == "postgresql" and request.grams:
        request = replace(request, dense=_postgres_dense(session, request))
    wanted = max(TOTAL_CAP, offset + limit)
    # One hit per statement: statements already found are left out of later reads, so a
    # statement with many matching revisions costs one test, not one per revision.
    seen: set[int] | None = None if all_revisions else set()
    reading = _Reading(wanted, offset + limit, None if request.index_is_exact else VERIFY_CAP)
    found, complete = _collect(_candidates(session, request, seen), reading, seen)
    page = found[offset : offset + limit]
    counts = _counts_per_statement(session, request, {statement for _, statement in page})
    hits = _hits(session, page, folded, counts)
    exact = complete and len(found) <= wanted
    return SearchResults(query, min(len(found), wanted), exact, all_revisions, hits)


@dataclass(frozen=True)
class _Reading:
    wanted: int  # matches to count before the total becomes "at least"
    page_end: int  # matches the page needs, whatever the cost
    tests: int | None  # exact tests to run before the total becomes "at least" (None: no limit)


def _collect(
    stream: Iterator[list[_Candidate]], reading: _Reading, seen: set[int] | None
) -> tuple[list[_Match], bool]:
    """Matches newest first (one per statement unless `seen` is None), up to wanted + 1
    (the one past `wanted` only tells that the total is not exact), and whether every
    candidate was tested."""
    found: list[_Match] = []
    tested = 0
    for chunk in stream:
        for revision_id, statement_id, hit in chunk:
            tested += 1
            if not hit or (seen is not None and statement_id in seen):
                continue
            if seen is not None:
                seen.add(statement_id)
            found.append((revision_id, statement_id))
            if len(found) > reading.wanted:
                return found, False
        spent = reading.tests is not None and tested >= reading.tests
        if spent and len(found) >= reading.page_end:  # the page is full; the rest is counting
            return found, False
    return found, True


def _candidates(
    session: Session, query: _Query, seen: set[int] | None
) -> Iterator[list[_Candidate]]:
    """Candidate revisions newest first with the exact test's answer, in chunks; none of
    the statements in `seen` (which grows between chunks)."""
    if not query.grams:  # nothing indexed (punctuation only): test revisions newest first
        return _walk(session, query, seen)
    if query.dialect == "sqlite":
        return _sqlite_candidates(session, query, seen)
    return _postgres_candidates(session, query, seen)


def _unseen(seen: set[int] | None) -> ColumnElement[bool]:
    return models.Revision.statement_id.not_in(sorted(seen)) if seen else true()


def _contains(
    query: _Query,
    title: ColumnElement[str] = models.Revision.title.expression,
    body: ColumnElement[str] = models.Revision.body.expression,
) -> ColumnElement[bool]:
    """The exact test: the folded title or body contains the folded query."""
    columns: Sequence[ColumnElement[str]] = [title, body]
    if query.text != query.text.upper():  # it has letters a-z: fold the text the same way
        if query.dialect == "postgresql":
            columns = [func.translate(column, _UPPER, _UPPER.lower()) for column in columns]
        else:
            columns = [func.lower(column) for column in columns]  # ASCII-only in SQLite
    find = func.strpos if query.dialect == "postgresql" else func.instr
    return or_(*(find(column, query.text) > 0 for column in columns))


def _rows(session: Session, statement: Select[int, int, bool]) -> list[_Candidate]:
    # Core, not ORM, execution: thousands of small rows, no entities.
    return [(row[0], row[1], bool(row[2])) for row in session.connection().execute(statement)]


def _walk(session: Session, query: _Query, seen: set[int] | None) -> Iterator[list[_Candidate]]:
    """Every revision newest first, tested one by one: for queries no index can narrow
    and, on PostgreSQL, for those so common that most revisions match."""
    revision = models.Revision
    # Found statements are skipped in the test, not left out by the WHERE clause: a long
    # NOT IN makes PostgreSQL's planner give up the newest-first index walk for a scan.
    hit = _contains(query)
    if seen:
        hit = case((revision.statement_id.in_(sorted(seen)), false()), else_=hit)
    newer: ColumnElement[bool] = true()
    while True:
        chunk = _rows(
            session,
            select(revision.id, revision.statement_id, hit)
            .where(newer)
            .order_by(revision.id.desc())
            .limit(CHUNK),
        )
        yield chunk
        if len(chunk) < CHUNK:
            return
        newer = revision.id < chunk[-1][0]


def _sqlite_candidates(
    session: Session, query: _Query, seen: set[int] | None
) -> Iterator[list[_Candidate]]:
    """FTS5 hands out the candidates newest first and stops with the LIMIT."""
    revision = models.Revision
    match = _sqlite_match(query)
    hit = true() if query.index_is_exact else _contains(query)
    before = 1 << 62
    while True:
        chunk = _rows(
            session,
            select(_GRAMS.c.rowid, revision.statement_id, hit)
            .select_from(_GRAMS.join(revision, revision.id == _GRAMS.c.rowid))
            .where(match, _GRAMS.c.rowid < before, _unseen(seen))
            .order_by(_GRAMS.c.rowid.desc())
            .limit(CHUNK),
        )
        yield chunk
        if len(chunk) < CHUNK:
            return
        before = chunk[-1][0]


def _postgres_dense(session: Session, query: _Query) -> bool:
    """Whether at least 1 in DENSE of the newest revisions contain the query: then the
    walk newest first soon fills the page and the count, and the index would not help."""
    revision = models.Revision
    newest = (
        select(revision.title, revision.body).order_by(revision.id.desc()).limit(PROBE).subquery()
    )
    hits = session.connection().scalar(
        select(func.count()).where(_contains(query, newest.c.title, newest.c.body))
    )
    return (hits or 0) * DENSE >= PROBE


def _postgres_candidates(
    session: Session, query: _Query, seen: set[int] | None
) -> Iterator[list[_Candidate]]:
    """GIN cannot hand out candidates in order: each read takes the newest GIN_PAGE of
    them (a sort on the server), then tests them a chunk at a time."""
    if query.dense:
        yield from _walk(session, query, seen)
        return
    revision = models.Revision
    hit = true() if query.index_is_exact else false()
    older: ColumnElement[bool] = true()
    while True:
        candidates = _rows(
            session,
            select(revision.id, revision.statement_id, hit)
            .where(_postgres_has_grams(query), older)
            .order_by(revision.id.desc())
            .limit(GIN_PAGE),
        )
        yield from _tested(session, query, candidates, seen)
        if len(candidates) < GIN_PAGE:
            return
        older = revision.id < candidates[-1][0]


def _tested(
    session: Session, query: _Query, candidates: list[_Candidate], seen: set[int] | None
) -> Iterator[list[_Candidate]]:
    if query.index_is_exact:
        yield candidates
        return
    revision = models.Revision
    while candidates:
        if seen:
            candidates = [match for match in candidates if match[1] not in seen]
        ids = [revision_id for revision_id, _, _ in candidates[:CHUNK]]
        candidates = candidates[CHUNK:]
        yield _rows(
            session,
            select(revision.id, revision.statement_id, _contains(query))
            .where(revision.id.in_(ids))
            .order_by(revision.id.desc()),
        )


def _postgres_has_grams(query: _Query) -> ColumnElement[bool]:
    """The revision has every gram of the query (the GIN index answers it)."""
    revision = models.Revision
    grams = func.search_grams(revision.title, revision.body, type_=ARRAY(Text))
    return grams.contains(bindparam("grams", list(query.grams), type_=ARRAY(Text)))


def _counts_per_statement(session: Session, query: _Query, statements: set[int]) -> dict[int, int]:
    """How many of each statement's revisions contain the query (exact: a few statements)."""
    if not statements:
        return {}
    revision = models.Revision
    counted = select(revision.statement_id, func.count()).group_by(revision.statement_id)
    narrowed: list[ColumnElement[bool]] = [revision.statement_id.in_(statements)]
    if query.grams and query.dense is False:  # PostgreSQL: GIN and statement_id's index ANDed
        narrowed.append(_postgres_has_grams(query))
    elif query.grams and query.dialect == "sqlite" and _sqlite_few(session, query):
        # Few candidates in all: read them from FTS5 rather than test every revision of
        # the page's statements.
        counted = counted.select_from(_GRAMS.join(revision, revision.id == _GRAMS.c.rowid))
        narrowed.append(_sqlite_match(query))
    rows = session.connection().execute(counted.where(*narrowed, _contains(query)))
    return {row[0]: row[1] for row in rows}


def _sqlite_match(query: _Query) -> ColumnElement[bool]:
    phrase = " AND ".join('"' + gram + '"' for gram in query.grams)
    return text("revision_grams MATCH :phrase").bindparams(phrase=phrase)  # type: ignore[return-value]


def _sqlite_few(session: Session, query: _Query) -> bool:
    """Whether the index holds fewer than FEW candidates (FTS5 stops counting there)."""
    first = select(_GRAMS.c.rowid).where(_sqlite_match(query)).limit(FEW).subquery()
    return (session.connection().scalar(select(func.count()).select_from(first)) or 0) < FEW


def _hits(
    session: Session, page: list[_Match], folded: str, counts: dict[int, int]
) -> tuple[SearchHit, ...]:
    ids = [revision_id for revision_id, _ in page]
    rows = session.execute(
        select(models.Revision, models.Statement.url)
        .join(models.Statement, models.Statement.id == models.Revision.statement_id)
        .where(models.Revision.id.in_(ids))
    ).all()
    by_id = {revision.id: (revision, url) for revision, url in rows}
    return tuple(
        _hit(*by_id[revision_id], folded, counts.get(by_id[revision_id][0].statement_id, 1))
        for revision_id in ids
    )


def _flat(text_value: str) -> str:
    return _SPACES.sub(" ", text_value)


def _hit(revision: models.Revision, url: str, folded: str, matching: int) -> SearchHit:
    same = (lambda value: value) if folded == folded.upper() else fold  # no a-z: no folding
    field, text_value = "title", revision.title
    start = same(revision.title).find(folded)
    if start < 0:
        field, text_value = "body", revision.body
        start = same(revision.body).find(folded)
    start = max(start, 0)
    end = start + len(folded)
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
        matching_revisions=matching,
    )
