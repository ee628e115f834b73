"""merge undo: `contact_merges`, the record of each contact merge with what it moved and deleted, so that
it can be undone for a while (crm_core.merge_undo)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.db

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kept_id", sa.Integer(), nullable=False),
        sa.Column("merged_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=64), nullable=True),
        sa.Column("created_at", switchboard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), server_default=sa.text("'active'"), nullable=False),
        sa.Column("merged_row", sa.JSON(), nullable=False),
        sa.Column("kept_row", sa.JSON(), nullable=False),
        sa.Column("kept_after", sa.JSON(), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.Column("deleted", sa.JSON(), nullable=False),
        sa.Column("parts", sa.JSON(), nullable=False),
        sa.Column("undone_at", switchboard.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("undone_by_id", sa.Integer(), nullable=True),
        sa.Column("undone_by_name", sa.String(length=64), nullable=True),
        sa.Column("undo_report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_contact_merges_actor_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["undone_by_id"],
            ["users.id"],
            name=op.f("fk_contact_merges_undone_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_merges")),
    )
    op.create_index("ix_contact_merges_created_at", "contact_merges", ["created_at"])
    op.create_index(op.f("ix_contact_merges_kept_id"), "contact_merges", ["kept_id"])
    op.create_index(op.f("ix_contact_merges_merged_id"), "contact_merges", ["merged_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_contact_merges_merged_id"), table_name="contact_merges")
    op.drop_index(op.f("ix_contact_merges_kept_id"), table_name="contact_merges")
    op.drop_index("ix_contact_merges_created_at", table_name="contact_merges")
    op.drop_table("contact_merges")
