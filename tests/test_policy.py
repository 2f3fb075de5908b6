"""The re-check policy and the health verdicts, table-driven."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from config import HealthSettings, Settings
from crawler.report import CrawlReport, FaultKind, PageFault
from monitor.cycle import recheck_plan
from monitor.health import judge
from storage.records import HealthCondition, KnownStatement, Outcome

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)
SETTINGS = Settings.model_validate(
    {
        "schedule": {
            "interval": "15m",
            "recheck": {"3h": 0, "1d": "1h", "7d": "3h", "30d": "1d"},
            "recheck_floor": "7d",
        }
    }
)


def known(
    changed_ago: timedelta,
    checked_ago: timedelta | None,
    listed_ago: timedelta | None = None,
    status: str = "active",
) -> KnownStatement:
    return KnownStatement(
        url="u",
        title="t",
        status=status,
        last_changed_at=NOW - changed_ago,
        last_checked_at=NOW - checked_ago if checked_ago is not None else None,
        last_listed_at=NOW - listed_ago if listed_ago is not None else None,
    )


@pytest.mark.parametrize(
    ("changed_ago", "checked_ago", "due"),
    [
        (H, timedelta(minutes=1), True),  # young: every cycle
        (5 * H, 30 * timedelta(minutes=1), False),  # under a day: hourly
        (5 * H, 55 * timedelta(minutes=1), True),  # ... with half a cycle of slack
        (3 * D, 2 * H, False),  # under a week: every 3 hours
        (3 * D, 3 * H, True),
        (20 * D, 20 * H, False),  # under a month: daily
        (20 * D, 25 * H, True),
        (400 * D, 6 * D, False),  # old: the weekly floor, never dropped
        (400 * D, 7 * D, True),
        (400 * D, None, True),  # never checked since the upgrade
    ],
)
def test_statements_are_due_by_how_recently_they_changed(
    changed_ago: timedelta, checked_ago: timedelta | None, due: bool
) -> None:
    plan = recheck_plan([known(changed_ago, checked_ago)], NOW, SETTINGS)
    assert ("u" in plan.due) is due


def test_a_missing_statement_is_read_every_cycle_until_its_removal_is_concluded() -> None:
    plan = recheck_plan([known(400 * D, timedelta(minutes=15), status="missing")], NOW, SETTINGS)
    assert plan.due == {"u"}
    removed = recheck_plan([known(400 * D, timedelta(minutes=15), status="removed")], NOW, SETTINGS)
    assert removed.due == frozenset()  # concluded: back to the slow floor (to see it reappear)


def test_statements_listed_lately_are_remembered_to_catch_them_dropping_off() -> None:
    plan = recheck_plan([known(400 * D, H, listed_ago=20 * timedelta(minutes=1))], NOW, SETTINGS)
    assert plan.recently_listed == {"u"} and plan.due == frozenset()
    stale = recheck_plan([known(400 * D, H, listed_ago=2 * D)], NOW, SETTINGS)
    assert stale.recently_listed == frozenset()


def report(**fields: object) -> CrawlReport:
    values: dict[str, object] = {
        "site": "s",
        "started_at": NOW,
        "finished_at": NOW,
        "finish_reason": "finished",
        "listing_pages": 3,
        "statements_listed": 24,
    }
    values.update(fields)
    return CrawlReport(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("crawl", "streak", "raised", "cleared"),
    [
        (
            report(outcomes=Counter({Outcome.UNCHANGED: 24})),
            0,
            set(),
            {"blocked", "listing-empty", "extraction-failing", "no-successful-crawl"},
        ),
        (
            report(
                statements_listed=0, listing_errors=[PageFault("u", FaultKind.LISTING_EMPTY, 200)]
            ),
            0,
            {"listing-empty"},
            {"blocked"},
        ),
        (
            report(outcomes=Counter({Outcome.EXTRACTION_FAILED: 20, Outcome.UNCHANGED: 4})),
            0,
            {"extraction-failing"},
            {"blocked", "listing-empty", "no-successful-crawl"},
        ),
        (
            report(outcomes=Counter({Outcome.EXTRACTION_FAILED: 2})),
            0,
            set(),
            {"blocked", "listing-empty", "no-successful-crawl"},
        ),  # too few pages to judge
        (
            report(
                listing_pages=0,
                statements_listed=0,
                blocked_responses=1,
                listing_errors=[PageFault("u", FaultKind.HTTP_STATUS, 403)],
            ),
            1,
            set(),
            set(),
        ),
        (
            report(
                listing_pages=0,
                statements_listed=0,
                blocked_responses=1,
                listing_errors=[PageFault("u", FaultKind.HTTP_STATUS, 429)],
            ),
            2,
            {"blocked"},
            set(),
        ),
    ],
)
def test_health_verdicts(
    crawl: CrawlReport, streak: int, raised: set[str], cleared: set[str]
) -> None:
    verdict = judge(crawl, streak, HealthSettings(blocked_after=2))
    assert {str(c) for c in verdict.raised} == raised
    assert {str(c) for c in verdict.cleared} == cleared
    assert all(isinstance(c, HealthCondition) for c in verdict.raised)
