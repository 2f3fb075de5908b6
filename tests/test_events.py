"""Change events and the alert outbox, on every backend (part of the storage suite)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage import models
from storage.archive import Archive, ArchiveBusy
from storage.records import (
    DeliveryStatus,
    EventKind,
    EventPolicy,
    HealthCondition,
    ListingItem,
    ListingPage,
    NotifyTarget,
    Outcome,
    PageKind,
)
from tests.test_archive import CONTENT, T0, URL, capture

MAIL = NotifyTarget("k-mail", "mailto://ops@example.org")
HOOK = NotifyTarget("k-hook", "json://127.0.0.1/hook")
ALERT = EventPolicy(alert_to=(MAIL, HOOK), removal_after=2)
HOUR = timedelta(hours=1)


def kinds(archive: Archive) -> list[str]:
    return [str(event.kind) for event in reversed(archive.changes())]


def test_schema_matches_the_models_after_migrating(archive: Archive) -> None:
    with archive.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": _not_search_index})
        assert compare_metadata(context, models.Base.metadata) == []


def _not_search_index(name: str | None, kind: str, parents: object) -> bool:
    """The search index (an FTS5 table, a GIN index) lives outside the ORM models."""
    return not (name or "").startswith(("revision_grams", "ix_revision_search_grams"))


def test_new_and_changed_events_queue_one_alert_per_target(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT, policy=ALERT)
    edited = replace(
        CONTENT, title=CONTENT.title + "（更新）", body=CONTENT.body.replace("今天", "昨天")
    )
    archive.record_detail(capture(T0 + HOUR, b"v2"), edited, policy=ALERT)
    archive.record_detail(capture(T0 + 2 * HOUR, b"v2 again"), edited, policy=ALERT)

    changed, new = archive.changes()
    assert (new.kind, new.revision, new.title) == (EventKind.NEW, 1, CONTENT.title)
    assert (changed.kind, changed.revision, changed.previous_revision) == (EventKind.CHANGED, 2, 1)
    assert changed.changed_fields == ("title", "body")
    assert changed.url == URL and changed.occurred_at == T0 + HOUR
    pending = archive.outbox.deliveries(DeliveryStatus.PENDING)
    assert sorted((d.event.id, d.target.key) for d in pending) == sorted(
        (event.id, target.key) for event in (new, changed) for target in (MAIL, HOOK)
    )


def test_baseline_events_are_archived_without_alerts(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT, policy=replace(ALERT, baseline=True))
    (event,) = archive.changes()
    assert event.kind is EventKind.NEW and event.baseline
    assert archive.outbox.deliveries() == []


def test_going_back_to_an_earlier_text_is_a_revert_naming_it(archive: Archive) -> None:
    edited = replace(CONTENT, body="完全不同的内容。")
    archive.record_detail(capture(), CONTENT, policy=ALERT)
    archive.record_detail(capture(T0 + HOUR, b"2"), edited, policy=ALERT)
    archive.record_detail(capture(T0 + 2 * HOUR, b"3"), CONTENT, policy=ALERT)
    latest = archive.changes()[0]
    assert (latest.kind, latest.revision, latest.reverted_to) == (EventKind.REVERTED, 3, 1)


def test_removal_is_concluded_only_after_k_unlisted_gone_checks(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT, policy=ALERT)
    policy = replace(ALERT, removal_after=3)
    for hour in (1, 2):
        archive.record_detail(
            capture(T0 + hour * HOUR, status=404), None, unlisted=True, policy=policy
        )
    assert kinds(archive) == ["new"]
    assert archive.statements()[0].status == "missing"

    archive.record_detail(capture(T0 + 3 * HOUR, status=410), None, unlisted=True, policy=policy)
    archive.record_detail(capture(T0 + 4 * HOUR, status=404), None, unlisted=True, policy=policy)
    assert kinds(archive) == ["new", "removed"]
    removed = archive.changes()[0]
    assert "HTTP 410 on 3 consecutive checks" in (removed.detail or "")
    assert archive.statements()[0].status == "removed"


def test_blocked_failing_or_still_listed_never_count_towards_removal(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT, policy=ALERT)
    at = T0
    for status in (403, 429, 503, None):
        at += HOUR
        archive.record_detail(capture(at, status=status), None, unlisted=True, policy=ALERT)
    for _ in range(3):
        at += HOUR
        archive.record_detail(capture(at, status=404), None, unlisted=False, policy=ALERT)
    assert kinds(archive) == ["new"]


def test_a_statement_back_after_removal_reappears(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT, policy=ALERT)
    for hour in (1, 2):
        archive.record_detail(
            capture(T0 + hour * HOUR, status=404), None, unlisted=True, policy=ALERT
        )
    archive.record_detail(capture(T0 + 3 * HOUR, b"back"), CONTENT, policy=ALERT)
    assert kinds(archive) == ["new", "removed", "reappeared"]
    assert archive.statements()[0].status == "active"
    # A gap in the streak starts the count again.
    archive.record_detail(capture(T0 + 4 * HOUR, status=404), None, unlisted=True, policy=ALERT)
    archive.record_detail(capture(T0 + 5 * HOUR, b"again"), CONTENT, policy=ALERT)
    archive.record_detail(capture(T0 + 6 * HOUR, status=404), None, unlisted=True, policy=ALERT)
    assert kinds(archive)[-1] == "reappeared"


def test_a_soft_404_counts_as_gone(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT, policy=ALERT)
    soft = replace(capture(T0 + HOUR), soft_404=True)
    result = archive.record_detail(
        soft, None, unlisted=True, policy=replace(ALERT, removal_after=1)
    )
    assert result.outcome is Outcome.GONE
    assert "soft 404" in (archive.changes()[0].detail or "")


def test_health_conditions_alert_once_and_then_recover(archive: Archive) -> None:
    raised = archive.raise_condition("china-zh", HealthCondition.BLOCKED, "HTTP 403 x5", T0, ALERT)
    again = archive.raise_condition("china-zh", HealthCondition.BLOCKED, "HTTP 403 x9", T0, ALERT)
    assert raised is not None and again is None
    assert archive.site_state("china-zh").conditions == (HealthCondition.BLOCKED,)
    cleared = archive.clear_condition("china-zh", HealthCondition.BLOCKED, T0 + HOUR, ALERT)
    assert cleared is not None and cleared.kind is EventKind.RECOVERED
    assert archive.clear_condition("china-zh", HealthCondition.BLOCKED, T0, ALERT) is None
    assert kinds(archive) == ["problem", "recovered"]
    assert len(archive.outbox.deliveries()) == 4


def test_first_successful_crawl_ends_the_baseline(archive: Archive) -> None:
    archive.finish_crawl("china-zh", T0, succeeded=False)
    assert archive.site_state("china-zh").baseline_done_at is None
    archive.finish_crawl("china-zh", T0 + HOUR, succeeded=True)
    archive.finish_crawl("china-zh", T0 + 2 * HOUR, succeeded=True)
    state = archive.site_state("china-zh")
    assert (state.baseline_done_at, state.last_success_at) == (T0 + HOUR, T0 + 2 * HOUR)


def test_blocked_crawls_are_counted_in_a_row(archive: Archive) -> None:
    for blocked, streak in ((True, 1), (True, 2), (False, 0), (True, 1)):
        state = archive.finish_crawl("china-zh", T0, succeeded=False, blocked=blocked)
        assert state.blocked_streak == streak
    assert archive.site_state("china-zh").blocked_streak == 1


def test_listing_and_checks_are_remembered_for_the_recheck_policy(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT)
    listing = ListingPage((ListingItem(URL, CONTENT.title),))
    archive.record_listing(capture(T0 + HOUR, kind=PageKind.LISTING, url="https://x/zh/"), listing)
    archive.record_detail(capture(T0 + 2 * HOUR, status=503), None)
    (known,) = archive.known_statements("china-zh")
    assert (known.last_listed_at, known.last_checked_at, known.last_changed_at) == (
        T0 + HOUR,
        T0 + 2 * HOUR,
        T0,
    )


def test_only_one_daemon_may_hold_an_archive(archive: Archive, database_url: str) -> None:
    other = Archive.open(database_url)
    try:
        with (
            archive.exclusive_daemon(),
            pytest.raises(ArchiveBusy, match="another `embassy-watch run`"),
            other.exclusive_daemon(),
        ):
            pass
        with other.exclusive_daemon():  # free again once the first has stopped
            pass
    finally:
        other.close()


def test_outbox_delivery_lifecycle(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT, policy=replace(ALERT, alert_to=(MAIL,)))
    (row,) = archive.outbox.due(T0)
    assert archive.outbox.claim(row.id, T0, lease_until=T0 + HOUR)
    assert not archive.outbox.claim(row.id, T0, lease_until=T0 + HOUR)  # one sender at a time
    assert archive.outbox.due(T0 + HOUR / 2) == []
    # The sender died: once its lease runs out the row is due again.
    assert [d.id for d in archive.outbox.due(T0 + 2 * HOUR)] == [row.id]

    archive.outbox.mark_attempt_failed(row.id, "SMTP 451", retry_at=T0 + 3 * HOUR)
    assert archive.outbox.due(T0 + 2 * HOUR) == []
    (retry,) = archive.outbox.due(T0 + 3 * HOUR)
    assert (retry.attempts, retry.last_error) == (1, "SMTP 451")
    assert archive.outbox.claim(retry.id, T0 + 3 * HOUR, lease_until=T0 + 4 * HOUR)
    archive.outbox.mark_delivered(retry.id, T0 + 3 * HOUR)
    assert archive.outbox.due(T0 + 100 * HOUR) == []
    assert archive.outbox.counts()[DeliveryStatus.DELIVERED] == 1


def test_given_up_deliveries_stay_visible_and_can_be_retried(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT, policy=replace(ALERT, alert_to=(MAIL,)))
    (row,) = archive.outbox.due(T0)
    archive.outbox.mark_attempt_failed(row.id, "target no longer configured", retry_at=None)
    (failed,) = archive.outbox.deliveries(DeliveryStatus.FAILED)
    assert failed.last_error == "target no longer configured"
    assert archive.outbox.retry_failed(T0 + HOUR) == 1
    assert len(archive.outbox.due(T0 + HOUR)) == 1


def test_a_typographic_revision_is_an_event_alerted_only_when_asked(archive: Archive) -> None:
    archive.record_detail(capture(), CONTENT, policy=ALERT)
    restyled = replace(CONTENT, body=CONTENT.body.replace("，", ","))
    archive.record_detail(capture(T0 + HOUR, b"2"), restyled, policy=ALERT)
    archive.record_detail(capture(T0 + 2 * HOUR, b"3"), CONTENT, policy=ALERT)  # and back
    reverted, changed, new = archive.changes()
    assert (changed.kind, changed.changed_fields, changed.change.typographic) == (
        EventKind.CHANGED,
        ("body",),
        True,
    )
    assert (reverted.kind, reverted.reverted_to, reverted.change.typographic) == (
        EventKind.REVERTED,
        1,
        True,
    )
    assert {d.event.id for d in archive.outbox.deliveries()} == {new.id}

    opted_in = replace(ALERT, alert_typographic=True)
    archive.record_detail(capture(T0 + 3 * HOUR, b"4"), restyled, policy=opted_in)
    latest = archive.changes()[0]
    assert latest.change.typographic
    assert sum(d.event.id == latest.id for d in archive.outbox.deliveries()) == 2
    assert [h.change.typographic for h in archive.history(latest.statement_id or 0)] == [
        False,
        True,
        True,
        True,
    ]
