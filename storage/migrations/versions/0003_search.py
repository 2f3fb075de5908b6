"""search over revisions: FTS5 trigram on SQLite, pg_trgm indexes on PostgreSQL

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# External-content FTS5 over revision(title, body), kept in step by triggers. Trigram
# matches any substring of 3+ characters, which Chinese needs (no word boundaries).
SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE revision_fts USING fts5("
    "title, body, content='revision', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER revision_fts_insert AFTER INSERT ON revision BEGIN "
    "INSERT INTO revision_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "CREATE TRIGGER revision_fts_delete AFTER DELETE ON revision BEGIN "
    "INSERT INTO revision_fts(revision_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); END",
    "CREATE TRIGGER revision_fts_update AFTER UPDATE ON revision BEGIN "
    "INSERT INTO revision_fts(revision_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); "
    "INSERT INTO revision_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "INSERT INTO revision_fts(revision_fts) VALUES ('rebuild')",
]
POSTGRES_INDEXES = {
    "ix_revision_body_trgm": "body",
    "ix_revision_title_trgm": "title",
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in SQLITE_SEARCH:
            op.execute(statement)
    elif bind.dialect.name == "postgresql" and _have_pg_trgm(bind):
        for name, column in POSTGRES_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON revision USING gin ({column} gin_trgm_ops)")


def _have_pg_trgm(bind: sa.Connection) -> bool:
    """pg_trgm makes search fast; without the right to create it, search still works (scans)."""
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return False
    return True


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS revision_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS revision_fts")
    elif bind.dialect.name == "postgresql":
        for name in POSTGRES_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
