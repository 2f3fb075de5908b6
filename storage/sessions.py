"""The two kinds of transaction every part of the archive opens: writing and reading."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from storage.engine import READ_ONLY


@dataclass(frozen=True)
class Sessions:
    write: sessionmaker[Session]
    read: sessionmaker[Session]  # read-only transactions: on SQLite a snapshot, never a lock

    @classmethod
    def of(cls, engine: Engine) -> Sessions:
        return cls(
            sessionmaker(engine, expire_on_commit=False),
            sessionmaker(engine.execution_options(**{READ_ONLY: True})),
        )

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self.read() as session, session.begin():
            yield session
