"""typographic changes: every change of the published text is a revision, restyles marked

Adds `typographic_fields` to revisions and change events (empty on existing rows), and
recomputes every revision's content hash over the exact text (it was over NFKC-folded
text), so that reverts are still recognised across the upgrade.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence
from datetime import UTC

import sqlalchemy as sa
from alembic import op

from storage.content import content_hash
from storage.records import StatementContent

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
_revision = sa.table(
    "revision",
    sa.column("id", sa.Integer()),
    sa.column("content_hash", sa.String()),
    sa.column("url", sa.String()),
    sa.column("title", sa.Text()),
    sa.column("subtitle", sa.Text()),
    sa.column("published_at", sa.DateTime()),
    sa.column("author", sa.Text()),
    sa.column("body", sa.Text()),
    sa.column("tags", sa.JSON()),
    sa.column("categories", sa.JSON()),
)


# SQLite's search index followed every update of a revision; only title and body matter to
# it, and re-indexing each revision for a new hash made this migration minutes long.
_SQLITE_REINDEX_ON = (
    "CREATE TRIGGER revision_fts_update AFTER UPDATE{columns} ON revision BEGIN "
    "INSERT INTO revision_fts(revision_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); "
    "INSERT INTO revision_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END"
)


def upgrade() -> None:
    for table in ("revision", "change_event"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("typographic_fields", sa.JSON(), nullable=False, server_default="[]")
            )
    _reindex_search_only_on_text_updates(" OF title, body")
    _rehash_revisions()


def _reindex_search_only_on_text_updates(columns: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS revision_fts_update")
        op.execute(_SQLITE_REINDEX_ON.format(columns=columns))


def _rehash_revisions() -> None:
    connection = op.get_bind()
    rehash = (
        sa.update(_revision)
        .where(_revision.c.id == sa.bindparam("row_id"))
        .values(content_hash=sa.bindparam("digest"))
    )
    last_id = 0
    while True:
        after_last = _revision.c.id > last_id
        rows = connection.execute(
            sa.select(_revision).where(after_last).order_by(_revision.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        changed = [
            {"row_id": row.id, "digest": digest}
            for row in rows
            if (digest := content_hash(_content(row))) != row.content_hash
        ]
        if changed:
            connection.execute(rehash, changed)
        last_id = rows[-1].id


def _content(row: sa.Row[tuple[object, ...]]) -> StatementContent:
    published = row.published_at  # stored as naive UTC
    return StatementContent(
        url=row.url,
        title=row.title,
        body=row.body,
        subtitle=row.subtitle,
        published_at=published.replace(tzinfo=UTC) if published is not None else None,
        author=row.author,
        tags=tuple(row.tags),
        categories=tuple(row.categories),
    )


def downgrade() -> None:
    _reindex_search_only_on_text_updates("")
    # Not a batch rebuild: on SQLite that would drop the revision table's search triggers.
    for table in ("change_event", "revision"):
        op.execute(f"ALTER TABLE {table} DROP COLUMN typographic_fields")
