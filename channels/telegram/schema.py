"""Telegram's payloads as models: aiogram's own pydantic `Update` (which follows the Bot API documentation),
validated here so that a body Telegram would never send becomes `BadPayload` rather than an exception."""

from __future__ import annotations

from typing import Any

from aiogram.types import Message, Update, User

from channels.schema import parse_object

__all__ = ["Message", "Update", "User", "parse_update"]


def parse_update(payload: Any) -> Update:
    return parse_object(Update, payload, "Telegram update")
