"""What counts as a change, end to end: the replica edited between runs of the real program.

One definition (storage.content.compare) decides the revision, the event's fields, the
alert's subject and every diff shown; typographic changes are archived and marked but
not alerted by default; paragraph splits show a ¶; visible-only dates are in the site's zone.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Row, select, update

from storage import models
from storage.content import compare, content_hash
from storage.engine import make_engine
from storage.migrate import alembic_config
from storage.records import Change, DeliveryStatus, EventKind, Revision, StatementContent
from tests.helpers import EmbassyWatch, write_config
from tests.receivers import Mail, MailServer, WebhookSink, wait_until
from tests.replica.site import ReplicaSite, Statement
from tests.served import serve_process

# -- the rule itself --------------------------------------------------------------------

BASE = StatementContent(
    url="u",
    title="美国国务卿“布林肯”的声明",
    body="美国 COVID-19 疫苗，今天到达。\n\n第二段。",
    tags=("新闻", "人权"),
)


@pytest.mark.parametrize(
    ("edited", "fields", "typographic"),
    [
        ({"body": BASE.body.replace("，", ",")}, ("body",), ("body",)),  # width variant
        ({"title": '美国国务卿"布林肯"的声明'}, ("title",), ("title",)),  # texturize off
        (
            {"body": BASE.body.replace("美国 COVID-19 疫苗", "美国COVID-19疫苗")},
            ("body",),
            ("body",),
        ),
        ({"title": "美国国务卿\u3000“布林肯”的声明"}, ("title",), ("title",)),  # full-width space
        ({"body": BASE.body.replace("今天", "今\u200b天")}, ("body",), ("body",)),  # zero-width
        ({"body": BASE.body.replace("今天", "昨天")}, ("body",), ()),
        ({"body": BASE.body.replace("疫苗，", "疫苗，\n\n")}, ("body",), ()),  # a split: an edit
        ({"body": BASE.body.replace("COVID-19", "covid-19")}, ("body",), ()),  # case is wording
        ({"tags": ("人权", "新闻")}, (), ()),  # tag order is the theme's
        ({"body": BASE.body + "  \r\n"}, (), ()),  # line-end spaces
    ],
)
def test_compare_keeps_every_change_and_marks_the_typographic_ones(
    edited: dict[str, object], fields: tuple[str, ...], typographic: tuple[str, ...]
) -> None:
    change = compare(BASE, replace(BASE, **edited))  # type: ignore[arg-type]
    assert change == Change(fields, typographic)
    assert change.typographic == bool(fields and fields == typographic)
    assert (content_hash(BASE) == content_hash(replace(BASE, **edited))) == (not fields)  # type: ignore[arg-type]


def test_a_date_read_as_midnight_utc_before_is_not_redated_by_the_site_zone() -> None:
    old = replace(BASE, published_at=datetime(2021, 2, 8, tzinfo=UTC), published_raw="二月 8, 2021")
    beijing = replace(old, published_at=datetime(2021, 2, 7, 16, tzinfo=UTC))
    assert compare(old, beijing) == Change()
    moved = replace(
        beijing, published_raw="二月 9, 2021", published_at=datetime(2021, 2, 8, 16, tzinfo=UTC)
    )
    assert compare(old, moved).fields == ("published_at",)


# -- the real program against the replica ------------------------------------------------

RETAGGED = "statement-16"  # full-width space in the title, tags reordered, one word edited
COMMA = "statement-24"  # ，→, only
SPLIT = "statement-22"  # a paragraph split in two
DATED = Statement(
    post_id=90101,
    slug="visible-date-only",
    title="只显示日期的声明",
    paragraphs=["第一段。", "第二段。"],
    shown_date="二月 8, 2021",
    machine_dates=False,
)
TYPOGRAPHIC_ON = {"EMBASSY_WATCH_NOTIFY_TYPOGRAPHIC": "true"}


@dataclass
class Run:
    """What one crawl after the baseline sent, and the statements as they then read."""

    posts: list[dict[str, object]]
    mails: list[Mail]


@dataclass
class Scenario:
    ew: EmbassyWatch
    edits: Run  # the crawl after the edits ([notify] typographic = false, the default)
    opted_in: Run  # a second ，→, with [notify] typographic = true
    pages: dict[str, str]
    ids: dict[str, int]
    titles: dict[str, str]

    def revisions(self, slug: str) -> list[Revision]:
        with self.ew.archive() as archive:
            return list(archive.revisions(self.ids[slug]))


def _with_title(run: Run, title: str) -> list[dict[str, object]]:
    return [post for post in run.posts if title in str(post["title"])]


def _mails_about(run: Run, title: str) -> list[Mail]:
    return [mail for mail in run.mails if title in mail.subject]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("changes")
    url = f"sqlite:///{tmp / 'archive.db'}"
    replica, mail, webhook = ReplicaSite().start(), MailServer().start(), WebhookSink().start()
    try:
        replica.edit(RETAGGED, tags=["新闻简报", "人权"])
        replica.add(DATED)
        sections: dict[str, dict[str, object]] = {"notify": {"urls": [mail.url(), webhook.url()]}}
        config = write_config(tmp, url, [replica.listing_url], sections=sections)
        ew = EmbassyWatch(config, url)
        ew.crawl()  # the baseline: nothing alerted

        retagged = replica.statement(RETAGGED)
        replica.edit(
            RETAGGED,
            title=retagged.title.replace("关于", "关于\u3000", 1),
            tags=list(reversed(retagged.tags)),
            paragraphs=[retagged.paragraphs[0] + "（更新）", *retagged.paragraphs[1:]],
        )
        comma = replica.statement(COMMA)
        replica.edit(COMMA, paragraphs=[p.replace("，", ",", 1) for p in comma.paragraphs])
        split = replica.statement(SPLIT)
        first = split.paragraphs[0]
        cut = first.index("。") + 1
        assert 0 < cut < len(first)
        replica.edit(SPLIT, paragraphs=[first[:cut], first[cut:], *split.paragraphs[1:]])
        ew.crawl()
        edits = Run(list(webhook.posts), list(mail.mails))

        comma = replica.statement(COMMA)
        replica.edit(COMMA, paragraphs=[p.replace("，", ",", 1) for p in comma.paragraphs])
        ew.run("crawl", env=TYPOGRAPHIC_ON)
        opted_in = Run(webhook.posts[len(edits.posts) :], mail.mails[len(edits.mails) :])

        slugs = (RETAGGED, COMMA, SPLIT, DATED.slug)
        ids = {slug: ew.statement_id(replica.url(f"/zh/{slug}/")) for slug in slugs}
        titles = {slug: replica.statement(slug).title for slug in slugs}
        paths = {
            "retagged diff": f"/statements/{ids[RETAGGED]}/diff?from=1&to=2",
            "comma diff": f"/statements/{ids[COMMA]}/diff?from=1&to=2",
            "comma timeline": f"/statements/{ids[COMMA]}",
            "comma revision": f"/statements/{ids[COMMA]}/revisions/2",
            "split inline": f"/statements/{ids[SPLIT]}/diff?from=1&to=2",
            "split side": f"/statements/{ids[SPLIT]}/diff?from=1&to=2&view=side",
        }
        with serve_process(ew, tmp / "serve.log") as base:
            pages = {name: _page(base + path) for name, path in paths.items()}
        yield Scenario(ew, edits, opted_in, pages, ids, titles)
    finally:
        replica.stop()
        mail.stop()
        webhook.stop()


def _page(url: str) -> str:
    """The page's HTML, an error page's too (a test then says what it misses)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return str(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}: " + error.read().decode("utf-8", errors="replace")


def test_subject_event_and_diff_name_the_same_changed_fields(scenario: Scenario) -> None:
    """A full-width space in the title plus reordered tags and a one-word edit."""
    title = scenario.titles[RETAGGED].replace("\u3000", " ")  # as extracted: one space
    (post,) = _with_title(scenario.edits, title)
    assert post["title"] == f"Changed · 已修改 (body; typographic: title): {title}"
    message = str(post["message"])
    assert "title (typographic · 仅排版): " in message and "（更新）" in message
    assert "tags" not in message  # reordered, not changed: shown nowhere
    (mail,) = _mails_about(scenario.edits, title)
    assert mail.subject == post["title"]
    assert "<b>title (typographic · 仅排版)</b>" in mail.html and "tags" not in mail.html

    (_, second) = scenario.revisions(RETAGGED)
    with scenario.ew.archive() as archive:
        event = archive.changes(statement_id=scenario.ids[RETAGGED])[0]
    assert second.change == event.change == Change(("title", "body"), ("title",))
    diff = scenario.pages["retagged diff"]
    assert '<th>title <span class="badge typographic">' in diff and "<th>tags" not in diff


def test_a_width_variant_is_a_typographic_revision_alerted_only_when_asked(
    scenario: Scenario,
) -> None:
    title = scenario.titles[COMMA]
    revisions = scenario.revisions(COMMA)
    assert len(revisions) == 3  # each ，→, is a revision
    assert [r.change for r in revisions] == [Change(), *[Change(("body",), ("body",))] * 2]
    assert "," in revisions[1].content.body and revisions[0].content.body.count("，") == 16
    with scenario.ew.archive() as archive:
        events = archive.changes(statement_id=scenario.ids[COMMA])
    assert [(e.kind, e.change.typographic) for e in events[:2]] == [(EventKind.CHANGED, True)] * 2
    assert _with_title(scenario.edits, title) == [] and _mails_about(scenario.edits, title) == []

    (post,) = _with_title(scenario.opted_in, title)  # [notify] typographic = true
    assert post["title"] == f"Changed · 已修改 (typographic: body): {title}"
    assert "[-，-]{+,+}" in str(post["message"])
    assert "typographic · 仅排版: only width variants" in str(post["message"])
    assert len(_mails_about(scenario.opted_in, title)) == 1

    assert "Only width variants, quote styles or spacing changed" in scenario.pages["comma diff"]
    assert scenario.pages["comma timeline"].count('class="badge typographic"') == 2
    assert 'class="badge typographic"' in scenario.pages["comma revision"]


def test_a_paragraph_split_shows_a_pilcrow_in_every_rendering(scenario: Scenario) -> None:
    title = scenario.titles[SPLIT]
    (post,) = _with_title(scenario.edits, title)
    assert post["title"] == f"Changed · 已修改 (body): {title}"
    assert "{+¶+}" in str(post["message"])
    (mail,) = _mails_about(scenario.edits, title)
    assert re.search(r"<ins [^>]*>¶</ins>", mail.html)
    # In the list of edits and in the text, inline and side by side.
    assert scenario.pages["split inline"].count('<ins class="tiny">¶</ins>') == 2
    side = scenario.pages["split side"]
    assert '<div class="cell new changed" id="p-' in side and '<ins class="tiny">¶</ins>' in side


def test_a_visible_only_date_is_midnight_in_the_sites_time_zone(scenario: Scenario) -> None:
    shown = scenario.ew.json("show", str(scenario.ids[DATED.slug]))
    assert shown["published_at"] == "2021-02-07T16:00:00Z"  # 二月 8, 2021 in Beijing


def test_an_unknown_time_zone_is_refused_in_one_line(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, sqlite_url, ["https://example.org/zh/"])
    config.write_text(config.read_text() + 'timezone = "Asia/Beijing"\n', encoding="utf-8")
    done = EmbassyWatch(config, sqlite_url).run("crawl", expect=2)
    assert done.stderr.strip().splitlines() == [
        "embassy-watch: config error: sites[0].timezone: unknown time zone; use an IANA name like "
        "'Asia/Shanghai' (got 'Asia/Beijing')"
    ]


# -- an archive written before typographic changes were kept -----------------------------


R = models.Revision
HASHED = (R.id, R.title, R.subtitle, R.published_at, R.author, R.body, R.tags, R.categories)


def legacy_hash(row: Row[Any]) -> str:
    """The content hash as archives of schema 0004 hold it: over NFKC-folded text."""

    def folded(text: str | None) -> str | None:
        if text is None:
            return None
        text = unicodedata.normalize("NFKC", text).replace("\u200b", "")
        text = re.sub(r"\n\s*\n+", "\n\n", re.sub(r"[^\S\n]+", " ", text))
        return "\n".join(line.strip() for line in text.strip().split("\n"))

    fingerprint = {
        "title": folded(row.title),
        "subtitle": folded(row.subtitle),
        "published_at": row.published_at.isoformat() if row.published_at else None,
        "author": folded(row.author),
        "body": folded(row.body),
        "tags": sorted({folded(t) or "" for t in row.tags} - {""}),
        "categories": sorted({folded(c) or "" for c in row.categories} - {""}),
    }
    encoded = json.dumps(fingerprint, ensure_ascii=False, sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()


def _back_to_0004_as_it_was_written(database_url: str, dated_post: int) -> None:
    """Schema 0004, legacy hashes, and the visible-only date read as midnight UTC."""
    engine = make_engine(database_url, foreign_keys=False)
    try:
        config = alembic_config()
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0004")
        with engine.begin() as connection:
            connection.execute(
                update(R)
                .where(R.post_id == dated_post)
                .values(published_at=datetime(2021, 2, 8, tzinfo=UTC))
            )
            for row in connection.execute(select(*HASHED)).all():
                connection.execute(
                    update(R).where(R.id == row.id).values(content_hash=legacy_hash(row))
                )
    finally:
        engine.dispose()


def test_an_archive_migrated_from_0004_is_recrawled_without_new_revisions(
    replica: ReplicaSite, tmp_path: Path, database_url: str
) -> None:
    replica.add(replace(DATED, paragraphs=list(DATED.paragraphs)))
    ew = EmbassyWatch(write_config(tmp_path, database_url, [replica.listing_url]), database_url)
    ew.crawl()
    before = ew.counts()
    _back_to_0004_as_it_was_written(database_url, DATED.post_id)

    ew.crawl()  # opens the archive: migrates to 0005 and recomputes the hashes
    after = ew.counts()
    assert (after["revisions"], after["events"]) == (before["revisions"], before["events"])
    with ew.archive() as archive:
        for statement in archive.statements():
            for revision in archive.revisions(statement.id):
                assert revision.content_hash == content_hash(revision.content)
                assert revision.change == Change()


# -- a restyle of every page, under the real daemon --------------------------------------

_CJK_NEXT_TO_LATIN = re.compile(
    r"(?<=[\u4e00-\u9fff])(?=[A-Za-z0-9])|(?<=[A-Za-z0-9])(?=[\u4e00-\u9fff])"
)
_CURLY = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "，": ",", "（": "(", "）": ")"})


def restyled(text: str) -> str:
    """A new theme's typography: straight quotes, half-width punctuation, spaced Latin."""
    return _CJK_NEXT_TO_LATIN.sub(" ", text.translate(_CURLY))


def test_a_restyle_of_every_page_is_archived_as_typographic_and_alerts_nobody(
    replica: ReplicaSite,
    mail_server: MailServer,
    webhook: WebhookSink,
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    from tests.test_daemon import monitor_config

    ew = monitor_config(tmp_path, sqlite_url, replica, [mail_server.url(), webhook.url()])
    with ew.start_daemon(tmp_path / "daemon.log") as daemon:
        daemon.wait_for_log("replica: done")
        baseline = ew.counts()["revisions"]
        restyled_slugs = replica.restyle(restyled)
        assert len(restyled_slugs) > len(replica.statements) / 2
        wait_until(
            lambda: ew.counts()["revisions"] == baseline + len(restyled_slugs),
            what="a revision of every restyled statement",
        )
        edited = replica.statement(COMMA)
        replica.edit(COMMA, paragraphs=[edited.paragraphs[0] + "（更新）", *edited.paragraphs[1:]])
        (post,) = wait_until(lambda: webhook.with_title("Changed"), what="the real edit's alert")
        wait_until(lambda: mail_server.mails, what="the real edit's mail")
        assert daemon.terminate() == 0

    assert post["title"] == f"Changed · 已修改 (body): {edited.title}"
    assert len(webhook.posts) == len(mail_server.mails) == 1  # the restyle alerted nobody
    with ew.archive() as archive:
        events = [e for e in archive.changes(limit=1000) if not e.baseline]
        assert archive.outbox.counts()[DeliveryStatus.DELIVERED] == 2
    restyles = [e for e in events if e.change.typographic]
    assert sorted(e.url or "" for e in restyles) == sorted(
        replica.url(f"/zh/{slug}/") for slug in restyled_slugs
    )
    assert {e.kind for e in restyles} == {EventKind.CHANGED}
    (edit,) = [e for e in events if not e.change.typographic]
    assert (edit.title, edit.revision, edit.change) == (edited.title, 3, Change(("body",)))
