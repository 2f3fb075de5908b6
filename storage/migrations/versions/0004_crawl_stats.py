"""per-site crawl counters for /metrics and `status`

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("site_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_crawl_seconds", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("crawls_total", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("pages_fetched_total", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("errors_total", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("site_state", schema=None) as batch_op:
        for column in ("errors_total", "pages_fetched_total", "crawls_total", "last_crawl_seconds"):
            batch_op.drop_column(column)
