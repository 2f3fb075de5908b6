"""A second witness: new revisions' URLs captured through Save Page Now 2.

The Internet Archive is a local stand-in speaking SPN2 on 127.0.0.1 (tests/wayback.py);
the crawls are the real `embassy-watch crawl` against the replica site, the page the
real `embassy-watch serve`.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from config import load_settings
from config.errors import ConfigError
from storage import models
from storage.wayback import CaptureStatus, WaybackQueue
from tests.helpers import EmbassyWatch, write_config
from tests.replica.site import ReplicaSite
from tests.served import serve_process
from tests.wayback import LocalWayback

EDITED = "statement-24"
ACCESS, SECRET = "access-key-4711", "secret-key-0815"
KEYS = {
    "EMBASSY_WATCH_EVIDENCE_WAYBACK_ACCESS_KEY": ACCESS,
    "EMBASSY_WATCH_EVIDENCE_WAYBACK_SECRET_KEY": SECRET,
}


@pytest.fixture
def stand_in() -> Iterator[LocalWayback]:
    server = LocalWayback().start()
    yield server
    server.stop()


def _ew(
    replica: ReplicaSite, tmp_path: Path, stand_in: LocalWayback, **more: object
) -> EmbassyWatch:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    evidence = {
        "wayback": True,
        "wayback_endpoint": stand_in.url,
        "wayback_poll_every": "0.1s",
        "wayback_wait": "20s",
        "retry_backoff": "0.1s",
        "timeout": "5s",
        **more,
    }
    config = write_config(tmp_path, url, [replica.listing_url], sections={"evidence": evidence})
    return EmbassyWatch(config, url)


def _crawl(ew: EmbassyWatch) -> str:
    done = ew.run("crawl", env=KEYS)
    output = done.stdout + done.stderr
    assert ACCESS not in output and SECRET not in output
    return output


def _captures(ew: EmbassyWatch) -> list[models.WaybackCapture]:
    with ew.archive() as archive, archive.engine.connect() as db:
        return list(db.execute(select(models.WaybackCapture)).all())  # type: ignore[arg-type]


def _fetch(base: str, path: str) -> str:
    with urllib.request.urlopen(base + path, timeout=10) as answer:
        return str(answer.read().decode("utf-8"))


def test_a_new_revision_is_captured_once_and_its_snapshot_shown(
    replica: ReplicaSite, stand_in: LocalWayback, tmp_path: Path
) -> None:
    ew = _ew(replica, tmp_path, stand_in)
    _crawl(ew)
    assert stand_in.submitted == []  # the baseline is not sent
    replica.edit(EDITED, title="增进全世界的人权（修订）")
    output = _crawl(ew)
    edited_url = replica.url(replica.statement(EDITED).path)
    assert stand_in.submitted == [edited_url]
    assert "wayback: 1 submitted, 1 saved, 0 failed" in output
    _crawl(ew)  # nothing new: nothing asked again
    assert stand_in.submitted == [edited_url]
    assert set(stand_in.authorizations) == {f"LOW {ACCESS}:{SECRET}"}
    assert not any(SECRET in line for line in stand_in.request_lines)
    [row] = _captures(ew)
    assert row.status == str(CaptureStatus.SAVED) and row.attempts == 0
    assert row.snapshot_url.startswith(f"{stand_in.url}/web/2")
    assert row.snapshot_url.endswith(f"/{edited_url}")
    statement_id = json.loads(ew.run("show", edited_url, "--json", env=KEYS).stdout)["id"]
    with serve_process(ew, tmp_path / "serve.log", env=KEYS) as base:
        page = _fetch(base, f"/statements/{statement_id}/revisions/2")
        shown = json.loads(_fetch(base, f"/api/statements/{statement_id}"))
        first = json.loads(_fetch(base, f"/api/statements/{statement_id}/revisions/1"))
        metrics = _fetch(base, "/metrics")
    assert f'href="{row.snapshot_url}"' in page
    assert (
        f"Internet Archive snapshot {row.snapshot_at:%Y-%m-%dT%H:%M:%S}Z: {row.snapshot_url}"
        in page
    )
    assert shown["wayback"]["snapshot_url"] == row.snapshot_url
    assert shown["wayback"]["status"] == "saved"
    assert first["wayback"] is None
    assert 'wayback_captures{status="saved"} 1' in metrics
    assert SECRET not in (tmp_path / "serve.log").read_text()


def test_refusals_are_retried_with_backoff_and_never_duplicate(
    replica: ReplicaSite, stand_in: LocalWayback, tmp_path: Path
) -> None:
    ew = _ew(replica, tmp_path, stand_in)
    _crawl(ew)
    stand_in.refusals = [429, 503]
    replica.edit(EDITED, title="增进全世界的人权（修订）")
    output = _crawl(ew)
    assert stand_in.refused == 2
    assert len(stand_in.submitted) == 1 and len(stand_in.jobs) == 1
    assert "HTTP 429" in output and "HTTP 503" in output
    [row] = _captures(ew)
    assert row.status == str(CaptureStatus.SAVED) and row.attempts == 2
    assert SECRET not in (row.last_error or "")


def test_a_failed_capture_is_asked_afresh_then_given_up(
    replica: ReplicaSite, stand_in: LocalWayback, tmp_path: Path
) -> None:
    ew = _ew(replica, tmp_path, stand_in, wayback_max_attempts=2)
    _crawl(ew)
    stand_in.failing = True
    replica.edit(EDITED, title="增进全世界的人权（修订）")
    _crawl(ew)
    [row] = _captures(ew)
    assert row.status == str(CaptureStatus.FAILED) and row.attempts == 2
    assert row.last_error == "capture failed: gone" and row.snapshot_url is None
    assert len(stand_in.submitted) == 2  # the failed job asked for afresh, once
    _crawl(ew)
    assert len(stand_in.submitted) == 2  # given up: not asked again
    status = ew.run("status", env=KEYS, expect=None).stdout
    assert "wayback captures: 1 failed" in status


def test_a_claimed_capture_is_not_taken_twice_until_its_lease_ends(
    replica: ReplicaSite, stand_in: LocalWayback, tmp_path: Path
) -> None:
    ew = _ew(replica, tmp_path, stand_in, wayback_wait="0s", wayback_per_minute=1)
    _crawl(ew)
    stand_in.refusals = [503]
    replica.edit(EDITED, title="增进全世界的人权（修订）")
    _crawl(ew)
    with ew.archive() as archive:
        queue = WaybackQueue(archive.engine)
        now = datetime.now(UTC) + timedelta(seconds=5)
        [due] = queue.due(now)
        assert queue.claim(due.id, now, now + timedelta(seconds=60))
        assert not queue.claim(due.id, now, now + timedelta(seconds=60))
        assert queue.due(now) == []
        later = now + timedelta(seconds=61)
        assert [d.id for d in queue.due(later)] == [due.id]  # the lease ran out
        assert queue.claim(due.id, later, later + timedelta(seconds=60))


def test_the_keys_come_from_the_environment_and_are_required() -> None:
    settings = load_settings(None, environ={"EMBASSY_WATCH_EVIDENCE_WAYBACK": "true", **KEYS})
    assert settings.evidence.wayback_access_key.get_secret_value() == ACCESS
    assert SECRET not in repr(settings)
    with pytest.raises(ConfigError, match="wayback_access_key and wayback_secret_key"):
        load_settings(None, environ={"EMBASSY_WATCH_EVIDENCE_WAYBACK": "true"})


def test_run_captures_new_revisions_between_its_crawls(
    replica: ReplicaSite, stand_in: LocalWayback, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    sections: dict[str, dict[str, object]] = {
        "schedule": {"interval": "1s", "jitter": 0},
        "health": {"stale_after": 1000},
        "evidence": {
            "wayback": True,
            "wayback_endpoint": stand_in.url,
            "wayback_poll_every": "0.2s",
            "retry_backoff": "0.2s",
            "check_every": "0.2s",
            "timeout": "2s",
        },
    }
    ew = EmbassyWatch(write_config(tmp_path, url, [replica.listing_url], sections=sections), url)
    stand_in.refusals = [503]
    with ew.start_daemon(tmp_path / "daemon.log", env=KEYS) as daemon:
        daemon.wait_for_log("replica: done", count=2)
        replica.edit(EDITED, title="增进全世界的人权（修订）")
        daemon.wait_for_log("wayback: capture of")  # the 503
        daemon.wait_for_log("captured as")
        daemon.wait_for_log("replica: done", count=6)  # more crawls: nothing new is sent
        assert daemon.terminate() == 0
        log = daemon.output()
    assert stand_in.submitted == [replica.url(replica.statement(EDITED).path)]
    assert stand_in.refused == 1
    assert ACCESS not in log and SECRET not in log
    [row] = _captures(ew)
    assert row.status == str(CaptureStatus.SAVED)
