"""Thinning the fetch record (not part of the test run).

    .venv/bin/python benchmarks/thinning.py [--urls 100] [--days 30] [--no-postgres]

An archive that saw no change for `days` days of 15-minute cycles (each of `urls` pages
fetched every cycle, as `run` records them), then `Archive.thin_observations` over all of
it, as `embassy-watch thin` and the daemon's daily run call it. Prints, per backend: rows
and bytes before and after (SQLite: file size after VACUUM; PostgreSQL: pg_database_size
after VACUUM FULL), the time to thin, and the longest single transaction, which
is how long a daemon writing at the same moment may wait.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.archive_queries import postgres
from benchmarks.diff_and_growth import size_of
from storage import models
from storage.archive import Archive

CYCLE = timedelta(minutes=15)
START = datetime(2026, 1, 1, tzinfo=UTC)
HEADERS = {
    "content-type": "text/html; charset=UTF-8",
    "server": "Apache",
    "x-request-nonce": "0" * 32,
    "cache-control": "max-age=0, no-cache",
}


def fill(archive: Archive, urls: int, cycles: int) -> None:
    """`cycles` rounds of `urls` unchanged fetches, written in bulk (ids in fetch order)."""
    base = "https://china.usembassy-china.org.cn/zh/"
    with archive.engine.begin() as connection:
        for cycle in range(cycles):
            at = START + cycle * CYCLE
            connection.execute(
                insert(models.Observation),
                [
                    {
                        "site": "china-zh",
                        "kind": "detail",
                        "requested_url": f"{base}statement-{n:04d}/",
                        "final_url": f"{base}statement-{n:04d}/",
                        "fetched_at": at,
                        "status": 200,
                        "error": None,
                        "headers": HEADERS,
                        "body_sha256": f"{cycle:032x}{n:032x}",  # noisy bytes each time
                        "blob_sha256": None,
                        "content_key": f"content:{n:064x}",  # the same text every time
                        "statement_id": None,
                    }
                    for n in range(urls)
                ],
            )


def measure(url: str, urls: int, cycles: int) -> dict[str, float]:
    archive = Archive.open(url)
    fill(archive, urls, cycles)
    rows_before, bytes_before = archive.counts()["observations"], size_of(url, archive)
    marks: list[float] = []

    def mark() -> bool:  # asked before each URL's transaction: the gaps are their times
        marks.append(time.perf_counter())
        return False

    started = time.perf_counter()
    forgotten = archive.thin_observations(START + cycles * CYCLE, cancelled=mark)
    seconds = time.perf_counter() - started
    marks.append(started + seconds)
    result = {
        "rows before": rows_before,
        "rows after": archive.counts()["observations"],
        "forgotten": forgotten,
        "bytes before": bytes_before,
        "bytes after": size_of(url, archive),
        "seconds": seconds,
        "longest transaction ms": max(b - a for a, b in itertools.pairwise(marks)) * 1000,
    }
    archive.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    cycles = args.days * 96
    print(f"{args.urls} pages fetched every 15 minutes for {args.days} days, nothing changed")
    print("| backend | fetches kept | bytes before | bytes after | thinning s | longest txn ms |")
    print("|---|---|---|---|---|---|")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(("SQLite", measure(f"sqlite:///{Path(tmp) / 'a.db'}", args.urls, cycles)))
    if not args.no_postgres:
        with postgres(args.postgres) as url:
            results.append(("PostgreSQL", measure(url, args.urls, cycles)))
    for name, r in results:
        print(
            f"| {name} | {r['rows after']:,.0f} of {r['rows before']:,.0f} "
            f"| {r['bytes before']:,.0f} | {r['bytes after']:,.0f} "
            f"| {r['seconds']:.1f} | {r['longest transaction ms']:.0f} |"
        )


if __name__ == "__main__":
    main()
