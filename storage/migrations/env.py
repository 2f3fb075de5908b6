"""Alembic environment: always run programmatically by storage.migrate with a live connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from storage.models import Base

# Any constant works; it only has to be the same for every embassy-watch process.
_PG_MIGRATION_LOCK = 0x656D6261


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with connection.begin():
        if connection.dialect.name == "postgresql":
            # Two processes starting at once must not both migrate.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through storage.migrate.upgrade(), not the alembic CLI")
_run(connection)
