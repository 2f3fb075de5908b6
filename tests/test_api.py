"""The read-only HTTP API, served by the real `embassy-watch serve`, over crawled archives."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from tests.served import Served


def test_statements_are_listed_filtered_and_paginated(served: Served) -> None:
    everything = served.get("/api/statements?limit=500")
    assert everything["total"] == 26
    page = served.get("/api/statements?limit=10&offset=20")
    assert [s["id"] for s in page["statements"]] == [s["id"] for s in everything["statements"][20:]]
    removed = served.get("/api/statements?status=removed")["statements"]
    assert [s["url"].rsplit("/", 2)[-2] for s in removed] == ["statement-05"]
    tagged = served.get("/api/statements?tag=" + quote("LGBTQI+"))
    assert 0 < tagged["total"] < 26
    assert all("LGBTQI+" in s["tags"] for s in tagged["statements"])
    changed = served.get("/api/statements?changed_from=2000-01-01T00:00:00Z")
    assert changed["total"] == 26
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
    assert sorted(e["kind"] for e in events[1:4]) == ["changed", "new", "new"]
    assert len(events) == 24 + 4 and all(e["baseline"] for e in events[4:])
    found = served.get("/api/search?q=" + quote("拜登"))
    assert found["total"] >= 1
    hit = found["hits"][0]
    assert hit["snippet"]["match"] == "拜登" and hit["url"].startswith("http://127.0.0.1")
    two = served.get("/api/search?q=" + quote("项总") + "&limit=5")
    assert {h["revision"] for h in two["hits"]} == {1}  # only revision 1 still says 项
    assert all(h["matching_revisions"] == 1 for h in two["hits"]) and two["total_exact"]
    every = served.get("/api/search?q=" + quote("拜登") + "&all_revisions=true&limit=500")
    assert every["all_revisions"] and every["total"] == len(every["hits"]) >= found["total"]
    per_statement = {h["statement_id"]: h["matching_revisions"] for h in found["hits"]}
    assert sum(per_statement.values()) == every["total"]
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


@pytest.mark.parametrize(
    "path",
    ["/", "/healthz", "/api/statements", "/feeds/changes.atom", "/static/style.css", "/nope"],
)
def test_head_answers_as_get_without_a_body(served: Served, path: str) -> None:
    """Uptime checkers and `curl -I` ask with HEAD."""
    got_status, got_headers, got_body = served.fetch(path)
    status, headers, body = served.fetch(path, method="HEAD")
    assert (status, body) == (got_status, b"")
    for name in ("Content-Type", "Content-Length", "Content-Security-Policy"):
        assert headers[name] == got_headers[name], name
    assert int(headers["Content-Length"]) == len(got_body) > 0
