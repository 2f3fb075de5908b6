"""Monitor benchmarks against the local replica (not part of the test run).

    .venv/bin/python benchmarks/monitor.py [--latency-samples 5] [--cycles 500]

Prints three tables:
  1. time from a statement appearing on the replica to its e-mail arriving
     (`embassy-watch run`, 30 s interval, real SMTP server);
  2. requests made and bytes written per idle cycle, with a young archive (every
     statement due for a re-read) and a settled one (nothing due);
  3. resident memory of one daemon process across many cycles.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import EmbassyWatch, write_config
from tests.receivers import MailServer, wait_until
from tests.replica.site import ReplicaSite, Statement

DONE = "replica: done"


def configure(
    directory: Path, replica: ReplicaSite, mail: MailServer, **schedule: object
) -> EmbassyWatch:
    url = f"sqlite:///{directory / 'archive.db'}"
    sections: dict[str, dict[str, object]] = {
        "schedule": {"jitter": 0, **schedule},
        "notify": {"urls": [mail.url()], "check_every": "1s"},
    }
    return EmbassyWatch(write_config(directory, url, [replica.listing_url], sections=sections), url)


def database_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.glob("archive.db*"))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def latency(samples: int) -> list[float]:
    replica, mail = ReplicaSite().start(), MailServer().start()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        ew = configure(Path(tmp), replica, mail, interval="30s")
        with ew.start_daemon(Path(tmp) / "daemon.log") as daemon:
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
    replica.stop()
    mail.stop()
    return results


def idle_cycle(recheck: dict[str, str] | None, cycles: int = 5) -> tuple[float, float]:
    """Requests and archive growth per idle cycle.

    Sizes are read with the daemon stopped, when SQLite has folded its WAL into the
    database file, so they are what the archive keeps, not journal traffic.
    """
    replica, mail = ReplicaSite().start(), MailServer().start()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        schedule: dict[str, object] = {"interval": "2s"}
        if recheck is not None:
            schedule["recheck"] = recheck
        ew = configure(directory, replica, mail, **schedule)
        log = directory / "daemon.log"
        with ew.start_daemon(log) as daemon:
            daemon.wait_for_log(DONE, count=3, timeout=120)  # baseline, then settle
            daemon.terminate()
        requests, size = len(replica.requests), database_bytes(directory)
        with ew.start_daemon(log) as daemon:
            daemon.wait_for_log(DONE, count=3 + cycles, timeout=120)
            daemon.terminate()
        requests, size = len(replica.requests) - requests, database_bytes(directory) - size
    replica.stop()
    mail.stop()
    return requests / cycles, size / cycles


def memory(cycles: int) -> list[tuple[int, int]]:
    replica, mail = ReplicaSite().start(), MailServer().start()
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        ew = configure(Path(tmp), replica, mail, interval="1s", recheck={"3h": "1h"})
        with ew.start_daemon(Path(tmp) / "daemon.log") as daemon:
            step = max(cycles // 10, 1)
            for done in range(step, cycles + 1, step):
                daemon.wait_for_log(DONE, count=done, timeout=600)
                points.append((done, rss_kib(daemon.process.pid)))
                print(f"  (cycle {done}: RSS {points[-1][1] / 1024:.1f} MiB)", flush=True)
            daemon.terminate()
    replica.stop()
    mail.stop()
    return points


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-samples", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=500)
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

    print("\n| idle cycle, 24 statements | requests | archive growth (bytes) |")
    print("|---|---|---|")
    for label, recheck in (
        ("young archive (all due)", None),
        ("settled archive (none due)", {"3h": "1h"}),
    ):
        requests, size = idle_cycle(recheck)
        print(f"| {label} | {requests:.0f} | {size:,.0f} |")

    points = memory(args.cycles)
    print(f"\n| daemon RSS over {args.cycles} cycles | cycle | RSS (MiB) |")
    print("|---|---|---|")
    for cycle, kib in points:
        print(f"| | {cycle} | {kib / 1024:.1f} |")
    growth = (points[-1][1] - points[0][1]) / 1024
    print(f"| growth from cycle {points[0][0]} to {points[-1][0]} | | {growth:+.1f} |")


if __name__ == "__main__":
    main()
