"""Diff time on long Chinese statements, and archive growth per small edit (not part of the tests).

    .venv/bin/python benchmarks/diff_and_growth.py [--revisions 200] [--no-postgres]

1. Diff time for a 20,000-character Chinese statement (real sentences from the seeds)
   with 10 scattered edits, the way alerts and pages compute it (`diff_statements`),
   and worst cases: every sentence edited, and two unrelated texts (bounded by the
   1 s diff-match-patch limit, after which a coarser but exact diff is returned).
2. Bytes the archive grows per revision when a 20,000-character statement gets
   one-character edits, through the real write path (`Archive.record_detail`): the
   revision row holds the extracted text, the raw page is kept zlib-compressed.
   SQLite: file size after VACUUM; PostgreSQL: pg_database_size after VACUUM FULL.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.archive_queries import corpus, postgres
from monitor.diffing import diff_statements
from storage.archive import Archive
from storage.records import Capture, PageKind, StatementContent

LENGTH = 20_000
EDITS = 10
RUNS = 20
URL = "https://china.usembassy-china.org.cn/zh/long-statement/"


def long_text(rng: random.Random, sentences: list[str]) -> str:
    paragraphs, size = [], 0
    while size < LENGTH:
        paragraph = "".join(rng.choice(sentences) for _ in range(5))
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)[:LENGTH]


def edited(text: str, rng: random.Random, edits: int) -> str:
    chars = list(text)
    for _ in range(edits):
        position = rng.randrange(len(chars))
        chars[position] = "項" if chars[position] != "項" else "项"
    return "".join(chars)


def content(body: str) -> StatementContent:
    return StatementContent(url=URL, title="长声明", body=body, language="zh", post_id=1)


def timed(old: str, new: str) -> tuple[float, float]:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        diff_statements(content(old), content(new))
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[-1]


def diff_table(rng: random.Random, sentences: list[str]) -> list[str]:
    base = long_text(rng, sentences)
    every_sentence = "。".join(part + "的" for part in base.split("。"))
    cases = {
        f"{EDITS} one-character edits": edited(base, rng, EDITS),
        "every sentence edited (≈300 edits)": every_sentence,
        "an unrelated text of the same length": long_text(random.Random(99), sentences),
    }
    rows = []
    for label, new in cases.items():
        median, worst = timed(base, new)
        rows.append(f"| {label} | {median:.1f} | {worst:.1f} |")
    return rows


def page_bytes(body: str) -> bytes:
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
    return (
        "<!doctype html><html lang=zh><head><title>长声明</title></head><body>"
        f"<article><h1>长声明</h1>{paragraphs}</article></body></html>"
    ).encode()


def growth(url: str, revisions: int, rng: random.Random, sentences: list[str]) -> tuple[int, int]:
    archive = Archive.open(url)
    body = long_text(rng, sentences)
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def record(text: str, when: datetime) -> None:
        capture = Capture(
            site="china-zh", kind=PageKind.DETAIL, requested_url=URL, final_url=URL,
            fetched_at=when, status=200, headers={"Content-Type": "text/html"},
            body=page_bytes(text),
        )  # fmt: skip
        archive.record_detail(capture, content(text))

    record(body, at)
    before = size_of(url, archive)
    for number in range(revisions):
        body = edited(body, rng, 1)
        record(body, at + timedelta(hours=number + 1))
    after = size_of(url, archive)
    archive.close()
    return before, after


def size_of(url: str, archive: Archive) -> int:
    if url.startswith("sqlite"):
        with archive.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM")
            # In WAL mode the vacuumed file is in the log until a checkpoint writes it back.
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return Path(url.removeprefix("sqlite:///")).stat().st_size
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute("VACUUM FULL")
        (size,) = connection.execute("SELECT pg_database_size(current_database())").fetchone()  # type: ignore[misc]
        return int(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    rng = random.Random(7)
    sentences = corpus()
    print(f"Diff of a {LENGTH:,}-character Chinese statement ({RUNS} runs)")
    print("| change | median ms | worst ms |")
    print("|---|---|---|")
    print("\n".join(diff_table(rng, sentences)))
    print()
    print(
        f"Archive growth: {args.revisions} one-character edits to a {LENGTH:,}-character statement"
    )
    print("| backend | bytes per revision | raw page (zlib) + text row, for scale |")
    print("|---|---|---|")
    page = page_bytes(long_text(rng, sentences))
    scale = f"{len(zlib.compress(page, 9)):,} + {len(page) - 150:,}"
    with tempfile.TemporaryDirectory() as tmp:
        before, after = growth(f"sqlite:///{Path(tmp) / 'a.db'}", args.revisions, rng, sentences)
        print(f"| SQLite | {(after - before) / args.revisions:,.0f} | {scale} |")
    if not args.no_postgres:
        with postgres(args.postgres) as url:
            before, after = growth(url, args.revisions, rng, sentences)
            print(f"| PostgreSQL | {(after - before) / args.revisions:,.0f} | {scale} |")


if __name__ == "__main__":
    main()
