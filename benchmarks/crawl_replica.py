"""Crawl benchmarks against the local replica (not part of the test run).

    .venv/bin/python benchmarks/crawl_replica.py [--statements 2000] [--concurrency 1 8]

Prints two tables for a replica with N statements (crawl delay off):
  1. the initial archive crawl at each concurrency, with the crawl process's CPU time
     per statement (user + system, start-up included), next to a bare concurrent HTTP
     fetch of the same pages at the same concurrency (what parsing and storing cost);
  2. an idle re-crawl (nothing changed): requests made and bytes written;
then a profile of one more initial crawl (py-spy, `--profile-statements` statements):
the share of storing, extraction and the rest, and the functions most often on top.

Both clients run in their own process; the replica serves from this one.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.archive import Archive
from tests.helpers import EXECUTABLE, write_config
from tests.replica.site import ReplicaSite, Statement, seed_statements


@dataclass(frozen=True)
class CrawlRun:
    seconds: float
    cpu_seconds: float  # the crawl process's user + system time
    requests: int
    revisions: int
    bodies: int
    growth: int


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


def crawl(
    site: ReplicaSite, directory: Path, concurrency: int, profile: Path | None = None
) -> CrawlRun:
    """One `embassy-watch crawl` into the archive in `directory`, as a user runs it."""
    url = f"sqlite:///{directory / 'archive.db'}"
    config = write_config(
        directory,
        url,
        [site.listing_url],
        max_listing_pages=1000,
        concurrent_requests_per_host=concurrency,
    )
    requests, size = len(site.requests), database_bytes(directory)
    before = counts(url)
    command = [str(EXECUTABLE), "crawl", "-q", "--config", str(config)]
    cpu_before = _children_cpu()
    started = time.perf_counter()
    subprocess.run(
        profiled(command, profile) if profile else command, check=True, capture_output=True
    )
    seconds = time.perf_counter() - started
    cpu_seconds = _children_cpu() - cpu_before
    after = counts(url)
    return CrawlRun(
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        requests=len(site.requests) - requests,
        revisions=after["revisions"] - before["revisions"],
        bodies=after["blobs"] - before["blobs"],
        growth=database_bytes(directory) - size,
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for children only
    return usage.ru_utime + usage.ru_stime


# The parts of a crawl's CPU time: a sample belongs to the first part whose function is on
# its stack (from the outermost frame); samples under none of them are the rest.
PROFILE_PARTS = (
    ("start-up: imports", ("_find_and_load",)),
    ("storing (Archive.record_listing / record_detail)", ("record_listing", "record_detail")),
    (
        "extraction (crawler/extract.py)",
        ("extract_statement", "extract_listing", "is_not_found_page"),
    ),
    ("Scrapy reading callbacks' source (WARN_ON_GENERATOR_RETURN_VALUE)", ("getsource",)),
)
REST = "the rest: Scrapy, Twisted, asyncio, start-up"
SAMPLES_PER_SECOND = 250


def profiled(command: list[str], output: Path) -> list[str]:
    """`command` run under py-spy (sampling: it does not slow the crawl as cProfile does)."""
    py_spy = Path(sys.executable).with_name("py-spy")
    rate = str(SAMPLES_PER_SECOND)
    options = ["record", "-f", "raw", "-r", rate, "-o", str(output)]  # idle samples left out
    return [str(py_spy), *options, "--", *command]


def print_profile(path: Path, statements: int, top: int = 12) -> None:
    """Each part's share of the samples, then the functions most often running themselves."""
    parts: dict[str, int] = {}
    leaves: dict[str, int] = {}
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count, frames = int(count_text), stack.split(";")
        if "_bootstrap (threading.py" in frames[0]:
            continue  # a helper thread (DNS, database pool), waiting nearly all the time
        names = [frame.split(" (", 1)[0].rpartition(".")[2] for frame in frames]
        part = next((label for label, fns in PROFILE_PARTS if any(n in fns for n in names)), REST)
        parts[part] = parts.get(part, 0) + count
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + count
    total = sum(parts.values())
    print(f"\nprofile of an initial crawl of {statements} statements (py-spy, {total} samples):")
    print("\n| part | share of CPU |\n|---|---|")
    for label in [*(label for label, _ in PROFILE_PARTS), REST]:
        print(f"| {label} | {100 * parts.get(label, 0) / total:.0f}% |")
    print(f"\ntop {top} functions running themselves (share of samples):")
    for frame, count in sorted(leaves.items(), key=lambda item: -item[1])[:top]:
        print(f"  {100 * count / total:5.1f}%  {frame}")


def counts(url: str) -> dict[str, int]:
    archive = Archive.open(url)
    try:
        return archive.counts()
    finally:
        archive.close()


def bare_fetch(base_url: str, paths: list[str], concurrency: int) -> float:
    """Seconds to GET every path with `concurrency` keep-alive connections, reading each body.

    The lower bound for any crawler of these pages: no parsing, no storing, and every
    URL known in advance (a crawler learns detail URLs from listing pages).
    """
    host = urlsplit(base_url)
    local = threading.local()

    def get(path: str) -> int:
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
        local.connection.request("GET", path)
        response = local.connection.getresponse()
        return len(response.read())

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(get, paths))
    return time.perf_counter() - started


def bare_fetch_in_own_process(base_url: str, paths: list[str], concurrency: int) -> float:
    # A process of its own, like the crawler's: threads here would share the replica's GIL.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(bare_fetch, base_url, paths, concurrency).result()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--statements", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--profile-statements", type=int, default=500, help="0: no profile")
    args = parser.parse_args()
    count = args.statements
    site = replica_of(count)
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, statements: {count}, delay off",
        flush=True,
    )
    print(
        "\n| concurrency | embassy-watch s | statements/s | CPU ms/statement | requests "
        "| bare fetch s | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    idle = None
    for concurrency in args.concurrency:
        with tempfile.TemporaryDirectory() as tmp:
            first_request = len(site.requests)
            initial = crawl(site, Path(tmp), concurrency)
            paths = [request.path for request in site.requests[first_request:]]
            bare = bare_fetch_in_own_process(site.base_url, paths, concurrency)
            print(
                f"| {concurrency} | {initial.seconds:.1f} | {count / initial.seconds:.0f} "
                f"| {1000 * initial.cpu_seconds / count:.1f} "
                f"| {initial.requests} | {bare:.1f} | {initial.seconds / bare:.1f}× |",
                flush=True,
            )
            if idle is None:
                idle = (concurrency, initial, crawl(site, Path(tmp), concurrency))
    site.stop()
    assert idle is not None
    concurrency, initial, again = idle
    print(
        f"\n| run (concurrency {concurrency}) | seconds | CPU s | requests | new revisions "
        "| new bodies | archive growth (bytes) |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, run in (("first crawl", initial), ("idle re-crawl", again)):
        print(
            f"| {label} | {run.seconds:.1f} | {run.cpu_seconds:.1f} | {run.requests} "
            f"| {run.revisions} | {run.bodies} | {run.growth:,} |"
        )
    if args.profile_statements:
        profile_crawl(args.profile_statements)


def profile_crawl(count: int) -> None:
    site = replica_of(count)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            profile = Path(tmp) / "crawl.stacks"
            crawl(site, Path(tmp), 1, profile=profile)
            print_profile(profile, count)
    finally:
        site.stop()


if __name__ == "__main__":
    main()
