"""The Telegram Bot API through aiogram's `Bot`, pointed at `Settings.telegram_api_base`.

aiogram's errors become the hub's: a 4xx that cannot succeed (bad request, blocked by the user, wrong
token, chat not found) is a `PermanentJobError` carrying Telegram's description; rate limits, 5xx, network
errors and timeouts are `TransientChannelError`, retried with backoff. The token is never logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramUnauthorizedError,
)
from aiogram.types import User
from aiogram.utils.token import TokenValidationError

from channels.base import TransientChannelError
from switchboard.jobs import PermanentJobError

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0
_PERMANENT = (TelegramBadRequest, TelegramForbiddenError, TelegramNotFound, TelegramUnauthorizedError)


class InvalidToken(ValueError):
    """The text given as a bot token is not shaped like one (`123456:ABC…`)."""


class TelegramClient:
    def __init__(self, token: str, api_base: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_base.rstrip("/")), timeout=timeout)
        try:
            self._bot = Bot(token, session=session)
        except TokenValidationError:
            raise InvalidToken("this is not a Telegram bot token") from None
        self._timeout = timeout

    def __repr__(self) -> str:
        return "TelegramClient(***)"

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self._timeout + 5)
        except _PERMANENT as exc:
            raise PermanentJobError(exc.message) from None
        except TelegramAPIError as exc:  # 5xx, rate limit, network, conflict
            raise TransientChannelError(exc.message) from None
        except (TimeoutError, AiogramError) as exc:
            raise TransientChannelError(f"Telegram did not answer: {type(exc).__name__}") from None

    async def get_me(self) -> User:
        return await self._call(self._bot.get_me())

    async def set_webhook(self, url: str, secret_token: str) -> None:
        await self._call(
            self._bot.set_webhook(
                url=url,
                secret_token=secret_token,
                allowed_updates=["message"],
                drop_pending_updates=False,
            )
        )

    async def delete_webhook(self) -> None:
        await self._call(self._bot.delete_webhook())

    async def send_text(self, chat_id: int | str, text: str) -> str:
        sent = await self._call(self._bot.send_message(chat_id=chat_id, text=text))
        return f"{sent.chat.id}:{sent.message_id}"

    async def close(self) -> None:
        await self._bot.session.close()
