"""Alembic driven from code: `switchboard migrate`, automatic migration on start, and the tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on a '%' in a password.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    return config


def _run(fn_name: str, database_url: str, revision: str) -> None:
    config = alembic_config(database_url)
    getattr(command, fn_name)(config, revision)


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Alembic's env.py runs its own event loop, so it runs in a worker thread here."""
    await asyncio.to_thread(_run, "upgrade", database_url, revision)


async def downgrade(database_url: str, revision: str = "base") -> None:
    await asyncio.to_thread(_run, "downgrade", database_url, revision)
