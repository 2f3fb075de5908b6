"""The monitor under failure: a site answering 503, a mail server refusing, the daemon killed."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from storage.records import DeliveryStatus
from tests.receivers import MailServer, WebhookSink, wait_until
from tests.replica.site import Canned, ReplicaSite, Statement
from tests.test_daemon import monitor_config

DONE = "replica: done"


def statement(n: int) -> Statement:
    return Statement(
        post_id=91000 + n,
        slug=f"late-{n}",
        title=f"第{n}号补充声明",
        paragraphs=[f"第{n}号声明正文。"],
    )


def cycles(daemon_log: str) -> int:
    return daemon_log.count(DONE) + daemon_log.count("replica: FAILED")


def test_a_503_storm_is_never_read_as_a_take_down(
    replica: ReplicaSite, webhook: WebhookSink, tmp_path: Path, sqlite_url: str
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, [webhook.url()], removal_after=2)
    victim = replica.statements[3]
    with ew.start_daemon(tmp_path / "daemon.log") as daemon:
        daemon.wait_for_log(DONE)
        # The whole site answers 503 for several cycles.
        replica.serve("*", Canned(503, times=None))
        start = cycles(daemon.output())
        wait_until(lambda: cycles(daemon.output()) >= start + 3, what="three failed cycles")
        replica.clear_canned()
        # Then one statement drops off the listing while its page answers 503.
        replica.delete(victim.slug)
        replica.serve(victim.path, Canned(503, times=None))
        start = cycles(daemon.output())
        wait_until(lambda: cycles(daemon.output()) >= start + 3, what="three more cycles")
        assert webhook.with_title("Removed") == []
        assert ew.json("show", replica.url(victim.path))["status"] == "active"

        # Only when the page really answers 404 (twice) is the take-down concluded.
        replica.clear_canned()
        (removed,) = wait_until(lambda: webhook.with_title("Removed"), what="the take-down")
        assert victim.title in removed["title"]
        assert daemon.terminate() == 0


def test_alerts_refused_for_three_cycles_are_all_delivered_once_it_recovers(
    replica: ReplicaSite,
    mail_server: MailServer,
    webhook: WebhookSink,
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, [mail_server.url(), webhook.url()])
    with ew.start_daemon(tmp_path / "daemon.log") as daemon:
        daemon.wait_for_log(DONE)
        mail_server.refusing = True
        replica.add(statement(1))
        wait_until(lambda: webhook.with_title(statement(1).title), what="the webhook alert")
        replica.add(statement(2))
        start = cycles(daemon.output())
        wait_until(lambda: cycles(daemon.output()) >= start + 3, what="three cycles")
        wait_until(lambda: mail_server.refused >= 3, what="three refusals")

        def both_tried_and_pending() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = ew.json("outbox", "--status", "pending")["deliveries"]
            return rows if len(rows) == 2 and all(row["attempts"] >= 1 for row in rows) else []

        pending = wait_until(both_tried_and_pending, what="both mails tried, still pending")
        titles = {row["event"]["title"] for row in pending}
        assert titles == {statement(1).title, statement(2).title}
        assert all("newsroom@example.org" in (row["last_error"] or "") for row in pending)

        mail_server.refusing = False
        wait_until(lambda: len(mail_server.mails) == 2, what="both mails after recovery")
        time.sleep(1.5)  # a few more delivery rounds: nothing may be sent again
        assert daemon.terminate() == 0
    assert sorted(mail_server.subjects()) == sorted(
        f"New statement · 新声明: {statement(n).title}" for n in (1, 2)
    )
    assert len(webhook.posts) == 2
    assert ew.json("outbox")["counts"]["delivered"] == 4


def test_killed_mid_crawl_then_restarted_loses_and_repeats_no_alert(
    replica: ReplicaSite, webhook: WebhookSink, tmp_path: Path, sqlite_url: str
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, [webhook.url()])
    log = tmp_path / "daemon.log"
    with ew.start_daemon(log) as daemon:
        daemon.wait_for_log(DONE)
        replica.latency = 0.15
        # All four at once (one list swap), newest first as on the site.
        replica.statements = [statement(n) for n in (4, 3, 2, 1)] + replica.statements
        daemon.wait_for_log("new: " + replica.url("/zh/late-"))
        daemon.kill()  # SIGKILL, mid-crawl
    recorded = daemon.output().count("new: " + replica.url("/zh/late-"))
    assert 1 <= recorded < 4, "the kill did not land mid-crawl"

    replica.latency = 0.0
    with ew.start_daemon(log) as daemon:
        wait_until(lambda: len(webhook.posts) >= 4, what="four alerts after the restart")
        time.sleep(1.5)
        assert daemon.terminate() == 0
    titles = Counter(webhook.titles())
    assert titles == Counter(f"New statement · 新声明: {statement(n).title}" for n in (1, 2, 3, 4))


def test_killed_while_sending_then_restarted_sends_it_exactly_once(
    replica: ReplicaSite, webhook: WebhookSink, tmp_path: Path, sqlite_url: str
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, [webhook.url()])
    log = tmp_path / "daemon.log"
    with ew.start_daemon(log) as daemon:
        daemon.wait_for_log(DONE)
        webhook.hold_seconds = 2.0
        replica.add(statement(1))
        wait_until(lambda: webhook.arrivals >= 1, what="the send to begin")
        daemon.kill()
    time.sleep(webhook.hold_seconds + 0.5)
    assert webhook.posts == []  # the receiver never acknowledged it
    with ew.archive() as archive:
        (row,) = archive.outbox.deliveries()
        assert row.status is DeliveryStatus.SENDING

    webhook.hold_seconds = 0.0
    with ew.start_daemon(log) as daemon:
        # Retried once the dead sender's lease runs out.
        wait_until(lambda: webhook.posts, timeout=60, what="the alert after the restart")
        time.sleep(1.5)
        assert daemon.terminate() == 0
    assert webhook.titles() == [f"New statement · 新声明: {statement(1).title}"]


def test_sigterm_during_a_crawl_exits_cleanly_and_the_baseline_stays_quiet(
    replica: ReplicaSite, webhook: WebhookSink, tmp_path: Path, sqlite_url: str
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, [webhook.url()])
    log = tmp_path / "daemon.log"
    replica.latency = 0.2
    with ew.start_daemon(log) as daemon:
        daemon.wait_for_log("new: ", count=3)
        started = time.monotonic()
        assert daemon.terminate(timeout=30) == 0
        assert time.monotonic() - started < 30
    output = daemon.output()
    assert "stopping: no new crawls" in output and "crawl stopped for shutdown" in output
    assert output.rstrip().endswith("INFO stopped")
    counts = ew.counts()
    assert 3 <= counts["statements"] < 24 and counts["revisions"] == counts["statements"]

    # The interrupted first crawl was not the baseline's end: finishing it alerts nobody.
    replica.latency = 0.0
    with ew.start_daemon(log) as daemon:
        daemon.wait_for_log(DONE)
        time.sleep(1.0)
        assert daemon.terminate() == 0
    assert ew.counts()["statements"] == 24
    assert webhook.posts == []


def test_a_slow_site_never_delays_another_sites_cycles_or_alerts(
    replica: ReplicaSite, webhook: WebhookSink, tmp_path: Path, sqlite_url: str
) -> None:
    """Many missions in one daemon: one that crawls slowly holds up only itself."""
    slow = ReplicaSite().start()
    slow.latency = 1.0  # about half a minute for its first crawl
    try:
        ew = monitor_config(
            tmp_path, sqlite_url, replica, [webhook.url()], alert_on_first_crawl=False
        )
        text = ew.config.read_text(encoding="utf-8")
        text += f'\n[[sites]]\nname = "slow"\nlisting_urls = ["{slow.listing_url}"]\n'
        ew.config.write_text(text, encoding="utf-8")
        with ew.start_daemon(tmp_path / "daemon.log") as daemon:
            daemon.wait_for_log(DONE)
            replica.add(statement(7))
            alerts = wait_until(lambda: webhook.with_title(statement(7).title), timeout=20)
            assert len(alerts) == 1
            daemon.wait_for_log(DONE, count=3, timeout=20)
            # Meanwhile the slow site is still in its first crawl.
            assert "slow: done" not in daemon.output() and "slow: crawl started" in daemon.output()
            assert daemon.terminate() == 0
    finally:
        slow.stop()
