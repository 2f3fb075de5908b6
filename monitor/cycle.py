"""One monitoring cycle of one site: plan what to re-read, crawl, record events, judge health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from config import Settings, SiteSettings
from crawler.report import CrawlPlan, CrawlReport
from crawler.runner import Crawls
from monitor.evidence import Timestamper
from monitor.health import judge, last_crawl_succeeded, looks_blocked, no_recent_success
from storage.archive import MISSING, Archive
from storage.errors import first_line
from storage.records import (
    Capture,
    CrawlStats,
    EventPolicy,
    ExtractionFailure,
    HealthCondition,
    KnownStatement,
    ListingPage,
    NotifyTarget,
    RecordResult,
    StatementContent,
)

log = logging.getLogger(__name__)


def recheck_plan(known: list[KnownStatement], now: datetime, settings: Settings) -> CrawlPlan:
    """Which archived statements to re-read now, by how long ago each last changed.

    A statement is due when its re-check period has passed (less half a cycle, so
    that a period equal to the cycle does not slip to every other cycle), and every
    cycle while its page is missing, so that a take-down is concluded in K cycles.
    """
    schedule = settings.schedule
    slack = timedelta(seconds=schedule.interval / 2)
    due = set()
    for statement in known:
        if statement.last_checked_at is None or statement.status == MISSING:
            due.add(statement.url)
            continue
        age = (now - statement.last_changed_at).total_seconds()
        every = timedelta(seconds=schedule.recheck_every(age))
        if now - statement.last_checked_at >= every - slack:
            due.add(statement.url)
    return CrawlPlan(
        known_titles={statement.url: statement.title for statement in known},
        due=frozenset(due),
        recently_listed=_recently_listed(known, now, schedule.interval),
        last_checked={s.url: s.last_checked_at for s in known if s.last_checked_at is not None},
    )


def _recently_listed(known: list[KnownStatement], now: datetime, interval: float) -> frozenset[str]:
    since = now - timedelta(seconds=2.5 * interval)
    return frozenset(
        s.url for s in known if s.last_listed_at is not None and s.last_listed_at >= since
    )


def crawl_stats(report: CrawlReport, finished: datetime) -> CrawlStats:
    errors = {
        "listing": len(report.listing_errors),
        "fetch": len(report.fetch_errors),
        "extraction": len(report.extraction_failures),
        "blocked": report.blocked_responses,
    }
    return CrawlStats(
        seconds=(finished - report.started_at).total_seconds(),
        pages_fetched=report.listing_pages + report.statements_fetched,
        errors={kind: count for kind, count in errors.items() if count},
    )


@dataclass
class RecordingSink:
    """The crawler's sink for one cycle: the archive, with this cycle's event policy."""

    archive: Archive
    policy: EventPolicy

    def record_listing(self, capture: Capture, page: ListingPage | None) -> None:
        self.archive.record_listing(capture, page)

    def record_detail(
        self,
        capture: Capture,
        extraction: StatementContent | ExtractionFailure | None,
        *,
        unlisted: bool,
    ) -> RecordResult:
        return self.archive.record_detail(
            capture, extraction, unlisted=unlisted, policy=self.policy
        )


@dataclass
class Monitor:
    settings: Settings
    archive: Archive
    crawls: Crawls
    targets: tuple[NotifyTarget, ...]
    timestamper: Timestamper | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _started_at: datetime = field(init=False)
    _crawling: dict[str, datetime] = field(init=False, default_factory=dict)
    # One crawl at a time per server: sites on one host (a mission's languages) take turns,
    # so the host sees one polite stream of requests, not one per site.
    _servers: dict[str, asyncio.Lock] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._started_at = self.clock()

    async def run_cycle(self, site: SiteSettings, *, everything: bool = False) -> CrawlReport:
        """Crawl a site once; `everything` re-reads every archived statement, due or not."""
        now = self.clock()
        known = self.archive.known_statements(site.name)
        if everything:
            plan = CrawlPlan.check_everything({s.url: s.title for s in known})
        else:
            plan = recheck_plan(known, now, self.settings)
        baseline = (
            self.archive.site_state(site.name).baseline_done_at is None
            and not self.settings.schedule.alert_on_first_crawl
        )
        if baseline:
            log.info("%s: first crawl: archiving a baseline, no alerts", site.name)
        sink = RecordingSink(self.archive, self._policy(baseline))
        async with self._servers.setdefault(site.server, asyncio.Lock()):
            log.info(
                "%s: crawl started (%d archived statements, %d due for a re-read)",
                site.name,
                len(known),
                len(plan.due),
            )
            self._crawling[site.name] = self.clock()
            try:
                report = await self.crawls.crawl_site(site, self.settings.crawl, sink, plan)
            finally:
                del self._crawling[site.name]
            log.info("%s: crawl finished", site.name)
        if report.stopped_by_shutdown:
            log.info("%s: crawl stopped for shutdown", site.name)
            return report
        if report.fatal_error:
            return report  # the archive refused a write: nothing more can be recorded
        finished = report.finished_at or self.clock()
        try:
            state = self.archive.finish_crawl(
                site.name,
                finished,
                succeeded=not report.failed,
                blocked=looks_blocked(report),
                stats=crawl_stats(report, finished),
            )
            self._judge_health(site.name, report, state.blocked_streak, finished)
        except SQLAlchemyError as error:
            report.fatal_error = f"cannot write to the archive: {first_line(error)}"
            return report
        self._seal_evidence(site.name)
        return report

    def _seal_evidence(self, site: str) -> None:
        """The cycle's kept raw pages into a hash tree; its timestamps are sent apart."""
        if self.timestamper is None:
            return
        try:
            self.timestamper.seal(site)
        except SQLAlchemyError as error:  # the pages stay unsealed: the next cycle seals them
            log.error("%s: raw pages not sealed for timestamping: %s", site, first_line(error))

    def crawling_sites(self) -> list[str]:
        """The sites this process is crawling now."""
        return list(self._crawling)

    def check_staleness(self, crawling: Mapping[str, datetime] | None = None) -> None:
        """Alert when a site has had no successful crawl for `stale_after` intervals.

        Judged on finished crawls: a site whose last crawl succeeded and whose next one
        is under way waits for that crawl's verdict (a long crawl is no outage), unless
        it has run past `max_duration` and an interval (hung). `crawling` is the crawls
        under way in the whole fleet (site -> since when), when there is one.
        """
        if crawling is None:
            crawling = self._crawling
        now = self.clock()
        limit = timedelta(seconds=self.settings.stale_after_seconds)
        hung_after = timedelta(seconds=self.settings.crawl.max_duration)
        hung_after += timedelta(seconds=self.settings.schedule.interval)
        for site in self.settings.sites:
            state = self.archive.site_state(site.name)
            started = crawling.get(site.name)
            if started is not None and now - started < hung_after and last_crawl_succeeded(state):
                continue
            detail = no_recent_success(state, now, limit, self._started_at)
            if detail is not None:
                self.archive.raise_condition(
                    site.name,
                    HealthCondition.NO_SUCCESSFUL_CRAWL,
                    detail,
                    now,
                    self._policy(baseline=False),
                )

    def _judge_health(
        self, site: str, report: CrawlReport, blocked_streak: int, at: datetime
    ) -> None:
        verdict = judge(report, blocked_streak, self.settings.health)
        policy = self._policy(baseline=False)
        for condition, detail in verdict.raised.items():
            if self.archive.raise_condition(site, condition, detail, at, policy):
                log.warning("%s: problem: %s: %s", site, condition, detail)
        for condition in verdict.cleared:
            if self.archive.clear_condition(site, condition, at, policy):
                log.info("%s: recovered: %s", site, condition)

    def _policy(self, baseline: bool) -> EventPolicy:
        return EventPolicy(
            alert_to=self.targets,
            baseline=baseline,
            removal_after=self.settings.schedule.removal_after,
            alert_typographic=self.settings.notify.typographic,
            wayback=self.settings.evidence.wayback,
        )
