"""A fleet of `embassy-watch run` processes on one PostgreSQL archive (monitor/fleet.py).

Three real workers watch three replica sites and alert a real SMTP server and a real
webhook; one worker is killed with SIGKILL mid-crawl, another stopped with SIGTERM
mid-crawl. Every alert arrives exactly once, each site is crawled by one worker at a
time, and a change makes one revision, whoever crawls it.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.fleet import every, fleet_timing
from storage.archive import Archive
from storage.fleet import FleetMember, read_fleet
from storage.records import EventPolicy, HealthCondition, NotifyTarget
from tests.conftest import postgres_database
from tests.helpers import FAST_CRAWL, Daemon, EmbassyWatch, _toml
from tests.receivers import MailServer, WebhookSink, wait_until
from tests.replica.site import ReplicaSite, Statement

INTERVAL = 10.0  # seconds; a dead worker's site must be crawled again within this
SITES = ("alpha", "beta", "gamma")
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ (.*)$")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def fleet_config(
    directory: Path, database_url: str, sites: dict[str, ReplicaSite], urls: list[str]
) -> EmbassyWatch:
    tables: dict[str, dict[str, object]] = {
        "database": {"url": database_url},
        "crawl": FAST_CRAWL,
        "schedule": {"interval": f"{INTERVAL:g}s", "jitter": 0, "removal_after": 2},
        "notify": {"urls": urls, "check_every": "0.3s", "retry_backoff": "0.3s", "timeout": "5s"},
        "health": {"stale_after": 1000},
    }
    lines = []
    for name, values in tables.items():
        lines += [f"[{name}]", *(f"{key} = {_toml(value)}" for key, value in values.items()), ""]
    for name, site in sites.items():
        lines += [
            "[[sites]]",
            f"name = {_toml(name)}",
            f"listing_urls = {_toml([site.listing_url])}",
        ]
    path = directory / "embassy-watch.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return EmbassyWatch(path, database_url)


def statement(site: str, n: int) -> Statement:
    return Statement(
        post_id=92000 + n,
        slug=f"fleet-{n}",
        title=f"{site} 第{n}号声明：关于领事服务的通知",
        paragraphs=[f"{site} 第{n}号声明正文。", "请申请人留意本网站的最新通知。"],
    )


def new_alert(site: str, n: int) -> str:
    return f"New statement · 新声明: {statement(site, n).title}"


def holding(ew: EmbassyWatch, site: str) -> FleetMember | None:
    """The worker crawling `site` now, as the fleet's tables say."""
    with ew.archive() as archive:
        return next((m for m in read_fleet(archive.engine) if site in m.crawling), None)


def crawl_spans(logs: list[str], site: str, killed: dict[int, datetime]) -> list[tuple]:
    """(start, end) of every crawl of `site` in the workers' logs; a killed one ends at the kill."""
    spans = []
    for number, text in enumerate(logs):
        started = None
        for line in text.splitlines():
            found = LOG_LINE.match(line)
            if not found or not found[2].startswith(f"{site}: "):
                continue
            at = datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f")
            if found[2].startswith(f"{site}: crawl started"):
                started = at
            elif started is not None and (
                " done" in found[2] or "FAILED" in found[2] or "stopped for shutdown" in found[2]
            ):
                spans.append((started, at, number))
                started = None
        if started is not None:
            spans.append((started, killed[number], number))
    return sorted(spans)


def wait_for_crawl_in(workers: list[Daemon], fragment: str) -> Daemon:
    return wait_until(
        lambda: next((w for w in workers if fragment in w.output()), None),
        timeout=60,
        what=f"a worker logging {fragment!r}",
    )


def crawls_started(workers: list[Daemon], site: str) -> list[int]:
    return [w.output().count(f"{site}: crawl started") for w in workers]


def take_over_seconds(others: list[Daemon], site: str, before: list[int], since: float) -> float:
    """Seconds from `since` until one of `others` starts a crawl of `site` (counts `before`)."""
    wait_until(
        lambda: any(
            now > then for now, then in zip(crawls_started(others, site), before, strict=True)
        ),
        timeout=3 * INTERVAL,
        what=f"another worker crawling {site}",
    )
    return time.monotonic() - since


@pytest.mark.postgres
def test_three_workers_survive_sigkill_and_sigterm_with_every_alert_once(
    mail_server: MailServer, webhook: WebhookSink, tmp_path: Path, postgres_url: str
) -> None:
    with ExitStack() as stack:
        sites = {name: ReplicaSite().start() for name in SITES}
        for site in sites.values():
            stack.callback(site.stop)
        ew = fleet_config(tmp_path, postgres_url, sites, [mail_server.url(), webhook.url()])
        workers = [
            stack.enter_context(ew.start_daemon(tmp_path / f"worker-{n}.log")) for n in range(3)
        ]
        for name in SITES:  # the baseline: each site crawled once, nobody alerted
            wait_for_crawl_in(workers, f"{name}: done")
        assert webhook.posts == [] and mail_server.mails == []
        check_operations(ew, tmp_path, workers)
        killed: dict[int, datetime] = {}

        # SIGKILL in the middle of alpha's crawl: another worker takes alpha over.
        alpha = sites["alpha"]
        alpha.latency = 0.3
        alpha.statements = [statement("alpha", n) for n in (4, 3, 2, 1)] + alpha.statements
        holder = wait_until(lambda: holding(ew, "alpha"), what="a worker holding alpha")
        (line,) = [
            line
            for line in ew.run("status").stdout.splitlines()
            if line.startswith(f"worker {holder.id} ")
        ]
        assert line.endswith("crawling alpha")
        victim = wait_for_crawl_in(workers, "new: " + alpha.url("/zh/fleet-"))
        survivors = [w for w in workers if w is not victim]
        before = crawls_started(survivors, "alpha")
        victim.kill()
        killed_at = time.monotonic()
        killed[workers.index(victim)] = datetime.now()
        after = victim.output().split("new: " + alpha.url("/zh/fleet-"), 1)[1]
        assert "alpha: done" not in after, "not killed mid-crawl"
        sigkill_take_over = take_over_seconds(survivors, "alpha", before, killed_at)
        alpha.latency = 0.0
        wait_until(lambda: all(webhook.with_title(new_alert("alpha", n)) for n in range(1, 5)))

        # SIGTERM in the middle of beta's crawl: the worker leaves, the others go on at once.
        beta = sites["beta"]
        beta.latency = 0.3
        beta.statements = [statement("beta", n) for n in (4, 3, 2, 1)] + beta.statements
        leaver = wait_for_crawl_in(survivors, "new: " + beta.url("/zh/fleet-"))
        (last,) = [w for w in survivors if w is not leaver]
        before = crawls_started([last], "beta")
        terminated_at = time.monotonic()
        assert leaver.terminate(timeout=30) == 0
        killed[workers.index(leaver)] = datetime.now()
        assert "beta: crawl stopped for shutdown" in leaver.output()
        sigterm_take_over = take_over_seconds([last], "beta", before, terminated_at)
        beta.latency = 0.0
        wait_until(lambda: all(webhook.with_title(new_alert("beta", n)) for n in range(1, 5)))

        # One edit on gamma, now crawled by the last worker: one alert, one new revision.
        edited = sites["gamma"].statements[0]
        sites["gamma"].edit(edited.slug, paragraphs=[*edited.paragraphs, "补充说明。"])
        wait_until(lambda: webhook.with_title("Changed"), what="the edit alert")
        wait_until(lambda: len(mail_server.mails) == 9, what="nine mails")
        time.sleep(2 * 0.3 + 1)  # more delivery rounds: nothing may be sent again
        assert last.terminate() == 0
        killed[workers.index(last)] = datetime.now()

    print(f"take-over after SIGKILL {sigkill_take_over:.1f}s, SIGTERM {sigterm_take_over:.1f}s")
    assert sigkill_take_over < INTERVAL
    assert sigterm_take_over < INTERVAL / 2  # handed over at once, not after a heartbeat
    expected = Counter(
        [new_alert(site, n) for site in ("alpha", "beta") for n in range(1, 5)]
        + [f"Changed · 已修改 (body): {edited.title}"]
    )
    assert Counter(webhook.titles()) == expected
    assert Counter(mail_server.subjects()) == expected
    logs = [w.output() for w in workers]
    for name in SITES:  # one worker at a time per site
        spans = crawl_spans(logs, name, killed)
        for (_, end, _), (start, _, _) in pairwise(spans):
            assert start >= end - timedelta(milliseconds=1), f"{name}: overlapping crawls"
        if name != "gamma":  # taken over: crawled by the victim, then by another worker
            assert len({number for *_, number in spans}) >= 2
    with ew.archive() as archive:
        revisions = Counter(s.revisions for s in archive.statements())
    assert revisions == Counter({1: 3 * 24 + 8 - 1, 2: 1})


def check_operations(ew: EmbassyWatch, tmp_path: Path, workers: list[Daemon]) -> None:
    """`status`, /healthz and /metrics list the three workers (on a real `serve`)."""
    names = {f"{socket.gethostname()}:{w.process.pid}" for w in workers}
    text = ew.run("status").stdout
    assert {
        line.split()[2].rstrip(":") for line in text.splitlines() if line.startswith("worker ")
    } == names
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"EMBASSY_WATCH_SERVE_PORT": str(port)}
    with ew.start("serve", log=tmp_path / "serve.log", env=env) as server:
        server.wait_for_log("serving the archive")
        base = f"http://127.0.0.1:{port}"
        health = wait_until(lambda: _get(base + "/healthz"), what="/healthz")
        assert {w["name"] for w in json.loads(health)["workers"] if w["alive"]} == names
        families = {f.name: f for f in text_string_to_metric_families(_get(base + "/metrics"))}
        assert families["embassy_watch_fleet_workers"].samples[0].value == 3
        beats = families["embassy_watch_fleet_worker_heartbeat_timestamp_seconds"].samples
        assert {sample.labels["worker"] for sample in beats} == names
        assert "embassy_watch_fleet_worker_crawling" in families


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def _claim_each(database_url: str, ids: list[int], start_at: float, seed: int) -> list[int]:
    """One process's sender: claim every row it can, in its own order, from `start_at` on."""
    import random

    order = list(ids)
    random.Random(seed).shuffle(order)
    archive = Archive.open(database_url)
    try:
        time.sleep(max(0.0, start_at - time.time()))
        now = datetime.now(UTC)
        lease = now + timedelta(minutes=5)
        return [row for row in order if archive.outbox.claim(row, now, lease)]
    finally:
        archive.close()


@pytest.mark.postgres
def test_outbox_claims_from_four_processes_at_once_give_each_row_to_one(
    postgres_url: str,
) -> None:
    import multiprocessing

    target = NotifyTarget("f" * 32, "webhook")
    policy = EventPolicy(alert_to=(target,))
    archive = Archive.open(postgres_url)
    try:
        now = datetime.now(UTC)
        for n in range(80):
            archive.raise_condition(f"site-{n}", HealthCondition.BLOCKED, "403", now, policy)
        ids = [row.id for row in archive.outbox.due(now, limit=1000)]
    finally:
        archive.close()
    assert len(ids) == 80
    start_at = time.time() + 3  # after every process has opened the archive
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        claimed = pool.starmap(_claim_each, [(postgres_url, ids, start_at, n) for n in range(4)])
    assert sorted(row for rows in claimed for row in rows) == sorted(ids)  # each row once
    assert sum(bool(rows) for rows in claimed) >= 2, "the processes did not race"


@pytest.mark.parametrize(
    ("interval", "within"),
    [(10.0, 7.0), (60.0, 6 + 18 + 6), (900.0, 10 + 30 + 60), (86400.0, 10 + 30 + 60)],
)
def test_a_dead_workers_sites_are_taken_over_within_one_interval(
    interval: float, within: float
) -> None:
    timing = fleet_timing(interval)
    assert timing.take_over_within == within < interval
    assert timing.stalled_after >= 3 * timing.heartbeat  # three missed heartbeats, not one


def test_the_fleets_periodic_jobs_fire_about_as_often_as_asked() -> None:
    assert every(2) == "* * * * * */2"
    assert every(600) == "*/10 * * * *"
    assert every(7200) == "0 * * * *"  # at least hourly
