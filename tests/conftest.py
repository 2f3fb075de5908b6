"""Shared fixtures: the replica site, one database per backend, and the real CLI."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from storage.archive import Archive
from tests.helpers import EmbassyWatch, write_config

if TYPE_CHECKING:
    from tests.served import Served
from tests.chain import Chain, evidence_chain
from tests.receivers import MailServer, WebhookSink
from tests.replica.site import ReplicaSite
from tests.tsa import LocalTSA, TestCA

POSTGRES_ADMIN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`embassy-watch serve` over a crawled archive, shared by the API, page and browser tests."""
    from tests.served import serving

    with serving(request.param, tmp_path_factory.mktemp("served")) as server:
        yield server


@pytest.fixture
def replica() -> Iterator[ReplicaSite]:
    site = ReplicaSite().start()
    yield site
    site.stop()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database (UTF-8), dropped afterwards."""
    name = f"ew_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'archive.db'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture
def archive(database_url: str) -> Iterator[Archive]:
    opened = Archive.open(database_url)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'archive.db'}"


@pytest.fixture
def ew(replica: ReplicaSite, sqlite_url: str, tmp_path: Path) -> EmbassyWatch:
    """The real `embassy-watch` command, configured for the replica and a SQLite archive."""
    return EmbassyWatch(write_config(tmp_path, sqlite_url, [replica.listing_url]), sqlite_url)


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookSink]:
    sink = WebhookSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """A root CA and the TSA certificate it issued, made by `openssl` once per session."""
    return TestCA.make(tmp_path_factory.mktemp("tsa"))


@pytest.fixture
def tsa(test_ca: TestCA) -> Iterator[LocalTSA]:
    """A real RFC 3161 TSA (OpenSSL's `ts -reply`) on 127.0.0.1."""
    server = LocalTSA(test_ca).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chain(test_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """The replica crawled, edited and crawled again with a local TSA, then exported as WACZ."""
    with evidence_chain(test_ca, tmp_path_factory.mktemp("chain")) as built:
        yield built
