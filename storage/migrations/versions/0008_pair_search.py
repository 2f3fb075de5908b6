"""search by character pairs: one index for queries of every length

Replaces the trigram indexes (SQLite's FTS5 `revision_fts`, PostgreSQL's pg_trgm GIN
indexes), which could not serve one- and two-character queries, by one index of every
revision's characters and pairs of adjacent characters (see storage.search), built here
for the revisions already archived.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

from storage.search import POSTGRES_FUNCTION, POSTGRES_INDEX, SQLITE_INDEX, SQLITE_INDEX_FILL

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What 0003 and 0005 created, to drop now and to restore on downgrade.
_TRIGRAM_TRIGGERS = ("insert", "delete", "update")
_TRIGRAM_INDEXES = {"ix_revision_body_trgm": "body", "ix_revision_title_trgm": "title"}
_SQLITE_TRIGRAM = [
    "CREATE VIRTUAL TABLE revision_fts USING fts5("
    "title, body, content='revision', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER revision_fts_insert AFTER INSERT ON revision BEGIN "
    "INSERT INTO revision_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "CREATE TRIGGER revision_fts_delete AFTER DELETE ON revision BEGIN "
    "INSERT INTO revision_fts(revision_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); END",
    "CREATE TRIGGER revision_fts_update AFTER UPDATE OF title, body ON revision BEGIN "
    "INSERT INTO revision_fts(revision_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); "
    "INSERT INTO revision_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "INSERT INTO revision_fts(revision_fts) VALUES ('rebuild')",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in _TRIGRAM_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS revision_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS revision_fts")
        for statement in SQLITE_INDEX:
            op.execute(statement)
        op.execute(SQLITE_INDEX_FILL)
    else:
        for name in _TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_INDEX)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in _TRIGRAM_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS revision_grams_{trigger}")
        op.execute("DROP TABLE IF EXISTS revision_grams")
        for statement in _SQLITE_TRIGRAM:
            op.execute(statement)
    else:
        op.execute("DROP INDEX IF EXISTS ix_revision_search_grams")
        op.execute("DROP FUNCTION IF EXISTS search_grams(text, text)")
        # pg_trgm may be missing (0003 made it optional); then search scans, as before.
        have = (
            op.get_bind()
            .exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
            .scalar()
        )
        for name, column in _TRIGRAM_INDEXES.items() if have else ():
            op.execute(f"CREATE INDEX {name} ON revision USING gin ({column} gin_trgm_ops)")
