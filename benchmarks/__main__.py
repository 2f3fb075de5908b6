"""Every benchmark, one after another: `.venv/bin/python -m benchmarks` (about an hour).

Each script prints its own tables (the ones in the README's Performance section) and can
be run alone; `pip install -e '.[bench]'` first for the urlwatch comparison.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = (
    "crawl_replica.py",
    "monitor.py",
    "diff_and_growth.py",
    "thinning.py",
    "archive_queries.py",
    "many_sites.py",
    "list_pages.py",
    "evidence.py",
    "search.py",
)


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for script in SCRIPTS:
        print(f"\n## {script}\n", flush=True)
        if subprocess.run([sys.executable, str(here / script)]).returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
