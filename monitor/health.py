"""Health of a watched site, judged from each crawl: what to raise and what has cleared."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from config import HealthSettings
from crawler.report import CrawlReport
from storage.records import HealthCondition, Outcome, SiteState

MIN_PAGES_FOR_EXTRACTION_VERDICT = 3


@dataclass(frozen=True)
class Verdict:
    """Conditions a crawl shows (with why) and conditions it shows to be over."""

    raised: dict[HealthCondition, str]
    cleared: frozenset[HealthCondition]


def judge(report: CrawlReport, blocked_streak: int, settings: HealthSettings) -> Verdict:
    raised: dict[HealthCondition, str] = {}
    cleared: set[HealthCondition] = set()

    if blocked_streak >= settings.blocked_after:
        raised[HealthCondition.BLOCKED] = (
            f"{report.blocked_responses} answers of 403/429 in each of the last "
            f"{blocked_streak} crawls: the site may be refusing us"
        )
    elif not looks_blocked(report):
        cleared.add(HealthCondition.BLOCKED)

    empty = report.listing_empty
    if empty is not None or (report.listing_pages and not report.statements_listed):
        raised[HealthCondition.LISTING_EMPTY] = str(empty or "no statements listed")
    elif report.statements_listed:
        cleared.add(HealthCondition.LISTING_EMPTY)

    failed = report.outcomes[Outcome.EXTRACTION_FAILED]
    extracted = failed + sum(
        report.outcomes[o] for o in (Outcome.NEW, Outcome.CHANGED, Outcome.UNCHANGED)
    )
    if extracted >= MIN_PAGES_FOR_EXTRACTION_VERDICT:
        if failed / extracted >= settings.extraction_failure_ratio:
            raised[HealthCondition.EXTRACTION_FAILING] = (
                f"{failed} of {extracted} statement pages could not be read "
                "(has the site's theme changed?)"
            )
        else:
            cleared.add(HealthCondition.EXTRACTION_FAILING)

    if not report.failed:
        cleared.add(HealthCondition.NO_SUCCESSFUL_CRAWL)
    return Verdict(raised, frozenset(cleared))


def looks_blocked(report: CrawlReport) -> bool:
    """Refused outright: the listing or at least half of what was fetched answered 403/429."""
    if not report.blocked_responses:
        return False
    fetched = report.statements_fetched + report.listing_pages
    return report.listing_blocked or report.blocked_responses * 2 >= max(fetched, 1)


def no_recent_success(
    state: SiteState, now: datetime, limit: timedelta, watching_since: datetime
) -> str | None:
    """Why a site counts as having had no successful crawl for too long, or None.

    Judged on the crawls the archive recorded as finished, so the verdict is the same
    before and after a restart; the caller leaves out a site whose crawl is running.
    A site never crawled successfully is judged from when watching began.
    """
    if state.last_crawl_at is None:
        return None  # never tried yet: nothing to judge
    since = state.last_success_at
    if now - (since or watching_since) <= limit:
        return None
    if since is None:
        return "no successful crawl ever"
    return f"no successful crawl since {since.isoformat(timespec='seconds')}"


def last_crawl_succeeded(state: SiteState) -> bool:
    return state.last_crawl_at is not None and state.last_success_at == state.last_crawl_at
