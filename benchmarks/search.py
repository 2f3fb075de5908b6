"""Search latency at 100,000 revisions, by query length, rare and common (not part of the tests).

    .venv/bin/python benchmarks/search.py [--statements 2000] [--revisions 50] [--queries 50]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test] [--no-postgres]

The archive is the one `archive_queries.py` builds (bulk SQL through the real schema,
search index included; PostgreSQL then ANALYZEd). Each query runs through
`Archive.search` as the API and pages call it (first page of 20, one hit per statement),
QUERIES times after one warm-up; prints the matching total, median and 95th percentile
in milliseconds, the time the bulk load took and the size of the search index. Also
runs against older code (it only calls `search(query, limit=20)` and reads `.total`).
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import tempfile
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.archive_queries import RARE, build, measure, postgres
from storage.archive import Archive

QUERIES = {
    "1 character, common (的)": "的",
    "1 character, rare (維)": RARE[0],
    "2 characters, common (人权)": "人权",
    "2 characters, rare (維護)": RARE[:2],
    "4 characters, common (美国政府)": "美国政府",
    "4 characters, rare (維護香港)": RARE[:4],
    "8 characters, common (国务卿安东尼·布)": "国务卿安东尼·布",
    "8 characters, rare (維護香港人權自由)": RARE,
    "3 characters, common pairs never adjacent (人权人)": "人权人",
}


def index_bytes(archive: Archive) -> int | None:
    """The search index's size on disk, whichever index the code under test made."""
    with archive.engine.connect() as connection:
        if archive.engine.dialect.name == "postgresql":
            return int(
                connection.scalar(
                    text(
                        "SELECT coalesce(sum(pg_relation_size(indexrelid)), 0) FROM pg_index "
                        "JOIN pg_class ON pg_class.oid = indexrelid WHERE relname LIKE "
                        "ANY (ARRAY['%trgm%', '%search_grams%'])"
                    )
                )
            )
        try:
            return int(
                connection.scalar(
                    text(
                        "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'revision_fts%' "
                        "OR name LIKE 'revision_grams%'"
                    )
                )
            )
        except Exception:  # dbstat is an optional part of SQLite
            return None


def run(name: str, archive: Archive, args: argparse.Namespace) -> list[str]:
    built = build(archive, args.statements, args.revisions, random.Random(7))
    if archive.engine.dialect.name == "postgresql":
        with archive.engine.begin() as connection:  # as autovacuum would, soon after
            connection.exec_driver_sql("ANALYZE")
    size = index_bytes(archive)
    print(f"{name}: written in {built:.0f} s; search index {size} bytes", file=sys.stderr)
    rows = []
    for label, query in QUERIES.items():
        results = archive.search(query, limit=20)
        exact = getattr(results, "total_exact", True)
        total = f"{'' if exact else 'at least '}{results.total:,}"
        timing = measure(lambda q=query: archive.search(q, limit=20), args.queries)
        rows.append(f"| {name} | {label} | {total} | {timing[0]:.1f} | {timing[1]:.1f} |")
        print(rows[-1], file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=2000)
    parser.add_argument("--revisions", type=int, default=50)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    rows: list[str] = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            archive = Archive.open(f"sqlite:///{Path(tmp) / 'archive.db'}")
            rows += run("SQLite", archive, args)
            archive.close()
    if not args.no_postgres:
        with postgres(args.postgres) as url:
            archive = Archive.open(url)
            rows += run("PostgreSQL", archive, args)
            archive.close()
    print(
        f"{args.statements * args.revisions:,} revisions ({args.statements:,} statements x "
        f"{args.revisions}); {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}"
    )
    print("| backend | query | statements matching | median ms | p95 ms |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
