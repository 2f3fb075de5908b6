"""The versioned archive: the one face the crawler and the monitor use.

Behind it each job has its module: `recording` (what a crawl saw), `reading`
(statements, revisions, events, raw pages), `sites` (per-site state and health),
`thinning` (forgetting repeated fetches), `outbox` (alert deliveries), `search`,
with `mapping` the one conversion between rows and records. This module opens the
database (migrating it) and guards it against a second daemon.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, inspect, text

from storage.engine import database_label, make_engine, sqlite_file
from storage.migrate import upgrade
from storage.outbox import Outbox
from storage.reading import Reading
from storage.recording import MISSING as MISSING  # re-exported: the monitor's re-check policy
from storage.recording import Recording
from storage.sessions import Sessions
from storage.sites import Sites
from storage.thinning import THIN_PER_TRANSACTION, thin_observations
from storage.wayback import Snapshot, snapshot_of

# pg_try_advisory_lock key held by the one daemon allowed per database ("embw").
DAEMON_LOCK_KEY = 0x656D6277
# Alembic's table of the schema version: a database without it holds no archive.
SCHEMA_VERSION_TABLE = "alembic_version"


class ArchiveBusy(Exception):
    """Another daemon holds this archive; the message says which, in one line."""


class ArchiveMissing(Exception):
    """No archive at this database yet (and none was made); the message is where it looked."""


class Archive:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = Sessions.of(engine)
        self.outbox = Outbox(self._sessions.write, self._sessions.read)
        # The archive's verbs, each done by the part that owns that job.
        recording = Recording(self._sessions)
        self.record_listing = recording.record_listing
        self.record_detail = recording.record_detail
        sites = Sites(self._sessions)
        self.site_state = sites.site_state
        self.finish_crawl = sites.finish_crawl
        self.raise_condition = sites.raise_condition
        self.clear_condition = sites.clear_condition
        reading = Reading(self._sessions, self.outbox)
        self.known_statements = reading.known_statements
        self.statements = reading.statements
        self.statement_page = reading.statement_page
        self.changes = reading.changes
        self.event_page = reading.event_page
        self.sites = reading.sites
        self.find_statement = reading.find_statement
        self.history = reading.history
        self.revision = reading.revision
        self.revisions = reading.revisions
        self.captures = reading.captures
        self.search = reading.search
        self.revision_page = reading.revision_page
        self.raw_body = reading.raw_body
        self.tallies = reading.tallies
        self.counts = reading.counts

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> Archive:
        """Open the archive at a database URL, migrating it to the newest schema.

        With `create` false (the commands that only read), an archive that is not there yet
        is not made: ArchiveMissing. A SQLite folder that is missing or not writable is an
        OSError naming it.
        """
        file = sqlite_file(url)
        if file is not None:
            _check_sqlite_folder(file, create)
        # Migrations run with foreign keys off: SQLite's batch table rebuilds would
        # otherwise cascade-delete child rows (see tech-notes section 6).
        migration_engine = make_engine(url, foreign_keys=False)
        try:
            if not create and not inspect(migration_engine).has_table(SCHEMA_VERSION_TABLE):
                raise ArchiveMissing(database_label(url))
            upgrade(migration_engine)
        finally:
            migration_engine.dispose()
        return cls(make_engine(url))

    def wayback_snapshot(self, statement_id: int, number: int) -> Snapshot | None:
        """The Internet Archive's capture of a revision's URL, if one was asked for."""
        with self._sessions.reading() as session:
            return snapshot_of(session, statement_id, number)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def exclusive_daemon(self) -> Iterator[None]:
        """Held while a daemon runs, so that a second one on the same archive is refused."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as connection:
                held = connection.scalar(text(f"SELECT pg_try_advisory_lock({DAEMON_LOCK_KEY})"))
                connection.commit()  # a session-level lock outlives the transaction
                if not held:
                    raise ArchiveBusy("another `embassy-watch run` is using this database")
                try:
                    yield
                finally:
                    # The connection goes back to the pool, its session (and lock) alive.
                    connection.execute(text(f"SELECT pg_advisory_unlock({DAEMON_LOCK_KEY})"))
                    connection.commit()
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            yield
            return
        lock_path = f"{database}.daemon.lock"
        with open(lock_path, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "?"
                raise ArchiveBusy(
                    f"another `embassy-watch run` (pid {holder}) is using {database}"
                ) from None
            lock.seek(0)
            lock.truncate()
            lock.write(str(os.getpid()))
            lock.flush()
            yield

    def thin_observations(
        self,
        before: datetime,
        cancelled: Callable[[], bool] = lambda: False,
        per_transaction: int = THIN_PER_TRANSACTION,
    ) -> int:
        """Forget repeated fetches older than `before` (see `storage.thinning`)."""
        return thin_observations(self._sessions, before, cancelled, per_transaction)


def _check_sqlite_folder(file: Path, create: bool) -> None:
    """Refuse, naming the path, what SQLite would refuse as "unable to open database file"."""
    if not create and not file.is_file():
        raise ArchiveMissing(str(file))
    folder = file.parent
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"its folder {folder} does not exist", str(file))
    # Even a reader writes there: WAL mode keeps its -wal and -shm files beside the database.
    if not os.access(folder, os.W_OK):
        raise PermissionError(errno.EACCES, f"its folder {folder} is not writable", str(file))
