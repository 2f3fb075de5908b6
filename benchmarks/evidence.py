"""The cost of evidence (not part of the test run).

    .venv/bin/python benchmarks/evidence.py [--pages 2000]

An SQLite archive holding `pages` raw pages kept (each about 20 KB of HTML made of the
seeds' sentences, as a statement page is), then, timed as CPU seconds of this process
(and wall seconds): sealing them all in one hash tree (a first cycle after a TSA is
configured), one timestamp request to OpenSSL's `ts -reply` on 127.0.0.1, the WARC export
next to the WACZ export (size too), `verify` of the package, and `verify` of the archive.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config import EvidenceSettings
from monitor.evidence import Timestamper
from monitor.export import ExportFormat, export
from monitor.verify import load_trust, verify_archive, verify_wacz
from storage.archive import Archive
from storage.evidence import Evidence
from storage.records import Capture, PageKind
from tests.tsa import LocalTSA, TestCA

SEEDS = Path(__file__).resolve().parents[1] / "tests" / "replica" / "data" / "statements.json"
PAGE_BYTES = 20_000
T = TypeVar("T")


def timed(work: Callable[[], T]) -> tuple[T, float, float]:
    """The result, CPU seconds and wall seconds."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = work()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def page(number: int, sentences: list[str]) -> bytes:
    text, i = [f"<html><head><title>statement {number}</title></head><body>"], number
    while sum(len(t.encode()) for t in text) < PAGE_BYTES:
        text.append(f"<p>{sentences[i % len(sentences)]}</p>")
        i += 7
    return ("".join(text) + "</body></html>").encode()


def fill(archive: Archive, pages: int) -> None:
    statements = json.loads(SEEDS.read_text(encoding="utf-8"))
    sentences = [p for s in statements for p in s["paragraphs"] if p.strip()]
    now = datetime.now(UTC)
    for n in range(pages):
        url = f"https://china.usembassy-china.org.cn/zh/statement-{n}/"
        capture = Capture(
            site="bench", kind=PageKind.LISTING, requested_url=url, final_url=url,
            fetched_at=now, status=200, headers={"Content-Type": "text/html; charset=UTF-8"},
            body=page(n, sentences),
        )  # fmt: skip
        archive.record_listing(capture, None)


def write(path: Path, chunks: object) -> int:
    with path.open("wb") as handle:
        return sum(handle.write(chunk) for chunk in chunks)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=2000)
    pages = parser.parse_args().pages
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ca = TestCA.make(work / "ca")
        tsa = LocalTSA(ca).start()
        archive = Archive.open(f"sqlite:///{work / 'archive.db'}")
        try:
            fill(archive, pages)
            evidence = Evidence(archive.engine)
            settings = EvidenceSettings(tsa_urls=(tsa.url,))
            stamper = Timestamper(evidence, settings, "bench")
            rows = []
            sealed, cpu, wall = timed(lambda: stamper.seal("bench"))
            assert sealed is not None and sealed.tree_size == pages
            rows.append(
                (f"seal {pages:,} pages in one hash tree (tree + proofs + rows)", cpu, wall, "")
            )
            done, cpu, wall = timed(stamper.stamp_due)
            assert done.stamped == 1
            rows.append(("one timestamp request (local openssl ts)", cpu, wall, ""))
            for fmt in (ExportFormat.WARC, ExportFormat.WACZ):
                target = work / f"archive{fmt.filename_suffix}"
                size, cpu, wall = timed(lambda: write(target, export(archive, fmt)))  # noqa: B023
                rows.append((f"export --format {fmt.value}", cpu, wall, f"{size:,} bytes"))
            roots = load_trust([str(ca.root_pem)])
            report, cpu, wall = timed(lambda: verify_wacz(work / "archive.wacz", roots))
            assert len(report.proven) == pages and not report.problems
            rows.append(("verify the WACZ package", cpu, wall, ""))
            report, cpu, wall = timed(lambda: verify_archive(evidence.kept_captures(), roots))
            assert len(report.proven) == pages and not report.problems
            rows.append(("verify the archive's pages", cpu, wall, ""))
        finally:
            archive.close()
            tsa.stop()
    print(f"| {pages:,} raw pages of about 20 KB | CPU s | wall s | size |")
    print("|---|---|---|---|")
    for name, cpu, wall, size in rows:
        print(f"| {name} | {cpu:.2f} | {wall:.2f} | {size} |")


if __name__ == "__main__":
    main()
