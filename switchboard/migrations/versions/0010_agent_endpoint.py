"""agent endpoint: the phone endpoint (`PJSIP/1001`) the FastAGI router answers for an agent's calls

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent_states") as batch:
        batch.add_column(sa.Column("phone_endpoint", sa.String(length=100), nullable=True))
    op.create_index("uq_agent_states_phone_endpoint", "agent_states", ["phone_endpoint"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_agent_states_phone_endpoint", table_name="agent_states")
    with op.batch_alter_table("agent_states") as batch:
        batch.drop_column("phone_endpoint")
