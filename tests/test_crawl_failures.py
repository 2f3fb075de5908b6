"""Bad input and bad luck: a clear message, the right exit status, and nothing half written."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.archive import Archive
from tests.helpers import EXECUTABLE, EmbassyWatch, write_config
from tests.replica.site import LISTING_PATH, Canned, ReplicaSite


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def assert_consistent(database_url: str) -> None:
    """Every statement has revisions numbered 1..n and every kept body is readable."""
    archive = Archive.open(database_url)
    try:
        with archive.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
                assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
            rows = connection.execute(
                text(
                    "SELECT s.id, count(r.id), coalesce(max(r.number), 0) FROM statement s"
                    " LEFT JOIN revision r ON r.statement_id = s.id GROUP BY s.id"
                )
            ).all()
        for statement_id, revisions, highest in rows:
            assert revisions >= 1 and revisions == highest, f"statement {statement_id}"
    finally:
        archive.close()


def test_unreachable_site_fails_with_a_clear_message(tmp_path: Path, sqlite_url: str) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/zh/news-events-zh/"
    ew = EmbassyWatch(write_config(tmp_path, sqlite_url, [url]), sqlite_url)
    done = ew.crawl(expect=1)
    assert "FAILED" in done.stdout
    assert f"problem: {url}" in done.stderr and "onnection" in done.stderr
    assert ew.counts()["statements"] == 0
    assert "Traceback" not in done.stderr


def test_server_errors_on_the_listing_fail_the_crawl(
    ew: EmbassyWatch, replica: ReplicaSite
) -> None:
    replica.serve(LISTING_PATH, Canned(503, times=None))
    done = ew.crawl(expect=1)
    assert "HTTP 503" in done.stderr
    assert replica.count(LISTING_PATH) == 2  # the first try and one retry (retries = 1)
    assert ew.counts()["statements"] == 0


def test_an_empty_listing_fails_the_crawl(ew: EmbassyWatch, replica: ReplicaSite) -> None:
    replica.statements = []
    replica.serve(
        LISTING_PATH,
        Canned(200, {"Content-Type": "text/html"}, b"<html><body><main></main></body></html>"),
    )
    done = ew.crawl(expect=1)
    assert "the listing shows no statements" in done.stderr


def test_a_timeout_on_one_page_spares_the_others(ew: EmbassyWatch, replica: ReplicaSite) -> None:
    slow = replica.statement("statement-07").path
    replica.serve(slow, Canned(200, body=b"late", delay=5, times=None))
    done = ew.crawl(expect=3)
    assert "statement-07" in done.stderr and "1 fetch errors" in done.stdout
    urls = {row["url"] for row in ew.json("statements")}
    assert len(urls) == 23 and replica.url(slow) not in urls


def test_a_server_error_on_one_page_is_retried_with_backoff(
    ew: EmbassyWatch, replica: ReplicaSite
) -> None:
    path = replica.statement("statement-08").path
    replica.serve(path, Canned(502, times=1))
    ew.crawl()
    assert replica.count(path) == 2
    assert len(ew.json("statements")) == 24


def test_retry_after_is_honoured(ew: EmbassyWatch, replica: ReplicaSite) -> None:
    path = replica.statement("statement-09").path
    replica.serve(path, Canned(429, {"Retry-After": "2"}, times=1))
    ew.crawl()
    attempts = [r for r in replica.requests if r.path == path]
    assert len(attempts) == 2
    assert attempts[1].at - attempts[0].at >= 1.9
    # Nothing at all was sent to the site while it asked us to wait.
    waiting = [r for r in replica.requests if attempts[0].at < r.at < attempts[0].at + 1.9]
    assert waiting == []
    assert len(ew.json("statements")) == 24


def test_truncated_and_malformed_pages_are_extraction_failures_not_revisions(
    ew: EmbassyWatch, replica: ReplicaSite
) -> None:
    ew.crawl()
    before = ew.counts()["revisions"]
    replica.truncate_details_at = 3000
    done = ew.crawl(expect=3)
    assert "24 extraction failures" in done.stdout
    assert "truncated page" in done.stderr
    garbage = replica.statement("statement-10").path
    replica.truncate_details_at = None
    replica.serve(
        garbage, Canned(200, {"Content-Type": "text/html"}, b"\x00\xff<<<<p>>>", times=None)
    )
    done = ew.crawl(expect=3)
    assert "1 extraction failures" in done.stdout
    assert ew.counts()["revisions"] == before
    assert all(row["revisions"] == 1 for row in ew.json("statements"))


def test_a_non_utf8_site_is_read_in_its_own_charset(tmp_path: Path, sqlite_url: str) -> None:
    site = ReplicaSite(charset="gb18030").start()
    try:
        ew = EmbassyWatch(write_config(tmp_path, sqlite_url, [site.listing_url]), sqlite_url)
        ew.crawl()
        shown = ew.json("show", site.url(site.statements[0].path))
        assert shown["title"] == "香港政策法报告"
        assert "中华人民共和国" in shown["body"]
    finally:
        site.stop()


def test_a_crawl_killed_midway_leaves_a_consistent_archive_that_the_next_crawl_completes(
    ew: EmbassyWatch, replica: ReplicaSite
) -> None:
    replica.latency = 0.15  # so the kill lands mid-crawl
    process = subprocess.Popen(
        [str(EXECUTABLE), "crawl", "--config", str(ew.config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for_statements(ew.database_url, at_least=5, process=process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    replica.latency = 0.0
    archived = ew.counts()["statements"]
    assert 5 <= archived < 24
    assert_consistent(ew.database_url)

    ew.crawl()
    assert_consistent(ew.database_url)
    rows = ew.json("statements")
    assert len(rows) == 24 and all(row["revisions"] == 1 for row in rows)


def _wait_for_statements(
    database_url: str, at_least: int, process: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the crawl ended before it could be killed"
        archive = Archive.open(database_url)
        try:
            if archive.counts()["statements"] >= at_least:
                return
        finally:
            archive.close()
        time.sleep(0.05)
    raise AssertionError("the crawl archived nothing in 60 s")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_stops_the_crawl_with_one_line_and_loses_nothing(
    replica: ReplicaSite, tmp_path: Path, tiny_disk: Path
) -> None:
    url = f"sqlite:///{tiny_disk / 'archive.db'}"
    ew = EmbassyWatch(write_config(tmp_path, url, [replica.listing_url]), url)
    done = ew.crawl(expect=1)
    assert "cannot write to the archive" in done.stderr
    assert "full" in done.stderr
    assert "Traceback" not in done.stderr
    assert_consistent(url)


def test_a_crawl_over_its_time_limit_is_stopped_and_fails(
    replica: ReplicaSite, sqlite_url: str, tmp_path: Path
) -> None:
    replica.latency = 0.2
    config = write_config(tmp_path, sqlite_url, [replica.listing_url], max_duration="2s")
    ew = EmbassyWatch(config, sqlite_url)
    done = ew.crawl(expect=1)
    assert "crawl stopped early: closespider_timeout" in done.stderr
    assert "FAILED" in done.stdout
    assert 0 < ew.counts()["statements"] < 24
    assert_consistent(sqlite_url)


def test_an_oversized_page_is_dropped_not_archived(
    replica: ReplicaSite, sqlite_url: str, tmp_path: Path
) -> None:
    huge = replica.statement("statement-11").path
    replica.serve(
        huge, Canned(200, {"Content-Type": "text/html"}, b"<p>x</p>" * 20_000, times=None)
    )
    config = write_config(tmp_path, sqlite_url, [replica.listing_url], max_page_bytes=65536)
    ew = EmbassyWatch(config, sqlite_url)
    done = ew.crawl(expect=3)
    assert "statement-11" in done.stderr and "1 fetch errors" in done.stdout
    assert len(ew.json("statements")) == 23
