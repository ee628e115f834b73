"""The `switchboard` command: what it creates, and a readable line (never a traceback) on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from switchboard import migrate


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")} | env
    return subprocess.run(
        [sys.executable, "-m", "switchboard.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        check=False,
    )


@pytest.fixture
async def cli_env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    await migrate.upgrade(url)
    return {"SWITCHBOARD_DATABASE_URL": url, "SWITCHBOARD_DATA_DIR": str(tmp_path)}


async def test_create_user_reads_the_password_from_stdin(cli_env: dict[str, str]) -> None:
    done = run(
        ["create-user", "Elena", "--role", "agent", "--branch", "Bălți", "--password-stdin"],
        cli_env,
        "a-long-password\n",
    )
    assert done.returncode == 0, done.stderr
    assert "Created agent elena" in done.stdout
    again = run(["create-user", "elena", "--role", "agent", "--password-stdin"], cli_env, "a-long-password\n")
    assert again.returncode == 2
    assert again.stderr.strip() == "switchboard: error: The username elena is taken."


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["create-user", "ok-name", "--role", "agent", "--password-stdin"],
            "short\n",
            "at least 10 characters",
        ),
        (
            ["create-user", "no spaces!", "--role", "agent", "--password-stdin"],
            "a-long-password\n",
            "A username has",
        ),
        (["create-user", "ok-name", "--role", "agent"], "", "pipe it in with --password-stdin"),
        (["create-user", "ok-name", "--role", "boss"], "", "invalid choice: 'boss'"),
        (["no-such-command"], "", "invalid choice"),
    ],
)
async def test_bad_input_gives_one_clear_line(
    cli_env: dict[str, str], args: list[str], stdin: str, message: str
) -> None:
    done = run(args, cli_env, stdin)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


async def test_bad_settings_are_named(tmp_path: Path) -> None:
    done = run(["migrate"], {"SWITCHBOARD_DATABASE_URL": "mysql://x", "SWITCHBOARD_PORT": "eighty"})
    assert done.returncode == 2
    assert "SWITCHBOARD_DATABASE_URL" in done.stderr and "SWITCHBOARD_PORT" in done.stderr
    assert "Traceback" not in done.stderr


async def test_an_unreachable_database_is_reported_without_its_password() -> None:
    url = "postgresql+asyncpg://switch:hunter2-secret@127.0.0.1:1/nothing"
    done = run(["migrate"], {"SWITCHBOARD_DATABASE_URL": url})
    assert done.returncode == 2
    assert "cannot migrate" in done.stderr and "switch:***@127.0.0.1:1" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout and "Traceback" not in done.stderr


async def test_an_unmigrated_database_says_what_to_do(tmp_path: Path) -> None:
    env = {"SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"}
    done = run(["create-user", "someone", "--role", "admin", "--password-stdin"], env, "a-long-password\n")
    assert done.returncode == 2 and "switchboard migrate" in done.stderr


async def test_settings_are_printed_with_secrets_masked() -> None:
    env = {
        "SWITCHBOARD_SECRET_KEY": "s3cret-" * 6,
        "SWITCHBOARD_DATABASE_URL": "postgresql+asyncpg://hub:pa55word@db/switchboard",
        "SWITCHBOARD_REDIS_URL": "redis://:redispass@cache:6379/0",
    }
    done = run(["settings"], env)
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in done.stdout and "pa55word" not in done.stdout and "redispass" not in done.stdout
    assert "SWITCHBOARD_SECRET_KEY=**********" in done.stdout
    assert "postgresql+asyncpg://hub:***@db/switchboard" in done.stdout


async def test_migrate_brings_a_new_database_up_to_date(tmp_path: Path) -> None:
    env = {"SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"}
    done = run(["migrate"], env)
    assert done.returncode == 0, done.stderr
    assert "is up to date" in done.stdout
