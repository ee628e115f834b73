"""Secrets never reach the logs, whoever logs them."""

from __future__ import annotations

import logging

import pytest

from switchboard.redact import RedactingFilter, redact_text, redact_url
from switchboard.settings import Settings


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connecting to postgresql+asyncpg://hub:s3cr3t@db:5432/sb", "s3cr3t"),
        ("redis://:redis-pass@cache:6379/0 is down", "redis-pass"),
        ("Authorization: Bearer sb_abcdefghijklmnopqrstuvwxyz0123", "sb_abcdefghij"),
        ("payload password=hunter2&user=x", "hunter2"),
        ('{"token": "tg-bot-token-123"}', "tg-bot-token-123"),
    ],
)
def test_known_secret_shapes_are_masked(text: str, secret: str) -> None:
    assert secret not in redact_text(text)


def test_urls_without_passwords_are_left_alone() -> None:
    assert redact_url("sqlite+aiosqlite:///./var/x.db") == "sqlite+aiosqlite:///./var/x.db"
    assert redact_url("postgresql+asyncpg://hub:pw@db/sb") == "postgresql+asyncpg://hub:***@db/sb"


def test_a_library_logging_a_secret_is_masked_by_the_filter(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("some.library")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO):
        logger.info("connect %s", "postgresql://u:topsecret@h/db")
    assert "topsecret" not in caplog.text and "u:***@h" in caplog.text


def test_settings_repr_and_dump_hide_the_secret_key() -> None:
    settings = Settings(secret_key="k" * 40, database_url="postgresql://a:b-pass@h/d", _env_file=None)  # type: ignore[arg-type]
    assert "kkkk" not in repr(settings) and "kkkk" not in str(settings.safe_dump())
    assert "b-pass" not in str(settings.safe_dump())
