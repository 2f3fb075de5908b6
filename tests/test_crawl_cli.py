"""End to end: the real `embassy-watch` commands crawling the replica into a real archive."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from storage import models
from storage.archive import Archive
from tests.helpers import EmbassyWatch, as_displayed, write_config
from tests.replica.site import ReplicaSite, Statement

LGBT_SLUG = "statement-24"  # the statement whose whole page is seed 002


def test_first_crawl_archives_every_statement_with_its_fields(
    ew: EmbassyWatch, replica: ReplicaSite
) -> None:
    done = ew.crawl()
    assert "24 statements listed" in done.stdout and "24 new" in done.stdout
    assert "new: " in done.stderr  # progress on stderr

    listed = ew.json("statements")
    assert len(listed) == 24
    assert {row["url"] for row in listed} == {replica.url(s.path) for s in replica.statements}
    assert all(row["status"] == "active" and row["revisions"] == 1 for row in listed)

    seed = replica.statement(LGBT_SLUG)
    shown = ew.json("show", replica.url(seed.path))
    assert shown["title"] == seed.title
    assert shown["published_at"] == "2021-02-08T07:35:12Z"
    assert shown["published_raw"] == "二月 8, 2021"
    assert shown["author"] == "U.S. Mission China"
    assert shown["tags"] == ["LGBTQI+", "安东尼·J·布林肯", "新闻简报"]
    assert shown["categories"] == ["新闻"]
    assert shown["body"] == as_displayed(seed.paragraphs)
    assert "DOS Seal" not in shown["body"] and "快速阅读" not in shown["body"]
    assert shown["twin_url"] == replica.url(f"/{LGBT_SLUG}-en/")
    assert shown["language"] == "zh" and shown["post_id"] == seed.post_id


def test_listing_excerpt_is_never_the_body(ew: EmbassyWatch, replica: ReplicaSite) -> None:
    long_one = next(s for s in replica.statements if s.excerpt().endswith(" ..."))
    ew.crawl()
    body = ew.json("show", replica.url(long_one.path))["body"]
    assert body == as_displayed(long_one.paragraphs)
    assert len(body) > len(long_one.excerpt())


def test_every_listing_page_and_hidden_item_is_crawled(
    ew: EmbassyWatch, replica: ReplicaSite
) -> None:
    ew.crawl()
    assert replica.count("/zh/news-events-zh/page/2/") == 1
    assert replica.count("/zh/news-events-zh/page/3/") == 1
    # Items 7-10 of each page are hidden by CSS ("展示更多" reveals them): still archived.
    hidden = replica.statements[6:10]
    urls = {row["url"] for row in ew.json("statements")}
    assert {replica.url(s.path) for s in hidden} <= urls


def test_second_crawl_writes_no_revision_and_no_body_bytes(ew: EmbassyWatch) -> None:
    ew.crawl()
    before = ew.counts()
    done = ew.crawl()
    after = ew.counts()
    assert "24 unchanged" in done.stdout
    assert after["revisions"] == before["revisions"] == 24
    assert after["blobs"] == before["blobs"]  # pages differ in nonces etc., bodies are not kept
    assert after["observations"] == before["observations"] + 24 + 3


def test_one_character_edit_gives_exactly_one_revision_showing_it(
    ew: EmbassyWatch, replica: ReplicaSite
) -> None:
    ew.crawl()
    seed = replica.statement(LGBT_SLUG)
    edited = [p.replace("签署了一项总统备忘录", "签署了一項总统备忘录") for p in seed.paragraphs]
    assert edited != seed.paragraphs
    replica.edit(LGBT_SLUG, paragraphs=edited)

    done = ew.crawl()
    assert "1 changed" in done.stdout and "23 unchanged" in done.stdout
    url = replica.url(seed.path)
    history = ew.json("history", url)
    assert [h["number"] for h in history] == [1, 2]
    assert history[1]["changed_fields"] == ["body"]
    assert history[0]["content_hash"] != history[1]["content_hash"]
    assert ew.counts()["revisions"] == 25

    diff = ew.run("diff", url).stdout
    assert "[-项-]{+項+}" in diff
    assert "title:" not in diff


def test_title_and_tag_changes_are_listed_apart_from_the_body(
    ew: EmbassyWatch, replica: ReplicaSite
) -> None:
    ew.crawl()
    seed = replica.statement("statement-02")
    replica.edit("statement-02", title=seed.title + "（更新）", tags=["新闻简报", "人权"])
    ew.crawl()
    history = ew.json("history", replica.url(seed.path))
    assert history[-1]["changed_fields"] == ["title", "tags"]
    diff = ew.run("diff", replica.url(seed.path), "--from", "1", "--to", "2").stdout
    assert "title: 跨性别现身日{+（更新）+}" in diff
    assert "tags: 新闻简报{+, 人权+}" in diff
    assert "body:" not in diff


def test_show_as_it_read_at_a_time_and_by_revision(ew: EmbassyWatch, replica: ReplicaSite) -> None:
    ew.crawl()
    url = replica.url(replica.statement("statement-03").path)
    original = ew.json("show", url)["body"]
    replica.edit("statement-03", paragraphs=["全文已更新。"])
    ew.crawl()
    history = ew.json("history", url)
    first_seen, second_seen = history[0]["observed_at"], history[1]["observed_at"]

    assert ew.json("show", url, "--at", first_seen)["body"] == original
    assert ew.json("show", url, "--at", second_seen)["body"] == "全文已更新。"
    assert ew.json("show", url, "--revision", "1")["revision"] == 1
    assert ew.json("show", url)["revision"] == 2
    early = ew.run("show", url, "--at", "2001-01-01T00:00:00Z", expect=1)
    assert "not yet archived" in early.stderr


def test_deleted_statement_keeps_its_archived_revisions(
    ew: EmbassyWatch, replica: ReplicaSite
) -> None:
    ew.crawl()
    seed = replica.statement("statement-05")
    url = replica.url(seed.path)
    replica.delete("statement-05")
    ew.crawl()
    row = next(r for r in ew.json("statements") if r["url"] == url)
    assert row["status"] == "missing"
    assert row["revisions"] == 1
    assert ew.json("show", url)["body"] == as_displayed(seed.paragraphs)
    assert replica.count(seed.path) == 2  # checked again although gone from the listing


def test_statement_keeps_its_identity_when_its_url_changes(
    ew: EmbassyWatch, replica: ReplicaSite
) -> None:
    ew.crawl()
    old_url = replica.url(replica.statement("statement-06").path)
    statement_id = ew.statement_id(old_url)
    replica.edit("statement-06", slug="statement-06-renamed")
    ew.crawl()
    new_url = replica.url("/zh/statement-06-renamed/")
    assert ew.statement_id(new_url) == statement_id == ew.statement_id(old_url)
    shown = ew.json("show", str(statement_id))
    assert shown["url"] == new_url and shown["revisions"] == 1 and shown["status"] == "active"
    assert len(ew.json("statements")) == 24


def test_requests_stay_on_the_watched_site(
    ew: EmbassyWatch, replica: ReplicaSite, tmp_path: Path
) -> None:
    port = replica.base_url.rsplit(":", 1)[1]
    off_site = f"http://127.0.0.2:{port}/zh/elsewhere/"
    replica.add(
        Statement(post_id=1, slug="elsewhere", title="站外链接", paragraphs=["x"], link=off_site)
    )
    ew.crawl()
    archive = Archive.open(ew.database_url)
    with archive.engine.connect() as connection:
        fetched = set(connection.scalars(select(models.Observation.requested_url)))
    archive.close()
    assert off_site not in fetched
    assert all(url.startswith(replica.base_url) for url in fetched)


def test_a_site_that_moves_host_is_followed(
    replica: ReplicaSite, sqlite_url: str, tmp_path: Path
) -> None:
    port = replica.base_url.rsplit(":", 1)[1]
    new_home = f"http://localhost:{port}"
    replica.public_base = new_home  # pages now link to the new host
    replica.redirects["/old-news/"] = new_home + "/zh/news-events-zh/"
    config = write_config(tmp_path, sqlite_url, [f"http://127.0.0.1:{port}/old-news/"])
    ew = EmbassyWatch(config, sqlite_url)
    ew.crawl()
    urls = {row["url"] for row in ew.json("statements")}
    assert len(urls) == 24 and all(url.startswith(new_home) for url in urls)


def test_polite_by_default_robots_and_user_agent(ew: EmbassyWatch, replica: ReplicaSite) -> None:
    replica.robots_txt = "User-agent: *\nDisallow: /zh/statement-04/\n"
    done = ew.crawl(expect=3)  # finished, with one page it was not allowed to fetch
    assert replica.count("/zh/statement-04/") == 0
    assert "statement-04" in done.stderr and "robots.txt" in done.stderr
    assert replica.count("/robots.txt") == 1
    agents = {r.headers.get("User-Agent", "") for r in replica.requests}
    assert agents and all(agent.startswith("embassy-watch/") for agent in agents)


def test_json_outputs_are_the_documented_shapes(ew: EmbassyWatch, replica: ReplicaSite) -> None:
    ew.crawl()
    url = replica.url(replica.statement(LGBT_SLUG).path)
    statements = ew.json("statements")
    assert {"id", "url", "title", "published_at", "status", "revisions"} <= set(statements[0])
    history = ew.json("history", url)
    assert {"number", "observed_at", "content_hash"} <= set(history[0])
    shown = ew.json("show", url)
    assert {
        "id",
        "url",
        "revision",
        "title",
        "published_at",
        "author",
        "body",
        "tags",
        "categories",
    } <= set(shown)
    assert shown["published_at"].endswith("Z")


def test_the_older_cms3_theme_is_archived_the_same_way(tmp_path: Path, sqlite_url: str) -> None:
    site = ReplicaSite(theme="cms3").start()
    try:
        ew = EmbassyWatch(write_config(tmp_path, sqlite_url, [site.listing_url]), sqlite_url)
        ew.crawl()
        assert len(ew.json("statements")) == 24
        seed = site.statement(LGBT_SLUG)
        shown = ew.json("show", site.url(seed.path))
        assert shown["title"] == seed.title and shown["body"] == as_displayed(seed.paragraphs)
        assert shown["author"] == "U.S. Mission China" and shown["tags"] == seed.tags
    finally:
        site.stop()


@pytest.mark.postgres
def test_postgresql_through_the_same_url_setting(replica: ReplicaSite, tmp_path: Path) -> None:
    from tests.conftest import postgres_database

    with postgres_database() as url:
        ew = EmbassyWatch(write_config(tmp_path, url, [replica.listing_url]), url)
        ew.crawl()
        ew.crawl()
        rows = ew.json("statements")
        assert len(rows) == 24 and all(row["revisions"] == 1 for row in rows)


def test_sites_on_one_server_take_turns_and_other_servers_go_on(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A mission's languages share a host: it sees one crawl at a time, never two at once."""
    shared, other = ReplicaSite().start(), ReplicaSite().start()
    shared.latency = other.latency = 0.2  # crawls long enough to overlap if they could
    try:
        path = write_config(tmp_path, sqlite_url, [shared.listing_url])
        text = path.read_text(encoding="utf-8").replace(
            "[crawl]", '[schedule]\ninterval = "3s"\njitter = 0\n[crawl]'
        )
        for name, url in (("twin", shared.listing_url), ("elsewhere", other.listing_url)):
            text += f'\n[[sites]]\nname = "{name}"\nlisting_urls = ["{url}"]\n'
        path.write_text(text, encoding="utf-8")
        with EmbassyWatch(path, sqlite_url).start_daemon(tmp_path / "run.log") as daemon:
            daemon.wait_for_log("crawl finished", count=3, timeout=120)
            log = daemon.output().splitlines()
            daemon.terminate()
    finally:
        shared.stop()
        other.stop()

    def line(fragment: str) -> int:
        return next(i for i, text in enumerate(log) if fragment in text)

    replica = ("replica: crawl started", "replica: crawl finished")
    twin = ("twin: crawl started", "twin: crawl finished")
    first, second = sorted((replica, twin), key=lambda pair: line(pair[0]))
    assert line(first[1]) < line(second[0])  # the second began after the first ended
    assert line("elsewhere: crawl started") < line(first[1])  # the other server did not wait
