"""Languages and twins (issue 14): one statement in Chinese and English, crawled as two sites.

The bilingual replica serves Chinese and English versions linked by hreflang, listed at
/zh/news-events-zh/ and /news-events/. One archive is crawled twice for the whole module:
a baseline; then after only the Chinese text of one statement and both language versions
of another were edited. Alerts go to a real SMTP server; the pages and feeds are
read from a real `embassy-watch serve`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import EmbassyWatch, write_config
from tests.receivers import Mail, MailServer
from tests.replica.site import ReplicaSite, english_twin, english_twins, seed_statements
from tests.served import Served, serve_process

ZH_ONLY = "statement-02"  # its Chinese text is edited, its English is not
BOTH = "statement-03"  # both language versions are edited, before the same crawl
STATEMENTS = 12  # two listing pages in each language (ten a page)
NO_TWIN = STATEMENTS - 1  # the last Chinese statement has no English version
LATE = NO_TWIN - 1  # this one's English version is published after the first crawl


@dataclass(frozen=True)
class Ids:
    zh: int
    en: int


@dataclass(frozen=True)
class Twins:
    served: Served
    zh_only: Ids
    both: Ids
    no_twin: int  # a Chinese statement whose English link answers 404
    late: Ids  # Chinese edited while its English version was archived for the first time
    mails: list[Mail]

    def mails_about(self, title: str) -> list[Mail]:
        return [mail for mail in self.mails if title in mail.subject]


def _add_english_site(config: Path, replica: ReplicaSite) -> None:
    """A second [[sites]]: the English listing of the same host, into the same archive."""
    listing = json.dumps([replica.listing_url_for("en")])
    text = config.read_text(encoding="utf-8")
    config.write_text(f'{text}\n[[sites]]\nname = "replica-en"\nlisting_urls = {listing}\n')


def _ids(ew: EmbassyWatch, replica: ReplicaSite, slug: str) -> Ids:
    """Read in this process: a command per id would cost a second each."""
    with ew.archive() as archive:
        zh, en = (
            archive.find_statement(replica.url(replica.statement(slug, lang).path))
            for lang in ("zh", "en")
        )
    assert zh is not None and en is not None
    return Ids(zh=zh.id, en=en.id)


def _reworded(replica: ReplicaSite, slug: str, lang: str) -> list[str]:
    return [p + " (revised)" for p in replica.statement(slug, lang).paragraphs]


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    tmp = tmp_path_factory.mktemp("twins")
    chinese = seed_statements()[:STATEMENTS]
    replica = ReplicaSite(chinese, english=english_twins(chinese[:LATE])).start()
    mail = MailServer().start()
    database_url = f"sqlite:///{tmp / 'archive.db'}"
    try:
        notify = {"notify": {"urls": [mail.url()]}}
        config = write_config(tmp, database_url, [replica.listing_url], sections=notify)
        _add_english_site(config, replica)
        ew = EmbassyWatch(config, database_url)
        ew.crawl()
        replica.edit(ZH_ONLY, paragraphs=_reworded(replica, ZH_ONLY, "zh"))
        replica.edit(BOTH, paragraphs=_reworded(replica, BOTH, "zh"))
        replica.edit(BOTH, lang="en", paragraphs=_reworded(replica, BOTH, "en"))
        late = chinese[LATE].slug
        replica.add(english_twin(chinese[LATE]))
        replica.edit(late, paragraphs=_reworded(replica, late, "zh"))
        ew.crawl()
        zh_only, both, late_ids = (_ids(ew, replica, slug) for slug in (ZH_ONLY, BOTH, late))
        with ew.archive() as archive:
            alone = archive.find_statement(replica.url(chinese[NO_TWIN].path))
        assert alone is not None
    finally:
        mail.stop()
        replica.stop()
    with serve_process(ew, tmp / "serve.log") as base:
        served = Served(base, ew, zh_only.zh, list(mail.mails))
        yield Twins(served, zh_only, both, alone.id, late_ids, list(mail.mails))


def test_both_languages_are_archived_as_twins(twins: Twins) -> None:
    assert twins.served.ew.counts()["statements"] == STATEMENTS + NO_TWIN
    zh = twins.served.get(f"/api/statements/{twins.zh_only.zh}")
    en = twins.served.get(f"/api/statements/{twins.zh_only.en}")
    assert (zh["language"], en["language"]) == ("zh", "en")
    assert zh["twin_url"] == en["url"] and en["twin_url"] == zh["url"]


def _badges(page: str) -> list[str]:
    return re.findall(r'<span class="badge lang">(\w+)</span>', page)


def test_the_timeline_shows_the_twins_entries_with_language_badges(twins: Twins) -> None:
    ids = twins.both
    page = twins.served.page(f"/statements/{ids.zh}")
    assert f'<a href="/statements/{ids.en}">' in page  # the other language, archived
    # Two revisions in each language, each marked with its language.
    assert sorted(_badges(page)) == ["en", "en", "zh", "zh"]
    for sid in (ids.zh, ids.en):  # each entry links its own statement's revisions and diff
        assert f'href="/statements/{sid}/revisions/2"' in page
        assert f'href="/statements/{sid}/diff?from=1&amp;to=2"' in page
    assert page.count('class="entry kind-') - page.count(" twin") == 2


def test_a_statement_whose_twin_did_not_change_shows_one_change(twins: Twins) -> None:
    ids = twins.zh_only
    page = twins.served.page(f"/statements/{ids.en}")  # from the English side too
    assert sorted(_badges(page)) == ["en", "zh", "zh"]
    assert f'href="/statements/{ids.zh}/revisions/2"' in page
    assert f'href="/statements/{ids.en}/revisions/2"' not in page


def test_a_statement_without_an_archived_twin_has_no_badges(twins: Twins) -> None:
    # Its hreflang link points at an English page that answers 404: shown, not archived.
    page = twins.served.page(f"/statements/{twins.no_twin}")
    assert "(not archived · 未存档)" in page and not _badges(page)


def test_an_alert_says_only_this_language_version_changed(twins: Twins) -> None:
    title = twins.served.get(f"/api/statements/{twins.zh_only.zh}")["title"]
    (mail,) = twins.mails_about(title)
    assert "Only this language version changed" in mail.text
    assert f"its English · 英文 version (statement {twins.zh_only.en}) is unchanged" in mail.text
    assert "Only this language version changed" in mail.html


def test_an_alert_says_the_twin_changed_too(twins: Twins) -> None:
    for own, other in ((twins.both.zh, twins.both.en), (twins.both.en, twins.both.zh)):
        title = twins.served.get(f"/api/statements/{own}")["title"]
        (mail,) = twins.mails_about(title)
        assert f"version (statement {other}) changed too" in mail.text, mail.text
        assert "Only this language" not in mail.text


def test_feed_entries_carry_the_same_line(twins: Twins) -> None:
    only = twins.served.page(f"/feeds/statements/{twins.zh_only.zh}.atom")
    assert "Only this language version changed" in only
    assert f"(statement {twins.zh_only.en}) is unchanged since" in only
    both = twins.served.page(f"/feeds/statements/{twins.both.zh}.atom")
    assert f"(statement {twins.both.en}) changed too" in both


def test_a_twin_archived_later_is_said_unchanged_only_since_then(twins: Twins) -> None:
    # The English version was first read in the crawl that saw the Chinese edit: nothing
    # is known of it before, so the alert must not claim it unchanged since the first crawl.
    title = twins.served.get(f"/api/statements/{twins.late.zh}")["title"]
    (mail,) = twins.mails_about(title)
    (first,) = twins.served.get(f"/api/statements/{twins.late.en}/revisions")
    (previous, _) = twins.served.get(f"/api/statements/{twins.late.zh}/revisions")
    assert first["observed_at"] > previous["observed_at"]
    since = first["observed_at"].replace("+00:00", "Z")
    assert f"(statement {twins.late.en}) is unchanged since {since[:19]}Z" in mail.text, mail.text
