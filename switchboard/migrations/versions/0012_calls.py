"""calls: one row per phone call (Linkedid), its call detail record and the link to its conversation item

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, switchboard.db.UTCDateTime(timezone=True), nullable=nullable)


def _fk(column: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{table}.id"], name=op.f(f"fk_calls_{column}_{table}"), ondelete="SET NULL"
    )


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("customer_number", sa.String(length=20), nullable=True),
        sa.Column("customer_number_raw", sa.String(length=40), nullable=True),
        sa.Column("caller_name", sa.String(length=200), nullable=True),
        sa.Column("dialled", sa.String(length=40), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("result", sa.String(length=12), nullable=True),
        sa.Column("routed_reason", sa.String(length=20), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("agent_endpoint", sa.String(length=100), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        _utc("started_at", False),
        _utc("answered_at", True),
        _utc("ended_at", True),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("ring_seconds", sa.Float(), nullable=True),
        sa.Column("talk_seconds", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
        sa.Column("hangup_cause_text", sa.String(length=100), nullable=True),
        sa.Column("hung_up_by", sa.String(length=10), nullable=True),
        sa.Column("recording_file", sa.String(length=255), nullable=True),
        sa.Column("transfer_target", sa.String(length=40), nullable=True),
        sa.Column("queue", sa.String(length=80), nullable=True),
        sa.Column("reconciled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("ended", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _utc("created_at", False),
        _utc("updated_at", False),
        _fk("agent_id", "users"),
        _fk("contact_id", "contacts"),
        _fk("conversation_id", "conversations"),
        _fk("message_id", "messages"),
        _fk("task_id", "tasks"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("linkedid", name=op.f("uq_calls_linkedid")),
    )
    op.create_index("ix_calls_started_at", "calls", ["started_at"], unique=False)
    op.create_index("ix_calls_agent_started", "calls", ["agent_id", "started_at"], unique=False)
    op.create_index("ix_calls_result_started", "calls", ["result", "started_at"], unique=False)
    op.create_index(op.f("ix_calls_customer_number"), "calls", ["customer_number"], unique=False)
    op.create_index(op.f("ix_calls_contact_id"), "calls", ["contact_id"], unique=False)
    op.create_index(op.f("ix_calls_conversation_id"), "calls", ["conversation_id"], unique=False)


def downgrade() -> None:
    op.drop_table("calls")
