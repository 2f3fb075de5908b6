"""The monitor's commands: crawl with alerts, changes, outbox, notify-test, digest mode."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers import EmbassyWatch
from tests.receivers import MailServer, WebhookSink, wait_until
from tests.replica.site import ReplicaSite, Statement
from tests.test_daemon import monitor_config


def test_notify_test_reports_each_target(
    replica: ReplicaSite,
    mail_server: MailServer,
    webhook: WebhookSink,
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, [mail_server.url(), webhook.url()])
    done = ew.run("notify-test")
    assert done.stdout.count(": ok") == 2
    assert webhook.titles() == ["embassy-watch test message · 测试消息"]
    assert mail_server.subjects() == ["embassy-watch test message · 测试消息"]

    broken = monitor_config(
        tmp_path, sqlite_url, replica, [webhook.url(), "json://127.0.0.1:1/closed"]
    )
    failed = broken.run("notify-test", expect=1)
    assert "json://127.0.0.1:1/closed: FAILED: " in failed.stdout
    assert failed.stdout.count(": ok") == 1


def test_an_unusable_notify_url_is_a_one_line_config_error(
    replica: ReplicaSite, tmp_path: Path, sqlite_url: str
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, ["notaschema://foo"])
    done = ew.run("crawl", expect=2)
    assert done.stderr.strip() == (
        "embassy-watch: config error: notify.urls[1]: apprise cannot use this notaschema:// URL "
        "(unknown service or missing parts)"
    )


def test_crawl_records_events_and_delivers_their_alerts(
    replica: ReplicaSite, webhook: WebhookSink, tmp_path: Path, sqlite_url: str
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, [webhook.url()])
    ew.crawl()
    assert webhook.posts == []  # the first crawl is the baseline
    baseline = ew.json("changes", "--limit", "1000")
    assert len(baseline) == 24 and all(e["kind"] == "new" and e["baseline"] for e in baseline)

    first = replica.statements[0]
    replica.edit(first.slug, paragraphs=[first.paragraphs[0] + "补充一句。", *first.paragraphs[1:]])
    done = ew.crawl()
    assert "alerts: 1 delivered, 0 failed" in done.stdout
    assert webhook.titles() == [f"Changed · 已修改 (body): {first.title}"]
    assert "{+补充一句。+}" in webhook.posts[0]["message"]

    after_baseline = datetime.fromisoformat(baseline[0]["occurred_at"]) + timedelta(milliseconds=1)
    (latest,) = ew.json("changes", "--since", after_baseline.isoformat())
    assert (latest["kind"], latest["changed_fields"], latest["baseline"]) == (
        "changed",
        ["body"],
        False,
    )
    listed = ew.run("changes", "--statement", replica.url(first.path)).stdout
    assert "Changed · 已修改 (body)" in listed and "(baseline: not alerted)" in listed
    assert ew.json("outbox")["counts"]["delivered"] == 1
    assert ew.run("outbox").stdout.startswith("0 pending, 0 sending, 1 delivered, 0 failed")
    bad = ew.run("changes", "--since", "yesterday", expect=2)
    assert "--since: not an ISO 8601 time" in bad.stderr


def test_digest_mode_sends_one_message_per_target_per_round(
    replica: ReplicaSite, webhook: WebhookSink, tmp_path: Path, sqlite_url: str
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, [webhook.url()])
    ew.config.write_text(ew.config.read_text().replace("[notify]\n", "[notify]\ndigest = true\n"))
    ew.crawl()
    for n in (1, 2, 3):
        replica.add(
            Statement(
                post_id=92000 + n, slug=f"digest-{n}", title=f"摘要测试{n}", paragraphs=["正文。"]
            )
        )
    ew.crawl()
    (post,) = webhook.posts
    assert post["title"] == "3 changes · 3 条变更"
    assert all(f"摘要测试{n}" in post["message"] for n in (1, 2, 3))
    assert ew.json("outbox")["counts"]["delivered"] == 3


def test_a_soft_404_take_down_is_recognised(
    replica: ReplicaSite, webhook: WebhookSink, tmp_path: Path, sqlite_url: str
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, [webhook.url()], removal_after=1)
    ew.crawl()
    replica.soft_404 = True
    victim = replica.statements[5]
    replica.delete(victim.slug)
    ew.crawl()
    (post,) = webhook.posts
    assert post["title"] == f"Removed · 已删除: {victim.title}"
    assert "a soft 404 page on 1 consecutive checks" in post["message"]
    assert ew.json("show", replica.url(victim.path))["status"] == "removed"


def test_a_second_listing_crawl_fetches_nothing_that_is_not_due(
    replica: ReplicaSite, webhook: WebhookSink, tmp_path: Path, sqlite_url: str
) -> None:
    ew: EmbassyWatch = monitor_config(
        tmp_path, sqlite_url, replica, [webhook.url()], interval="1s", recheck={"3h": "1h"}
    )
    log = tmp_path / "daemon.log"
    with ew.start_daemon(log) as daemon:
        daemon.wait_for_log("replica: done")
        before = replica.count("/zh/statement-")
        daemon.wait_for_log("replica: done", count=3)
        assert replica.count("/zh/statement-") == before  # idle cycles: listing pages only
        assert "24 not due" in daemon.output()

        # A retitled listing entry is a hint: that statement is read at once.
        target = replica.statements[2]
        retitled = target.title + "（修订）"
        replica.edit(target.slug, title=retitled)
        daemon.wait_for_log(f"changed: {replica.url(target.path)}")
        wait_until(lambda: webhook.posts, what="the alert")
        assert daemon.terminate() == 0
    assert webhook.titles() == [f"Changed · 已修改 (title): {retitled}"]


@pytest.mark.parametrize(
    ("setting", "path"),
    [
        ("sitemap_urls", "/sitemap_index.xml"),
        (
            "rest_urls",
            "/wp-json/wp/v2/posts?orderby=modified&per_page=100&_fields=link,modified_gmt",
        ),
    ],
)
def test_a_hint_from_the_site_catches_an_edit_that_is_not_due(
    setting: str,
    path: str,
    replica: ReplicaSite,
    webhook: WebhookSink,
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    ew = monitor_config(
        tmp_path, sqlite_url, replica, [webhook.url()], interval="1s", recheck={"3h": "1h"}
    )
    log = tmp_path / "daemon.log"
    target = replica.statements[4]
    with ew.start_daemon(log) as daemon:
        daemon.wait_for_log("replica: done")
        replica.edit(target.slug, paragraphs=[*target.paragraphs, "新增的一段。"])
        daemon.wait_for_log("replica: done", count=4)
        assert webhook.posts == []  # not due, same listing title: without hints, not yet seen
        assert daemon.terminate() == 0

    config = ew.config.read_text()
    hint = f'{setting} = ["{replica.url(path)}"]\n'
    ew.config.write_text(config.replace("listing_urls = ", hint + "listing_urls = "))
    with ew.start_daemon(log) as daemon:
        wait_until(lambda: webhook.posts, what="the alert found through the hint")
        daemon.wait_for_log("1 on the site hints")
        assert daemon.terminate() == 0
    assert webhook.titles() == [f"Changed · 已修改 (body): {target.title}"]
    assert "{+新增的一段。+}" in webhook.posts[0]["message"]
    assert replica.count("/post-sitemap.xml" if setting == "sitemap_urls" else "/wp-json/") >= 1
