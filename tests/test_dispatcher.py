"""The dispatcher's retry rules, on a clock the test moves (every backend; real failing sends)."""

from __future__ import annotations

from datetime import timedelta

from config import NotifySettings
from monitor.notify import Dispatcher, make_targets
from storage.archive import Archive
from storage.records import DeliveryStatus, EventPolicy, NotifyTarget
from tests.test_archive import CONTENT, T0, capture

MINUTE = timedelta(minutes=1)


def test_failed_sends_back_off_exponentially_then_give_up(archive: Archive) -> None:
    (closed,) = make_targets(["json://127.0.0.1:1/closed"])  # nothing listens there
    removed = NotifyTarget("no-longer-configured", "json://old.example/hook")
    archive.record_detail(capture(), CONTENT, policy=EventPolicy(alert_to=(closed.record, removed)))
    now = [T0]
    settings = NotifySettings(
        retry_backoff="1m", max_backoff="4m", give_up_after="1h", timeout="2s"
    )
    dispatcher = Dispatcher(archive, (closed,), settings, clock=lambda: now[0])

    done = dispatcher.deliver_due()
    assert (done.delivered, done.failed, done.given_up) == (0, 1, 1)
    (dropped,) = archive.outbox.deliveries(DeliveryStatus.FAILED)
    assert dropped.last_error == "target no longer configured"

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
    assert archive.outbox.counts()[DeliveryStatus.FAILED] == 2
    assert archive.outbox.due(now[0] + timedelta(days=30)) == []
