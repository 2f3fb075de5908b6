"""The read-only HTTP API, served by the real `embassy-watch serve`, over crawled archives."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import postgres_database
from tests.helpers import EXECUTABLE, EmbassyWatch, write_config
from tests.replica.site import ReplicaSite, Statement

EDITED_SLUG = "statement-24"
HOSTILE = Statement(
    post_id=93001,
    slug="hostile",
    title="<script>alert('title')</script>声明",
    paragraphs=["正文里有<script>alert(1)</script>和<img src=x onerror=alert(2)>。"],
)


@dataclass
class Served:
    base: str
    ew: EmbassyWatch
    edited_id: int

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=10) as response:
            return json.loads(response.read())

    def status(self, path: str, method: str = "GET") -> tuple[int, Any]:
        request = urllib.request.Request(self.base + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _build_archive(tmp: Path, database_url: str) -> tuple[EmbassyWatch, int]:
    replica = ReplicaSite().start()
    try:
        ew = EmbassyWatch(write_config(tmp, database_url, [replica.listing_url]), database_url)
        ew.crawl()
        first = replica.statement(EDITED_SLUG)
        replica.edit(EDITED_SLUG, paragraphs=[p.replace("项", "項") for p in first.paragraphs])
        replica.add(HOSTILE)
        replica.delete("statement-05")
        ew.crawl()
        ew.crawl()  # statement-05: gone twice, unlisted -> removed
        edited_id = ew.statement_id(replica.url(first.path))
    finally:
        replica.stop()
    return ew, edited_id


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("api")
    with postgres_database() if request.param == "postgresql" else _sqlite(tmp) as database_url:
        ew, edited_id = _build_archive(tmp, database_url)
        port = _free_port()
        log = tmp / "serve.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [str(EXECUTABLE), "serve", "--config", str(ew.config), "--port", str(port)],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(base, process, log)
            yield Served(base, ew, edited_id)
        finally:
            process.terminate()
            process.wait(timeout=10)


class _sqlite:
    def __init__(self, tmp: Path) -> None:
        self.url = f"sqlite:///{tmp / 'archive.db'}"

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        pass


def _wait_until_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {log.read_text()}")
        try:
            urllib.request.urlopen(base + "/openapi.json", timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("serve did not come up")


def test_statements_are_listed_filtered_and_paginated(served: Served) -> None:
    everything = served.get("/api/statements?limit=500")
    assert everything["total"] == 25
    page = served.get("/api/statements?limit=10&offset=20")
    assert [s["id"] for s in page["statements"]] == [s["id"] for s in everything["statements"][20:]]
    removed = served.get("/api/statements?status=removed")["statements"]
    assert [s["url"].rsplit("/", 2)[-2] for s in removed] == ["statement-05"]
    tagged = served.get("/api/statements?tag=" + quote("LGBTQI+"))
    assert 0 < tagged["total"] < 25
    assert all("LGBTQI+" in s["tags"] for s in tagged["statements"])
    changed = served.get("/api/statements?changed_from=2000-01-01T00:00:00Z")
    assert changed["total"] == 25
    recent = served.get(
        "/api/statements?published_from=2021-04-01T00:00:00Z&published_to=2030-01-01"
    )
    assert all(s["published_at"] >= "2021-04-01" for s in recent["statements"])


def test_a_statement_its_revisions_and_how_it_read_at_a_time(served: Served) -> None:
    sid = served.edited_id
    latest = served.get(f"/api/statements/{sid}")
    assert latest["revision"] == 2 and "項" in latest["body"]
    revisions = served.get(f"/api/statements/{sid}/revisions")
    assert [r["number"] for r in revisions] == [1, 2] and revisions[1]["changed_fields"] == ["body"]
    first = served.get(f"/api/statements/{sid}/revisions/1")
    assert "項" not in first["body"] and "项" in first["body"]
    first_seen = quote(revisions[0]["observed_at"])
    assert served.get(f"/api/statements/{sid}?at={first_seen}")["revision"] == 1
    assert served.get(f"/api/statements/{sid}?at=2100-01-01T00:00:00Z")["revision"] == 2
    status, body = served.status(f"/api/statements/{sid}?at=2000-01-01T00:00:00Z")
    assert status == 404 and "not yet archived" in body["detail"]


def test_a_diff_gives_operations_and_escaped_html(served: Served) -> None:
    diff = served.get(f"/api/statements/{served.edited_id}/diff?from=1&to=2")
    assert (diff["from"], diff["to"], diff["fields"]) == (1, 2, [])
    assert {"op": "delete", "text": "项"} in diff["body"] and {
        "op": "insert",
        "text": "項",
    } in diff["body"]
    assert ">项</del>" in diff["html"] and ">項</ins>" in diff["html"]


def test_changes_and_search(served: Served) -> None:
    events = served.get("/api/changes?limit=500")
    assert events[0]["kind"] == "removed"  # the last crawl's, newest first
    assert {e["kind"] for e in events[1:3]} == {"new", "changed"}
    assert len(events) == 24 + 3 and all(e["baseline"] for e in events[3:])
    found = served.get("/api/search?q=" + quote("拜登"))
    assert found["total"] >= 1
    hit = found["hits"][0]
    assert hit["snippet"]["match"] == "拜登" and hit["url"].startswith("http://127.0.0.1")
    two = served.get("/api/search?q=" + quote("项总") + "&limit=5")
    assert {h["revision"] for h in two["hits"]} == {1}  # only revision 1 still says 项
    assert served.get("/api/search?q=" + quote("不存在的词语"))["total"] == 0


def test_scraped_markup_comes_back_as_data_never_as_markup(served: Served) -> None:
    (hostile,) = [
        s
        for s in served.get("/api/statements?limit=500")["statements"]
        if s["url"].endswith("/hostile/")
    ]
    shown = served.get(f"/api/statements/{hostile['id']}")
    assert "<script>" in shown["title"]  # JSON keeps the text as it was; clients escape it
    docs = urllib.request.urlopen(served.base + "/api/docs", timeout=5).read().decode()
    assert "/api/statements/{statement_id}/diff" in docs and "<script" not in docs


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        ("/api/statements/999999", 404, "no statement 999999"),
        ("/api/statements/1/revisions/99", 404, "has no revision 99"),
        ("/api/statements/1/diff?from=1&to=99", 404, "has no revision 99"),
        ("/api/statements/abc", 422, "statement_id"),
        ("/api/statements?limit=0", 422, "limit"),
        ("/api/statements?status=gone", 422, "status"),
        ("/api/statements?changed_from=yesterday", 422, "changed_from"),
        ("/api/search?q=", 422, "q"),
    ],
)
def test_unknown_ids_and_bad_parameters_are_refused_clearly(
    served: Served, path: str, status: int, fragment: str
) -> None:
    got, body = served.status(path)
    assert got == status
    assert fragment in json.dumps(body["detail"], ensure_ascii=False)


def test_nothing_writes(served: Served) -> None:
    for method in ("POST", "PUT", "DELETE"):
        assert served.status("/api/statements", method)[0] == 405
