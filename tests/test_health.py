"""Health alerts end to end: raised once, then a recovery message, through a real webhook."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.receivers import WebhookSink, wait_until
from tests.replica.site import LISTING_PATH, Canned, ReplicaSite
from tests.test_daemon import monitor_config

PROBLEM = "Problem · 故障 (replica): "
RECOVERED = "Recovered · 已恢复 (replica): "


def test_a_theme_change_that_breaks_extraction_alerts_once_then_recovers(
    replica: ReplicaSite, webhook: WebhookSink, tmp_path: Path, sqlite_url: str
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, [webhook.url()])
    ew.crawl()
    replica.truncate_details_at = 3000  # every statement page now unreadable
    ew.crawl(expect=3)
    ew.crawl(expect=3)
    assert webhook.titles() == [PROBLEM + "extraction-failing"]
    assert "24 of 24 statement pages could not be read" in webhook.posts[0]["message"]
    replica.truncate_details_at = None
    ew.crawl()
    assert webhook.titles() == [PROBLEM + "extraction-failing", RECOVERED + "extraction-failing"]


def test_being_refused_with_403_alerts_after_two_crawls_then_recovers(
    replica: ReplicaSite, webhook: WebhookSink, tmp_path: Path, sqlite_url: str
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, [webhook.url()])
    ew.crawl()
    replica.serve("*", Canned(403, times=None))
    ew.crawl(expect=1)
    assert webhook.posts == []  # one refused crawl may be a blip
    ew.crawl(expect=1)
    assert webhook.titles() == [PROBLEM + "blocked"]
    replica.clear_canned()
    ew.crawl()
    assert webhook.titles()[-1] == RECOVERED + "blocked"
    statuses = {s["status"] for s in ew.json("statements")}
    assert statuses == {"active"}  # refusals never count towards a take-down


def test_an_empty_listing_alerts(webhook: WebhookSink, tmp_path: Path, sqlite_url: str) -> None:
    empty = ReplicaSite([]).start()
    try:
        ew = monitor_config(tmp_path, sqlite_url, empty, [webhook.url()])
        ew.crawl(expect=1)
    finally:
        empty.stop()
    assert webhook.titles() == [PROBLEM + "listing-empty"]


def test_no_successful_crawl_for_a_while_alerts_then_recovers(
    replica: ReplicaSite, webhook: WebhookSink, tmp_path: Path, sqlite_url: str
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, [webhook.url()])
    ew.config.write_text(ew.config.read_text().replace("stale_after = 1000", "stale_after = 2"))
    replica.serve("*", Canned(503, times=None))
    with ew.start_daemon(tmp_path / "daemon.log") as daemon:
        wait_until(lambda: webhook.with_title("no-successful-crawl"), what="the stale alert")
        replica.clear_canned()
        wait_until(lambda: webhook.with_title(RECOVERED), what="the recovery")
        assert daemon.terminate() == 0
    assert webhook.titles() == [PROBLEM + "no-successful-crawl", RECOVERED + "no-successful-crawl"]


def test_long_crawls_and_restarts_never_flap_the_stale_alert(
    replica: ReplicaSite, webhook: WebhookSink, tmp_path: Path, sqlite_url: str
) -> None:
    """Stale is judged on finished crawls: a crawl longer than the limit is no outage."""
    ew = monitor_config(tmp_path, sqlite_url, replica, [webhook.url()])
    ew.config.write_text(ew.config.read_text().replace("stale_after = 1000", "stale_after = 2"))
    ew.crawl()  # fast: the archive has a successful crawl
    replica.latency = 0.15  # from now on each crawl (28 pages) takes ~4 s: over the 2 s limit
    with ew.start_daemon(tmp_path / "daemon.log") as daemon:
        daemon.wait_for_log("replica: done", count=2)
        assert daemon.terminate() == 0  # a restart, while the site is fine
    with ew.start_daemon(tmp_path / "daemon.log") as daemon:
        daemon.wait_for_log("replica: done", count=3)  # one more long crawl after the restart
        assert daemon.terminate() == 0
    assert webhook.titles() == []
    assert [e for e in ew.json("changes") if e["kind"] in ("problem", "recovered")] == []


def test_a_real_outage_alerts_once_across_a_restart_and_recovers_once(
    replica: ReplicaSite, webhook: WebhookSink, tmp_path: Path, sqlite_url: str
) -> None:
    ew = monitor_config(tmp_path, sqlite_url, replica, [webhook.url()])
    ew.config.write_text(ew.config.read_text().replace("stale_after = 1000", "stale_after = 2"))
    ew.crawl()
    replica.serve("*", Canned(503, times=None))
    with ew.start_daemon(tmp_path / "daemon.log") as daemon:
        wait_until(lambda: webhook.with_title("no-successful-crawl"), what="the stale alert")
        assert daemon.terminate() == 0
    with ew.start_daemon(tmp_path / "daemon.log") as daemon:
        daemon.wait_for_log("replica: FAILED", count=daemon.output().count("replica: FAILED") + 2)
        replica.clear_canned()
        wait_until(lambda: webhook.with_title(RECOVERED), what="the recovery")
        assert daemon.terminate() == 0
    assert webhook.titles() == [PROBLEM + "no-successful-crawl", RECOVERED + "no-successful-crawl"]


EMPTY_LISTING = Canned(
    200,
    {"Content-Type": "text/html; charset=UTF-8"},
    b"<html><body><main><p>Nothing here</p></main></body></html>",
    times=None,
)


@pytest.mark.parametrize(
    ("where", "answer", "exit_status", "conditions", "detail"),
    [
        ("listing", EMPTY_LISTING, 1, ["listing-empty"], "the listing shows no statements"),
        ("listing", Canned(403, times=None), 1, ["blocked"], "answers of 403/429"),
        ("listing", Canned(500, times=None), 1, [], None),  # an outage, not a refusal
        ("statements", Canned(429, times=None), 3, ["blocked"], "answers of 403/429"),
        ("statements", Canned(500, times=None), 3, [], None),
    ],
)
def test_each_answer_raises_its_own_condition(
    replica: ReplicaSite,
    tmp_path: Path,
    sqlite_url: str,
    where: str,
    answer: Canned,
    exit_status: int,
    conditions: list[str],
    detail: str | None,
) -> None:
    """Health is judged from what the crawl met (kind and status), over two crawls."""
    ew = monitor_config(tmp_path, sqlite_url, replica, [])
    ew.crawl()
    paths = [LISTING_PATH] if where == "listing" else [s.path for s in replica.statements]
    for path in paths:
        replica.serve(path, answer)
    ew.crawl(expect=exit_status)
    done = ew.crawl(expect=exit_status)
    if answer.status != 200:
        assert f"HTTP {answer.status}" in done.stderr  # the same fact, told to people
    problems = [e for e in ew.json("changes") if e["kind"] == "problem"]
    assert [e["condition"] for e in problems] == conditions
    if detail is not None:
        assert detail in problems[0]["detail"]
    statuses = {s["status"] for s in ew.json("statements")}
    assert statuses == {"active"}  # no answer of these reads as a take-down
