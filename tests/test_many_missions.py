"""Reading many missions: lists, changes, feeds and exports filtered by mission and language,
the home page's latest changes across missions, and date ranges on the pages.

A real `embassy-watch serve` over three sites named as missions' sites are (`china-zh`,
`china-en`, `uk-en`), each crawled from its own replica twice, with one edit in between on
`china-zh` and on `uk-en`. Every filtered answer is checked against the whole list filtered
here in Python, by a table of which site is whose written out by hand.
"""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from markupsafe import escape
from warcio.archiveiterator import ArchiveIterator

from tests.helpers import FAST_CRAWL, EmbassyWatch
from tests.replica.site import ReplicaSite, seed_statements
from tests.served import Served, serve_process

MISSION_OF = {"china-zh": "china", "china-en": "china", "uk-en": "uk"}
LANGUAGE_OF = {"china-zh": "zh", "china-en": "en", "uk-en": "en"}
UK_NAME = "United Kingdom <b>&</b>"  # a configured name is text, shown escaped
HOSTILE_TITLE = "<script>alert('uk')</script> UK statement"
SCOPES = [
    {"mission": "china"},
    {"mission": "uk"},
    {"language": "en"},
    {"language": "zh"},
    {"mission": "china", "language": "en"},
    {"mission": "uk", "language": "zh"},  # nothing
    {"mission": "nowhere"},  # nothing: an unknown mission selects no site, not every site
]
STATEMENT_LINK = re.compile(r'<a class="title" href="/statements/(\d+)">')


def _kept(site: str, scope: dict[str, str]) -> bool:
    return all(
        {"mission": MISSION_OF, "language": LANGUAGE_OF}[name][site] == value
        for name, value in scope.items()
    )


def _query(scope: dict[str, str]) -> str:
    return "&".join(f"{name}={value}" for name, value in scope.items())


@dataclass
class Missions:
    served: Served
    hosts: dict[str, str]  # site -> its replica's base URL


def _config(tmp: Path, database_url: str, replicas: dict[str, ReplicaSite]) -> Path:
    names = {"china-zh": "China", "china-en": "China", "uk-en": UK_NAME}
    lines = ["[database]", f"url = {json.dumps(database_url)}", "", "[crawl]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in FAST_CRAWL.items()]
    for site, replica in replicas.items():
        lines += ["", "[[sites]]", f"name = {json.dumps(site)}"]
        lines += [f"listing_urls = {json.dumps([replica.listing_url])}"]
        lines += [f"mission = {json.dumps(names[site], ensure_ascii=False)}"]
    path = tmp / "embassy-watch.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _replicas() -> dict[str, ReplicaSite]:
    seed = seed_statements()
    english = [replace(s, title=f"Statement {s.post_id} in English") for s in seed[6:10]]
    uk = [replace(s, title=f"UK statement {s.post_id}") for s in seed[10:13]]
    return {
        "china-zh": ReplicaSite(seed[:6]),
        "china-en": ReplicaSite(english),
        "uk-en": ReplicaSite(uk),
    }


@pytest.fixture(scope="module")
def missions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Missions]:
    tmp = tmp_path_factory.mktemp("missions")
    database_url = f"sqlite:///{tmp / 'archive.db'}"
    replicas = {site: replica.start() for site, replica in _replicas().items()}
    try:
        ew = EmbassyWatch(_config(tmp, database_url, replicas), database_url)
        ew.crawl()
        zh = replicas["china-zh"].statements[0]
        replicas["china-zh"].edit(zh.slug, paragraphs=[*zh.paragraphs, "又及。"])
        replicas["uk-en"].edit(replicas["uk-en"].statements[0].slug, title=HOSTILE_TITLE)
        ew.crawl()
        hosts = {site: replica.base_url for site, replica in replicas.items()}
    finally:
        for replica in replicas.values():
            replica.stop()
    with serve_process(ew, tmp / "serve.log") as base:
        yield Missions(Served(base, ew, 0, []), hosts)


def _every_statement(served: Served) -> list[dict[str, Any]]:
    return list(served.get("/api/statements?limit=500")["statements"])


def test_the_archive_holds_the_three_sites(missions: Missions) -> None:
    every = _every_statement(missions.served)
    assert {s["site"] for s in every} == set(MISSION_OF)
    assert len(every) == 6 + 4 + 3


@pytest.mark.parametrize("scope", SCOPES, ids=_query)
def test_api_statements_by_mission_and_language_are_the_whole_list_filtered(
    missions: Missions, scope: dict[str, str]
) -> None:
    served = missions.served
    expected = [s for s in _every_statement(served) if _kept(s["site"], scope)]
    found = served.get(f"/api/statements?limit=500&{_query(scope)}")
    assert found["statements"] == expected
    assert found["total"] == len(expected)
    if scope.get("mission") != "nowhere" and scope != {"mission": "uk", "language": "zh"}:
        assert expected, "the scope keeps something here"


@pytest.mark.parametrize("scope", SCOPES, ids=_query)
def test_api_changes_by_mission_and_language_are_the_whole_list_filtered(
    missions: Missions, scope: dict[str, str]
) -> None:
    served = missions.served
    every = served.get("/api/changes?limit=500")
    expected = [e for e in every if _kept(e["site"], scope)]
    assert served.get(f"/api/changes?limit=500&{_query(scope)}") == expected


@pytest.mark.parametrize("scope", SCOPES, ids=_query)
def test_the_pages_list_what_the_api_lists(missions: Missions, scope: dict[str, str]) -> None:
    served = missions.served
    expected = {str(s["id"]) for s in _every_statement(served) if _kept(s["site"], scope)}
    page = served.page(f"/?{_query(scope)}")
    assert set(STATEMENT_LINK.findall(page)) == expected
    events = [e for e in served.get("/api/changes?limit=500") if _kept(e["site"], scope)]
    changes = served.page(f"/changes?{_query(scope)}")
    shown = re.findall(r'<li class="entry kind-(\w+)">', changes)
    assert shown == [e["kind"] for e in events]


def test_the_home_page_shows_the_latest_changes_across_missions(missions: Missions) -> None:
    served = missions.served
    edits = [e for e in served.get("/api/changes?limit=500") if e["kind"] == "changed"]
    assert {e["site"] for e in edits} == {"china-zh", "uk-en"}
    home = served.page("/")
    (latest,) = re.findall(r'<section class="latest">.*?</section>', home, re.S)
    for event in edits:
        assert f'href="/statements/{event["statement_id"]}"' in latest
    assert 'href="/missions/china">China</a>' in latest
    assert f'href="/missions/uk">{html.escape(UK_NAME, quote=False)}</a>' in latest
    # Each mission one click away, with its languages.
    assert 'href="/missions/china">China <small>en zh</small></a>' in home
    assert UK_NAME not in home and "<script>alert" not in home
    assert str(escape(HOSTILE_TITLE)) in latest


def test_a_mission_has_its_own_page(missions: Missions) -> None:
    served = missions.served
    uk = served.page("/missions/uk")
    expected = {str(s["id"]) for s in _every_statement(served) if s["site"] == "uk-en"}
    assert set(STATEMENT_LINK.findall(uk)) == expected
    assert f"<h1>{html.escape(UK_NAME, quote=False)} · Statements" in uk
    assert 'href="/export/archive.csv?mission=uk"' in uk
    china_zh = served.page("/missions/china?language=zh")
    assert len(STATEMENT_LINK.findall(china_zh)) == 6
    status, _, body = served.fetch("/missions/nowhere")
    assert status == 404 and "no mission nowhere" in body.decode()


def test_pages_filter_by_date_range(missions: Missions) -> None:
    served = missions.served
    today = datetime.now(UTC).date()
    every = len(_every_statement(served))
    days = {"today": today, "yesterday": today - timedelta(days=1), "next": today + timedelta(1)}
    assert len(STATEMENT_LINK.findall(served.page(f"/?from={days['today']}&to="))) == every
    assert STATEMENT_LINK.findall(served.page(f"/?to={days['yesterday']}")) == []
    assert STATEMENT_LINK.findall(served.page(f"/?from={days['next']}")) == []
    events = served.get("/api/changes?limit=500&mission=china")
    within = served.page(f"/changes?mission=china&from={today}&to={today}")
    assert len(re.findall(r'<li class="entry', within)) == len(events)
    assert 'value="' + str(today) + '"' in within  # the form keeps what was asked
    assert '<li class="entry' not in served.page(f"/changes?from={days['next']}")
    for target in (f"/?from={days['next']}&to={today}", "/changes?from=2026-02-30"):
        status, _, body = served.fetch(target)
        assert status == 422, target
        assert 'class="error"' in body.decode()


def test_the_feed_follows_mission_and_language(missions: Missions) -> None:
    served = missions.served
    ids = {str(s["id"]): s["site"] for s in _every_statement(served)}
    for scope in ({"mission": "uk"}, {"language": "zh"}):
        _, _, body = served.fetch(f"/feeds/changes.atom?{_query(scope)}")
        feed = feedparser.parse(body)
        linked = [re.search(r"/statements/(\d+)", e.link) for e in feed.entries]
        assert linked and all(m and _kept(ids[m[1]], scope) for m in linked)


def test_exports_follow_mission_and_language(missions: Missions) -> None:
    served = missions.served
    status, headers, body = served.fetch("/export/archive.jsonl?mission=china&language=en")
    assert status == 200
    assert "embassy-watch-archive-china-en.jsonl" in headers["Content-Disposition"]
    rows = [json.loads(line) for line in body.decode().splitlines()]
    assert {row["site"] for row in rows} == {"china-en"} and len(rows) == 4
    _, _, table = served.fetch("/export/archive.csv?mission=uk")
    cells = list(csv.DictReader(io.StringIO(table.decode("utf-8-sig"))))
    assert {row["site"] for row in cells} == {"uk-en"} and len(cells) == 4  # one edited
    _, _, warc = served.fetch("/export/archive.warc.gz?language=zh")
    urls = [
        record.rec_headers.get_header("WARC-Target-URI")
        for record in ArchiveIterator(io.BytesIO(gzip.decompress(warc)))
        if record.rec_type == "response"
    ]
    assert urls and all(url.startswith(missions.hosts["china-zh"]) for url in urls)
