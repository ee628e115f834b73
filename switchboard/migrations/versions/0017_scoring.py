"""scoring: admin-defined scoring rules (seeded with a credit consultancy's day-one set), the learned
model's state (settings and totals, naive-Bayes counts, the closed leads it learned from), and on `leads`
the score's breakdown, a manager's correction and the engagement counters (crm_core.scoring)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.db
from crm_core import defaults

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEAD_COLUMNS = ("score_breakdown", "score_adjustment", "customer_replies", "answered_calls")


def _utc(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, switchboard.db.UTCDateTime(timezone=True), nullable=nullable)


def _zero(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.Integer(), server_default=sa.text("0"), nullable=False)


def upgrade() -> None:
    rules = op.create_table(
        "scoring_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("params", sa.JSON(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        _zero("position"),
        _utc("created_at", False),
        _utc("updated_at", False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_rules")),
    )
    model = op.create_table(
        "scoring_model",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("min_closed", sa.Integer(), server_default=sa.text("30"), nullable=False),
        sa.Column("min_won", sa.Integer(), server_default=sa.text("5"), nullable=False),
        sa.Column("min_lost", sa.Integer(), server_default=sa.text("5"), nullable=False),
        _zero("won"),
        _zero("lost"),
        _utc("retrained_at", True),
        _utc("updated_at", False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_model")),
    )
    op.create_table(
        "scoring_counts",
        sa.Column("feature", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=120), nullable=False),
        _zero("won"),
        _zero("lost"),
        sa.PrimaryKeyConstraint("feature", "value", name=op.f("pk_scoring_counts")),
    )
    op.create_table(
        "scoring_examples",
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=4), nullable=False),
        sa.Column("features", sa.JSON(), server_default=sa.text("'{}'"), nullable=False),
        _utc("created_at", False),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_scoring_examples_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("lead_id", name=op.f("pk_scoring_examples")),
    )
    # plain ADD COLUMNs: SQLite keeps `leads` (and its search triggers) in place
    op.add_column(
        "leads", sa.Column("score_breakdown", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
    )
    for name in LEAD_COLUMNS[1:]:
        op.add_column("leads", _zero(name))
    now = dt.datetime.now(dt.UTC)
    op.bulk_insert(
        rules,
        [
            {
                "name": name,
                "kind": kind,
                "params": params,
                "points": points,
                "active": True,
                "position": (i + 1) * 10,
                "created_at": now,
                "updated_at": now,
            }
            for i, (name, kind, params, points) in enumerate(defaults.SCORING_RULES)
        ],
    )
    op.bulk_insert(
        model,
        [{"id": 1, "min_closed": 30, "min_won": 5, "min_lost": 5, "won": 0, "lost": 0, "updated_at": now}],
    )
    jobs = sa.table(
        "jobs",
        sa.column("kind", sa.String()),
        sa.column("payload", sa.JSON()),
        sa.column("run_at", switchboard.db.UTCDateTime(timezone=True)),
        sa.column("attempts", sa.Integer()),
        sa.column("max_attempts", sa.Integer()),
        sa.column("dead", sa.Boolean()),
        sa.column("created_at", switchboard.db.UTCDateTime(timezone=True)),
        sa.column("updated_at", switchboard.db.UTCDateTime(timezone=True)),
    )
    # leads there are already get their breakdown from the worker (crm_core.scoring.RESCORE_JOB); a score
    # set by hand before is kept as the manager's correction
    if not op.get_bind().execute(sa.text("SELECT 1 FROM leads LIMIT 1")).first():
        return
    op.bulk_insert(
        jobs,
        [
            {
                "kind": "scoring.rescore",
                "payload": {},
                "run_at": now,
                "attempts": 0,
                "max_attempts": 8,
                "dead": False,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        for name in reversed(LEAD_COLUMNS):
            batch.drop_column(name)
    op.drop_table("scoring_examples")
    op.drop_table("scoring_counts")
    op.drop_table("scoring_model")
    op.drop_table("scoring_rules")
