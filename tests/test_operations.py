"""Operations: /healthz, /metrics, `embassy-watch status`, JSON logs, and the health rules."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from config import Settings
from monitor.status import read_health
from storage.archive import Archive
from storage.records import EventPolicy, NotifyTarget
from tests.helpers import EmbassyWatch
from tests.served import Served, serve_process
from tests.test_archive import CONTENT, T0, capture

# A site is stale once it has had no good crawl for interval x stale_after: here 2 s.
STALE_QUICKLY = {
    "EMBASSY_WATCH_SCHEDULE_INTERVAL": "1s",
    "EMBASSY_WATCH_HEALTH_STALE_AFTER": "2",
}


def _site(served: Served) -> str:
    return str(served.get("/api/statements?limit=1")["statements"][0]["site"])


def test_healthz_reports_each_site_and_the_archive(served: Served) -> None:
    health = served.get("/healthz")
    assert health["healthy"] is True and health["problems"] == []
    (site,) = health["sites"]
    assert site["site"] == _site(served)
    assert site["crawls"] == 3  # the three crawls that built the archive
    assert site["pages_fetched"] >= 3 * 24
    assert site["last_crawl_seconds"] > 0
    assert health["statements"] == {"active": 25, "removed": 1}
    assert health["events"] == {"new": 26, "changed": 1, "removed": 1}


def test_metrics_are_prometheus_text_with_the_numbers_an_operator_watches(
    served: Served,
) -> None:
    with urllib.request.urlopen(served.base + "/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    site = (("site", _site(served)),)
    assert samples[("embassy_watch_crawls_total", site)] == 3
    assert samples[("embassy_watch_pages_fetched_total", site)] >= 72
    assert samples[("embassy_watch_crawl_duration_seconds", site)] > 0
    last_success = samples[("embassy_watch_last_successful_crawl_timestamp_seconds", site)]
    assert 0 < time.time() - last_success < 3600
    assert samples[("embassy_watch_events_total", (("kind", "changed"),))] == 1
    assert samples[("embassy_watch_events_total", (("kind", "removed"),))] == 1
    assert samples[("embassy_watch_statements", (("status", "removed"),))] == 1
    assert samples[("embassy_watch_revisions", ())] == 27
    assert samples[("embassy_watch_outbox_deliveries", (("status", "pending"),))] == 0
    assert samples[("embassy_watch_outbox_oldest_waiting_seconds", ())] == 0
    assert samples[("embassy_watch_healthy", ())] == 1


def test_status_says_healthy_or_names_each_problem(served: Served, tmp_path: Path) -> None:
    ew = served.ew
    healthy = ew.run("status")
    assert healthy.stdout.startswith("embassy-watch: healthy")
    assert f"site {_site(served)}: last crawl" in healthy.stdout and "3 crawls" in healthy.stdout
    assert "archive: 25 active, 1 removed; 27 revisions" in healthy.stdout
    as_json = json.loads(ew.run("status", "--json").stdout)
    assert as_json["healthy"] is True and as_json["sites"][0]["crawls"] == 3

    time.sleep(2.5)  # longer than 1 s x 2 intervals since the last crawl
    stale = ew.run("status", expect=1, env=STALE_QUICKLY)
    assert "UNHEALTHY (1 problem(s))" in stale.stdout
    assert f"problem: {_site(served)}: no successful crawl for" in stale.stdout
    with serve_process(ew, tmp_path / "stale.log", env=STALE_QUICKLY) as base:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=10)
            raise AssertionError("a stale site must make /healthz fail")
        except urllib.error.HTTPError as error:
            assert error.code == 503
            assert "no successful crawl for" in json.loads(error.read())["problems"][0]


def test_json_logs_are_one_object_per_line(ew: EmbassyWatch) -> None:
    done = ew.run("crawl", env={"EMBASSY_WATCH_LOGGING_FORMAT": "json"})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    assert len(entries) > 24  # a line per statement at least
    assert {entry["level"] for entry in entries} == {"info"}
    assert any(entry["message"].startswith("new: http") for entry in entries)
    first = datetime.fromisoformat(entries[0]["time"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - first).total_seconds()) < 120


def test_health_names_an_alert_waiting_too_long_and_one_given_up(archive: Archive) -> None:
    settings = Settings()  # outbox read every 10 s: an alert is late after 10 minutes
    mail = NotifyTarget("k-mail", "mailto://ops@example.org")
    archive.record_detail(capture(), CONTENT, policy=EventPolicy(alert_to=(mail,)))
    assert read_health(archive, settings, T0 + timedelta(minutes=5)).healthy
    late = read_health(archive, settings, T0 + timedelta(minutes=11))
    assert late.problems == ("an alert has waited 11m to be delivered",)

    (row,) = archive.outbox.due(T0)
    archive.outbox.mark_attempt_failed(row.id, "SMTP 550", retry_at=None)
    given_up = read_health(archive, settings, T0 + timedelta(minutes=11))
    assert given_up.problems == (
        "1 alert(s) given up (see `embassy-watch outbox --status failed`)",
    )
