"""The evidence chain the WACZ and verify tests share: crawl, edit, crawl, export."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import EmbassyWatch, write_config
from tests.replica.site import ReplicaSite
from tests.tsa import LocalTSA, TestCA

EDITED = "statement-24"


@dataclass
class Chain:
    ew: EmbassyWatch
    tsa: LocalTSA
    ca: TestCA
    package: Path
    statement_package: Path
    statement_id: int
    directory: Path


@contextmanager
def evidence_chain(test_ca: TestCA, directory: Path) -> Iterator[Chain]:
    """Crawl, edit, crawl (each cycle timestamped), then export the archive and one statement."""
    replica, tsa = ReplicaSite().start(), LocalTSA(test_ca).start()
    try:
        url = f"sqlite:///{directory / 'archive.db'}"
        evidence = {"tsa_urls": [tsa.url], "tsa_certificates": [str(test_ca.root_pem)]}
        config = write_config(
            directory, url, [replica.listing_url], sections={"evidence": evidence}
        )
        ew = EmbassyWatch(config, url)
        ew.crawl()
        first = replica.statement(EDITED)
        replica.edit(EDITED, paragraphs=[p.replace("项", "項") for p in first.paragraphs])
        ew.crawl()
        statement_id = ew.statement_id(replica.url(first.path))
        package = directory / "archive.wacz"
        ew.run("export", "--format", "wacz", "-o", str(package))
        statement_package = directory / "statement.wacz"
        ew.run("export", str(statement_id), "--format", "wacz", "-o", str(statement_package))
        yield Chain(ew, tsa, test_ca, package, statement_package, statement_id, directory)
    finally:
        tsa.stop()
        replica.stop()
