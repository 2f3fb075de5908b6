"""Health at a glance: one judgement shared by `embassy-watch status`, /healthz and /metrics.

Read from the archive alone, so it is the same whichever process asks (the daemon,
`serve`, or a shell on the host) and it survives restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from config import Settings
from monitor.fleet import fleet_timing
from storage.archive import Archive
from storage.fleet import FleetMember, read_fleet
from storage.records import SiteState, Tallies

# An alert waiting longer than this many outbox checks (and at least 10 minutes) is late.
LATE_AFTER_CHECKS = 10
MIN_LATE = timedelta(minutes=10)


@dataclass(frozen=True)
class SiteHealth:
    state: SiteState
    stale_limit: timedelta  # no successful crawl for longer than this: unhealthy

    @property
    def never_crawled(self) -> bool:
        return self.state.last_crawl_at is None


@dataclass(frozen=True)
class WorkerHealth:
    """A `run` process of a PostgreSQL fleet, as its heartbeat shows it."""

    member: FleetMember
    alive: bool  # heard from within the time after which its crawls are taken over


@dataclass(frozen=True)
class Health:
    checked_at: datetime
    sites: tuple[SiteHealth, ...]
    tallies: Tallies
    problems: tuple[str, ...]
    workers: tuple[WorkerHealth, ...] = ()  # the fleet (PostgreSQL); none on SQLite

    @property
    def healthy(self) -> bool:
        return not self.problems


def read_health(archive: Archive, settings: Settings, now: datetime) -> Health:
    tallies = archive.tallies()
    states = {state.site: state for state in tallies.sites}
    stale_limit = timedelta(seconds=settings.stale_after_seconds)
    sites = tuple(
        SiteHealth(states.get(name, SiteState(site=name)), stale_limit)
        for name in settings.site_names
    )
    problems = [problem for site in sites for problem in _site_problems(site, now)]
    failed = tallies.outbox.get("failed", 0)
    if failed:
        problems.append(f"{failed} alert(s) given up (see `embassy-watch outbox --status failed`)")
    late = max(MIN_LATE, timedelta(seconds=settings.notify.check_every * LATE_AFTER_CHECKS))
    if tallies.oldest_waiting_at is not None and now - tallies.oldest_waiting_at > late:
        waited = _elapsed(now - tallies.oldest_waiting_at)
        problems.append(f"an alert has waited {waited} to be delivered")
    return Health(now, sites, tallies, tuple(problems), _workers(archive, settings, now))


def _workers(archive: Archive, settings: Settings, now: datetime) -> tuple[WorkerHealth, ...]:
    silent_after = timedelta(seconds=fleet_timing(settings.schedule.interval).stalled_after)
    return tuple(
        WorkerHealth(member, now - member.last_heartbeat <= silent_after)
        for member in read_fleet(archive.engine)
    )


def _site_problems(site: SiteHealth, now: datetime) -> list[str]:
    state = site.state
    if site.never_crawled:
        return []  # the first crawl is still to come (or running): nothing to judge yet
    problems = [f"{state.site}: {condition}" for condition in state.conditions]
    since = state.last_success_at
    if since is None:
        problems.append(f"{state.site}: no successful crawl yet")
    elif now - since > site.stale_limit:
        problems.append(
            f"{state.site}: no successful crawl for {_elapsed(now - since)}"
            f" (limit {_elapsed(site.stale_limit)})"
        )
    return problems


def _elapsed(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d"
