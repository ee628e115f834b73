"""Telegram's payloads as models: aiogram's own pydantic `Update` (which follows the Bot API documentation),
validated here so that a body Telegram would never send becomes `BadPayload` rather than an exception."""

from __future__ import annotations

from typing import Any

from aiogram.types import Message, Update, User
from pydantic import ValidationError

from channels.base import BadPayload

__all__ = ["Message", "Update", "User", "parse_update"]


def parse_update(payload: Any) -> Update:
    if not isinstance(payload, dict):
        raise BadPayload("a Telegram update is a JSON object")
    try:
        return Update.model_validate(payload)
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        what = errors[0]["msg"] if errors else "is invalid"
        raise BadPayload(f"not a Telegram update: {where or 'body'}: {what}") from None
