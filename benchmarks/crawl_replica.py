"""Crawl benchmarks against the local replica (not part of the test run).

    .venv/bin/python benchmarks/crawl_replica.py [--statements N]

Prints a table: first crawl and idle re-crawl of a replica with N statements
(crawl delay off), with requests made and bytes written to the SQLite archive.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.archive import Archive
from tests.helpers import EXECUTABLE, write_config
from tests.replica.site import ReplicaSite, Statement, seed_statements


def replica_of(count: int) -> ReplicaSite:
    seeds = seed_statements()
    statements = []
    for index in range(count):
        seed = seeds[index % len(seeds)]
        statements.append(
            Statement(
                post_id=100000 + index,
                slug=f"bench-{index:05d}",
                title=f"{seed.title}（{index}）",
                paragraphs=list(seed.paragraphs),
            )
        )
    return ReplicaSite(statements, per_page=24).start()


def database_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.glob("archive.db*"))


def crawl(config: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(EXECUTABLE), "crawl", "-q", "--config", str(config)], check=True, capture_output=True
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--statements", type=int, default=500)
    count = parser.parse_args().statements
    site = replica_of(count)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        url = f"sqlite:///{directory / 'archive.db'}"
        config = write_config(directory, url, [site.listing_url], max_listing_pages=1000)
        rows = []
        for label in ("first crawl", "idle re-crawl"):
            before_requests, before_bytes = len(site.requests), database_bytes(directory)
            archive = Archive.open(url)
            before_counts = archive.counts()
            archive.close()
            seconds = crawl(config)
            archive = Archive.open(url)
            after_counts = archive.counts()
            archive.close()
            rows.append(
                (
                    label,
                    seconds,
                    count / seconds,
                    len(site.requests) - before_requests,
                    after_counts["revisions"] - before_counts["revisions"],
                    after_counts["blobs"] - before_counts["blobs"],
                    database_bytes(directory) - before_bytes,
                )
            )
    site.stop()
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, statements: {count}"
    )
    print(
        "| run | seconds | statements/s | requests | new revisions | new bodies | archive growth (bytes) |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, seconds, rate, requests, revisions, blobs, growth in rows:
        print(
            f"| {label} | {seconds:.1f} | {rate:.0f} | {requests} | {revisions} | {blobs} | {growth} |"
        )


if __name__ == "__main__":
    main()
