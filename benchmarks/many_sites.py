"""About 200 missions in one daemon (not part of the test run).

    .venv/bin/python benchmarks/many_sites.py [--sites 200] [--interval 120] [--cycles 3]

Serves `--sites` replica sites, each on its own 127.0.0.1 port with its own statements,
and runs one `embassy-watch run` over all of them with the default crawl settings (5 s
between two requests to one host). After every site's first crawl (the backfill), it
measures the settled daemon over `--cycles` rounds of `--interval`: resident memory, and
CPU seconds per round, which give the share of one core at the default 15-minute
interval (CPU per round / 900 s) as well as at the interval run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.monitor import memory_kib
from config.settings import ScheduleSettings
from tests.helpers import EmbassyWatch
from tests.replica.site import ReplicaSite, seed_statements

DEFAULT_INTERVAL = ScheduleSettings().interval
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def config(directory: Path, sites: list[ReplicaSite], interval: float) -> EmbassyWatch:
    url = f"sqlite:///{directory / 'archive.db'}"
    lines = [
        "[database]",
        f"url = {json.dumps(url)}",
        "[schedule]",
        f'interval = "{interval}s"',
        'recheck = {"3h" = "1d"}',  # settled: no statement page due within the run
        "[crawl]",
        'timeout = "10s"',
    ]
    for index, site in enumerate(sites):
        lines += ["[[sites]]", f'name = "mission-{index:03d}"']
        lines.append(f"listing_urls = {json.dumps([site.listing_url])}")
    path = directory / "embassy-watch.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return EmbassyWatch(path, url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--statements", type=int, default=12, help="per site")
    parser.add_argument("--interval", type=float, default=120.0)
    parser.add_argument("--cycles", type=int, default=3)
    args = parser.parse_args()

    sites = [ReplicaSite(seed_statements()[: args.statements]).start() for _ in range(args.sites)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ew = config(Path(tmp), sites, args.interval)
            with ew.start_daemon(Path(tmp) / "daemon.log") as daemon:
                pid = daemon.process.pid
                started = time.monotonic()
                daemon.wait_for_log(": done", count=args.sites, timeout=3600)
                backfill = time.monotonic() - started
                backfill_cpu = cpu_seconds(pid)
                print(f"backfill: {args.sites} sites in {backfill:.0f} s, {backfill_cpu:.1f} s CPU")
                cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
                rss = []
                for round_number in range(1, args.cycles + 1):
                    daemon.wait_for_log(
                        ": done", count=args.sites * (round_number + 1), timeout=3600
                    )
                    rss.append(memory_kib(pid))
                    print(f"  round {round_number}: RSS {rss[-1] / 1024:.0f} MiB", flush=True)
                cpu = cpu_seconds(pid) - cpu_before
                wall = time.monotonic() - wall_before
                peak = memory_kib(pid, "VmHWM")
                daemon.terminate()
    finally:
        for site in sites:
            site.stop()

    per_round = cpu / args.cycles
    print(f"\n| {args.sites} sites, one daemon, settled | value |")
    print("|---|---|")
    print(f"| RSS, steady (max of rounds) | {max(rss) / 1024:.0f} MiB |")
    print(f"| RSS, peak (backfill included) | {peak / 1024:.0f} MiB |")
    print(f"| CPU per round of {args.sites} site cycles | {per_round:.1f} s |")
    print(f"| share of one core at {args.interval:.0f} s | {cpu / wall:.1%} |")
    print(
        f"| share of one core at the default {DEFAULT_INTERVAL:.0f} s | "
        f"{per_round / DEFAULT_INTERVAL:.1%} |"
    )


if __name__ == "__main__":
    main()
