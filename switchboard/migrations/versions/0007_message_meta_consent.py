"""provider details on messages (SMS segments, e-mail subject and HTML) and per-identity consent

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchboard.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("meta", sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
    with op.batch_alter_table("contact_identities") as batch:
        batch.add_column(
            sa.Column("unsubscribed_at", switchboard.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("contact_identities") as batch:
        batch.drop_column("unsubscribed_at")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("meta")
