"""leads and funnel: classifiers (vocabularies), the lead's request fields, pipelines, stages and deals,
seeded with the vocabularies and the "Credit" pipeline a Moldovan credit consultancy starts with

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import switchboard.db
from crm_core import defaults

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, switchboard.db.UTCDateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str, ondelete: str | None = "SET NULL") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    classifiers = op.create_table(
        "classifiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("label_ro", sa.String(length=200), nullable=False),
        sa.Column("label_en", sa.String(length=200), nullable=False),
        sa.Column("label_ru", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        _utc("created_at", False),
        _utc("updated_at", False),
        _fk("classifiers", "parent_id", "classifiers"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_classifiers")),
        sa.UniqueConstraint("kind", "code", name=op.f("uq_classifiers_kind_code")),
    )
    op.create_index("ix_classifiers_kind_position", "classifiers", ["kind", "position"], unique=False)
    pipelines = op.create_table(
        "pipelines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _utc("created_at", False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipelines")),
    )
    stages = op.create_table(
        "stages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        _fk("stages", "pipeline_id", "pipelines", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stages")),
    )
    op.create_index("ix_stages_pipeline_position", "stages", ["pipeline_id", "position"], unique=False)
    op.create_table(
        "deals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("pipeline_id", sa.Integer(), nullable=False),
        sa.Column("stage_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("product", sa.String(length=50), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("lost_reason", sa.String(length=50), nullable=True),
        _utc("closed_at", True),
        _utc("created_at", False),
        _utc("updated_at", False),
        _fk("deals", "contact_id", "contacts", "CASCADE"),
        _fk("deals", "lead_id", "leads"),
        _fk("deals", "pipeline_id", "pipelines", None),
        _fk("deals", "stage_id", "stages", None),
        _fk("deals", "owner_id", "users"),
        _fk("deals", "branch_id", "branches"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deals")),
        sa.UniqueConstraint("lead_id", name=op.f("uq_deals_lead_id")),
    )
    op.create_index(op.f("ix_deals_contact_id"), "deals", ["contact_id"], unique=False)
    op.create_index("ix_deals_branch_status", "deals", ["branch_id", "status"], unique=False)
    op.create_index("ix_deals_owner_status", "deals", ["owner_id", "status"], unique=False)
    op.create_index("ix_deals_stage", "deals", ["stage_id"], unique=False)
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("branch_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("product", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True))
        batch_op.add_column(
            sa.Column("currency", sa.String(length=3), server_default=sa.text("'MDL'"), nullable=False)
        )
        batch_op.add_column(sa.Column("term_months", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("junk_reason", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("score", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(_utc("first_response_at", True))
        batch_op.add_column(_utc("updated_at", True))
        batch_op.create_foreign_key(
            op.f("fk_leads_branch_id_branches"), "branches", ["branch_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index(op.f("ix_leads_branch_id"), ["branch_id"], unique=False)
    _seed(classifiers, pipelines, stages)


def _seed(classifiers: sa.Table, pipelines: sa.Table, stages: sa.Table) -> None:
    """The day-one vocabularies and funnel (`crm_core.defaults`); parents first, so children can point."""
    bind = op.get_bind()
    now = dt.datetime.now(dt.UTC)
    for kind, entries in defaults.CLASSIFIERS.items():
        for position, (code, labels, children) in enumerate(entries):
            parent_id = bind.execute(
                classifiers.insert()
                .values(_row(kind, code, labels, None, position * 10, now))
                .returning(classifiers.c.id)
            ).scalar_one()
            for child_position, (child_code, child_labels) in enumerate(children):
                bind.execute(
                    classifiers.insert().values(
                        _row(kind, child_code, child_labels, parent_id, child_position * 10, now)
                    )
                )
    pipeline_id = bind.execute(
        pipelines.insert()
        .values(name=defaults.DEFAULT_PIPELINE, is_default=True, created_at=now)
        .returning(pipelines.c.id)
    ).scalar_one()
    op.bulk_insert(
        stages,
        [
            {"pipeline_id": pipeline_id, "name": name, "position": i * 10, "probability": p, "kind": kind}
            for i, (name, p, kind) in enumerate(defaults.DEFAULT_STAGES)
        ],
    )


def _row(
    kind: str, code: str, labels: tuple[str, str, str], parent_id: int | None, position: int, now: dt.datetime
) -> Any:
    ro, en, ru = labels
    return {
        "created_at": now,
        "updated_at": now,
        "kind": kind,
        "code": code,
        "label_ro": ro,
        "label_en": en,
        "label_ru": ru,
        "parent_id": parent_id,
        "position": position,
        "active": True,
    }


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index(op.f("ix_leads_branch_id"))
        batch_op.drop_constraint(op.f("fk_leads_branch_id_branches"), type_="foreignkey")
        for column in (
            "updated_at",
            "first_response_at",
            "score",
            "junk_reason",
            "term_months",
            "currency",
            "amount",
            "product",
            "branch_id",
            "campaign",
        ):
            batch_op.drop_column(column)
    op.drop_index("ix_deals_stage", table_name="deals")
    op.drop_index("ix_deals_owner_status", table_name="deals")
    op.drop_index("ix_deals_branch_status", table_name="deals")
    op.drop_index(op.f("ix_deals_contact_id"), table_name="deals")
    op.drop_table("deals")
    op.drop_index("ix_stages_pipeline_position", table_name="stages")
    op.drop_table("stages")
    op.drop_table("pipelines")
    op.drop_index("ix_classifiers_kind_position", table_name="classifiers")
    op.drop_table("classifiers")
