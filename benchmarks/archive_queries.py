"""Read latency on a large archive (not part of the test run).

    .venv/bin/python benchmarks/archive_queries.py [--statements 2000] [--revisions 50]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

Builds an archive of STATEMENTS x REVISIONS revisions (default 100,000) on SQLite and,
unless --no-postgres, on a fresh PostgreSQL database; each statement's text is made
of real sentences from the seed statements, and each revision changes one character
of the one before (the shape of real edits); revisions are numbered in the order a
crawl writes them, oldest first with statements interleaved. Rows are written in bulk through the
real schema (migrations, search triggers and indexes included); the reads go
through the same `Archive` calls the API and pages use. Prints median and 95th
percentile latency for: statement as of a time, diff between two revisions (read both
+ character diff). Search on the same archive: benchmarks/search.py.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.diffing import diff_statements
from storage import models
from storage.archive import Archive
from tests.replica.site import seed_statements

START = datetime(2024, 1, 1, tzinfo=UTC)
BATCH = 5_000
QUERIES = 50
RARE = "維護香港人權自由"  # in one statement of 97, its last revision only (for search.py)


def corpus() -> list[str]:
    sentences: list[str] = []
    for statement in seed_statements():
        for paragraph in statement.paragraphs:
            sentences += [s + "。" for s in paragraph.split("。") if len(s) > 8]
    return sentences


def build(archive: Archive, statements: int, revisions: int, rng: random.Random) -> float:
    sentences = corpus()
    started = time.perf_counter()
    with archive.engine.begin() as connection:
        connection.execute(
            insert(models.Statement),
            [
                {
                    "id": sid,
                    "site": "china-zh",
                    "url": f"https://china.usembassy-china.org.cn/zh/statement-{sid}/",
                    "status": "active",
                    "first_seen_at": START,
                    "last_seen_at": START,
                    "gone_streak": 0,
                }
                for sid in range(1, statements + 1)
            ],
        )
    # Revision ids in the order a crawl writes them: oldest first, statements interleaved.
    bodies = {
        sid: list("\n\n".join(" ".join(rng.sample(sentences, 4)) for _ in range(5)))
        for sid in range(1, statements + 1)
    }
    rows: list[dict[str, object]] = []
    for number in range(1, revisions + 1):
        for sid, body in bodies.items():
            if number > 1:
                body[rng.randrange(len(body))] = rng.choice("维護项項的了在是有")
            if sid % 97 == 0 and number == revisions:
                body[len(body) // 2 : len(body) // 2] = list(RARE)
            rows.append(_revision(sid, number, "".join(body)))
            if len(rows) >= BATCH:
                _write(archive, rows)
    _write(archive, rows)
    return time.perf_counter() - started


def _revision(sid: int, number: int, body: str) -> dict[str, object]:
    return {
        "statement_id": sid,
        "number": number,
        "observed_at": START + timedelta(days=number, minutes=sid),
        "content_hash": uuid.uuid4().hex,
        "changed_fields": ["body"] if number > 1 else [],
        "url": f"https://china.usembassy-china.org.cn/zh/statement-{sid}/",
        "language": "zh",
        "post_id": sid,
        "title": f"声明 {sid}",
        "body": body,
        "tags": ["新闻"],
        "categories": ["新闻"],
        "extractor_version": "bench",
    }


def _write(archive: Archive, rows: list[dict[str, object]]) -> None:
    if rows:
        with archive.engine.begin() as connection:
            connection.execute(insert(models.Revision), rows)
        rows.clear()


def measure(call: Callable[[], object], queries: int = QUERIES) -> tuple[float, float]:
    call()  # warm caches once; the archive is read many times a day
    samples = []
    for _ in range(queries):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def run(name: str, archive: Archive, statements: int, revisions: int) -> list[str]:
    rng = random.Random(7)
    built = build(archive, statements, revisions, rng)
    if archive.engine.dialect.name == "postgresql":
        # Autovacuum analyzes a bulk-loaded table soon; without statistics the planner
        # ignores the trigram index.
        with archive.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    total = archive.counts()["revisions"]
    print(f"{name}: {total:,} revisions written in {built:.0f} s", file=sys.stderr)

    def as_of() -> object:
        sid = rng.randint(1, statements)
        return archive.revision(sid, at=START + timedelta(days=rng.uniform(1, revisions + 1)))

    def diff() -> object:
        sid, number = rng.randint(1, statements), rng.randint(2, revisions)
        old = archive.revision(sid, number=number - 1)
        new = archive.revision(sid, number=number)
        assert old and new
        return diff_statements(old.content, new.content)

    rows = [
        f"| {name}: as of a time | {_ms(measure(as_of))} |",
        f"| {name}: diff of two revisions | {_ms(measure(diff))} |",
    ]
    return rows


def _ms(result: tuple[float, float]) -> str:
    return f"{result[0]:.1f} | {result[1]:.1f}"


@contextmanager
def postgres(admin_url: str) -> Iterator[str]:
    name = "bench_" + uuid.uuid4().hex[:8]
    admin = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE {name} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=2000)
    parser.add_argument("--revisions", type=int, default=50)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        archive = Archive.open(f"sqlite:///{Path(tmp) / 'archive.db'}")
        rows += run("SQLite", archive, args.statements, args.revisions)
        archive.close()
    if not args.no_postgres:
        with postgres(args.postgres) as url:
            archive = Archive.open(url)
            rows += run("PostgreSQL", archive, args.statements, args.revisions)
            archive.close()
    total = args.statements * args.revisions
    print(
        f"{total:,} revisions ({args.statements:,} statements x {args.revisions}); "
        f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}"
    )
    print("| query | median ms | p95 ms |")
    print("|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
