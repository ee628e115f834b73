"""search: full-text indexes over contacts, companies, leads, deals and messages — a stored tsvector column
with a GIN index on PostgreSQL, FTS5 tables kept in step by triggers on SQLite (`crm_core.search_index`)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from crm_core import search_index

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in search_index.DOCUMENTS:
        ddl = search_index.pg_ddl if bind.dialect.name == "postgresql" else search_index.sqlite_ddl
        for statement in ddl(table):
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    for table in search_index.DOCUMENTS:
        drop = search_index.pg_drop if bind.dialect.name == "postgresql" else search_index.sqlite_drop
        for statement in drop(table):
            op.execute(statement)
