"""Trusted timestamps at capture: hash trees of the kept raw pages, stamped by a real TSA.

The TSA is OpenSSL's `ts -reply` on 127.0.0.1 (tests/tsa.py); the crawls are the real
`embassy-watch crawl` against the replica site.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response
from sqlalchemy import select

from config import EvidenceSettings
from monitor.evidence import Timestamper, imprint_of
from storage import hashtree, models
from storage.archive import Archive
from storage.evidence import Evidence, StampStatus
from storage.records import Capture, PageKind
from tests.helpers import EmbassyWatch, write_config
from tests.replica.site import ReplicaSite
from tests.tsa import LocalTSA, TestCA

EDITED = "statement-24"


def test_every_leaf_of_trees_of_any_size_is_proven_and_nothing_else() -> None:
    for size in range(1, 34):
        data = [os.urandom(32) for _ in range(size)]
        tree = hashtree.build(data)
        for index, leaf in enumerate(data):
            path = tree.paths[index]
            assert hashtree.proves(leaf, index, size, path, tree.root)
            assert not hashtree.proves(os.urandom(32), index, size, path, tree.root)
            if size > 1:
                assert not hashtree.proves(leaf, (index + 1) % size, size, path, tree.root)
                bent = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]
                assert not hashtree.proves(leaf, index, size, bent, tree.root)


def test_hashes_are_certificate_transparencys() -> None:
    # RFC 6962's leaf hash of the empty string, as published in its test vectors.
    assert hashtree.leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    a, b, c = (bytes([n]) * 32 for n in (1, 2, 3))
    three = hashtree.node_hash(
        hashtree.node_hash(hashtree.leaf_hash(a), hashtree.leaf_hash(b)), hashtree.leaf_hash(c)
    )
    assert hashtree.build([a, b, c]).root == three


def _evidence_ew(
    replica: ReplicaSite, tmp_path: Path, tsa_urls: list[str], ca: TestCA
) -> EmbassyWatch:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    evidence = {"tsa_urls": tsa_urls, "tsa_certificates": [str(ca.root_pem)], "timeout": "5s"}
    config = write_config(tmp_path, url, [replica.listing_url], sections={"evidence": evidence})
    return EmbassyWatch(config, url)


def _verify_token(response_der: bytes, root_hex: str, ca: TestCA) -> datetime:
    response = decode_timestamp_response(response_der)
    root_ca = x509.load_pem_x509_certificate(ca.root_pem.read_bytes())
    verifier = VerifierBuilder().add_root_certificate(root_ca).build()
    assert verifier.verify_message(response, bytes.fromhex(root_hex))
    return response.tst_info.gen_time


def test_each_cycle_seals_its_new_raw_pages_in_a_tree_the_tsa_stamps(
    replica: ReplicaSite, tsa: LocalTSA, test_ca: TestCA, tmp_path: Path
) -> None:
    ew = _evidence_ew(replica, tmp_path, [tsa.url], test_ca)
    before = datetime.now(UTC).replace(microsecond=0)
    first = ew.crawl()
    assert "timestamps: 1 stamped, 0 failed" in first.stdout
    replica.edit(EDITED, title="增进全世界的人权（修订）")
    ew.crawl()
    with ew.archive() as archive, archive.engine.connect() as db:
        batches = db.execute(select(models.EvidenceBatch).order_by(models.EvidenceBatch.id)).all()
        leaves = db.execute(select(models.EvidenceLeaf)).all()
        stamps = db.execute(select(models.EvidenceStamp)).all()
        kept = db.execute(
            select(models.Observation.id, models.Observation.blob_sha256).where(
                models.Observation.blob_sha256.is_not(None)
            )
        ).all()
    # Every raw page kept is in exactly one tree; the second tree holds only the edit's page.
    assert {leaf.observation_id for leaf in leaves} == {row.id for row in kept}
    assert len(batches) == 2
    assert batches[1].tree_size == 1 and batches[0].tree_size == len(kept) - 1
    assert len(stamps) == 2 and tsa.stamped == 2
    by_batch = {batch.id: batch for batch in batches}
    for stamp in stamps:
        assert stamp.status == str(StampStatus.STAMPED)
        gen_time = _verify_token(stamp.token, by_batch[stamp.batch_id].root, test_ca)
        assert before - timedelta(seconds=1) <= gen_time <= datetime.now(UTC)
        assert stamp.tsa_name == f"CN={test_ca.name}"
    for leaf in leaves:
        batch = by_batch[leaf.batch_id]
        path = [bytes.fromhex(h) for h in leaf.path]
        root = bytes.fromhex(batch.root)
        assert hashtree.proves(
            bytes.fromhex(leaf.sha256), leaf.leaf_index, batch.tree_size, path, root
        )


def test_a_token_proves_nothing_under_another_ca_or_for_another_root(
    tsa: LocalTSA, test_ca: TestCA, tmp_path: Path
) -> None:
    root = hashlib.sha256(b"tree").hexdigest()
    from monitor.evidence import request_token

    response = request_token(tsa.url, root, 5, "test")
    assert response.tst_info.message_imprint.message == imprint_of(root)
    _verify_token(response.as_bytes(), root, test_ca)
    with pytest.raises(VerificationError):
        _verify_token(response.as_bytes(), hashlib.sha256(b"other").hexdigest(), test_ca)
    stranger = TestCA.make(tmp_path / "stranger", name="Stranger TSA")
    with pytest.raises(VerificationError):
        _verify_token(response.as_bytes(), root, stranger)


def test_a_tsa_that_is_down_holds_no_crawl_up_and_is_asked_again_until_it_stamps(
    replica: ReplicaSite, tsa: LocalTSA, test_ca: TestCA, tmp_path: Path
) -> None:
    ew = _evidence_ew(replica, tmp_path, [tsa.url], test_ca)
    tsa.refusing = True
    done = ew.crawl()  # exit 0: a TSA's outage is not the crawl's failure
    assert "timestamps: 0 stamped, 1 failed (retried later)" in done.stdout
    assert "HTTP 503" in done.stdout
    with ew.archive() as archive:
        evidence = Evidence(archive.engine)
        assert evidence.counts()[StampStatus.PENDING] == 1
        [(url, attempts, error)] = evidence.last_errors()
        assert (url, attempts) == (tsa.url, 1) and "503" in error
        tsa.refusing = False
        settings = EvidenceSettings(tsa_urls=(tsa.url,), retry_backoff=0.1)
        clock = [datetime.now(UTC)]
        stamper = Timestamper(evidence, settings, "test", clock=lambda: clock[0])
        assert not stamper.stamp_due()  # not due yet: the backoff has not passed
        clock[0] += timedelta(minutes=5)
        assert stamper.stamp_due().stamped == 1
        assert not stamper.stamp_due()  # stamped once, never asked again
        assert evidence.counts()[StampStatus.STAMPED] == 1
    assert tsa.stamped == 1
    ew.crawl()  # nothing new kept: no new tree, no request
    assert tsa.stamped == 1


def test_a_request_claimed_by_a_sender_is_not_sent_twice_until_its_lease_ends(
    replica: ReplicaSite, tsa: LocalTSA, test_ca: TestCA, tmp_path: Path
) -> None:
    ew = _evidence_ew(replica, tmp_path, [], test_ca)
    ew.crawl()
    with ew.archive() as archive:
        evidence = Evidence(archive.engine)
        now = datetime.now(UTC)
        sealed = evidence.seal("replica", now, [tsa.url])
        assert sealed is not None and evidence.seal("replica", now, [tsa.url]) is None
        [due] = evidence.due(now, [tsa.url])
        assert evidence.claim(due.id, now, now + timedelta(seconds=60))  # a sender, then killed
        settings = EvidenceSettings(tsa_urls=(tsa.url,))
        clock = [now + timedelta(seconds=30)]
        stamper = Timestamper(evidence, settings, "test", clock=lambda: clock[0])
        assert not stamper.stamp_due()
        clock[0] = now + timedelta(seconds=61)
        assert stamper.stamp_due().stamped == 1
    assert tsa.stamped == 1


def test_two_tsas_each_stamp_every_tree(
    replica: ReplicaSite, test_ca: TestCA, tmp_path: Path
) -> None:
    first, second = LocalTSA(test_ca).start(), LocalTSA(test_ca).start()
    try:
        ew = _evidence_ew(replica, tmp_path, [first.url, second.url], test_ca)
        assert "timestamps: 2 stamped" in ew.crawl().stdout
    finally:
        first.stop()
        second.stop()
    assert (first.stamped, second.stamped) == (1, 1)


def test_without_a_tsa_nothing_is_sealed_until_one_is_configured(
    replica: ReplicaSite, tsa: LocalTSA, test_ca: TestCA, tmp_path: Path
) -> None:
    ew = _evidence_ew(replica, tmp_path, [], test_ca)
    ew.crawl()
    with ew.archive() as archive:
        assert Evidence(archive.engine).counts() == dict.fromkeys(StampStatus, 0)
    unproven = ew.run("verify", "1", "--tsa-cert", str(test_ca.root_pem), expect=3).stdout
    assert "not timestamped: " in unproven and "not sealed in a hash tree" in unproven
    assert "0 page(s) proven" in unproven and "nothing was changed" in unproven
    ew = _evidence_ew(replica, tmp_path, [tsa.url], test_ca)  # the same archive, now with a TSA
    assert "timestamps: 1 stamped" in ew.crawl().stdout
    with ew.archive() as archive, archive.engine.connect() as db:
        unsealed = db.execute(
            select(models.Observation.id)
            .outerjoin(models.EvidenceLeaf)
            .where(
                models.Observation.blob_sha256.is_not(None),
                models.EvidenceLeaf.observation_id.is_(None),
            )
        ).all()
    assert unsealed == []


def test_the_queue_and_the_proofs_on_each_backend(archive: Archive, tsa: LocalTSA) -> None:
    now = datetime.now(UTC)
    for n in range(3):
        capture = Capture(
            site="s", kind=PageKind.LISTING, requested_url=f"https://example.org/{n}",
            final_url=f"https://example.org/{n}", fetched_at=now, status=200,
            body=f"<p>page {n}</p>".encode(),
        )  # fmt: skip
        archive.record_listing(capture, None)
    evidence = Evidence(archive.engine)
    sealed = evidence.seal("s", now, [tsa.url])
    assert sealed is not None and sealed.tree_size == 3
    assert evidence.seal("s", now, [tsa.url]) is None  # nothing new
    stamper = Timestamper(evidence, EvidenceSettings(tsa_urls=(tsa.url,)), "test")
    assert stamper.stamp_due().stamped == 1
    pages = list(evidence.kept_captures())
    assert [page.body for page in pages] == [f"<p>page {n}</p>".encode() for n in range(3)]
    for page in pages:
        inclusion = page.inclusion
        assert inclusion is not None and inclusion.batch.id == sealed.batch_id
        assert inclusion.sha256 == hashlib.sha256(page.body).hexdigest() == page.recorded_sha256
        assert hashtree.proves(
            bytes.fromhex(inclusion.sha256),
            inclusion.leaf_index,
            inclusion.batch.tree_size,
            [bytes.fromhex(h) for h in inclusion.path],
            bytes.fromhex(inclusion.batch.root),
        )
        [token] = inclusion.batch.tokens
        assert token.tsa_url == tsa.url and inclusion.batch.waiting == ()


def test_run_keeps_crawling_while_the_tsa_is_down_and_stamps_once_it_is_back(
    replica: ReplicaSite, tsa: LocalTSA, test_ca: TestCA, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    sections: dict[str, dict[str, object]] = {
        "schedule": {"interval": "1s", "jitter": 0},
        "health": {"stale_after": 1000},
        "evidence": {
            "tsa_urls": [tsa.url],
            "timeout": "2s",
            "retry_backoff": "0.2s",
            "max_backoff": "1s",
            "check_every": "0.2s",
        },
    }
    ew = EmbassyWatch(write_config(tmp_path, url, [replica.listing_url], sections=sections), url)
    tsa.refusing = True
    with ew.start_daemon(tmp_path / "daemon.log") as daemon:
        daemon.wait_for_log("timestamp of tree 1 by")
        daemon.wait_for_log("replica: done", count=3)  # the crawls go on meanwhile
        tsa.refusing = False
        daemon.wait_for_log("tree 1 timestamped")
        replica.edit(EDITED, title="增进全世界的人权（修订）")
        daemon.wait_for_log("tree 2 timestamped")
        assert daemon.terminate() == 0
    with ew.archive() as archive, archive.engine.connect() as db:
        stamps = db.execute(select(models.EvidenceStamp)).all()
    assert [(s.batch_id, s.status) for s in stamps] == [(1, "stamped"), (2, "stamped")]
    assert stamps[0].attempts >= 2 and tsa.stamped == 2  # retried; each tree stamped once


def test_a_tsa_that_fails_is_tried_once_a_round(sqlite_url: str, tsa: LocalTSA) -> None:
    archive = Archive.open(sqlite_url)
    try:
        evidence = Evidence(archive.engine)
        now = datetime.now(UTC)
        for n in range(3):  # three cycles, three trees
            url = f"https://example.org/{n}"
            capture = Capture(
                site="s", kind=PageKind.LISTING, requested_url=url, final_url=url,
                fetched_at=now, status=200, body=f"<p>{n}</p>".encode(),
            )  # fmt: skip
            archive.record_listing(capture, None)
            assert evidence.seal("s", now, [tsa.url]) is not None
        tsa.refusing = True
        stamper = Timestamper(evidence, EvidenceSettings(tsa_urls=(tsa.url,)), "test")
        done = stamper.stamp_due()
        assert (done.stamped, done.failed) == (0, 1)
        assert [attempts for _, attempts, _ in evidence.last_errors()] == [1]
        assert len(evidence.due(now + timedelta(seconds=1), [tsa.url])) == 2  # untried, due
        tsa.refusing = False
        assert stamper.stamp_due().stamped == 2
    finally:
        archive.close()
