"""contacts profile: IDNP, birth date, address, tags, consents; several phones and e-mails; companies,
person-company and person-person links; likely duplicates noticed on ingest

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str) -> sa.Column[object]:
    return sa.Column(name, switchboard.db.UTCDateTime(timezone=True), nullable=False)


def _contact_fk(table: str, column: str = "contact_id") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["contacts.id"], name=op.f(f"fk_{table}_{column}_contacts"), ondelete="CASCADE"
    )


def _empty(name: str, type_: sa.String) -> sa.Column[object]:
    return sa.Column(name, type_, server_default=sa.text("''"), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("idnp", sa.String(length=13), nullable=True))
        batch.add_column(sa.Column("birth_date", sa.Date(), nullable=True))
        batch.add_column(_empty("address", sa.Text()))
        batch.add_column(sa.Column("tags", sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch.add_column(sa.Column("consents", sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
        batch.create_unique_constraint(op.f("uq_contacts_idnp"), ["idnp"])
        batch.create_index(op.f("ix_contacts_birth_date"), ["birth_date"], unique=False)

    op.create_table(
        "contact_phones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("tail", sa.String(length=6), nullable=False),
        _empty("label", sa.String(length=40)),
        sa.Column("is_primary", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _contact_fk("contact_phones"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_phones")),
        sa.UniqueConstraint("contact_id", "e164", name=op.f("uq_contact_phones_contact_id_e164")),
    )
    op.create_index(op.f("ix_contact_phones_contact_id"), "contact_phones", ["contact_id"], unique=False)
    op.create_index(op.f("ix_contact_phones_e164"), "contact_phones", ["e164"], unique=False)
    op.create_index(op.f("ix_contact_phones_tail"), "contact_phones", ["tail"], unique=False)

    op.create_table(
        "contact_emails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        _empty("label", sa.String(length=40)),
        sa.Column("is_primary", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _contact_fk("contact_emails"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_emails")),
        sa.UniqueConstraint("contact_id", "email", name=op.f("uq_contact_emails_contact_id_email")),
    )
    op.create_index(op.f("ix_contact_emails_contact_id"), "contact_emails", ["contact_id"], unique=False)
    op.create_index(op.f("ix_contact_emails_email"), "contact_emails", ["email"], unique=False)

    op.create_table(
        "companies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("fiscal_code", sa.String(length=13), nullable=True),
        _empty("industry", sa.String(length=100)),
        _empty("size", sa.String(length=20)),
        _empty("address", sa.Text()),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        _utc("created_at"),
        _utc("updated_at"),
        sa.ForeignKeyConstraint(
            ["branch_id"], ["branches.id"], name=op.f("fk_companies_branch_id_branches"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_companies")),
        sa.UniqueConstraint("fiscal_code", name=op.f("uq_companies_fiscal_code")),
    )
    op.create_index(op.f("ix_companies_branch_id"), "companies", ["branch_id"], unique=False)

    op.create_table(
        "contact_companies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        _empty("role", sa.String(length=100)),
        _contact_fk("contact_companies"),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_contact_companies_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_companies")),
        sa.UniqueConstraint(
            "contact_id", "company_id", name=op.f("uq_contact_companies_contact_id_company_id")
        ),
    )
    op.create_index(
        op.f("ix_contact_companies_contact_id"), "contact_companies", ["contact_id"], unique=False
    )
    op.create_index(
        op.f("ix_contact_companies_company_id"), "contact_companies", ["company_id"], unique=False
    )

    op.create_table(
        "contact_relations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("related_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        _contact_fk("contact_relations"),
        _contact_fk("contact_relations", "related_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_relations")),
        sa.UniqueConstraint(
            "contact_id", "related_id", "kind", name=op.f("uq_contact_relations_contact_id_related_id_kind")
        ),
    )
    op.create_index(
        op.f("ix_contact_relations_contact_id"), "contact_relations", ["contact_id"], unique=False
    )
    op.create_index(
        op.f("ix_contact_relations_related_id"), "contact_relations", ["related_id"], unique=False
    )

    op.create_table(
        "duplicate_candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("other_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("dismissed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _utc("created_at"),
        _contact_fk("duplicate_candidates"),
        _contact_fk("duplicate_candidates", "other_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_candidates")),
        sa.UniqueConstraint(
            "contact_id", "other_id", name=op.f("uq_duplicate_candidates_contact_id_other_id")
        ),
    )
    op.create_index(
        op.f("ix_duplicate_candidates_contact_id"), "duplicate_candidates", ["contact_id"], unique=False
    )
    op.create_index(
        op.f("ix_duplicate_candidates_other_id"), "duplicate_candidates", ["other_id"], unique=False
    )

    # Every existing primary phone and e-mail becomes a row of its table: duplicate checks look in one place.
    op.execute(
        "INSERT INTO contact_phones (contact_id, e164, tail, label, is_primary) "
        "SELECT id, phone, substr(phone, length(phone) - 5), '', true FROM contacts WHERE phone IS NOT NULL"
    )
    op.execute(
        "INSERT INTO contact_emails (contact_id, email, label, is_primary) "
        "SELECT id, lower(email), '', true FROM contacts WHERE email IS NOT NULL"
    )


def downgrade() -> None:
    for table in (
        "duplicate_candidates",
        "contact_relations",
        "contact_companies",
        "companies",
        "contact_emails",
        "contact_phones",
    ):
        op.drop_table(table)
    with op.batch_alter_table("contacts") as batch:
        batch.drop_index(op.f("ix_contacts_birth_date"))
        batch.drop_constraint(op.f("uq_contacts_idnp"), type_="unique")
        for column in ("consents", "tags", "address", "birth_date", "idnp"):
            batch.drop_column(column)
