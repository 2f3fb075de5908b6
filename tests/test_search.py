"""Search: exact substrings of any length, one hit per statement, on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, insert, inspect, text

from storage import models, search
from storage.archive import Archive
from storage.engine import make_engine
from storage.migrate import alembic_config
from storage.records import SearchResults
from tests.helpers import EmbassyWatch
from tests.test_archive import CONTENT, T0, capture

HOUR = timedelta(hours=1)
SEARCH_BODY = (
    "外交部发言人就美方涉港错误言行发表声明。\n\n香港是中国的香港，人权不是干涉内政的借口。"
)


def _write(engine: Engine, texts: dict[int, list[str]]) -> None:
    """Statements with revisions of these bodies, in bulk (as the benchmark writes them),
    revision ids in the order given: statement by statement, oldest first."""
    with engine.begin() as connection:
        connection.execute(
            insert(models.Statement),
            [
                {
                    "id": sid,
                    "site": "s",
                    "url": f"https://x/{sid}",
                    "status": "active",
                    "first_seen_at": T0,
                    "last_seen_at": T0,
                    "gone_streak": 0,
                }
                for sid in texts
            ],
        )
        connection.execute(
            insert(models.Revision),
            [
                {
                    "statement_id": sid,
                    "number": number,
                    "observed_at": T0 + number * HOUR,
                    "content_hash": f"{sid}-{number}",
                    "changed_fields": [],
                    "url": f"https://x/{sid}",
                    "title": f"Statement {sid}",
                    "body": body,
                    "tags": [],
                    "categories": [],
                    "extractor_version": "t",
                }
                for sid, bodies in texts.items()
                for number, body in enumerate(bodies, 1)
            ],
        )


@pytest.fixture
def corpus(archive: Archive) -> Archive:
    _write(
        archive.engine,
        {
            1: [
                "人权与香港",
                "人与权，香港",
                "人权与香港。Hong Kong",
            ],  # revision 2: 人 and 权 apart
            2: ["台湾的人权状况"],
            3: ["新疆", "新疆维吾尔自治区"],
            4: ["权人"],  # the pair reversed
            5: ["HONG KONG human rights 2021. 100% sure"],
            6: ["港人说：香港人的人权"],  # 香港, 港人, 人权: all of 香港人权's pairs, apart
        },
    )
    return archive


def _found(results: SearchResults) -> list[tuple[int, int, int]]:
    return [(hit.statement_id, hit.revision, hit.matching_revisions) for hit in results.hits]


def test_one_hit_per_statement_its_latest_matching_revision_with_the_count(corpus: Archive) -> None:
    results = corpus.search("人权")
    # Newest first; statement 1's revision 2 has 人 and 权 apart.
    assert _found(results) == [(6, 1, 1), (2, 1, 1), (1, 3, 2)]
    assert (results.total, results.total_exact, results.all_revisions) == (3, True, False)


def test_all_revisions_on_request(corpus: Archive) -> None:
    results = corpus.search("人权", all_revisions=True)
    assert _found(results) == [(6, 1, 1), (2, 1, 1), (1, 3, 2), (1, 1, 2)]
    assert (results.total, results.total_exact, results.all_revisions) == (4, True, True)
    assert _found(corpus.search("人权", all_revisions=True, limit=1, offset=1)) == [(2, 1, 1)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("权", [(6, 1, 1), (4, 1, 1), (2, 1, 1), (1, 3, 3)]),  # one character
        ("人权", [(6, 1, 1), (2, 1, 1), (1, 3, 2)]),  # pairs: not 人…权 apart, not 权人
        ("权人", [(4, 1, 1)]),
        ("新疆维", [(3, 2, 1)]),  # three characters
        ("人权与香港。Ho", [(1, 3, 1)]),  # eight, mixed scripts
        ("台湾的人权状况", [(2, 1, 1)]),
        ("香港人权", []),  # every pair present somewhere, never in this order
        ("hong kong", [(5, 1, 1), (1, 3, 1)]),  # A-Z in either case
        ("Statement 3", [(3, 2, 2)]),  # in the title
        ("100%", [(5, 1, 1)]),
        ("%", [(5, 1, 1)]),  # nothing indexed: tested revision by revision
        (". ", [(5, 1, 1)]),
        ("_", []),
        ('"; DROP', []),
        ("台独", []),
    ],
)
def test_a_query_matches_exactly_its_substring(
    corpus: Archive, query: str, expected: list[tuple[int, int, int]]
) -> None:
    results = corpus.search(query)
    assert _found(results) == expected
    assert (results.total, results.total_exact) == (len(expected), True)


def test_snippet_around_the_first_occurrence(archive: Archive) -> None:
    archive.record_detail(capture(), replace(CONTENT, body=SEARCH_BODY))
    edited = SEARCH_BODY.replace("人权", "民主")
    archive.record_detail(capture(T0 + HOUR, b"2"), replace(CONTENT, body=edited))
    (first,) = archive.search("香港").hits
    assert (first.revision, first.matching_revisions) == (2, 2)
    assert (first.field, first.match) == ("body", "香港")
    assert first.before.endswith("发表声明。 ") and first.after.startswith("是中国的")
    assert [hit.revision for hit in archive.search("人权", all_revisions=True).hits] == [1]
    assert archive.search("巴黎协定").hits[0].field == "title"


def test_past_the_cap_the_total_says_at_least(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "TOTAL_CAP", 5)
    _write(archive.engine, {sid: ["人权", "人权。"] for sid in range(1, 9)})
    results = archive.search("人权", limit=3)
    assert (results.total, results.total_exact) == (5, False)
    assert [hit.statement_id for hit in results.hits] == [8, 7, 6]
    assert all(hit.matching_revisions == 2 for hit in results.hits)
    revisions = archive.search("人权", limit=3, all_revisions=True)
    assert (revisions.total, revisions.total_exact) == (5, False)
    beyond = archive.search("人权", limit=3, offset=6)  # a page past the cap still reads
    assert [hit.statement_id for hit in beyond.hits] == [2, 1]
    assert (beyond.total, beyond.total_exact) == (8, True)
    assert (
        archive.search("人权。", limit=3).total,
        archive.search("人权。", limit=3).total_exact,
    ) == (
        5,
        False,
    )


def test_the_index_follows_updates_and_deletes(archive: Archive) -> None:
    archive.record_detail(capture(), replace(CONTENT, body=SEARCH_BODY))
    with archive.engine.begin() as connection:  # e.g. a future re-extraction rewriting a body
        connection.execute(models.Revision.__table__.update().values(body="全新的正文内容。"))
    assert archive.search("发表声明").total == 0 and archive.search("人权").total == 0
    assert archive.search("全新的正文").total == 1 and archive.search("正文").total == 1
    with archive.engine.begin() as connection:
        connection.execute(text("DELETE FROM observation"))
        connection.execute(text("DELETE FROM change_event"))
        connection.execute(text("DELETE FROM revision"))
    assert archive.search("正文").total == 0


@pytest.fixture
def old_archive(database_url: str) -> Iterator[Engine]:
    """An archive as the code before search by pairs left it: migrated to 0007."""
    engine = make_engine(database_url)
    config = alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
    _write(engine, {1: ["人权与香港", "香港"], 2: ["新疆的人权"]})
    yield engine
    engine.dispose()


def test_the_migration_indexes_an_old_archive_and_drops_the_trigram_index(
    old_archive: Engine, database_url: str
) -> None:
    archive = Archive.open(database_url)
    try:
        assert _found(archive.search("人权")) == [(2, 1, 1), (1, 1, 1)]
        assert _found(archive.search("香港")) == [(1, 2, 2)]
        assert _found(archive.search("疆")) == [(2, 1, 1)]
        names = inspect(archive.engine).get_table_names()
        indexes = {ix["name"] for ix in inspect(archive.engine).get_indexes("revision")}
        assert "revision_fts" not in names and not {i for i in indexes if i and "trgm" in i}
        _write(archive.engine, {3: ["香港人"]})  # and new revisions are indexed
        assert [hit.statement_id for hit in archive.search("港人").hits] == [3]
    finally:
        archive.close()


def test_the_cli_shows_statements_with_their_counts_and_all_revisions_on_request(
    ew: EmbassyWatch,
) -> None:
    archive = Archive.open(ew.database_url)
    _write(archive.engine, {1: ["人权与香港", "香港人权"], 2: ["人权"]})
    archive.close()
    shown = ew.run("search", "人权").stdout
    assert shown.startswith("2 statements contain '人权'")
    assert "2 matching" in shown and "[人权]与香港" not in shown and "香港[人权]" in shown
    every = ew.json("search", "人权", "--all-revisions", "--limit", "2")
    assert [(h["statement_id"], h["revision"]) for h in every["hits"]] == [(2, 1), (1, 2)]
    assert (every["total"], every["total_exact"], every["all_revisions"]) == (3, True, True)


def test_past_the_cap_on_exact_tests_the_total_says_at_least_but_the_page_fills(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three characters and more: a revision can have all the pairs and not the text, so
    each candidate is tested; past VERIFY_CAP tests the count stops, not the page."""
    monkeypatch.setattr(search, "VERIFY_CAP", 3)
    monkeypatch.setattr(search, "CHUNK", 2)
    apart = ["人权。权人"]  # 人权 and 权人, never 人权人
    _write(archive.engine, {1: ["人权人"], 2: ["人权人"]} | {sid: apart for sid in range(3, 9)})
    results = archive.search("人权人", limit=2)
    assert [hit.statement_id for hit in results.hits] == [2, 1]
    assert results.total == 2  # exact here, though only "at least" is promised
    with archive.engine.begin() as connection:
        connection.execute(models.Revision.__table__.update().values(body="人权人"))
    counted = archive.search("人权人", limit=2)
    assert (counted.total, counted.total_exact) == (4, False)
    assert [hit.statement_id for hit in counted.hits] == [8, 7]
    assert archive.search("人权", limit=2).total_exact  # two characters: no tests, exact
