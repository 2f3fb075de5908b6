"""WACZ export: the replica crawled, edited and crawled again with a real local TSA, then
`embassy-watch export --format wacz`, read back with warcio and checked by py-wacz's
own validator (`wacz validate`). Replay in ReplayWeb.page is not tested here."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from storage import hashtree
from tests.chain import EDITED, Chain

WACZ_VALIDATOR = Path(sys.executable).with_name("wacz")


def _validate(package: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WACZ_VALIDATOR), "validate", "-f", str(package)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_package_passes_the_wacz_validator(chain: Chain) -> None:
    for package in (chain.package, chain.statement_package):
        done = _validate(package)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Version detected as 1.1.1" in done.stdout
        assert "Validation succeeded" in done.stdout


def test_the_validator_refuses_a_package_whose_file_differs_from_its_manifest(
    chain: Chain, tmp_path: Path
) -> None:
    # The validator's verdict means something: one changed byte and it says invalid.
    tampered = tmp_path / "tampered.wacz"
    with zipfile.ZipFile(chain.package) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "pages/pages.jsonl":
                data = data.replace(b"http://", b"http:/", 1)
                assert data != source.read(info)
            target.writestr(info, data)
    done = _validate(tampered)
    assert "Validation failed" in done.stdout


def _members(package: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(package) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _records(warc: bytes) -> list[tuple[str, str, str, bytes, str]]:
    import io

    records = []
    for record in ArchiveIterator(io.BytesIO(warc)):
        headers = record.rec_headers
        records.append(
            (
                record.rec_type,
                headers.get_header("WARC-Target-URI") or "",
                headers.get_header("WARC-Date") or "",
                record.raw_stream.read(),
                headers.get_header("WARC-Record-ID") or "",
            )
        )
    return records


def test_every_raw_page_kept_is_a_request_and_a_response_at_its_capture_time(
    chain: Chain,
) -> None:
    members = _members(chain.package)
    records = _records(members["archive/data.warc.gz"])
    assert records[0][0] == "warcinfo"
    with chain.ew.archive() as archive:
        kept = list(archive.captures())
    responses = [r for r in records if r[0] == "response"]
    requests = [r for r in records if r[0] == "request"]
    assert len(responses) == len(requests) == len(kept)
    for capture, (_, url, date, body, _) in zip(kept, responses, strict=True):
        assert url == capture.final_url and body == capture.body
        assert date == capture.fetched_at.isoformat().replace("+00:00", "Z")
    assert [(r[1], r[2]) for r in requests] == [(r[1], r[2]) for r in responses]
    # The edited statement's page is there twice: before and after the edit.
    edited = [r for r in responses if r[1].endswith(f"/{EDITED}/")]
    assert len(edited) == 2 and "項".encode() in edited[1][3]


def test_the_index_pages_and_manifest_describe_the_files(chain: Chain) -> None:
    members = _members(chain.package)
    manifest = json.loads(members["datapackage.json"])
    assert manifest["profile"] == "data-package" and manifest["wacz_version"] == "1.1.1"
    listed = {resource["path"]: resource for resource in manifest["resources"]}
    assert set(listed) == set(members) - {"datapackage.json", "datapackage-digest.json"}
    for path, resource in listed.items():
        assert resource["hash"] == "sha256:" + hashlib.sha256(members[path]).hexdigest()
        assert resource["bytes"] == len(members[path])
    digest = json.loads(members["datapackage-digest.json"])
    assert digest == {
        "path": "datapackage.json",
        "hash": "sha256:" + hashlib.sha256(members["datapackage.json"]).hexdigest(),
    }
    warc = members["archive/data.warc.gz"]
    responses = [r for r in _records(warc) if r[0] == "response"]
    index = [line.split(" ", 2) for line in members["indexes/index.cdx"].decode().splitlines()]
    assert len(index) == len(responses)
    assert [key for key, _, _ in index] == sorted(key for key, _, _ in index)
    for _, timestamp, fields in index:
        entry = json.loads(fields)
        record = _records(warc[int(entry["offset"]) : int(entry["offset"]) + int(entry["length"])])
        assert record[0][0] == "response" and record[0][1] == entry["url"]
        assert record[0][2].replace("-", "").replace(":", "").replace("T", "")[:14] == timestamp
    pages = [json.loads(line) for line in members["pages/pages.jsonl"].splitlines()]
    assert pages[0] == {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
    assert [(p["url"], p["ts"]) for p in pages[1:]] == [(r[1], r[2]) for r in responses]
    with zipfile.ZipFile(chain.package) as archive:
        assert archive.getinfo("archive/data.warc.gz").compress_type == zipfile.ZIP_STORED


def test_the_package_carries_each_pages_proof_and_its_trees_tokens(chain: Chain) -> None:
    members = _members(chain.package)
    proofs = [json.loads(line) for line in members["evidence/proofs.jsonl"].splitlines()]
    trees = {
        entry["tree"]: entry
        for entry in map(json.loads, members["evidence/timestamps.jsonl"].splitlines())
    }
    responses = {r[4]: r for r in _records(members["archive/data.warc.gz"]) if r[0] == "response"}
    assert len(proofs) == len(responses) and len(trees) == 2
    for proof in proofs:
        body = responses[proof["record_id"]][3]
        assert proof["sha256"] == hashlib.sha256(body).hexdigest()
        tree = trees[proof["tree"]]
        assert hashtree.proves(
            bytes.fromhex(proof["sha256"]),
            proof["leaf_index"],
            proof["tree_size"],
            [bytes.fromhex(h) for h in proof["path"]],
            bytes.fromhex(tree["root"]),
        )
    for tree in trees.values():
        [token] = tree["tokens"]
        assert token["tsa_url"] == chain.tsa.url and token["file"] in members
    statement_proofs = _members(chain.statement_package)["evidence/proofs.jsonl"].splitlines()
    assert len(statement_proofs) == 2  # the statement's page before and after the edit


def test_serve_offers_the_same_package_for_download(chain: Chain) -> None:
    from tests.served import serve_process

    with serve_process(chain.ew, chain.directory / "serve.log") as base:
        url = f"{base}/export/statements/{chain.statement_id}.wacz"
        with urllib.request.urlopen(url, timeout=60) as answer:
            kind, data = answer.headers["Content-Type"], answer.read()
    assert kind == "application/wacz"
    downloaded = chain.directory / "downloaded.wacz"
    downloaded.write_bytes(data)
    assert "Validation succeeded" in _validate(downloaded).stdout
    assert _members(downloaded)["evidence/proofs.jsonl"].count(b"\n") == 2
