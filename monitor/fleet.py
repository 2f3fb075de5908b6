"""`embassy-watch run` on PostgreSQL: any number of processes share the sites through Procrastinate.

Each process is a Procrastinate worker on the archive's own database (no other service
to run, no setting beyond the URL). The schedule is a chain of jobs per site: a `crawl`
job crawls its site, then defers the site's next crawl one interval later. Procrastinate
runs a job on one worker only; its `lock`, the site's server's, keeps one server's crawls
(a mission's languages) one at a time, and its `queueing_lock` keeps one waiting crawl
per site. The `tend` job, periodic (deferred
once per tick for the whole fleet), gives a dead worker's crawl to the others (its
heartbeat stopped) and starts the chain of a site that has none (a fresh archive, a
site added). A session advisory lock held by the crawling connection fences a site
against a worker declared dead while still alive: it is released only when that
process's connection ends. Alerts go out from every process: an outbox row is claimed
by one conditional UPDATE, which PostgreSQL re-checks on the committed row, so only one
claim of a row can win (storage/outbox.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage import fleet as registry
from storage.errors import first_line

if TYPE_CHECKING:
    from procrastinate.worker import Worker

    from monitor.app import App
    from monitor.daemon import Daemon

log = logging.getLogger(__name__)

CRAWL = registry.CRAWL_TASK
TEND = "tend"
WATCHDOG = "watchdog"
THIN = "thin"
THIN_CRON = "23 4 * * *"  # daily, as the single daemon does
PRUNE_AFTER_STALLS = 3
SCHEMA_LOCK_KEY = 0x656D6266  # pg_advisory_xact_lock while Procrastinate's schema is applied


@dataclass(frozen=True)
class FleetTiming:
    """How fast the fleet notices a dead worker, from the crawl interval."""

    heartbeat: float  # seconds between a worker's heartbeats
    stalled_after: float  # a worker silent this long is dead: its crawls go to the others
    tend_every: int  # whole seconds between two looks for dead workers and unscheduled sites

    @property
    def take_over_within(self) -> float:
        """The longest a dead worker's site waits for another worker (before fetching)."""
        return self.heartbeat + self.stalled_after + self.tend_every


def fleet_timing(interval: float) -> FleetTiming:
    heartbeat = min(max(interval / 10, 1.0), 10.0)
    # Three missed heartbeats, and never under 5 s: a worker whose event loop is briefly
    # busy is not taken for dead (and the advisory-lock fence covers one that is).
    stalled_after = max(3 * heartbeat, 5.0)
    tend_every = int(min(max(interval / 10, 1.0), 60.0))
    return FleetTiming(heartbeat, stalled_after, tend_every)


def is_fleet(database_url: str) -> bool:
    """PostgreSQL archives run as a fleet; SQLite stays one daemon (monitor/daemon.py)."""
    return make_url(database_url).get_backend_name() == "postgresql"


def conninfo(database_url: str) -> str:
    """The SQLAlchemy URL as libpq reads it (psycopg's pool takes no driver name)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def every(seconds: float) -> str:
    """A cron line (with Procrastinate's seconds column) firing about every `seconds`."""
    whole = max(int(seconds), 1)
    if whole < 60:
        return f"* * * * * */{whole}"
    if whole < 3600:
        return f"*/{whole // 60} * * * *"
    return "0 * * * *"


def ensure_schema(database_url: str) -> None:
    """Procrastinate's tables, made by the first worker of a fleet (others wait, then skip)."""
    import psycopg
    from procrastinate.schema import SchemaManager

    with psycopg.connect(conninfo(database_url)) as connection:
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        found = connection.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if found is None or found[0] is None:
            connection.execute(SchemaManager.get_schema().encode())
            log.info("fleet: Procrastinate's job tables created")


class FleetDaemon:
    """The fleet's part of a `run` process: its Procrastinate worker and the fleet's jobs.

    Crawling, alerting and stopping are the single daemon's (`Daemon`); this decides
    which site this process crawls, and when.
    """

    def __init__(self, daemon: Daemon) -> None:
        import procrastinate

        self.daemon = daemon
        self.app: App = daemon.app
        settings = self.app.settings
        self.timing = fleet_timing(settings.schedule.interval)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.sites = {site.name: site for site in settings.sites}
        self.jobs = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=conninfo(settings.database.url), min_size=1, max_size=4
            )
        )
        self.worker: Worker | None = None
        self.worker_id: int | None = None
        self.task: asyncio.Future[None] | None = None
        self.failed = False
        self._left = threading.Event()
        self.leaving = False  # SIGTERM: a crawl cut short is handed to the fleet at once
        self._register_tasks()

    def _register_tasks(self) -> None:
        jobs = self.jobs
        self.crawl_task = jobs.task(name=CRAWL, pass_context=False)(self.crawl)
        tend = jobs.task(name=TEND, queueing_lock=TEND)(self.tend)
        jobs.periodic(cron=every(self.timing.tend_every), periodic_id=TEND)(tend)
        self.tend_task = tend
        watchdog = jobs.task(name=WATCHDOG, lock=WATCHDOG, queueing_lock=WATCHDOG)(self.watchdog)
        jobs.periodic(cron=every(self.app.settings.schedule.interval), periodic_id=WATCHDOG)(
            watchdog
        )
        if self.app.settings.database.thin_observations_after:
            thin = jobs.task(name=THIN, lock=THIN, queueing_lock=THIN)(self.thin)
            jobs.periodic(cron=THIN_CRON, periodic_id=THIN)(thin)
            self.thin_task: Any = thin
        else:
            self.thin_task = None

    # -- the worker -------------------------------------------------------------------------

    def start(self) -> None:
        """Alerts are sent from every process, as the single daemon sends them."""
        daemon = self.daemon
        daemon.scheduler.add_job(
            daemon.deliver,
            "interval",
            id="deliver",
            seconds=self.app.settings.notify.check_every,
            next_run_time=datetime.now(UTC),
        )
        daemon.scheduler.start()
        self.task = asyncio.ensure_future(self._work())

    async def _work(self) -> None:
        from procrastinate.worker import Worker

        try:
            async with self.jobs.open_async():
                self.worker = Worker(
                    self.jobs,
                    name=self.name,
                    concurrency=len(self.sites) + 3,  # every site, tend, watchdog, thin
                    install_signal_handlers=False,  # the reactor has SIGTERM (Daemon.stop)
                    update_heartbeat_interval=self.timing.heartbeat,
                    stalled_worker_timeout=PRUNE_AFTER_STALLS * self.timing.stalled_after,
                    fetch_job_polling_interval=self.timing.heartbeat,
                    delete_jobs="successful",
                )
                running = asyncio.ensure_future(self.worker.run())  # type: ignore[no-untyped-call]
                await self._joined(self.worker, running)
                await running
                if self.worker_id is not None:
                    await asyncio.to_thread(registry.leave, self.app.archive.engine, self.worker_id)
        except Exception as error:  # the database went away: exit, the supervisor restarts us
            log.error("fleet: the worker failed: %s: %s", type(error).__name__, error)
            self.failed = True
            _stop_reactor()
        finally:
            self._left.set()

    async def _joined(self, worker: Worker, running: asyncio.Future[None]) -> None:
        while worker.worker_id is None and not running.done():
            await asyncio.sleep(0.05)
        self.worker_id = worker.worker_id
        if self.worker_id is None:
            return
        now = datetime.now(UTC)
        await asyncio.to_thread(
            registry.join, self.app.archive.engine, self.worker_id, self.name, now
        )
        threading.Thread(target=self._beat, name="fleet-heartbeat", daemon=True).start()
        log.info(
            "fleet: joined as worker %d (%s); a dead worker's sites are taken over within %.0fs",
            self.worker_id,
            self.name,
            self.timing.take_over_within,
        )
        await self._defer_now(self.tend_task)  # schedule the sites without waiting a tick
        if self.thin_task is not None:
            await self._defer_now(self.thin_task)  # thinned at start, as the single daemon does

    def _beat(self) -> None:
        """Heartbeats from a thread of their own: a crawl keeping the event loop busy for a
        while (parsing, writing) must not make a live worker look dead to the fleet."""
        assert self.worker_id is not None
        while not self._left.wait(self.timing.heartbeat):
            try:
                alive = registry.beat(self.app.archive.engine, self.worker_id)
            except Exception as error:  # the database is away: Procrastinate notices too
                log.warning("fleet: heartbeat not recorded: %s", first_line(error))
                continue
            if not alive and not self.leaving:  # its crawls are the others': start again
                log.error("fleet: this worker was counted as dead; leaving the fleet")
                self.failed = True
                self.daemon.loop.call_soon_threadsafe(_stop_reactor)
                return

    async def _defer_now(self, task: Any) -> None:
        from procrastinate.exceptions import AlreadyEnqueued

        with suppress(AlreadyEnqueued):  # another worker's is waiting: one is enough
            await task.defer_async(timestamp=int(datetime.now(UTC).timestamp()))

    async def stop(self) -> None:
        """No new job; the running crawl is closed by the daemon, then the worker leaves."""
        self.leaving = True
        self._left.set()  # no heartbeat once leaving: Procrastinate unregisters the worker
        if self.worker is not None:
            self.worker.stop()  # type: ignore[no-untyped-call]
        try:
            await asyncio.wait_for(self.daemon.crawls.stop(), 20.0)
            if self.task is not None:
                await asyncio.wait_for(asyncio.shield(self.task), 20.0)
        except TimeoutError:
            log.warning("fleet: the worker did not stop in time; its crawls will be taken over")

    # -- the jobs ---------------------------------------------------------------------------

    async def crawl(self, site: str) -> None:
        """One crawl of `site`, then the site's next crawl deferred (to any worker)."""
        settings = self.sites.get(site)
        if settings is None:  # removed from the configuration: its chain ends here
            log.warning("fleet: %s is not in this worker's configuration: not crawled", site)
            return
        if self.leaving:
            await self.schedule(site, datetime.now(UTC))
            return
        if await self._more_than_my_share():
            await self.schedule(site, _later(self.timing.heartbeat))  # for a less busy worker
            return
        with self._fence(site) as held:
            if not held:
                log.warning("fleet: %s is still being crawled by a worker taken for dead", site)
                await self.schedule(site, _later(self.timing.stalled_after))
                return
            await self.daemon.cycle(settings)
        if self.leaving:  # stopped mid-crawl: another worker crawls the site now
            await self.schedule(site, datetime.now(UTC))
            return
        schedule = self.app.settings.schedule
        await self.schedule(site, _later(schedule.interval + random.uniform(0, schedule.jitter)))

    async def _more_than_my_share(self) -> bool:
        """Crawling its share of the sites already (an even split among the live workers)."""
        crawling = len(self.daemon.monitor.crawling_sites())
        if not crawling:
            return False
        engine = self.app.archive.engine
        live = await asyncio.to_thread(registry.live_workers, engine, self.timing.stalled_after)
        return crawling >= math.ceil(len(self.sites) / max(live, 1))

    async def schedule(self, site: str, at: datetime) -> None:
        from procrastinate.exceptions import AlreadyEnqueued

        key = f"{CRAWL}:{site}"
        # The lock is the server's, so across the fleet one server's sites take turns too.
        server = f"{CRAWL}:server:{self.app.settings.site(site).server}"
        job = self.crawl_task.configure(lock=server, queueing_lock=key, schedule_at=at)
        with suppress(AlreadyEnqueued):  # the site's next crawl is already waiting
            await job.defer_async(site=site)

    @contextmanager
    def _fence(self, site: str) -> Iterator[bool]:
        """Hold the site's advisory lock on a connection of this process while crawling it."""
        key = f"embassy-watch {CRAWL}:{site}"
        with self.app.archive.engine.connect() as connection:
            held = bool(
                connection.scalar(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": key})
            )
            connection.commit()
            try:
                yield held
            finally:
                if held:
                    connection.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": key})
                    connection.commit()

    async def tend(self, timestamp: int) -> None:
        """Give the crawls of dead workers to the fleet; start the chain of unscheduled sites."""
        await self._take_over()
        engine = self.app.archive.engine
        scheduled = await asyncio.to_thread(registry.scheduled_sites, engine)
        for name, site in self.sites.items():
            if name not in scheduled:
                await self.schedule(name, self.daemon._first_run(site, datetime.now(UTC)))

    async def _take_over(self) -> None:
        from procrastinate import jobs
        from procrastinate.exceptions import ConnectorException

        manager = self.jobs.job_manager
        # A worker is forgotten well after its jobs are taken over: one pruned while alive
        # could not take jobs any more (it notices at its next heartbeat and leaves).
        await manager.prune_stalled_workers(PRUNE_AFTER_STALLS * self.timing.stalled_after)
        await asyncio.to_thread(registry.forget_departed, self.app.archive.engine)
        stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=self.timing.stalled_after)
        for job in stalled:
            assert job.id is not None
            try:
                await manager.retry_job(job)
            except ConnectorException:
                # Taken over already, or the crawl had deferred its successor before dying:
                # that successor carries the site on; this one is closed.
                with suppress(ConnectorException):
                    await manager.finish_job_by_id_async(job.id, jobs.Status.FAILED, False)
                continue
            log.warning("fleet: took over %s from a worker with no heartbeat", job.call_string)

    async def watchdog(self, timestamp: int) -> None:
        crawling = await asyncio.to_thread(registry.crawling_now, self.app.archive.engine)
        try:
            self.daemon.monitor.check_staleness(crawling)
        except Exception as error:
            log.error("health check failed: %s: %s", type(error).__name__, error)
        self.daemon._deliver_soon()

    async def thin(self, timestamp: int) -> None:
        await self.daemon.thin()


def _stop_reactor() -> None:
    from twisted.internet import reactor as installed
    from twisted.internet.error import ReactorNotRunning

    reactor: Any = installed
    with suppress(ReactorNotRunning):  # stopping already (SIGTERM at the same moment)
        reactor.stop()


def _later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def run_fleet(app: App) -> bool:
    """Run this process as a worker of the archive's fleet until SIGTERM or SIGINT.

    False when the worker failed (the database went away).
    """
    from twisted.internet.defer import Deferred

    from crawler.runner import install_reactor
    from monitor.daemon import Daemon

    install_reactor()
    from twisted.internet import reactor as installed_reactor

    reactor: Any = installed_reactor
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.getLogger("procrastinate").setLevel(logging.WARNING)  # a line per job otherwise
    ensure_schema(app.settings.database.url)
    daemon = Daemon(app, asyncio.get_event_loop())
    fleet = FleetDaemon(daemon)

    async def stop() -> None:
        await fleet.stop()
        await daemon.stop()

    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: Deferred.fromFuture(asyncio.ensure_future(stop()))
    )
    reactor.callWhenRunning(fleet.start)
    reactor.run(installSignalHandlers=True)
    if daemon.still_sending():
        logging.shutdown()  # a hung send: see run_daemon
        os._exit(0 if not fleet.failed else 1)
    return not fleet.failed
