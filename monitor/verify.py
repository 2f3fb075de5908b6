"""Offline verification of the evidence: a WACZ package, or a statement in the archive.

Three layers, each checked whatever the others say, so that a report names every place
that was changed: the files (the manifest's hashes), the pages (each response's bytes
against the SHA-256 that was sealed, the index and pages list against the records), and
the proofs (each inclusion proof leads to its tree's root, and each TSA token signs that
root under a trusted certificate). A page is proven when all of that holds; what it proves
is said in plain words: these bytes existed no later than the token's time.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response
from warcio.archiveiterator import ArchiveIterator

from monitor.evidence import tsa_name
from monitor.views import iso
from monitor.wacz import (
    DATAPACKAGE,
    DIGEST,
    INDEX_PATH,
    PAGES_PATH,
    PROOFS_PATH,
    TIMESTAMPS_PATH,
    WARC_PATH,
)
from storage import hashtree
from storage.evidence import KeptCapture


class TrustError(Exception):
    """The trusted certificates could not be read; the message names the file."""


def load_trust(paths: Sequence[str]) -> list[x509.Certificate]:
    """Every certificate in these PEM files (a file may hold a chain)."""
    certificates: list[x509.Certificate] = []
    for path in paths:
        try:
            certificates += x509.load_pem_x509_certificates(Path(path).read_bytes())
        except OSError as error:
            raise TrustError(f"cannot read {path}: {error.strerror or error}") from None
        except ValueError:
            raise TrustError(f"{path}: no PEM certificate in it") from None
    return certificates


@dataclass(frozen=True)
class Problem:
    where: str  # the file, and the record or line in it
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(frozen=True)
class Stamp:
    """A token that verified: the tree's root existed no later than `at`, per `tsa`."""

    at: datetime
    tsa: str
    tsa_url: str


@dataclass(frozen=True)
class TokenClaim:
    where: str
    tsa_url: str
    response: bytes
    claimed_time: str | None = None  # what a package's metadata says the token's time is


@dataclass(frozen=True)
class TreeClaim:
    id: int
    root: str
    tokens: tuple[TokenClaim, ...]


@dataclass(frozen=True)
class ProofClaim:
    where: str
    sha256: str
    tree: int | None
    leaf_index: int = 0
    tree_size: int = 0
    path: tuple[str, ...] = ()
    root: str = ""


@dataclass(frozen=True)
class Proven:
    label: str
    sha256: str
    stamps: tuple[Stamp, ...]

    def __str__(self) -> str:
        first = min(self.stamps, key=lambda s: s.at)
        others = len({s.tsa for s in self.stamps} - {first.tsa})
        more = f" (and per {others} more TSA{'s' if others > 1 else ''})" if others else ""
        return (
            f"{self.label}: these bytes (SHA-256 {self.sha256[:16]}…) existed no later than "
            f"{iso(first.at)}, per TSA {first.tsa} ({first.tsa_url}){more}"
        )


@dataclass
class Report:
    proven: list[Proven] = field(default_factory=list)
    unproven: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def tampered(self) -> bool:
        return bool(self.problems)

    def summary_line(self) -> str:
        if self.problems:
            return (
                f"NOT VERIFIED: {len(self.problems)} problem(s) above; "
                f"{len(self.proven)} page(s) proven, {len(self.unproven)} not timestamped"
            )
        return (
            f"verified: {len(self.proven)} page(s) proven by their timestamps, "
            f"{len(self.unproven)} not timestamped; nothing was changed"
        )


# -- the proofs (shared by packages and the archive) -------------------------------------


def check_trees(
    trees: Iterable[TreeClaim], roots: Sequence[x509.Certificate], report: Report
) -> dict[int, tuple[Stamp, ...]]:
    """Each tree's tokens that verify over its root under the trusted certificates."""
    stamped: dict[int, tuple[Stamp, ...]] = {}
    for tree in trees:
        stamps = []
        for token in tree.tokens:
            try:
                stamp = _check_token(token, tree.root, roots)
            except VerificationError as error:
                report.problems.append(
                    Problem(
                        token.where, f"the timestamp of tree {tree.id} does not verify: {error}"
                    )
                )
                continue
            if token.claimed_time is not None and token.claimed_time != iso(stamp.at):
                report.problems.append(
                    Problem(
                        token.where, f"said to be of {token.claimed_time}, signed {iso(stamp.at)}"
                    )
                )
                continue
            stamps.append(stamp)
        stamped[tree.id] = tuple(stamps)
    return stamped


def _check_token(token: TokenClaim, root: str, roots: Sequence[x509.Certificate]) -> Stamp:
    try:
        response = decode_timestamp_response(token.response)
    except ValueError as error:
        raise VerificationError(f"not a timestamp reply ({error})") from None
    builder = VerifierBuilder()
    for certificate in roots:
        builder = builder.add_root_certificate(certificate)
    try:
        root_bytes = bytes.fromhex(root)
    except ValueError:
        raise VerificationError(f"the tree's root {root!r} is not a hash") from None
    builder.build().verify_message(response, root_bytes)
    return Stamp(response.tst_info.gen_time, tsa_name(response), token.tsa_url)


def check_page(
    label: str,
    actual_sha256: str,
    claim: ProofClaim | None,
    trees: Mapping[int, TreeClaim],
    stamped: Mapping[int, tuple[Stamp, ...]],
    report: Report,
) -> None:
    """One page: its bytes are the ones sealed, its proof leads to a root a TSA signed."""
    if claim is None or claim.tree is None:
        report.unproven.append(f"{label}: not sealed in a hash tree (no timestamp)")
        return
    if actual_sha256 != claim.sha256:
        report.problems.append(
            Problem(
                label,
                f"its bytes (SHA-256 {actual_sha256[:16]}…) are not the ones timestamped "
                f"({claim.sha256[:16]}…)",
            )
        )
        return
    tree = trees.get(claim.tree)
    if tree is None:
        report.problems.append(Problem(claim.where, f"names hash tree {claim.tree}, unknown"))
        return
    if not _proof_holds(claim, tree.root):
        report.problems.append(
            Problem(claim.where, f"the inclusion proof of {label} does not lead to tree "
                    f"{tree.id}'s root")
        )  # fmt: skip
        return
    stamps = stamped.get(tree.id, ())
    if not stamps:
        report.unproven.append(f"{label}: its hash tree {tree.id} has no valid timestamp yet")
        return
    report.proven.append(Proven(label, actual_sha256, stamps))


def _proof_holds(claim: ProofClaim, root: str) -> bool:
    try:
        path = [bytes.fromhex(sibling) for sibling in claim.path]
        leaf = bytes.fromhex(claim.sha256)
    except (ValueError, TypeError):
        return False
    computed = hashtree.root_from_proof(leaf, claim.leaf_index, claim.tree_size, path)
    return computed is not None and computed.hex() == root == claim.root


# -- a statement in the archive ------------------------------------------------------------


def verify_archive(kept: Iterable[KeptCapture], roots: Sequence[x509.Certificate]) -> Report:
    """The raw pages as stored: their bytes, proofs and tokens (a database edit shows)."""
    report = Report()
    pages = list(kept)
    trees: dict[int, TreeClaim] = {}
    for page in pages:
        if page.inclusion is not None and page.inclusion.batch.id not in trees:
            batch = page.inclusion.batch
            tokens = tuple(
                TokenClaim(f"tree {batch.id}'s token from {t.tsa_url}", t.tsa_url, t.response)
                for t in batch.tokens
            )
            trees[batch.id] = TreeClaim(batch.id, batch.root, tokens)
    stamped = check_trees(trees.values(), roots, report)
    for page in pages:
        label = (
            f"{page.final_url} fetched {iso(page.fetched_at)} (observation {page.observation_id})"
        )
        actual = hashlib.sha256(page.body).hexdigest()
        if actual != page.recorded_sha256:
            report.problems.append(
                Problem(label, "the stored bytes differ from the SHA-256 recorded at the fetch")
            )
            continue
        claim = None
        if page.inclusion is not None:
            inclusion = page.inclusion
            claim = ProofClaim(
                f"observation {page.observation_id}'s proof",
                inclusion.sha256,
                inclusion.batch.id,
                inclusion.leaf_index,
                inclusion.batch.tree_size,
                inclusion.path,
                inclusion.batch.root,
            )
        check_page(label, actual, claim, trees, stamped, report)
    return report


# -- a WACZ package ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Record:
    number: int  # its place in the WARC, from 1
    kind: str
    record_id: str
    url: str
    date: str
    offset: int
    length: int
    sha256: str  # of the payload (the page's bytes)
    payload_digest: str

    @property
    def label(self) -> str:
        return f"{WARC_PATH} record {self.number} ({self.kind} {self.url} {self.date})"


def verify_wacz(package: Path, roots: Sequence[x509.Certificate]) -> Report:
    report = Report()
    try:
        members = _read_members(package, report)
    except (OSError, zipfile.BadZipFile) as error:
        report.problems.append(Problem(str(package), f"not a readable ZIP file: {error}"))
        return report
    _check_manifest(members, report)
    records = _read_warc(members.get(WARC_PATH), report)
    responses = {record.record_id: record for record in records if record.kind == "response"}
    _check_index(members.get(INDEX_PATH), records, report)
    _check_pages(members.get(PAGES_PATH), responses, report)
    trees = _read_trees(members, report)
    stamped = check_trees(trees.values(), roots, report)
    claims = _read_proofs(members.get(PROOFS_PATH), responses, report)
    for record in responses.values():
        claim = claims.get(record.record_id)
        if claim is None:
            report.problems.append(Problem(record.label, f"has no line in {PROOFS_PATH}"))
            continue
        check_page(record.label, record.sha256, claim, trees, stamped, report)
    return report


def _read_members(package: Path, report: Report) -> dict[str, bytes]:
    members = {}
    with zipfile.ZipFile(package) as archive:
        for info in archive.infolist():
            try:
                members[info.filename] = archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError) as error:  # a bad CRC, say
                report.problems.append(Problem(info.filename, f"unreadable: {error}"))
    return members


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _check_manifest(members: Mapping[str, bytes], report: Report) -> None:
    """datapackage.json is the one datapackage-digest.json names, every file the one it lists."""
    digest = _json_member(members, DIGEST, report)
    manifest_bytes = members.get(DATAPACKAGE, b"")
    if digest is not None and digest.get("hash") != _sha256(manifest_bytes):
        report.problems.append(
            Problem(DATAPACKAGE, f"its SHA-256 differs from the one in {DIGEST}")
        )
    manifest = _json_member(members, DATAPACKAGE, report)
    if manifest is None:
        return
    listed = {str(r.get("path")): r for r in manifest.get("resources", []) if isinstance(r, dict)}
    for path, resource in listed.items():
        data = members.get(path)
        if data is None:
            report.problems.append(Problem(path, f"listed in {DATAPACKAGE} but missing"))
        elif resource.get("hash") != _sha256(data) or resource.get("bytes") != len(data):
            report.problems.append(
                Problem(path, f"its SHA-256 or size differs from the one in {DATAPACKAGE}")
            )
    for path in sorted(set(members) - set(listed) - {DATAPACKAGE, DIGEST}):
        report.problems.append(Problem(path, f"not listed in {DATAPACKAGE}"))


def _json_member(members: Mapping[str, bytes], name: str, report: Report) -> Any:
    if name not in members:
        report.problems.append(Problem(name, "missing"))
        return None
    try:
        value = json.loads(members[name])
    except ValueError as error:
        report.problems.append(Problem(name, f"not JSON: {error}"))
        return None
    if not isinstance(value, dict):
        report.problems.append(Problem(name, "not a JSON object"))
        return None
    return value


def _read_warc(data: bytes | None, report: Report) -> list[_Record]:
    if data is None:
        report.problems.append(Problem(WARC_PATH, "missing"))
        return []
    records: list[_Record] = []
    iterator = ArchiveIterator(io.BytesIO(data), check_digests=True)
    try:
        for number, record in enumerate(iterator, start=1):
            payload = record.raw_stream.read()
            found = _record(number, record, payload, iterator)
            if record.digest_checker.passed is False:
                said = "; ".join(str(p) for p in record.digest_checker.problems)
                report.problems.append(
                    Problem(found.label, f"its WARC digest does not match its content ({said})")
                )
            records.append(found)
    except Exception as error:  # warcio and zlib raise many kinds on damaged bytes
        after = f"after record {len(records)}" if records else "from its start"
        report.problems.append(Problem(WARC_PATH, f"unreadable {after}: {error}"))
    return records


def _record(number: int, record: Any, payload: bytes, iterator: ArchiveIterator) -> _Record:
    headers = record.rec_headers
    return _Record(
        number=number,
        kind=record.rec_type,
        record_id=headers.get_header("WARC-Record-ID") or "",
        url=headers.get_header("WARC-Target-URI") or "",
        date=headers.get_header("WARC-Date") or "",
        offset=iterator.get_record_offset(),
        length=iterator.get_record_length(),
        sha256=hashlib.sha256(payload).hexdigest(),
        payload_digest=headers.get_header("WARC-Payload-Digest") or "",
    )


def _lines(data: bytes | None, name: str, report: Report) -> Iterator[tuple[str, Any]]:
    """(where, parsed JSON) of each line, problems said for those that are not JSON."""
    if data is None:
        report.problems.append(Problem(name, "missing"))
        return
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        where = f"{name} line {number}"
        try:
            yield where, json.loads(line)
        except ValueError as error:
            report.problems.append(Problem(where, f"not JSON: {error}"))


def _timestamp14(date: str) -> str:
    return "".join(c for c in date if c.isdigit())[:14]


def _check_index(data: bytes | None, records: Sequence[_Record], report: Report) -> None:
    """Each CDXJ line points at the response it describes; each response has its line."""
    at_offset = {record.offset: record for record in records}
    indexed = set()
    for number, line in enumerate((data or b"").decode("utf-8", "replace").splitlines(), 1):
        where = f"{INDEX_PATH} line {number}"
        try:
            _key, timestamp, fields = line.split(" ", 2)
            entry = json.loads(fields)
            record = at_offset.get(int(entry["offset"]))
        except (ValueError, KeyError, TypeError) as error:
            report.problems.append(Problem(where, f"not a CDXJ line: {error}"))
            continue
        if (
            record is None
            or record.kind != "response"
            or entry.get("url") != record.url
            or entry.get("digest") != record.payload_digest
            or str(entry.get("length")) != str(record.length)
            or timestamp != _timestamp14(record.date)
        ):
            report.problems.append(
                Problem(where, "does not describe the WARC record at its offset")
            )
            continue
        indexed.add(record.record_id)
    if data is None:
        report.problems.append(Problem(INDEX_PATH, "missing"))
    for record in records:
        if record.kind == "response" and record.record_id not in indexed:
            report.problems.append(Problem(record.label, f"has no line in {INDEX_PATH}"))


def _check_pages(data: bytes | None, responses: Mapping[str, _Record], report: Report) -> None:
    captured = {(record.url, record.date) for record in responses.values()}
    for where, entry in _lines(data, PAGES_PATH, report):
        if not isinstance(entry, dict):
            report.problems.append(Problem(where, "not a JSON object"))
        elif where.endswith(" line 1"):
            if entry.get("format") != "json-pages-1.0":
                report.problems.append(Problem(where, "not a json-pages-1.0 header"))
        elif (entry.get("url"), entry.get("ts")) not in captured:
            report.problems.append(
                Problem(where, f"no response record of {entry.get('url')} at {entry.get('ts')}")
            )


def _read_trees(members: Mapping[str, bytes], report: Report) -> dict[int, TreeClaim]:
    trees = {}
    for where, entry in _lines(members.get(TIMESTAMPS_PATH), TIMESTAMPS_PATH, report):
        try:
            tokens = []
            for token in entry["tokens"]:
                file = str(token["file"])
                if file not in members:
                    report.problems.append(Problem(file, f"named in {where} but missing"))
                    continue
                label = f"{file} (tree {entry['tree']}, {token['tsa_url']})"
                tokens.append(
                    TokenClaim(label, str(token["tsa_url"]), members[file], token.get("gen_time"))
                )
            trees[int(entry["tree"])] = TreeClaim(
                int(entry["tree"]), str(entry["root"]), tuple(tokens)
            )
        except (KeyError, TypeError, ValueError) as error:
            report.problems.append(Problem(where, f"not a tree's timestamps: {error}"))
    return trees


def _read_proofs(
    data: bytes | None, responses: Mapping[str, _Record], report: Report
) -> dict[str, ProofClaim]:
    claims = {}
    for where, entry in _lines(data, PROOFS_PATH, report):
        try:
            record = responses.get(str(entry["record_id"]))
            claim = ProofClaim(
                f"{where} ({entry['url']} {entry['ts']})",
                str(entry["sha256"]),
                None if entry["tree"] is None else int(entry["tree"]),
                int(entry.get("leaf_index", 0)),
                int(entry.get("tree_size", 0)),
                tuple(str(h) for h in entry.get("path", ())),
                str(entry.get("root", "")),
            )
        except (KeyError, TypeError, ValueError) as error:
            report.problems.append(Problem(where, f"not a proof: {error}"))
            continue
        if record is None:
            report.problems.append(Problem(where, "names a record that is not in the WARC"))
        elif (entry["url"], entry["ts"]) != (record.url, record.date):
            report.problems.append(Problem(where, f"does not match {record.label}"))
        else:
            claims[record.record_id] = claim
    return claims
