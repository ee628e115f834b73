"""scripts: sales scripts (`scripts`), their versions each holding the whole graph as JSON
(`script_versions`, at most one published per script), the runs that follow a conversation or call
(`script_runs`) and every step a run entered with its times (`script_run_steps`) (scripts_engine)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.db

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLISHED = sa.text("state = 'published'")


def _utc(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, switchboard.db.UTCDateTime(timezone=True), nullable=nullable)


def _user(name: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [name], ["users.id"], name=op.f(f"fk_{table}_{name}_users"), ondelete="SET NULL"
    )


def upgrade() -> None:
    op.create_table(
        "scripts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        _utc("created_at"),
        _utc("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scripts")),
        sa.UniqueConstraint("key", name=op.f("uq_scripts_key")),
    )
    op.create_table(
        "script_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("script_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("graph", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        _utc("created_at"),
        _utc("updated_at"),
        _utc("published_at", nullable=True),
        sa.Column("published_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["script_id"],
            ["scripts.id"],
            name=op.f("fk_script_versions_script_id_scripts"),
            ondelete="CASCADE",
        ),
        _user("created_by", "script_versions"),
        _user("published_by", "script_versions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_script_versions")),
        sa.UniqueConstraint("script_id", "number", name=op.f("uq_script_versions_script_id_number")),
    )
    op.create_index(op.f("ix_script_versions_script_id"), "script_versions", ["script_id"], unique=False)
    op.create_index(
        "ix_script_versions_one_published",
        "script_versions",
        ["script_id"],
        unique=True,
        sqlite_where=PUBLISHED,
        postgresql_where=PUBLISHED,
    )
    op.create_table(
        "script_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("deal_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("current_step", sa.String(length=50), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("trail", sa.JSON(), nullable=False),
        sa.Column("outbox", sa.JSON(), nullable=False),
        sa.Column("handover_run_id", sa.Integer(), nullable=True),
        _utc("started_at"),
        _utc("ended_at", nullable=True),
        _utc("updated_at"),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["script_versions.id"],
            name=op.f("fk_script_runs_version_id_script_versions"),
            ondelete="RESTRICT",
        ),
        _user("agent_id", "script_runs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_script_runs")),
    )
    op.create_index(op.f("ix_script_runs_conversation_id"), "script_runs", ["conversation_id"], unique=False)
    op.create_index(op.f("ix_script_runs_call_id"), "script_runs", ["call_id"], unique=False)
    op.create_index("ix_script_runs_version_status", "script_runs", ["version_id", "status"], unique=False)
    op.create_table(
        "script_run_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(length=50), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        _utc("entered_at"),
        _utc("left_at", nullable=True),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("edge", sa.String(length=60), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["script_runs.id"],
            name=op.f("fk_script_run_steps_run_id_script_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_script_run_steps")),
        sa.UniqueConstraint("run_id", "position", name=op.f("uq_script_run_steps_run_id_position")),
    )


def downgrade() -> None:
    op.drop_table("script_run_steps")
    op.drop_index("ix_script_runs_version_status", table_name="script_runs")
    op.drop_index(op.f("ix_script_runs_call_id"), table_name="script_runs")
    op.drop_index(op.f("ix_script_runs_conversation_id"), table_name="script_runs")
    op.drop_table("script_runs")
    op.drop_index("ix_script_versions_one_published", table_name="script_versions")
    op.drop_index(op.f("ix_script_versions_script_id"), table_name="script_versions")
    op.drop_table("script_versions")
    op.drop_table("scripts")
