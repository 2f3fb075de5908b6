"""wayback: each new revision's Save Page Now request queue and the snapshot it made

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wayback_capture",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("job_id", sa.String(length=128), nullable=True),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("snapshot_url", sa.String(length=2048), nullable=True),
        sa.Column("snapshot_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revision.id"],
            name=op.f("fk_wayback_capture_revision_id_revision"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wayback_capture")),
        sa.UniqueConstraint("revision_id", name=op.f("uq_wayback_capture_revision_id")),
    )
    op.create_index(
        "ix_wayback_capture_status_next_attempt_at",
        "wayback_capture",
        ["status", "next_attempt_at"],
    )
    op.create_index(op.f("ix_wayback_capture_submitted_at"), "wayback_capture", ["submitted_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_wayback_capture_submitted_at"), table_name="wayback_capture")
    op.drop_index("ix_wayback_capture_status_next_attempt_at", table_name="wayback_capture")
    op.drop_table("wayback_capture")
