"""`embassy-watch verify`, end to end: the replica crawled, edited and crawled again with a
real local TSA, exported as WACZ, verified; then one byte changed in each part of the
package (and of the archive) and verified again: each change is found and named."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import sqlite3
import zipfile
import zlib
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from monitor.wacz import build_wacz
from storage.evidence import Evidence
from storage.records import StatementFilter
from tests.chain import EDITED, Chain
from tests.test_wacz import _validate
from tests.tsa import TestCA

WARC = "archive/data.warc.gz"


def _verify(chain: Chain, target: str | Path, *certs: Path, expect: int) -> str:
    pems = certs or (chain.ca.root_pem,)
    options = [option for pem in pems for option in ("--tsa-cert", str(pem))]
    return chain.ew.run("verify", str(target), *options, expect=expect).stdout


def _members(package: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(package) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _rezip(chain: Chain, name: str, changes: dict[str, bytes]) -> Path:
    """The package with some members replaced; everything else, manifest included, as it was."""
    target = chain.directory / name
    with zipfile.ZipFile(chain.package) as source, zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            out.writestr(info, changes.get(info.filename, source.read(info)))
    return target


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _edited_response(warc: bytes) -> tuple[int, int, str]:
    """Offset and length of the edited statement's second response record, and its label."""
    iterator = ArchiveIterator(io.BytesIO(warc))
    found = []
    for number, record in enumerate(iterator, start=1):
        record.raw_stream.read()
        url = record.rec_headers.get_header("WARC-Target-URI") or ""
        if record.rec_type == "response" and url.endswith(f"/{EDITED}/"):
            label = f"{WARC} record {number} (response {url}"
            found.append((iterator.get_record_offset(), iterator.get_record_length(), label))
    return found[-1]


def test_an_untouched_package_and_archive_are_proven_in_plain_words(chain: Chain) -> None:
    out = _verify(chain, chain.package, expect=0)
    assert f"trusting: CN={chain.ca.name} Root CA" in out
    assert "existed no later than" in out and f"per TSA CN={chain.ca.name} ({chain.tsa.url})" in out
    assert "nothing was changed" in out and "CHANGED" not in out
    proven = [line for line in out.splitlines() if line.startswith("proven: ")]
    with chain.ew.archive() as archive:
        assert len(proven) == len(list(archive.captures()))
    out = _verify(chain, str(chain.statement_id), expect=0)
    assert out.count("proven: ") == 2 and f"/{EDITED}/ fetched " in out


def test_trust_is_the_given_ca_only(chain: Chain, tmp_path: Path) -> None:
    stranger = TestCA.make(tmp_path / "stranger", name="Stranger TSA")
    out = _verify(chain, chain.package, stranger.root_pem, expect=1)
    assert "CHANGED: evidence/tree-" in out and "does not verify" in out
    assert "proven: " not in out
    # Without --tsa-cert, [evidence] tsa_certificates is trusted.
    assert "nothing was changed" in chain.ew.run("verify", str(chain.package)).stdout


def test_a_byte_changed_in_a_warc_records_page_is_found_and_the_record_named(
    chain: Chain,
) -> None:
    members = _members(chain.package)
    warc = members[WARC]
    offset, length, label = _edited_response(warc)
    record = gzip.decompress(warc[offset : offset + length])
    changed = _flip(record, record.rindex(b"</html>"))  # in the page's bytes
    member = gzip.compress(changed)
    package = _rezip(
        chain, "warc-record.wacz", {WARC: warc[:offset] + member + warc[offset + length :]}
    )
    out = _verify(chain, package, expect=1)
    assert f"CHANGED: {WARC}: its SHA-256 or size differs from the one in datapackage.json" in out
    assert f"CHANGED: {label}" in out and "are not the ones timestamped" in out


def test_a_byte_changed_in_the_compressed_warc_is_found(chain: Chain) -> None:
    members = _members(chain.package)
    offset, length, _ = _edited_response(members[WARC])
    package = _rezip(chain, "warc-raw.wacz", {WARC: _flip(members[WARC], offset + length // 2)})
    out = _verify(chain, package, expect=1)
    assert f"CHANGED: {WARC}" in out and "NOT VERIFIED" in out


def test_a_byte_changed_in_the_index_is_found_and_the_line_named(chain: Chain) -> None:
    index = _members(chain.package)["indexes/index.cdx"]
    at = index.index(b'"offset": "') + len(b'"offset": "')  # the first line's offset
    package = _rezip(chain, "index.wacz", {"indexes/index.cdx": _flip(index, at)})
    out = _verify(chain, package, expect=1)
    assert "CHANGED: indexes/index.cdx: its SHA-256 or size differs" in out
    assert "CHANGED: indexes/index.cdx line 1: does not describe the WARC record" in out


def test_a_byte_changed_in_the_pages_list_is_found_and_the_line_named(chain: Chain) -> None:
    pages = _members(chain.package)["pages/pages.jsonl"]
    at = pages.index(b"/zh/")  # in the second line's URL
    package = _rezip(chain, "pages.wacz", {"pages/pages.jsonl": _flip(pages, at + 1)})
    out = _verify(chain, package, expect=1)
    assert "CHANGED: pages/pages.jsonl: its SHA-256 or size differs" in out
    assert "CHANGED: pages/pages.jsonl line 2: no response record of" in out


def test_a_byte_changed_in_the_manifest_is_found(chain: Chain) -> None:
    manifest = _members(chain.package)["datapackage.json"]
    at = manifest.index(b"sha256:") + len(b"sha256:")
    package = _rezip(chain, "manifest.wacz", {"datapackage.json": _flip(manifest, at)})
    out = _verify(chain, package, expect=1)
    assert (
        "CHANGED: datapackage.json: its SHA-256 differs from the one in datapackage-digest.json"
        in out
    )


def test_a_byte_changed_in_a_token_is_found_and_the_token_named(chain: Chain) -> None:
    members = _members(chain.package)
    token_file = sorted(name for name in members if name.endswith(".tsr"))[-1]
    token = members[token_file]
    package = _rezip(chain, "token.wacz", {token_file: _flip(token, len(token) - 20)})
    out = _verify(chain, package, expect=1)
    assert f"CHANGED: {token_file}: its SHA-256 or size differs" in out
    assert f"CHANGED: {token_file} (tree " in out and "does not verify" in out
    assert "has no valid timestamp" in out  # its pages are no longer proven


def test_a_byte_changed_in_a_proof_is_found_and_the_line_named(chain: Chain) -> None:
    proofs = _members(chain.package)["evidence/proofs.jsonl"]
    at = proofs.index(b'"path": ["') + len(b'"path": ["')  # the first line's first sibling
    changed = proofs[:at] + (b"1" if proofs[at : at + 1] == b"0" else b"0") + proofs[at + 1 :]
    package = _rezip(chain, "proof.wacz", {"evidence/proofs.jsonl": changed})
    out = _verify(chain, package, expect=1)
    assert "CHANGED: evidence/proofs.jsonl: its SHA-256 or size differs" in out
    assert "CHANGED: evidence/proofs.jsonl line 1 (" in out
    assert "does not lead to tree" in out


def test_a_forgery_with_every_hash_recomputed_is_still_found(chain: Chain) -> None:
    # Someone edits a page and rebuilds the whole package around it, every hash and index
    # consistent (with this program's own builder): only the timestamped root can tell.
    with chain.ew.archive() as archive:
        kept = list(Evidence(archive.engine).kept_captures())
        titles = {s.id: s.title for s in archive.statements(StatementFilter())}
    last = max(i for i, page in enumerate(kept) if page.final_url.endswith(f"/{EDITED}/"))
    page = kept[last]
    body = page.body.replace("項".encode(), "项".encode())
    assert body != page.body and page.inclusion is not None
    sha = hashlib.sha256(body).hexdigest()
    inclusion = dataclasses.replace(page.inclusion, sha256=sha)
    kept[last] = dataclasses.replace(page, body=body, recorded_sha256=sha, inclusion=inclusion)
    work = chain.directory / "forgery"
    work.mkdir()
    forged = build_wacz(work, kept, titles, "forged")
    assert "Validation succeeded" in _validate(forged).stdout  # a well-formed package
    out = _verify(chain, forged, expect=1)
    assert "its SHA-256 or size differs" not in out and "WARC digest" not in out
    [problem] = [line for line in out.splitlines() if line.startswith("CHANGED: ")]
    assert problem.startswith("CHANGED: evidence/proofs.jsonl line ")
    assert f"/{EDITED}/" in problem and "does not lead to tree" in problem


def test_a_byte_changed_in_the_archive_is_found_by_verify_statement(chain: Chain) -> None:
    copy = chain.directory / "tampered.db"
    source = sqlite3.connect(str(chain.directory / "archive.db"))
    with sqlite3.connect(str(copy)) as target:
        source.backup(target)
    source.close()
    config = chain.directory / "tampered.toml"
    config.write_text(
        chain.ew.config.read_text().replace("archive.db", "tampered.db"), encoding="utf-8"
    )
    from tests.helpers import EmbassyWatch

    tampered = EmbassyWatch(config, f"sqlite:///{copy}")
    with sqlite3.connect(str(copy)) as db:
        sha, data = db.execute(
            "SELECT b.sha256, b.data FROM blob b JOIN observation o ON o.blob_sha256 = b.sha256 "
            "WHERE o.statement_id = ? ORDER BY o.id DESC LIMIT 1",
            (chain.statement_id,),
        ).fetchone()
        page = zlib.decompress(data)
        changed = _flip(page, page.rindex(b"</html>"))
        db.execute("UPDATE blob SET data = ? WHERE sha256 = ?", (zlib.compress(changed), sha))
    out = tampered.run(
        "verify", str(chain.statement_id), "--tsa-cert", str(chain.ca.root_pem), expect=1
    ).stdout
    assert f"/{EDITED}/ fetched " in out
    assert "the stored bytes differ from the SHA-256 recorded at the fetch" in out
    with sqlite3.connect(str(copy)) as db:
        token = db.execute("SELECT id, token FROM evidence_stamp ORDER BY id LIMIT 1").fetchone()
        db.execute(
            "UPDATE evidence_stamp SET token = ? WHERE id = ?", (_flip(token[1], 40), token[0])
        )
    out = tampered.run("verify", "1", "--tsa-cert", str(chain.ca.root_pem), expect=1).stdout
    assert "CHANGED: tree 1's token from" in out and "does not verify" in out


def test_verify_says_what_it_needs_in_one_line(chain: Chain, tmp_path: Path) -> None:
    from tests.helpers import EmbassyWatch, write_config

    url = f"sqlite:///{tmp_path / 'none.db'}"
    bare = EmbassyWatch(write_config(tmp_path, url, ["http://127.0.0.1:9/"]), url)
    done = bare.run("verify", str(chain.package), expect=2)
    assert done.stderr == (
        "embassy-watch: no trusted TSA certificate: give --tsa-cert PEM or set [evidence] "
        "tsa_certificates\n"
    )
    done = bare.run("verify", str(chain.package), "--tsa-cert", str(tmp_path / "no.pem"), expect=2)
    assert done.stderr.startswith(f"embassy-watch: cannot read {tmp_path / 'no.pem'}: ")
    not_a_package = tmp_path / "notes.txt"
    not_a_package.write_text("hello", encoding="utf-8")
    out = bare.run("verify", str(not_a_package), "--tsa-cert", str(chain.ca.root_pem), expect=1)
    assert f"CHANGED: {not_a_package}: not a readable ZIP file" in out.stdout
    assert not (tmp_path / "none.db").exists()
