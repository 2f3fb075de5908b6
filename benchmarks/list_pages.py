"""Listing pages on a large archive (not part of the test run).

    .venv/bin/python benchmarks/list_pages.py [--statements 35000] [--no-postgres]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

Builds an archive of STATEMENTS statements (default 35,000) on SQLite and, unless
--no-postgres, on a fresh PostgreSQL database: two sites, a fifth of the statements
edited once (two revisions), some missing or removed, five tags, one event per revision
plus a take-down event for each removed statement. Rows are written in bulk through the
real schema (migrations, search triggers and indexes; PostgreSQL then `ANALYZE`d, as
autovacuum would). Then each list the API, the pages and the CLI show is read through the
same `Archive` call they make: the first page, a deep page and a filtered page, each with
its total where the list shows one. Prints the median wall and CPU time (this process's
CPU: on PostgreSQL the server's work shows in the wall time only) of 30 reads each (`--reads`).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.archive_queries import postgres
from storage import models
from storage.archive import Archive
from storage.records import EventFilter, EventKind, StatementFilter, StatementOrder

START = datetime(2020, 1, 1, tzinfo=UTC)
BATCH = 5_000
READS = 30
PAGE = 50  # the pages' size and the API's default
SITES = ("china-zh", "china-en")
TAGS = ("新闻", "声明", "香港", "人权", "贸易")
RARE_TAG = "贸易"  # on one statement in 50: a filter that keeps few


def _statement(sid: int) -> dict[str, object]:
    status = "removed" if sid % 101 == 0 else "missing" if sid % 53 == 0 else "active"
    return {
        "id": sid,
        "site": SITES[sid % 2],
        "post_id": sid,
        "url": f"https://china.usembassy-china.org.cn/zh/statement-{sid}/",
        "language": "zh",
        "status": status,
        "first_seen_at": START + timedelta(minutes=sid),
        "last_seen_at": START + timedelta(minutes=sid),
        "gone_streak": 0,
    }


def _tags(sid: int) -> list[str]:
    tags = [TAGS[sid % 4]]
    return [*tags, RARE_TAG] if sid % 50 == 0 else tags


def _revision(sid: int, number: int) -> dict[str, object]:
    # Later statements changed later, edits come days after: a varied last-changed order.
    observed = START + timedelta(minutes=sid) + timedelta(days=(number - 1) * (sid % 40 + 1))
    return {
        "statement_id": sid,
        "number": number,
        "observed_at": observed,
        "content_hash": f"{sid:032x}{number:032x}",
        "changed_fields": ["body"] if number > 1 else [],
        "typographic_fields": [],
        "url": f"https://china.usembassy-china.org.cn/zh/statement-{sid}/",
        "language": "zh",
        "post_id": sid,
        "title": f"关于第 {sid} 号事项的新闻声明",
        "published_at": START - timedelta(days=sid % 3000),
        "body": f"第 {sid} 号声明的正文，第 {number} 版。" * 8,
        "tags": _tags(sid),
        "categories": ["新闻"],
        "extractor_version": "bench",
    }


def _events(sid: int, revisions: int) -> list[dict[str, object]]:
    events = []
    for number in range(1, revisions + 1):
        row = _revision(sid, number)
        events.append(
            {
                "site": SITES[sid % 2],
                "kind": str(EventKind.NEW if number == 1 else EventKind.CHANGED),
                "occurred_at": row["observed_at"],
                "statement_id": sid,
                "url": row["url"],
                "title": row["title"],
                "revision": number,
                "previous_revision": number - 1 if number > 1 else None,
                "changed_fields": row["changed_fields"],
                "typographic_fields": [],
                "baseline": number == 1 and sid < 1000,
            }
        )
    if sid % 101 == 0:
        events.append({**events[-1], "kind": str(EventKind.REMOVED), "changed_fields": []})
    return events


def build(archive: Archive, statements: int) -> float:
    started = time.perf_counter()
    tables = {models.Statement: [], models.Revision: [], models.ChangeEvent: []}
    for sid in range(1, statements + 1):
        revisions = 2 if sid % 5 == 0 else 1
        tables[models.Statement].append(_statement(sid))
        tables[models.Revision] += [_revision(sid, n) for n in range(1, revisions + 1)]
        tables[models.ChangeEvent] += _events(sid, revisions)
    with archive.engine.begin() as connection:
        for table, rows in tables.items():
            for start in range(0, len(rows), BATCH):
                connection.execute(insert(table), rows[start : start + BATCH])
        if archive.engine.dialect.name == "postgresql":
            connection.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


def lists(archive: Archive, statements: int) -> dict[str, Callable[[], object]]:
    """Each list as its route reads it: the page's rows and, where shown, the total."""
    deep = statements - 1000  # the API's offset, the page's position: near the end

    def api(where: StatementFilter, offset: int) -> object:
        return archive.statement_page(where, limit=PAGE, offset=offset)

    def web(where: StatementFilter, offset: int) -> object:
        order = StatementOrder.LAST_CHANGED
        return archive.statement_page(where, order=order, limit=PAGE, offset=offset)

    def events(where: EventFilter, before: int | None = None, limit: int = PAGE) -> object:
        return archive.event_page(where, before=before, limit=limit)

    oldest_event = archive.counts()["events"] // 50  # an event id near the end of the list
    every = StatementFilter()
    filtered = StatementFilter(site=SITES[0], status="active", tag=RARE_TAG)
    return {
        "/api/statements: first page": lambda: api(every, 0),
        f"/api/statements: offset {deep:,}": lambda: api(every, deep),
        "/api/statements: site+status+tag": lambda: api(filtered, 0),
        "/ (page): first page": lambda: web(every, 0),
        f"/ (page): offset {deep:,}": lambda: web(every, deep),
        "/ (page): site+status+tag": lambda: web(filtered, 0),
        "statements --site (CLI, every row)": lambda: archive.statements(
            StatementFilter(site=SITES[0])
        ),
        "/api/changes: first 100": lambda: archive.changes(limit=100),
        "/api/changes: site, since": lambda: archive.changes(
            site=SITES[1], since=START + timedelta(days=30), limit=100
        ),
        "/changes (page): first page": lambda: events(EventFilter()),
        "/changes (page): an old page": lambda: events(EventFilter(), before=oldest_event),
        "/changes (page): kind=removed": lambda: events(EventFilter(kinds=(EventKind.REMOVED,))),
        # Reading many missions: a mission or language is a set of sites (monitor/missions.py).
        "archive.sites() (each mission-aware page)": archive.sites,
        "/ (page): mission=china&language=zh": lambda: web(StatementFilter(sites=SITES[:1]), 0),
        "/ (page): mission=china, from/to a month": lambda: web(
            StatementFilter(
                sites=SITES,
                changed_from=START + timedelta(days=5),
                changed_to=START + timedelta(days=35),
            ),
            0,
        ),
        "/changes (page): mission=china, from/to a month": lambda: events(
            EventFilter(
                sites=SITES,
                since=START + timedelta(days=5),
                until=START + timedelta(days=35),
            )
        ),
    }


def measure(call: Callable[[], object], reads: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds over `reads` reads, after one to warm caches."""
    call()
    walls, cpus = [], []
    for _ in range(reads):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def run(name: str, url: str, statements: int, reads: int) -> list[str]:
    archive = Archive.open(url)
    try:
        built = build(archive, statements)
        counts = archive.counts()
        print(
            f"{name}: {counts['statements']:,} statements, {counts['revisions']:,} revisions, "
            f"{counts['events']:,} events written in {built:.0f} s",
            file=sys.stderr,
        )
        rows = []
        for label, call in lists(archive, statements).items():
            wall, cpu = measure(call, reads)
            rows.append(f"| {name} | {label} | {wall:.1f} | {cpu:.1f} |")
            print(rows[-1], file=sys.stderr)
        return rows
    finally:
        archive.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=35_000)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--reads", type=int, default=READS)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += run("SQLite", f"sqlite:///{Path(tmp) / 'archive.db'}", args.statements, args.reads)
    if not args.no_postgres:
        with postgres(args.postgres) as url:
            rows += run("PostgreSQL", url, args.statements, args.reads)
    print(
        f"{args.statements:,} statements; {platform.machine()}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    print("| backend | list | median wall ms | median CPU ms |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
