"""Scraped text that misleads where it is shown, over the served archive.

The replica's MISLEADING statement has a right-to-left override in its title (so that
"txt.exe" would read "exe.txt"), an isolate, a byte-order mark, a bell, a terminal escape
and a line break; its body, tags and author start like spreadsheet formulas. Wherever
it is shown (pages, feeds, e-mail subjects, the command line) every such character is
visible as ⟨U+XXXX⟩; the archive, the API and the data exports keep it as it was.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import feedparser

from tests.served import MISLEADING, Served

# What the title holds that must never reach a reader as such.
HIDDEN = re.compile("[\u202e\u202c\u2066\u2069\ufeff\x07\x1b\r]")
TITLE_SHOWN = "关于⟨U+202E⟩txt.exe⟨U+202C⟩的声明⟨U+2066⟩⟨U+2069⟩⟨U+FEFF⟩⟨U+0007⟩⟨U+001B⟩[2J"


def _misleading(served: Served) -> dict[str, Any]:
    everything = served.get("/api/statements?limit=500")["statements"]
    (found,) = [s for s in everything if s["url"].endswith(f"/{MISLEADING.slug}/")]
    return found


def test_the_archive_and_the_api_keep_the_text_as_it_was(served: Served) -> None:
    shown = served.get(f"/api/statements/{_misleading(served)['id']}")
    assert "\u202etxt.exe\u202c" in shown["title"] and "\x1b[2J" in shown["title"]
    assert "\n第二行" in shown["title"]
    assert shown["body"].startswith('=HYPERLINK("http://evil.example/"')


def test_pages_show_every_hidden_character(served: Served) -> None:
    sid = _misleading(served)["id"]
    for path in (
        "/",
        "/changes",
        f"/statements/{sid}",
        f"/statements/{sid}/revisions/1",
        f"/statements/{sid}/diff",
        "/search?q=" + "txt.exe",
    ):
        page = served.page(path)
        assert not HIDDEN.search(page), path
        assert TITLE_SHOWN in page, path


def test_feeds_show_every_hidden_character(served: Served) -> None:
    sid = _misleading(served)["id"]
    for path in (f"/feeds/statements/{sid}.atom", "/feeds/changes.atom"):
        status, _, body = served.fetch(path)
        assert status == 200, (path, body[:300])
        feed = feedparser.parse(body)
        assert not feed.bozo, feed.get("bozo_exception")
        (entry,) = [e for e in feed.entries if "txt.exe" in e.title]
        assert TITLE_SHOWN in entry.title and not HIDDEN.search(entry.title)
        assert "\n" not in entry.title
        assert not HIDDEN.search(body.decode())


def test_e_mails_show_every_hidden_character_and_the_subject_on_one_line(served: Served) -> None:
    (mail,) = [m for m in served.mails if "txt.exe" in m.subject]
    assert mail.subject == f"New statement · 新声明: {TITLE_SHOWN} 第二行"
    for body in (mail.html, mail.text):  # the title is shown again in the message's head
        assert TITLE_SHOWN in body and not HIDDEN.search(body.replace("\r\n", "\n"))


def test_the_command_line_shows_every_hidden_character_and_a_title_on_one_line(
    served: Served,
) -> None:
    ew, sid = served.ew, _misleading(served)["id"]
    listed = ew.run("statements").stdout
    statements = served.get("/api/statements?limit=500")["total"]
    assert len(listed.splitlines()) == statements  # a line each, whatever their titles hold
    (line,) = [line for line in listed.splitlines() if "txt.exe" in line]
    assert line.split()[0] == str(sid) and line.endswith(f"/{MISLEADING.slug}/")
    history = ew.run("history", str(sid)).stdout.splitlines()
    assert history[0] == f"{sid}  {TITLE_SHOWN} 第二行  {_misleading(served)['url']}"
    assert len(history) == 2  # the statement, its one revision
    changes = ew.run("changes", "--limit", "500").stdout.splitlines()
    assert all(re.match(r"^( {8}http| *\d+  )", line) for line in changes)
    assert any(TITLE_SHOWN in line for line in changes)
    shown = ew.run("show", str(sid)).stdout
    assert shown.splitlines()[0] == f"{TITLE_SHOWN} 第二行"
    for output in (listed, "\n".join(history), "\n".join(changes), shown):
        assert not HIDDEN.search(output)


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(served: Served) -> None:
    sid = _misleading(served)["id"]
    status, _, raw = served.fetch(f"/export/statements/{sid}.csv")
    assert status == 200
    (row,) = csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))
    assert row["body"] == "'" + '=HYPERLINK("http://evil.example/","点击")\n\n+1+1 正文'
    assert row["tags"] == "'@SUM(1+1); -2+3"
    assert row["author"] == "'=cmd|' /C calc'!A0"
    assert row["title"].startswith("关于\u202etxt.exe")  # CSV is data: only formulas change
    formula = re.compile(r"^[=+\-@\t\r]")
    whole = csv.DictReader(io.StringIO(served.fetch("/export/archive.csv")[2].decode("utf-8-sig")))
    assert not [cell for r in whole for cell in r.values() if cell and formula.match(cell)]
    # JSON Lines is data read by programs: the text exactly as archived.
    (jsonl,) = served.fetch(f"/export/statements/{sid}.jsonl")[2].decode().splitlines()
    assert json.loads(jsonl)["body"].startswith("=HYPERLINK(")
