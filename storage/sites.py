"""Per-site state across restarts: crawl totals, the baseline, and raised health conditions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from storage import models
from storage.events import emit, event_record
from storage.mapping import site_state_of
from storage.records import (
    ChangeEvent,
    CrawlStats,
    EventKind,
    EventPolicy,
    HealthCondition,
    SiteState,
)
from storage.sessions import Sessions


class Sites:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def site_state(self, site: str) -> SiteState:
        with self._sessions.reading() as session:
            row = session.get(models.SiteState, site)
            return site_state_of(row) if row else SiteState(site)

    def finish_crawl(
        self,
        site: str,
        at: datetime,
        *,
        succeeded: bool,
        blocked: bool = False,
        stats: CrawlStats | None = None,
    ) -> SiteState:
        """Note a finished crawl; the first successful one ends the site's baseline."""
        with self._sessions.write.begin() as session:
            row = self._site_row(session, site)
            row.last_crawl_at = at
            if stats is not None:
                row.last_crawl_seconds = stats.seconds
                row.crawls_total += 1
                row.pages_fetched_total += stats.pages_fetched
                totals = dict(row.errors_total)
                for kind, count in stats.errors.items():
                    totals[kind] = totals.get(kind, 0) + count
                row.errors_total = totals
            row.blocked_streak = row.blocked_streak + 1 if blocked else 0
            if succeeded:
                row.last_success_at = at
                row.baseline_done_at = row.baseline_done_at or at
            return site_state_of(row)

    def raise_condition(
        self,
        site: str,
        condition: HealthCondition,
        detail: str,
        at: datetime,
        policy: EventPolicy,
    ) -> ChangeEvent | None:
        """Alert once when a health condition starts; None if it was already raised."""
        with self._sessions.write.begin() as session:
            row = self._site_row(session, site)
            if str(condition) in row.conditions:
                return None
            row.conditions = {**row.conditions, str(condition): detail}
            event = emit(
                session, policy, EventKind.PROBLEM, site, at, condition=condition, detail=detail
            )
            return event_record(event)

    def clear_condition(
        self, site: str, condition: HealthCondition, at: datetime, policy: EventPolicy
    ) -> ChangeEvent | None:
        """Alert that a raised condition has cleared; None if it was not raised."""
        with self._sessions.write.begin() as session:
            row = self._site_row(session, site)
            if str(condition) not in row.conditions:
                return None
            detail = row.conditions[str(condition)]
            row.conditions = {k: v for k, v in row.conditions.items() if k != str(condition)}
            event = emit(
                session,
                policy,
                EventKind.RECOVERED,
                site,
                at,
                condition=condition,
                detail=f"was: {detail}",
            )
            return event_record(event)

    def _site_row(self, session: Session, site: str) -> models.SiteState:
        row = session.get(models.SiteState, site)
        if row is None:
            row = models.SiteState(
                site=site,
                conditions={},
                blocked_streak=0,
                crawls_total=0,
                pages_fetched_total=0,
                errors_total={},
            )
            session.add(row)
        return row
