"""The archive out: every revision as JSON Lines or CSV, every kept raw capture as WARC
(or WACZ with its evidence: `monitor.wacz`).

Everything streams (one statement's revisions, one capture at a time), so exporting
a large archive needs little memory, over HTTP or to a file.

JSON Lines and WARC are data: they carry the text exactly as archived. A CSV file is
opened in spreadsheets, which run a cell that starts like a formula: such cells are
neutralised as OWASP advises against CSV injection (a leading single quote).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from monitor.views import iso, revision_json
from storage.archive import Archive
from storage.evidence import Evidence
from storage.records import Capture, StatementFilter, StatementSummary


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"
    WARC = "warc"
    WACZ = "wacz"

    @property
    def filename_suffix(self) -> str:
        return ".warc.gz" if self is ExportFormat.WARC else f".{self.value}"

    @classmethod
    def from_suffix(cls, suffix: str) -> ExportFormat | None:
        """The format a download name ends in (`jsonl`, `csv`, `warc.gz`), if any."""
        return next((f for f in cls if f.filename_suffix == "." + suffix), None)

    @property
    def media_type(self) -> str:
        return {
            ExportFormat.JSONL: "application/jsonl; charset=utf-8",
            ExportFormat.CSV: "text/csv; charset=utf-8",
            ExportFormat.WARC: "application/warc",
            ExportFormat.WACZ: "application/wacz",
        }[self]


CSV_COLUMNS = (
    "id", "site", "url", "status", "revision", "revisions", "observed_at", "content_hash",
    "revision_url", "title", "subtitle", "published_at", "published_raw", "modified_at",
    "author", "tags", "categories", "language", "post_id", "twin_url", "body",
)  # fmt: skip
LIST_SEPARATOR = "; "
# What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Scrapy hands over decoded bodies; these headers would describe bytes we do not have.
DROPPED_HEADERS = {"content-encoding", "transfer-encoding", "content-length"}


def export(
    archive: Archive,
    fmt: ExportFormat,
    statement: StatementSummary | None = None,
    sites: tuple[str, ...] | None = None,
) -> Iterator[bytes]:
    """The export as chunks of bytes: one statement's history, or the whole archive (or
    only `sites`' part of it: a mission's, a language's)."""
    if fmt is ExportFormat.WARC:
        return warc_records(archive.captures(statement.id if statement else None, sites))
    if fmt is ExportFormat.WACZ:
        return _wacz(archive, statement, sites)
    statements = [statement] if statement else archive.statements(StatementFilter(sites=sites))
    rows = revision_rows(archive, statements)
    chunks = jsonl_lines(rows) if fmt is ExportFormat.JSONL else csv_lines(rows)
    return (chunk.encode("utf-8") for chunk in chunks)


def _wacz(
    archive: Archive, statement: StatementSummary | None, sites: tuple[str, ...] | None
) -> Iterator[bytes]:
    from monitor.wacz import wacz_chunks  # imported late: monitor.wacz imports this module

    statements = [statement] if statement else archive.statements(StatementFilter(sites=sites))
    titles = {s.id: s.title for s in statements}
    kept = Evidence(archive.engine).kept_captures(statement.id if statement else None, sites)
    what = f"statement {statement.id}: {statement.url}" if statement else "the whole archive"
    if sites is not None and statement is None:
        what = f"the sites {', '.join(sites) or '(none)'}"
    return wacz_chunks(kept, titles, f"embassy-watch: {what}")


def revision_rows(
    archive: Archive, statements: Iterable[StatementSummary]
) -> Iterator[dict[str, Any]]:
    for statement in statements:
        for revision in archive.revisions(statement.id):
            yield revision_json(statement, revision)


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


def csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    # A byte-order mark, or Excel reads UTF-8 Chinese as mojibake.
    yield "\ufeff"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: csv_cell(value) for key, value in row.items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: lists joined, text that a spreadsheet would run quoted inert."""
    text = LIST_SEPARATOR.join(value) if isinstance(value, list) else value
    if isinstance(text, str) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def warc_records(captures: Iterable[Capture]) -> Iterator[bytes]:
    """A gzipped WARC 1.1 file: a warcinfo record, then one response record per capture."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True, warc_version="WARC/1.1")
    writer.write_record(
        writer.create_warcinfo_record(
            "embassy-watch.warc.gz",
            {
                "software": "embassy-watch",
                "format": "WARC File Format 1.1",
                "description": "Raw pages kept by embassy-watch (bodies as decoded by the crawler)",
            },
        )
    )
    yield _drain(buffer)
    for capture in captures:
        writer.write_record(response_record(writer, capture))
        yield _drain(buffer)


def response_record(writer: WARCWriter, capture: Capture) -> Any:
    status = capture.status or 200
    headers = [
        (name, value)
        for name, value in capture.headers.items()
        if name.lower() not in DROPPED_HEADERS
    ]
    headers.append(("Content-Length", str(len(capture.body))))
    http_headers = StatusAndHeaders(f"{status} {_reason(status)}", headers, protocol="HTTP/1.1")
    return writer.create_warc_record(
        capture.final_url,
        "response",
        payload=io.BytesIO(capture.body),
        length=len(capture.body),
        http_headers=http_headers,
        warc_headers_dict={"WARC-Date": iso(capture.fetched_at)},
    )


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _drain(buffer: io.BytesIO) -> bytes:
    data = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return data
