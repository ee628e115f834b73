"""Migrations build the schema from nothing on the run's backend, match the models, and undo cleanly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from crm_core.search_index import is_search_object
from switchboard import migrate
from switchboard.db import create_engine
from switchboard.models import metadata
from tests.conftest import BACKEND, create_pg_database, drop_pg_database, pg_admin_url


@pytest.fixture
async def empty_db_url(tmp_path: Path) -> AsyncIterator[str]:
    if BACKEND == "postgres":
        url = await create_pg_database(pg_admin_url())
        yield url
        await drop_pg_database(url)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _schema_drift(url: str) -> list[object]:
    engine = create_engine(url)

    def compare(conn: Connection) -> list[object]:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": lambda name, _kind, _parent: not is_search_object(name or ""),
            },
        )
        return list(compare_metadata(context, metadata))

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


async def test_migrations_apply_from_empty_and_match_the_models(empty_db_url: str) -> None:
    await migrate.upgrade(empty_db_url)
    tables = await _tables(empty_db_url)
    assert set(metadata.tables) <= tables
    assert "alembic_version" in tables
    assert await _schema_drift(empty_db_url) == []


async def test_migrations_downgrade_back_to_empty(empty_db_url: str) -> None:
    await migrate.upgrade(empty_db_url)
    await migrate.downgrade(empty_db_url, "base")
    assert await _tables(empty_db_url) <= {"alembic_version"}
    await migrate.upgrade(empty_db_url)  # and up again: downgrade left nothing behind that blocks it
    assert set(metadata.tables) <= await _tables(empty_db_url)


async def test_the_suite_runs_on_the_backend_it_was_asked_for(db_url: str) -> None:
    expected = "postgresql+asyncpg" if BACKEND == "postgres" else "sqlite+aiosqlite"
    assert db_url.startswith(expected)
