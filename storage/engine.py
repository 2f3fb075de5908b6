"""Engines for the two supported backends, set up for one writer and many readers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from storage.search import search_grams

SQLITE_BUSY_TIMEOUT_SECONDS = 30
READ_ONLY = "embassy_watch_read_only"  # execution option: a transaction that never writes


def normalise_database_url(url: str) -> str:
    """postgres:// and postgresql:// mean psycopg 3, the driver we install."""
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL or an in-memory SQLite database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def database_label(url: str) -> str:
    """Where a database is, for messages: the SQLite file, or the URL without its password."""
    file = sqlite_file(url)
    return str(file) if file else make_url(url).render_as_string(hide_password=True)


def make_engine(url: str, *, foreign_keys: bool = True) -> Engine:
    url = normalise_database_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url, foreign_keys=foreign_keys)
    return create_engine(url, pool_pre_ping=True)


def _sqlite_engine(url: str, *, foreign_keys: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN IMMEDIATE below
        # is the only BEGIN: a deferred BEGIN that reads first fails with "database is
        # locked" the moment another process commits, busy timeout or not.
        dbapi_connection.isolation_level = None
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            f"foreign_keys={'ON' if foreign_keys else 'OFF'}",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}",
        ):
            dbapi_connection.execute(f"PRAGMA {pragma}")
        # The search index's triggers call it (storage.search).
        dbapi_connection.create_function("search_grams", 2, search_grams, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        # Writers take the lock up front (so busy_timeout applies); readers get a
        # snapshot and never block the crawl's writes under WAL.
        connection.exec_driver_sql("BEGIN" if options.get(READ_ONLY) else "BEGIN IMMEDIATE")

    return engine
