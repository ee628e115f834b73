"""router: agent state, routing items (the queue), the decision log, routing rules, branch working hours

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, switchboard.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "agent_states",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("presence", sa.String(length=12), nullable=False),
        _utc("presence_since", False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("chats_during_call", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("skill_tags", sa.String(length=2000), server_default="|b:*|l:*|p:*|c:*|", nullable=False),
        sa.Column("chats", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("on_call", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _utc("wrap_up_until", True),
        _utc("last_assigned_at", True),
        sa.Column("assignments_today", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("assignments_day", sa.Date(), nullable=True),
        sa.Column("consecutive_timeouts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _utc("last_heartbeat", True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_agent_states_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_agent_states")),
    )
    op.create_index("ix_agent_states_presence", "agent_states", ["presence"], unique=False)

    op.create_table(
        "routing_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("item_id", sa.String(length=120), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=40), nullable=True),
        sa.Column("product", sa.String(length=40), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("urgency", sa.Integer(), nullable=False),
        _utc("enqueued_at", False),
        _utc("queued_at", False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        _utc("offered_at", True),
        _utc("accepted_at", True),
        sa.Column("pinned_agent_id", sa.Integer(), nullable=True),
        sa.Column("hold_agent_id", sa.Integer(), nullable=True),
        _utc("hold_until", True),
        sa.Column("away_from_id", sa.Integer(), nullable=True),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("overflow", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("off_hours", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_routing_items_agent_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_items")),
        sa.UniqueConstraint("kind", "item_id", name=op.f("uq_routing_items_kind_item_id")),
    )
    op.create_index(op.f("ix_routing_items_agent_id"), "routing_items", ["agent_id"], unique=False)
    op.create_index(op.f("ix_routing_items_away_from_id"), "routing_items", ["away_from_id"], unique=False)
    op.create_index(
        "ix_routing_items_queue", "routing_items", ["status", "urgency", "enqueued_at", "id"], unique=False
    )

    op.create_table(
        "routing_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("item_id", sa.String(length=120), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("load_before", sa.Integer(), nullable=True),
        sa.Column("load_after", sa.Integer(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        _utc("at", False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_decisions")),
    )
    op.create_index("ix_routing_decisions_agent_at", "routing_decisions", ["agent_id", "at"], unique=False)
    op.create_index("ix_routing_decisions_item", "routing_decisions", ["kind", "item_id"], unique=False)

    op.create_table(
        "routing_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("sticky_mode", sa.String(length=10), nullable=False),
        sa.Column("sticky_wait_seconds", sa.Integer(), nullable=False),
        sa.Column("accept_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("overflow_branch_after_seconds", sa.Integer(), nullable=True),
        sa.Column("overflow_any_after_seconds", sa.Integer(), nullable=True),
        sa.Column("timeouts_before_away", sa.Integer(), nullable=False),
        _utc("updated_at", False),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branches.id"],
            name=op.f("fk_routing_rules_branch_id_branches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
        sa.UniqueConstraint("scope", name=op.f("uq_routing_rules_scope")),
    )

    op.create_table(
        "branch_hours",
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("week", sa.JSON(), nullable=False),
        sa.Column("holidays", sa.JSON(), nullable=False),
        _utc("updated_at", False),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branches.id"],
            name=op.f("fk_branch_hours_branch_id_branches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("branch_id", name=op.f("pk_branch_hours")),
    )


def downgrade() -> None:
    op.drop_table("branch_hours")
    op.drop_table("routing_rules")
    op.drop_index("ix_routing_decisions_item", table_name="routing_decisions")
    op.drop_index("ix_routing_decisions_agent_at", table_name="routing_decisions")
    op.drop_table("routing_decisions")
    op.drop_index("ix_routing_items_queue", table_name="routing_items")
    op.drop_index(op.f("ix_routing_items_away_from_id"), table_name="routing_items")
    op.drop_index(op.f("ix_routing_items_agent_id"), table_name="routing_items")
    op.drop_table("routing_items")
    op.drop_index("ix_agent_states_presence", table_name="agent_states")
    op.drop_table("agent_states")
