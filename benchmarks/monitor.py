"""Monitor benchmarks against the local replica (not part of the test run).

    .venv/bin/python benchmarks/monitor.py [--latency-samples 20] [--cycles 1000]

Prints three tables:
  1. time from a statement appearing on the replica to its e-mail arriving
     (`embassy-watch run`, 30 s interval, real SMTP server);
  2. requests made, bytes written and alerts sent per idle cycle, with a young archive
     (every statement due for a re-read) and a settled one (nothing due), next to
     urlwatch (`pip install -e '.[bench]'`) watching the same statements' pages;
  3. resident memory of one daemon process across many cycles.
"""

from __future__ import annotations

import argparse
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.crawl_replica import counts, database_bytes
from tests.helpers import EmbassyWatch, write_config
from tests.receivers import MailServer, wait_until
from tests.replica.site import ReplicaSite, Statement

DONE = "replica: done"
IDLE_CYCLES = 5


@dataclass(frozen=True)
class IdleCycle:
    """Per cycle, averaged over IDLE_CYCLES cycles in which nothing changed on the site."""

    requests: float
    growth: float  # bytes the archive (or urlwatch's cache) grew by
    alerts: float


def configure(
    directory: Path, replica: ReplicaSite, mail: MailServer, **schedule: object
) -> EmbassyWatch:
    url = f"sqlite:///{directory / 'archive.db'}"
    sections: dict[str, dict[str, object]] = {
        "schedule": {"jitter": 0, **schedule},
        "notify": {"urls": [mail.url()], "check_every": "1s"},
    }
    return EmbassyWatch(write_config(directory, url, [replica.listing_url], sections=sections), url)


@contextmanager
def replica_and_mail() -> Iterator[tuple[ReplicaSite, MailServer, Path]]:
    """The replica site, a real SMTP server and a directory for the archive, for one run."""
    replica, mail = ReplicaSite().start(), MailServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            yield replica, mail, Path(tmp)
    finally:
        replica.stop()
        mail.stop()


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """Resident memory now (VmRSS) or at its peak so far (VmHWM), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def latency(samples: int) -> list[float]:
    results = []
    with replica_and_mail() as (replica, mail, directory):
        ew = configure(directory, replica, mail, interval="30s")
        with ew.start_daemon(directory / "daemon.log") as daemon:
            daemon.wait_for_log(DONE, timeout=120)
            for n in range(samples):
                time.sleep(random.uniform(0, 30))  # appear at a random point of the cycle
                title = f"基准测试声明{n}"
                replica.add(
                    Statement(
                        post_id=95000 + n, slug=f"bench-{n}", title=title, paragraphs=["正文。"]
                    )
                )
                appeared = time.monotonic()
                wait_until(lambda t=title: any(t in s for s in mail.subjects()), timeout=120)
                results.append(time.monotonic() - appeared)
            daemon.terminate()
    return results


def idle_cycle(recheck: dict[str, str] | None) -> IdleCycle:
    """Requests, archive growth and alerts per idle cycle of `embassy-watch run`.

    Sizes are read with the daemon stopped, when SQLite has folded its WAL into the
    database file, so they are what the archive keeps, not journal traffic.
    """
    with replica_and_mail() as (replica, mail, directory):
        schedule: dict[str, object] = {"interval": "2s"}
        if recheck is not None:
            schedule["recheck"] = recheck
        ew = configure(directory, replica, mail, **schedule)
        log = directory / "daemon.log"
        with ew.start_daemon(log) as daemon:
            daemon.wait_for_log(DONE, count=3, timeout=120)  # baseline, then settle
            daemon.terminate()
        requests, size, alerts = len(replica.requests), database_bytes(directory), outbox(ew)
        with ew.start_daemon(log) as daemon:
            daemon.wait_for_log(DONE, count=3 + IDLE_CYCLES, timeout=120)
            daemon.terminate()
        result = IdleCycle(
            requests=(len(replica.requests) - requests) / IDLE_CYCLES,
            growth=(database_bytes(directory) - size) / IDLE_CYCLES,
            alerts=(outbox(ew) - alerts) / IDLE_CYCLES,
        )
    return result


def outbox(ew: EmbassyWatch) -> int:
    """Alerts made so far (each waits in the outbox, or was sent from it)."""
    return counts(ew.database_url)["outbox"]


def urlwatch_program() -> Path | None:
    beside_python = Path(sys.executable).with_name("urlwatch")
    if beside_python.exists():
        return beside_python
    found = shutil.which("urlwatch")
    return Path(found) if found else None


def urlwatch_idle_cycle(program: Path, css: str | None) -> IdleCycle:
    """urlwatch run as its users run it (one run per cycle, from cron) on the same pages.

    Without a filter it compares whole pages; `css` narrows each page to the
    statement, as a careful user would configure it.
    """
    replica = ReplicaSite().start()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        filters = f"\nfilter:\n  - css: {css}\n  - html2text" if css else ""
        jobs = [f"url: {replica.url(s.path)}{filters}" for s in replica.statements]
        (directory / "urls.yaml").write_text("\n---\n".join(jobs) + "\n", encoding="utf-8")
        cache = directory / "cache.db"

        def run() -> int:
            """One urlwatch run; the number of changes it reports."""
            output = subprocess.run(
                [
                    str(program),
                    "--urls",
                    str(directory / "urls.yaml"),
                    "--config",
                    str(directory / "urlwatch.yaml"),
                    "--cache",
                    str(cache),
                    "--hooks",
                    str(directory / "hooks.py"),
                ],
                check=True,
                capture_output=True,
                text=True,
                env={"HOME": tmp, "PATH": "/usr/bin:/bin"},
            ).stdout
            return len(re.findall(r"^\d+\. CHANGED: ", output, flags=re.MULTILINE))

        run()  # the first run keeps each page as its baseline
        requests, size = len(replica.requests), cache.stat().st_size
        changes = sum(run() for _ in range(IDLE_CYCLES))
        result = IdleCycle(
            requests=(len(replica.requests) - requests) / IDLE_CYCLES,
            growth=(cache.stat().st_size - size) / IDLE_CYCLES,
            alerts=changes / IDLE_CYCLES,
        )
    replica.stop()
    return result


def memory(cycles: int) -> tuple[list[tuple[int, int]], int]:
    """RSS (KiB) after every tenth of `cycles`, and the peak RSS over the whole run."""
    points = []
    with replica_and_mail() as (replica, mail, directory):
        ew = configure(directory, replica, mail, interval="1s", recheck={"3h": "1h"})
        with ew.start_daemon(directory / "daemon.log") as daemon:
            step = max(cycles // 10, 1)
            for done in range(step, cycles + 1, step):
                daemon.wait_for_log(DONE, count=done, timeout=600)
                points.append((done, memory_kib(daemon.process.pid)))
                print(f"  (cycle {done}: RSS {points[-1][1] / 1024:.1f} MiB)", flush=True)
            peak = memory_kib(daemon.process.pid, "VmHWM")
            daemon.terminate()
    return points, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-samples", type=int, default=20)
    parser.add_argument("--cycles", type=int, default=1000)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}"
    )

    if args.latency_samples:
        samples = latency(args.latency_samples)
        print("\n| statement appears -> e-mail arrives (30 s interval) | seconds |")
        print("|---|---|")
        print(f"| median of {len(samples)} | {sorted(samples)[len(samples) // 2]:.1f} |")
        print(f"| worst | {max(samples):.1f} |")

    print("\n| one idle cycle, 24 statements | requests | bytes written | alerts |")
    print("|---|---|---|---|")
    rows = [
        ("embassy-watch, young archive (all due)", lambda: idle_cycle(None)),
        ("embassy-watch, settled archive (none due)", lambda: idle_cycle({"3h": "1h"})),
    ]
    program = urlwatch_program()
    if program is None:
        print("(urlwatch not installed: pip install -e '.[bench]' to compare)")
    else:
        rows += [
            ("urlwatch, whole pages", lambda: urlwatch_idle_cycle(program, None)),
            (
                "urlwatch, `css: article` + html2text",
                lambda: urlwatch_idle_cycle(program, "article"),
            ),
        ]
    for label, measure in rows:
        cycle = measure()
        print(
            f"| {label} | {cycle.requests:.0f} | {cycle.growth:,.0f} | {cycle.alerts:.0f} |",
            flush=True,
        )

    if args.cycles:
        points, peak = memory(args.cycles)
        print(f"\n| daemon RSS over {args.cycles} cycles | cycle | RSS (MiB) |")
        print("|---|---|---|")
        for done, kib in points:
            print(f"| | {done} | {kib / 1024:.1f} |")
        growth = (points[-1][1] - points[0][1]) / 1024
        print(f"| growth from cycle {points[0][0]} to {points[-1][0]} | | {growth:+.1f} |")
        print(f"| peak (VmHWM) | | {peak / 1024:.1f} |")


if __name__ == "__main__":
    main()
