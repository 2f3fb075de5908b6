"""A WACZ 1.1.1 package of the raw pages kept, carrying its own evidence.

Layout (the WACZ specification's, plus `evidence/`, which it allows when listed):

    archive/data.warc.gz      a request and a response record for every raw page kept
    indexes/index.cdx         CDXJ, sorted (cdxj-indexer, as py-wacz makes it)
    pages/pages.jsonl         one entry per response: url, ts, title
    evidence/proofs.jsonl     per response record: its page's SHA-256 and inclusion proof
    evidence/timestamps.jsonl per hash tree: its root and each TSA's token (a .tsr file)
    evidence/tree-N-K.tsr     the TSAs' replies (RFC 3161 TimeStampResp, DER)
    datapackage.json          every file above with its SHA-256 and size
    datapackage-digest.json   the SHA-256 of datapackage.json

Built in a temporary folder (the index needs the finished WARC, the manifest every file's
hash), then streamed out.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cdxj_indexer.main import write_cdx_index
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from monitor.export import response_record
from monitor.views import iso
from storage.evidence import Batch, KeptCapture
from storage.records import Capture, PageKind

WACZ_VERSION = "1.1.1"
WARC_PATH = "archive/data.warc.gz"
INDEX_PATH = "indexes/index.cdx"
PAGES_PATH = "pages/pages.jsonl"
PROOFS_PATH = "evidence/proofs.jsonl"
TIMESTAMPS_PATH = "evidence/timestamps.jsonl"
DATAPACKAGE = "datapackage.json"
DIGEST = "datapackage-digest.json"
PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
CHUNK = 64 * 1024
# Already compressed: stored as they are, so a reader can seek into them (the spec's rule).
STORED = (".warc.gz", ".tsr")


@dataclass
class _Contents:
    """What the WARC writer learnt, for the files written after it."""

    pages: list[dict[str, Any]] = field(default_factory=list)
    proofs: list[dict[str, Any]] = field(default_factory=list)
    batches: dict[int, Batch] = field(default_factory=dict)


def wacz_chunks(
    kept: Iterable[KeptCapture], titles: Mapping[int, str | None], title: str
) -> Iterator[bytes]:
    """The package as chunks of bytes (built whole first, in a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="embassy-watch-wacz-") as work:
        package = build_wacz(Path(work), kept, titles, title)
        with package.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk


def build_wacz(
    work: Path, kept: Iterable[KeptCapture], titles: Mapping[int, str | None], title: str
) -> Path:
    files: dict[str, bytes | Path] = {}
    warc = work / "data.warc.gz"
    contents = _write_warc(warc, kept, titles)
    files[WARC_PATH] = warc
    files[INDEX_PATH] = _cdxj(warc).encode("utf-8")
    files[PAGES_PATH] = _jsonl([PAGES_HEADER, *contents.pages])
    files[PROOFS_PATH] = _jsonl(contents.proofs)
    stamps, tokens = _timestamps(contents.batches)
    files[TIMESTAMPS_PATH] = _jsonl(stamps)
    files.update(tokens)
    created = iso(datetime.now(UTC))
    manifest = _datapackage(files, title, created, contents.pages)
    files[DATAPACKAGE] = manifest
    files[DIGEST] = _json({"path": DATAPACKAGE, "hash": "sha256:" + _sha256(manifest)})
    package = work / "package.wacz"
    with zipfile.ZipFile(package, "w") as archive:
        for name, data in files.items():
            _add(archive, name, data)
    return package


def _write_warc(
    target: Path, kept: Iterable[KeptCapture], titles: Mapping[int, str | None]
) -> _Contents:
    contents = _Contents()
    with target.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True, warc_version="WARC/1.1")
        writer.write_record(
            writer.create_warcinfo_record(
                "data.warc.gz",
                {
                    "software": f"embassy-watch {version('embassy-watch')}",
                    "format": "WARC File Format 1.1",
                    "description": "Raw pages kept by embassy-watch (bodies as decoded by "
                    "the crawler), with their timestamp evidence in evidence/",
                },
            )
        )
        for page in kept:
            response = response_record(writer, _capture(page))
            request = _request_record(writer, page, response)
            writer.write_record(request)
            writer.write_record(response)
            record_id = response.rec_headers.get_header("WARC-Record-ID")
            contents.pages.append(_page_entry(page, record_id, titles))
            contents.proofs.append(_proof_entry(page, record_id))
            if page.inclusion is not None:
                contents.batches.setdefault(page.inclusion.batch.id, page.inclusion.batch)
    return contents


def _capture(page: KeptCapture) -> Capture:
    return Capture(
        site=page.site,
        kind=PageKind(page.kind),
        requested_url=page.requested_url,
        final_url=page.final_url,
        fetched_at=page.fetched_at,
        status=page.status,
        headers=page.headers,
        body=page.body,
    )


def _request_record(writer: WARCWriter, page: KeptCapture, response: Any) -> Any:
    """What was asked: GET of the final URL (the crawler's own headers are not kept)."""
    parts = urlsplit(page.final_url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = StatusAndHeaders(
        f"GET {target} HTTP/1.1", [("Host", parts.netloc)], is_http_request=True
    )
    return writer.create_warc_record(
        page.final_url,
        "request",
        http_headers=headers,
        warc_headers_dict={
            "WARC-Date": iso(page.fetched_at),
            "WARC-Concurrent-To": response.rec_headers.get_header("WARC-Record-ID"),
        },
    )


def _page_entry(
    page: KeptCapture, record_id: str, titles: Mapping[int, str | None]
) -> dict[str, Any]:
    title = titles.get(page.statement_id) if page.statement_id is not None else None
    return {
        "id": record_id.removeprefix("<urn:uuid:").removesuffix(">"),
        "url": page.final_url,
        "ts": iso(page.fetched_at),
        "title": title or f"{page.kind} page {page.final_url}",
    }


def _proof_entry(page: KeptCapture, record_id: str) -> dict[str, Any]:
    """The record's evidence: the hash tree its page's SHA-256 was sealed in, and the path."""
    entry: dict[str, Any] = {
        "record_id": record_id,
        "url": page.final_url,
        "ts": iso(page.fetched_at),
        "sha256": page.recorded_sha256,
        "tree": None,
    }
    inclusion = page.inclusion
    if inclusion is not None:
        entry.update(
            sha256=inclusion.sha256,
            tree=inclusion.batch.id,
            tree_size=inclusion.batch.tree_size,
            leaf_index=inclusion.leaf_index,
            path=list(inclusion.path),
            root=inclusion.batch.root,
        )
    return entry


def _timestamps(batches: Mapping[int, Batch]) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    entries: list[dict[str, Any]] = []
    files: dict[str, bytes] = {}
    for batch in sorted(batches.values(), key=lambda b: b.id):
        tokens = []
        for number, token in enumerate(batch.tokens, start=1):
            name = f"evidence/tree-{batch.id}-{number}.tsr"
            files[name] = token.response
            tokens.append(
                {
                    "file": name,
                    "tsa_url": token.tsa_url,
                    "tsa_name": token.tsa_name,
                    "gen_time": iso(token.gen_time),
                }
            )
        entries.append(
            {
                "tree": batch.id,
                "site": batch.site,
                "sealed_at": iso(batch.sealed_at),
                "tree_size": batch.tree_size,
                "root": batch.root,
                "tokens": tokens,
                "waiting_for": list(batch.waiting),
            }
        )
    return entries, files


def _cdxj(warc: Path) -> str:
    out = io.StringIO()
    write_cdx_index(out, [str(warc)], {"sort": True})
    return out.getvalue()


def _datapackage(
    files: Mapping[str, bytes | Path], title: str, created: str | None, pages: list[dict[str, Any]]
) -> bytes:
    resources = []
    for path, data in files.items():
        raw = data.read_bytes() if isinstance(data, Path) else data
        resources.append(
            {
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "hash": "sha256:" + hashlib.sha256(raw).hexdigest(),
                "bytes": len(raw),
            }
        )
    manifest: dict[str, Any] = {
        "profile": "data-package",
        "wacz_version": WACZ_VERSION,
        "title": title,
        "description": "Raw pages archived by embassy-watch. evidence/ holds each page's "
        "inclusion proof in a hash tree and the RFC 3161 timestamps of the tree's root: "
        "check them with `embassy-watch verify FILE`.",
        "created": created,
        "modified": created,
        "software": f"embassy-watch {version('embassy-watch')}",
        "resources": resources,
    }
    if pages:
        manifest["mainPageUrl"] = pages[0]["url"]
        manifest["mainPageDate"] = pages[0]["ts"]
    return _json(manifest)


def _add(archive: zipfile.ZipFile, name: str, data: bytes | Path) -> None:
    compression = zipfile.ZIP_STORED if name.endswith(STORED) else zipfile.ZIP_DEFLATED
    if isinstance(data, Path):
        archive.write(data, name, compress_type=compression)
    else:
        archive.writestr(name, data, compress_type=compression)


def _jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def _json(value: Mapping[str, Any]) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
