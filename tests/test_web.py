"""The web pages, feeds and exports of `embassy-watch serve`, over a crawled archive."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import html
import io
import json
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import feedparser
import pytest
from warcio.archiveiterator import ArchiveIterator

from monitor.web.pages import templates
from tests.served import HOSTILE, Served

SCRIPT_TAG = re.compile(r"<\s*(script|img|iframe|style)\b", re.IGNORECASE)


def _statement(served: Served, slug: str) -> dict[str, Any]:
    everything = served.get("/api/statements?limit=500")["statements"]
    (found,) = [s for s in everything if s["url"].rstrip("/").endswith("/" + slug)]
    return found


def test_the_statement_list_shows_latest_changes_first_and_filters(served: Served) -> None:
    page = served.page("/")
    assert "Statements · 声明" in page
    titles = re.findall(r'<a class="title" href="/statements/(\d+)">', page)
    assert len(titles) == 26
    # The edited statement and the three new ones changed last; the edit links to its diff.
    assert f'href="/statements/{served.edited_id}/diff"' in page
    removed = served.page("/?status=removed")
    assert re.findall(r'<a class="title" href="/statements/(\d+)">', removed) == [
        str(_statement(served, "statement-05")["id"])
    ]
    assert "removed · 已删除" in removed
    assert "No statements match" in served.page("/?tag=" + quote("没有这个标签"))
    # "Last change" only for statements that changed; the others say since when unchanged.
    entries = re.findall(r'<li class="statement.*?</li>', page, re.S)
    edited = next(e for e in entries if f'href="/statements/{served.edited_id}"' in e)
    assert "Last change · 最近修改" in edited
    unchanged = [e for e in entries if "1 revision ·" in e]
    assert unchanged and all("Last change" not in e for e in unchanged)
    assert all("Unchanged since archived · 存档后未修改" in e for e in unchanged)


def test_a_timeline_links_each_revision_and_its_diff(served: Served) -> None:
    sid = served.edited_id
    page = served.page(f"/statements/{sid}")
    assert f'href="/statements/{sid}/revisions/1"' in page
    assert f'href="/statements/{sid}/revisions/2"' in page
    assert f'href="/statements/{sid}/diff?from=1&amp;to=2"' in page
    assert "Changed · 已修改" in page and "(body)" in page
    assert "first crawl · 首次抓取" in page  # revision 1 came from the baseline crawl
    assert f'href="/feeds/statements/{sid}.atom"' in page
    gone = served.page(f"/statements/{_statement(served, 'statement-05')['id']}")
    assert "Removed · 已删除" in gone and "HTTP 404" in gone


def test_a_revision_reads_as_it_was_and_as_of_a_time(served: Served) -> None:
    sid = served.edited_id
    first = served.page(f"/statements/{sid}/revisions/1")
    second = served.page(f"/statements/{sid}/revisions/2")
    assert "签署了一项总统备忘录" in first and "签署了一項总统备忘录" in second
    assert "revision 1 of 2" in first
    observed = served.get(f"/api/statements/{sid}/revisions")[0]["observed_at"]
    as_of = served.page(f"/statements/{sid}/at?time={quote(observed)}")
    assert "As it read on" in as_of and "签署了一项总统备忘录" in as_of
    assert "签署了一項" in served.page(f"/statements/{sid}/at?time=2100-01-01T00:00")
    status, _, body = served.fetch(f"/statements/{sid}/at?time=2000-01-01T00:00")
    assert status == 404 and "was not yet archived at 2000-01-01 00:00 UTC" in body.decode()


def test_as_of_the_minute_the_timeline_shows_finds_the_revision_archived_in_it(
    served: Served,
) -> None:
    sid = served.edited_id
    revisions = served.get(f"/api/statements/{sid}/revisions")
    for revision in revisions:
        minute = revision["observed_at"][:16]  # "2026-11-23T09:12", as the timeline shows it
        page = served.page(f"/statements/{sid}/at?time={minute}")
        # The one in force at the end of that minute (crawls here may be seconds apart).
        latest = max(r["number"] for r in revisions if r["observed_at"][:16] == minute)
        assert f"revision {latest} of {len(revisions)}" in page
    seconds = served.page(f"/statements/{sid}/at?time={revisions[0]['observed_at']}")
    assert f"revision 1 of {len(revisions)}" in seconds  # to the second: exactly then


def test_each_revision_says_when_it_was_online(served: Served) -> None:
    sid = served.edited_id
    _, second = served.get(f"/api/statements/{sid}/revisions")
    until = second["observed_at"][:16].replace("T", " ")
    earlier = served.page(f"/statements/{sid}/revisions/1")
    assert re.search(rf"Online from [^<]* until {until} UTC", earlier)
    assert "until now; last checked" in served.page(f"/statements/{sid}/revisions/2")
    removed = _statement(served, "statement-05")["id"]
    assert "until it was taken down; last seen" in served.page(f"/statements/{removed}/revisions/1")


def test_times_show_in_utc_and_the_sites_own_time(served: Served) -> None:
    sid = served.edited_id
    observed = served.get(f"/api/statements/{sid}/revisions")[0]["observed_at"]
    utc = datetime.fromisoformat(observed.replace("Z", "+00:00"))
    beijing = utc.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    timeline = served.page(f"/statements/{sid}")
    assert (
        f'{utc:%Y-%m-%d %H:%M} UTC</time> <span class="local">({beijing} Asia/Shanghai)' in timeline
    )
    assert f"({beijing} Asia/Shanghai)" in served.page(f"/statements/{sid}/revisions/1")


def test_a_revision_carries_its_raw_page_hash_and_a_citation(served: Served) -> None:
    sid = served.edited_id
    page = served.page(f"/statements/{sid}/revisions/2")
    (sha,) = set(re.findall(r"<code>([0-9a-f]{64})</code>", page))
    status, headers, raw = served.fetch(f"/captures/{sha}.raw")
    assert status == 200 and hashlib.sha256(raw).hexdigest() == sha
    assert (
        headers["Repr-Digest"]
        == f"sha-256=:{base64.b64encode(hashlib.sha256(raw).digest()).decode()}:"
    )
    assert "attachment" in headers["Content-Disposition"]
    assert "签署了一項总统备忘录" in raw.decode("utf-8")  # the bytes revision 2 was read from
    (cited,) = re.findall(r"<textarea readonly[^>]*>(.*?)</textarea>", page, re.S)
    title = served.get(f"/api/statements/{sid}")["title"]
    for part in (title, "revision 2 of 2", f"SHA-256 {sha}", f"statement {sid}"):
        assert html.escape(part, quote=False) in cited
    assert served.fetch("/captures/" + "0" * 64 + ".raw")[0] == 404
    assert served.fetch("/captures/not-a-hash.raw")[0] == 422


def test_the_page_as_captured_is_framed_inert(served: Served) -> None:
    sid = served.edited_id
    wrapper = served.page(f"/statements/{sid}/revisions/1/page")
    (sha,) = re.findall(
        r'<iframe class="captured" sandbox src="/captures/([0-9a-f]{64}).html"', wrapper
    )
    status, headers, body = served.fetch(f"/captures/{sha}.html")
    policy = headers["Content-Security-Policy"]
    assert status == 200 and policy.startswith("sandbox;") and "default-src 'none'" in policy
    assert "frame-ancestors 'self'" in policy and "script-src" not in policy
    text = body.decode("utf-8")
    assert "签署了一项总统备忘录" in text  # revision 1's own bytes
    assert not re.search(r"<(script|link|iframe|base|object|embed)\b", text, re.I)
    assert not re.search(r"\s(src|href|srcset|action)\s*=", text, re.I)
    # Our own pages may frame it; every other page still forbids framing.
    assert "frame-src 'self'" in served.fetch(f"/statements/{sid}")[1]["Content-Security-Policy"]


def test_a_one_character_edit_is_highlighted_inline_and_side_by_side(served: Served) -> None:
    sid = served.edited_id
    inline = served.page(f"/statements/{sid}/diff?from=1&to=2")
    # Each edit listed on its own, the character ringed, with context either side.
    assert "6 edits in the body · 正文有 6 处修改" in inline
    assert '签署了一<del class="tiny">项</del><ins class="tiny">項</ins>总统备忘录' in inline
    assert len(re.findall(r'<p class="changed" id="p-\d+">', inline)) == 5  # hold the 6 edits
    # Each listed edit links to the paragraph that holds it.
    for target in re.findall(r'<a class="goto" href="#(p-\d+)"', inline):
        held = re.search(rf'<p class="changed" id="{target}">(.*?)</p>', inline, re.S)
        assert held and "<ins" in held.group(1)
    assert len(re.findall(r'<a class="goto"', inline)) == 6
    side = served.page(f"/statements/{sid}/diff?from=1&to=2&view=side")
    old_cells = re.findall(r'<div class="cell old changed">(.*?)</div>', side, re.S)
    new_cells = re.findall(r'<div class="cell new changed" id="p-\d+">(.*?)</div>', side, re.S)
    # Each side holds the whole diff; the stylesheet shows what belongs to it (and on a
    # phone only the new side, deletions included: the inline view). See test_browser.
    assert len(old_cells) == len(new_cells) == 5 and old_cells == new_cells
    assert all("<ins" in cell and "<del" in cell for cell in old_cells)
    same = served.page(f"/statements/{sid}/diff?from=2&to=2")
    assert "No difference. · 两个版本相同。" in same


def test_the_changes_page_lists_events_newest_first_with_links(served: Served) -> None:
    page = served.page("/changes")
    kinds = re.findall(r'<li class="entry kind-(\w+)">', page)
    assert kinds[0] == "removed"
    assert f'href="/statements/{served.edited_id}/diff?from=1&amp;to=2"' in page
    only_changed = served.page("/changes?kind=changed")
    assert set(re.findall(r'<li class="entry kind-(\w+)">', only_changed)) == {"changed"}
    status, _, body = served.fetch("/changes?kind=exploded")
    assert status == 422 and "kind" in body.decode()


def test_search_highlights_one_and_two_character_chinese_queries(served: Served) -> None:
    page = served.page("/search?q=" + quote("項"))
    assert "1 statement contain “項”" in page and "1 matching revision" in page
    assert "<mark>項</mark>" in page
    assert f'href="/statements/{served.edited_id}/revisions/2"' in page
    two = served.page("/search?q=" + quote("拜登"))
    assert "<mark>拜登</mark>" in two
    assert "共 0 条声明" in served.page("/search?q=" + quote("不存在的词语"))
    assert "all_revisions=true" in two  # the link to every matching revision
    every = served.page("/search?all_revisions=true&q=" + quote("项总"))
    assert "revision contain “项总”" in every or "revisions contain “项总”" in every
    assert "one per statement" in every


def test_scraped_markup_is_shown_as_text_on_every_page(served: Served) -> None:
    hostile = _statement(served, HOSTILE.slug)
    sid = hostile["id"]
    for path in (
        "/",
        "/changes",
        f"/statements/{sid}",
        f"/statements/{sid}/revisions/1",
        "/search?q=" + quote("script"),
        "/search?q=" + quote("onerror"),
    ):
        status, headers, body = served.fetch(path)
        text = body.decode()
        assert status == 200
        assert not SCRIPT_TAG.search(text), path
        assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'none'
        assert "default-src 'none'" in headers["Content-Security-Policy"]
    shown = served.page(f"/statements/{sid}/revisions/1")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "&lt;img src=x onerror=alert(2)&gt;" in shown


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        ("/statements/999999", 404, "no statement 999999"),
        ("/statements/1/revisions/99", 404, "statement 1 has no revision 99"),
        ("/statements/1/diff?from=0", 422, "from: Input should be greater than or equal to 1"),
        ("/statements/1/diff?view=sideways", 422, "view"),
        ("/statements/1/at?time=yesterday", 422, "time"),
        ("/feeds/statements/999999.atom", 404, "no statement 999999"),
        ("/export/statements/999999.csv", 404, "no statement 999999"),
        ("/export/archive.pdf", 422, "jsonl"),
    ],
)
def test_unknown_pages_and_bad_parameters_say_what_is_wrong(
    served: Served, path: str, status: int, fragment: str
) -> None:
    got, headers, body = served.fetch(path)
    assert got == status
    assert fragment in body.decode()
    if path.startswith(("/feeds/", "/export/")):
        assert headers["Content-Type"] == "application/json"  # programs get JSON errors
    else:
        assert headers["Content-Type"].startswith("text/html")


def test_atom_feeds_parse_and_carry_the_diff(served: Served) -> None:
    everything = _feed(served, "/feeds/changes.atom")
    titles = [entry.title for entry in everything.entries]
    # Baseline (first-crawl) events are not news: only what happened after it.
    assert len(titles) == 4
    assert titles[0].startswith("Removed · 已删除")
    changed = next(e for e in everything.entries if e.title.startswith("Changed · 已修改"))
    assert changed.link.endswith(f"/statements/{served.edited_id}/diff?from=1&to=2")
    assert "項" in changed.content[0].value and "<del" in changed.content[0].value
    assert any(HOSTILE.title in title for title in titles)  # markup is the title's text
    one = _feed(served, f"/feeds/statements/{served.edited_id}.atom")
    assert [e.id for e in one.entries] == [changed.id]
    site = served.get("/api/statements?limit=1")["statements"][0]["site"]
    assert len(_feed(served, f"/feeds/sites/{quote(site)}.atom").entries) == 4
    assert _feed(served, "/feeds/sites/nowhere.atom").entries == []
    # Reached by another host name (a proxy, a new domain): links follow it, ids do not.
    renamed = _feed(served, "/feeds/changes.atom", {"Host": "archive.example.org"})
    assert [e.id for e in renamed.entries] == [e.id for e in everything.entries]
    assert all(e.link.startswith("http://archive.example.org/") for e in renamed.entries)


def _feed(served: Served, path: str, headers: dict[str, str] | None = None) -> Any:
    status, headers, body = served.fetch(path, headers)
    assert status == 200 and headers["Content-Type"].startswith("application/atom+xml")
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def test_history_and_archive_export_as_json_lines_and_csv(served: Served) -> None:
    sid = served.edited_id
    lines = served.fetch(f"/export/statements/{sid}.jsonl")[2].decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [(r["id"], r["revision"]) for r in rows] == [(sid, 1), (sid, 2)]
    assert "一项" in rows[0]["body"] and "一項" in rows[1]["body"]
    status, headers, raw = served.fetch(f"/export/statements/{sid}.csv")
    assert status == 200
    assert headers["Content-Disposition"] == f'attachment; filename="statement-{sid}.csv"'
    assert raw.startswith(b"\xef\xbb\xbf")  # so spreadsheet programs read the Chinese right
    table = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [row["body"] for row in table] == [r["body"] for r in rows]
    assert table[0]["tags"] == "; ".join(rows[0]["tags"])
    whole = served.fetch("/export/archive.jsonl")[2].decode().splitlines()
    revisions = sum(s["revisions"] for s in served.get("/api/statements?limit=500")["statements"])
    assert len(whole) == revisions == 27


def test_raw_captures_export_as_warc_that_warcio_reads_back(served: Served) -> None:
    sid = served.edited_id
    url = served.get(f"/api/statements/{sid}")["url"]
    records = _warc(served.fetch(f"/export/statements/{sid}.warc.gz")[2])
    assert records[0][0] == "warcinfo"
    responses = [r for r in records if r[0] == "response"]
    # The page's bytes are kept when what it says changes: once per revision.
    assert [(r[1], r[2]) for r in responses] == [(url, "200"), (url, "200")]
    assert "签署了一项" in responses[0][3] and "签署了一項" in responses[1][3]
    whole = _warc(served.fetch("/export/archive.warc.gz")[2])
    kinds = {kind for kind, *_ in whole}
    assert kinds == {"warcinfo", "response"}
    assert sum(1 for r in whole if r[1] == url) == 2
    assert len(whole) > 27  # listing pages and every statement's first capture too


def _warc(data: bytes) -> list[tuple[str, str | None, str | None, str]]:
    assert gzip.decompress(data)  # a valid gzip stream (one member per record)
    found = []
    for record in ArchiveIterator(io.BytesIO(data), check_digests=True):
        status = record.http_headers.get_statuscode() if record.http_headers else None
        payload = record.content_stream().read()
        if record.rec_type == "response":
            # The body is stored decoded: the headers must describe those bytes.
            assert record.http_headers.get_header("Content-Length") == str(len(payload))
            assert record.http_headers.get_header("Content-Encoding") is None
        body = payload.decode("utf-8", "replace")
        found.append(
            (record.rec_type, record.rec_headers.get_header("WARC-Target-URI"), status, body)
        )
    return found


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://china.usembassy-china.org.cn/zh/x/", True),
        ("http://127.0.0.1:8080/zh/x/", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("//evil.example/x", False),
        ("", False),
    ],
)
def test_links_are_made_only_from_http_addresses(url: str, linked: bool) -> None:
    safe_href = templates().env.filters["href"]
    assert (safe_href(url) == url) is linked
