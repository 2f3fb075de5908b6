"""The fleet as the database knows it (PostgreSQL only): live workers and the sites they hold.

Procrastinate's tables say which worker is alive (its heartbeat) and which crawl job
each is running; `fleet_worker` says which machine and process each worker is.
Every function answers "no fleet" on SQLite or before a fleet first ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, insert, text

from storage import models

CRAWL_TASK = "crawl"  # the Procrastinate task that crawls one site (monitor/fleet.py)

_MEMBERS = text(
    """
    SELECT w.id, coalesce(f.name, 'worker ' || w.id), f.started_at, w.last_heartbeat,
           coalesce(array_agg(j.args->>'site' ORDER BY j.args->>'site')
                    FILTER (WHERE j.id IS NOT NULL), '{}')
      FROM procrastinate_workers w
      LEFT JOIN fleet_worker f ON f.id = w.id
      LEFT JOIN procrastinate_jobs j
             ON j.worker_id = w.id AND j.status = 'doing' AND j.task_name = :task
     GROUP BY w.id, f.name, f.started_at
     ORDER BY w.id
    """
)
_CRAWLING = text(
    """
    SELECT j.args->>'site', max(e.at)
      FROM procrastinate_jobs j
      JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'started'
     WHERE j.status = 'doing' AND j.task_name = :task
     GROUP BY 1
    """
)
_SCHEDULED = text(
    "SELECT DISTINCT args->>'site' FROM procrastinate_jobs"
    " WHERE task_name = :task AND status IN ('todo', 'doing')"
)


@dataclass(frozen=True)
class FleetMember:
    """A `run` process of the fleet and the sites it is crawling now."""

    id: int  # Procrastinate's worker id
    name: str  # host:pid
    started_at: datetime | None
    last_heartbeat: datetime
    crawling: tuple[str, ...]


def has_fleet(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    return connection.scalar(text("SELECT to_regclass('procrastinate_workers')")) is not None


def read_fleet(engine: Engine) -> tuple[FleetMember, ...]:
    """Every registered worker (a killed one until the fleet notices), oldest first."""
    with engine.connect() as connection:
        if not has_fleet(connection):
            return ()
        rows = connection.execute(_MEMBERS, {"task": CRAWL_TASK}).all()
    return tuple(
        FleetMember(
            id=row[0],
            name=row[1],
            started_at=row[2].replace(tzinfo=UTC) if row[2] else None,
            last_heartbeat=row[3],
            crawling=tuple(row[4]),
        )
        for row in rows
    )


def crawling_now(engine: Engine) -> dict[str, datetime]:
    """Site -> when its crawl began, for each site some worker of the fleet is crawling."""
    with engine.connect() as connection:
        if not has_fleet(connection):
            return {}
        rows = connection.execute(_CRAWLING, {"task": CRAWL_TASK}).all()
    return {site: at for site, at in rows}


def scheduled_sites(engine: Engine) -> set[str]:
    """Sites with a crawl waiting or running: the others must be scheduled again."""
    with engine.connect() as connection:
        return set(connection.scalars(_SCHEDULED, {"task": CRAWL_TASK}))


def live_workers(engine: Engine, within_seconds: float) -> int:
    """How many workers were heard from in the last `within_seconds`."""
    with engine.connect() as connection:
        return int(
            connection.scalar(
                text(
                    "SELECT count(*) FROM procrastinate_workers"
                    " WHERE last_heartbeat > now() - make_interval(secs => :s)"
                ),
                {"s": within_seconds},
            )
            or 0
        )


def join(engine: Engine, worker_id: int, name: str, at: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(models.FleetWorker).values(id=worker_id, name=name, started_at=at)
        )


def leave(engine: Engine, worker_id: int) -> None:
    with engine.begin() as connection:
        connection.execute(delete(models.FleetWorker).where(models.FleetWorker.id == worker_id))


def beat(engine: Engine, worker_id: int) -> bool:
    """A worker's heartbeat; False when the fleet has already counted it as dead."""
    with engine.begin() as connection:
        result = connection.execute(
            text("UPDATE procrastinate_workers SET last_heartbeat = now() WHERE id = :id"),
            {"id": worker_id},
        )
        return bool(result.rowcount)


def forget_departed(engine: Engine) -> int:
    """Drop the rows of workers Procrastinate no longer knows (killed, then pruned)."""
    with engine.begin() as connection:
        result = connection.execute(
            text("DELETE FROM fleet_worker WHERE id NOT IN (SELECT id FROM procrastinate_workers)")
        )
        return int(result.rowcount)
