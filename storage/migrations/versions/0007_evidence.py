"""evidence: hash trees of the raw pages kept, their RFC 3161 timestamp queue and tokens

Revision ID: 0007
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
# 0006 is being written in parallel; whoever merges second re-chains this to it.
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evidence_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sa.DateTime(), nullable=False),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("last_observation_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_batch")),
    )
    op.create_index(op.f("ix_evidence_batch_site"), "evidence_batch", ["site"])
    op.create_table(
        "evidence_leaf",
        sa.Column("observation_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("leaf_index", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["observation_id"],
            ["observation.id"],
            name=op.f("fk_evidence_leaf_observation_id_observation"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["evidence_batch.id"],
            name=op.f("fk_evidence_leaf_batch_id_evidence_batch"),
        ),
        sa.PrimaryKeyConstraint("observation_id", name=op.f("pk_evidence_leaf")),
    )
    op.create_index(op.f("ix_evidence_leaf_batch_id"), "evidence_leaf", ["batch_id"])
    op.create_table(
        "evidence_stamp",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("tsa_url", sa.String(length=2048), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("token", sa.LargeBinary(), nullable=True),
        sa.Column("gen_time", sa.DateTime(), nullable=True),
        sa.Column("tsa_name", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["evidence_batch.id"],
            name=op.f("fk_evidence_stamp_batch_id_evidence_batch"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_stamp")),
        sa.UniqueConstraint("batch_id", "tsa_url", name=op.f("uq_evidence_stamp_batch_id_tsa_url")),
    )
    op.create_index(
        "ix_evidence_stamp_status_next_attempt_at", "evidence_stamp", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_evidence_stamp_status_next_attempt_at", table_name="evidence_stamp")
    op.drop_table("evidence_stamp")
    op.drop_index(op.f("ix_evidence_leaf_batch_id"), table_name="evidence_leaf")
    op.drop_table("evidence_leaf")
    op.drop_index(op.f("ix_evidence_batch_site"), table_name="evidence_batch")
    op.drop_table("evidence_batch")
