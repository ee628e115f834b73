"""tasks: callbacks, calls, follow-ups and meetings, assigned to a person or to a branch's queue

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, switchboard.db.UTCDateTime(timezone=True), nullable=nullable)


def _fk(column: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.id"], name=op.f(f"fk_tasks_{column}_{table}"), ondelete="SET NULL"
    )


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        _utc("due_at", True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("source_key", sa.String(length=120), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        _utc("created_at", False),
        _utc("updated_at", False),
        _utc("done_at", True),
        sa.Column("done_by_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        _fk("assignee_id", "users"),
        _fk("branch_id", "branches"),
        _fk("contact_id", "contacts"),
        _fk("lead_id", "leads"),
        _fk("conversation_id", "conversations"),
        _fk("created_by_id", "users"),
        _fk("done_by_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("source_key", name=op.f("uq_tasks_source_key")),
    )
    op.create_index(
        "ix_tasks_assignee_status_due", "tasks", ["assignee_id", "status", "due_at"], unique=False
    )
    op.create_index("ix_tasks_branch_status_due", "tasks", ["branch_id", "status", "due_at"], unique=False)
    op.create_index("ix_tasks_contact_status", "tasks", ["contact_id", "status"], unique=False)
    op.create_index(op.f("ix_tasks_conversation_id"), "tasks", ["conversation_id"], unique=False)
    op.create_index(op.f("ix_tasks_lead_id"), "tasks", ["lead_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_tasks_lead_id"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_conversation_id"), table_name="tasks")
    op.drop_index("ix_tasks_contact_status", table_name="tasks")
    op.drop_index("ix_tasks_branch_status_due", table_name="tasks")
    op.drop_index("ix_tasks_assignee_status_due", table_name="tasks")
    op.drop_table("tasks")
