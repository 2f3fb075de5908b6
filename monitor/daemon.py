"""`embassy-watch run`: crawl cycles on a schedule and alert delivery, in one process.

Scrapy and APScheduler share Twisted's asyncio reactor (tech-notes section 1):
crawls are coroutine jobs on an AsyncIOScheduler; alert sending, which blocks,
runs on one thread per alert target, so a hung service delays only its own
alerts. SIGTERM/SIGINT stop new work, close the running crawl (each page is
recorded whole or not at all) and exit well within 30 seconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import random
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from config import SiteSettings
from crawler.runner import Crawls, install_reactor
from monitor.app import App
from monitor.notify import Round, sends_abandoned_in_flight

log = logging.getLogger(__name__)

MAX_STARTUP_STAGGER_SECONDS = 60.0
CRAWL_STOP_GRACE_SECONDS = 20.0
DELIVERY_STOP_GRACE_SECONDS = 5.0
THIN_EVERY_SECONDS = 86400.0


class Daemon:
    def __init__(self, app: App, loop: asyncio.AbstractEventLoop) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self.app = app
        self.loop = loop
        self.crawls = Crawls()
        self.monitor = app.monitor(self.crawls)
        self.dispatcher = app.dispatcher()
        self.timestamper = app.timestamper()
        self.archivist = app.archivist()
        # Reads the outbox and starts each target's sends (on the dispatcher's lanes).
        self.round_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-rounds")
        self.scheduler = AsyncIOScheduler(
            event_loop=loop,
            timezone=UTC,
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )

    def start(self) -> None:
        schedule = self.app.settings.schedule
        now = datetime.now(UTC)
        sites = self.app.settings.sites
        stagger = min(schedule.interval / len(sites), MAX_STARTUP_STAGGER_SECONDS)
        for index, site in enumerate(sites):
            first = self._first_run(site, now + timedelta(seconds=index * stagger))
            self.scheduler.add_job(
                self.cycle,
                "interval",
                args=[site],
                id=f"crawl:{site.name}",
                seconds=schedule.interval,
                jitter=schedule.jitter or None,
                next_run_time=first,
            )
            log.info("%s: first crawl at %s", site.name, first.isoformat(timespec="seconds"))
        self.scheduler.add_job(
            self.deliver,
            "interval",
            id="deliver",
            seconds=self.app.settings.notify.check_every,
            next_run_time=now,
        )
        if self.timestamper.enabled:
            self.scheduler.add_job(
                self.stamp,
                "interval",
                id="stamp",
                seconds=self.app.settings.evidence.check_every,
                next_run_time=now,
            )
        if self.archivist.enabled:
            self.scheduler.add_job(
                self.capture,
                "interval",
                id="wayback",
                seconds=self.app.settings.evidence.check_every,
                next_run_time=now,
            )
        self.scheduler.add_job(
            self.watch_health, "interval", id="watchdog", seconds=schedule.interval
        )
        if self.app.settings.database.thin_observations_after:
            self.scheduler.add_job(
                self.thin, "interval", id="thin", seconds=THIN_EVERY_SECONDS, next_run_time=now
            )
        self.scheduler.start()
        log.info(
            "watching %d site(s) every %s, alerting %d target(s)",
            len(sites),
            _duration(schedule.interval),
            len(self.dispatcher.targets),
        )

    def _first_run(self, site: SiteSettings, earliest: datetime) -> datetime:
        """No burst at start-up: a site crawled recently waits for its next turn."""
        last = self.app.archive.site_state(site.name).last_crawl_at
        if last is None:
            return earliest
        turn = last + timedelta(seconds=self.app.settings.schedule.interval)
        return max(earliest, turn + timedelta(seconds=random.uniform(0, 1)))

    async def cycle(self, site: SiteSettings) -> None:
        try:
            report = await self.monitor.run_cycle(site)
        except Exception as error:  # a cycle's failure must not stop the service
            log.error("%s: crawl cycle failed: %s: %s", site.name, type(error).__name__, error)
            return
        for problem in report.problems[:10]:
            log.warning("%s: %s", site.name, problem)
        for hint_error in report.hint_errors[:3]:
            log.warning("%s: hint source not read: %s", site.name, hint_error)
        log.info("%s", report.summary_line())
        self._stamp_soon()
        self._soon("wayback")
        took = (report.finished_at or report.started_at) - report.started_at
        if took.total_seconds() > self.app.settings.schedule.interval:
            # APScheduler skips the runs that fell due meanwhile (quietly: see run_daemon).
            log.warning(
                "%s: the crawl took %.1fs, longer than the %s interval: crawls run back to back",
                site.name,
                took.total_seconds(),
                _duration(self.app.settings.schedule.interval),
            )
        self._deliver_soon()

    async def watch_health(self) -> None:
        try:
            self.monitor.check_staleness()
        except Exception as error:
            log.error("health check failed: %s: %s", type(error).__name__, error)
        self._deliver_soon()

    async def deliver(self) -> None:
        try:
            lanes = await asyncio.wrap_future(self.round_thread.submit(self.dispatcher.start_round))
        except Exception as error:  # the database went away; the next round retries
            log.error("alert delivery failed: %s: %s", type(error).__name__, error)
            return
        for lane in lanes:
            lane.add_done_callback(_log_round)

    async def thin(self) -> None:
        try:
            # Off the event loop: a big first thinning must not stall crawls or alerts.
            forgotten = await asyncio.to_thread(
                self.app.thin_observations, cancelled=self.dispatcher.stopping.is_set
            )
        except Exception as error:  # the next day's run tries again
            log.error("thinning repeated fetches failed: %s: %s", type(error).__name__, error)
            return
        if forgotten:
            log.info("forgot %d repeated fetches (first and last of each run kept)", forgotten)

    async def stamp(self) -> None:
        try:
            # Off the event loop: a TSA that answers slowly must not stall crawls or alerts.
            await asyncio.to_thread(self.timestamper.stamp_due, self.dispatcher.stopping.is_set)
        except Exception as error:  # the database went away; the requests stay queued
            log.error("timestamp requests failed: %s: %s", type(error).__name__, error)

    async def capture(self) -> None:
        try:
            # Off the event loop: the Archive answering slowly must not stall crawls or alerts.
            done = await asyncio.to_thread(self.archivist.work_due, self.dispatcher.stopping.is_set)
        except Exception as error:  # the database went away; the captures stay queued
            log.error("wayback captures failed: %s: %s", type(error).__name__, error)
            return
        if done:
            log.info("%s", done.summary_line())

    def _soon(self, job_id: str) -> None:
        job = self.scheduler.get_job(job_id)
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    def _stamp_soon(self) -> None:
        job = self.scheduler.get_job("stamp")
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    def _deliver_soon(self) -> None:
        job = self.scheduler.get_job("deliver")
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    async def stop(self) -> None:
        log.info("stopping: no new crawls; closing the running crawl")
        self.scheduler.pause()
        self.dispatcher.stopping.set()
        try:
            await asyncio.wait_for(self.crawls.stop(), CRAWL_STOP_GRACE_SECONDS)
        except TimeoutError:
            log.warning("the running crawl did not close in time; stopping anyway")
        sending = self.dispatcher.sending()
        if sending:
            _, unfinished = await asyncio.to_thread(
                concurrent.futures.wait, sending, DELIVERY_STOP_GRACE_SECONDS
            )
            if unfinished:
                log.warning("an alert was being sent; it will be retried after restart")
        self.scheduler.shutdown(wait=False)
        self.dispatcher.shutdown()
        self.round_thread.shutdown(wait=False, cancel_futures=True)
        log.info("stopped")

    def still_sending(self) -> bool:
        return bool(self.dispatcher.sending()) or sends_abandoned_in_flight()


def _log_round(lane: Future[Round]) -> None:
    """A target's round is over (on its lane's thread)."""
    if lane.cancelled():
        return
    error = lane.exception()
    if error is not None:  # the database went away; the next round retries
        log.error("alert delivery failed: %s: %s", type(error).__name__, error)
    elif done := lane.result():
        log.info("%s", done.summary_line())


def run_daemon(app: App) -> None:
    """Run until SIGTERM or SIGINT."""
    install_reactor()
    from twisted.internet import reactor as installed_reactor
    from twisted.internet.defer import Deferred

    reactor: Any = installed_reactor
    # A run skipped because the previous one is still going is expected, not a warning.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    daemon = Daemon(app, asyncio.get_event_loop())
    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: Deferred.fromFuture(asyncio.ensure_future(daemon.stop()))
    )
    reactor.callWhenRunning(daemon.start)
    reactor.run(installSignalHandlers=True)
    if daemon.still_sending():
        # A send is hung past its grace period; Python would wait for its thread at exit.
        # Its outbox row stays claimed and is retried after the lease: nothing is lost.
        logging.shutdown()
        os._exit(0)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
