"""search: full-text indexes over contacts, companies, leads, deals and messages — GIN expression indexes
on PostgreSQL, FTS5 tables kept in step by triggers on SQLite (`crm_core.search_index`)

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
        if bind.dialect.name == "postgresql":
            op.execute(
                f"CREATE INDEX {search_index.pg_index_name(table)} ON {table} "
                f"USING gin (({search_index.tsvector_sql(table)}))"
            )
        else:
            for statement in search_index.sqlite_ddl(table):
                op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    for table in search_index.DOCUMENTS:
        if bind.dialect.name == "postgresql":
            op.execute(f"DROP INDEX IF EXISTS {search_index.pg_index_name(table)}")
        else:
            for statement in search_index.sqlite_drop(table):
                op.execute(statement)
