"""The dispatcher's retry rules and whom an alert is owed to, on a clock the test moves.

Every backend; real failing sends.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any

import pytest

from config import NotifySettings
from monitor.messages import what_changed
from monitor.notify import Dispatcher, make_targets
from storage import outbox as outbox_module
from storage.archive import Archive
from storage.records import DeliveryStatus, EventPolicy, NotifyTarget, Reconciled
from tests.test_archive import CONTENT, T0, capture

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
MAIL = NotifyTarget("k-mail", "mailto://ops@example.org")
HOOK = NotifyTarget("k-hook", "json://127.0.0.1/hook")
SLACK = NotifyTarget("k-slack", "slack://T/B/C")


def test_failed_sends_back_off_exponentially_then_give_up(archive: Archive) -> None:
    (closed,) = make_targets(["json://127.0.0.1:1/closed"])  # nothing listens there
    removed = NotifyTarget("no-longer-configured", "json://old.example/hook")
    archive.record_detail(capture(), CONTENT, policy=EventPolicy(alert_to=(closed.record, removed)))
    now = [T0]
    settings = NotifySettings(
        retry_backoff="1m", max_backoff="4m", give_up_after="1h", timeout="2s"
    )
    describe = partial(what_changed, archive)
    dispatcher = Dispatcher(archive.outbox, (closed,), settings, describe, clock=lambda: now[0])

    done = dispatcher.deliver_due()
    assert (done.delivered, done.failed, done.given_up) == (0, 1, 0)
    (dropped,) = archive.outbox.deliveries(DeliveryStatus.DROPPED)
    assert (dropped.target, dropped.attempts, dropped.last_error) == (removed, 0, "target removed")

    waits = []
    for _ in range(4):
        (pending,) = archive.outbox.deliveries(DeliveryStatus.PENDING)
        assert "Connection error" in (pending.last_error or "")
        waits.append(pending.next_attempt_at - now[0])
        assert dispatcher.deliver_due().failed == 0  # not due yet: nothing is sent
        now[0] = pending.next_attempt_at
        dispatcher.deliver_due()
    assert waits == [MINUTE, 2 * MINUTE, 4 * MINUTE, 4 * MINUTE]  # doubling, capped

    now[0] = T0 + timedelta(hours=1)
    assert dispatcher.deliver_due().given_up == 1
    counts = archive.outbox.counts()
    assert (counts[DeliveryStatus.FAILED], counts[DeliveryStatus.DROPPED]) == (1, 1)
    assert archive.outbox.due(now[0] + timedelta(days=30)) == []


def rows(archive: Archive) -> dict[tuple[int, str], tuple[DeliveryStatus, str | None]]:
    """(event, target) -> (status, last error), every outbox row."""
    return {
        (row.event.id, row.target.key): (row.status, row.last_error)
        for row in archive.outbox.deliveries(limit=1000)
    }


def test_waiting_alerts_follow_the_configured_targets_and_delivered_ones_never_move(
    archive: Archive,
) -> None:
    baseline = replace(CONTENT, url=CONTENT.url + "baseline/", post_id=1)
    archive.record_detail(capture(url=baseline.url), baseline, policy=EventPolicy(baseline=True))
    archive.record_detail(capture(), CONTENT, policy=EventPolicy(alert_to=(MAIL, HOOK)))
    edited = replace(CONTENT, body=CONTENT.body + "\n\n第三段。")
    archive.record_detail(capture(T0 + MINUTE, b"v2"), edited, policy=EventPolicy(alert_to=(HOOK,)))
    changed, new, _ = archive.changes()
    by_key = {(row.event.id, row.target.key): row for row in archive.outbox.deliveries()}
    archive.outbox.mark_delivered(by_key[new.id, HOOK.key].id, T0)
    archive.outbox.mark_delivered(by_key[changed.id, HOOK.key].id, T0 + MINUTE)
    before = rows(archive)

    # The mail target is corrected (a new URL, so a new key): the waiting alert moves to it.
    now = T0 + 2 * DAY
    assert archive.outbox.reconcile((SLACK, HOOK), now, 7 * DAY) == Reconciled(1, 1)
    after = rows(archive)
    assert after[new.id, MAIL.key] == (DeliveryStatus.DROPPED, "target removed")
    assert after[new.id, SLACK.key] == (DeliveryStatus.PENDING, None)
    # Not re-sent where it was delivered; nothing for the delivered edit or the baseline.
    assert {k: v for k, v in after.items() if k[1] != SLACK.key and k != (new.id, MAIL.key)} == {
        k: v for k, v in before.items() if k != (new.id, MAIL.key)
    }
    (added,) = archive.outbox.due(now, target_key=SLACK.key)
    assert added.created_at == T0  # give_up_after counts from the alert, not from now
    assert archive.outbox.due(now, target_key=MAIL.key) == []
    assert archive.outbox.reconcile((SLACK, HOOK), now, 7 * DAY) == Reconciled()  # settled

    # Put back while the alert still waits, the removed target is owed it again.
    assert archive.outbox.reconcile((SLACK, HOOK, MAIL), now, 7 * DAY) == Reconciled(1, 0)
    assert rows(archive)[new.id, MAIL.key] == (DeliveryStatus.PENDING, None)

    # Once given up everywhere it no longer waits: a target added later does not get it.
    for row in archive.outbox.deliveries(DeliveryStatus.PENDING):
        archive.outbox.mark_attempt_failed(row.id, "refused", retry_at=None)
    late = NotifyTarget("k-late", "json://late.example/hook")
    assert archive.outbox.reconcile((SLACK, HOOK, MAIL, late), now + 6 * DAY, DAY) == Reconciled()


def test_processes_reconciling_at_once_add_each_row_once(
    archive: Archive, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every process plans the same rows, then all insert at once: each row is added once."""
    archive.record_detail(capture(), CONTENT, policy=EventPolicy(alert_to=(MAIL,)))
    racers = [archive, *(Archive.open(database_url) for _ in range(3))]
    if archive.engine.dialect.name == "postgresql":  # SQLite lets one writer in at a time
        _insert_all_at_once(monkeypatch, len(racers))
    try:
        with ThreadPoolExecutor(max_workers=len(racers)) as pool:
            results = list(
                pool.map(lambda each: each.outbox.reconcile((MAIL, HOOK, SLACK), T0, DAY), racers)
            )
    finally:
        for other in racers[1:]:
            other.close()
    assert sum(result.queued for result in results) == 2
    assert sorted(key for _, key in rows(archive)) == sorted([MAIL.key, HOOK.key, SLACK.key])


def _insert_all_at_once(monkeypatch: pytest.MonkeyPatch, racers: int) -> None:
    """Hold each writer between its plan and its inserts until all have planned."""
    barrier = threading.Barrier(racers, timeout=10)
    plan = outbox_module._plan
    calls = threading.local()

    def planned(*args: Any) -> Any:
        made = plan(*args)
        calls.count = getattr(calls, "count", 0) + 1
        if calls.count == 2:  # the plan made again inside the write transaction
            barrier.wait()
        return made

    monkeypatch.setattr(outbox_module, "_plan", planned)
