"""The Telegram Bot API through aiogram's `Bot`, pointed at `Settings.telegram_api_base`.

aiogram's errors become the hub's: a 4xx that cannot succeed (bad request, blocked by the user, wrong
token, chat not found) is a `PermanentJobError` carrying Telegram's description; rate limits, 5xx, network
errors and timeouts are `TransientChannelError`, retried with backoff. The token is never logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
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
from aiogram.types import BufferedInputFile, FSInputFile, InputFile, Message, URLInputFile, User
from aiogram.utils.token import TokenValidationError

from channels.base import TransientChannelError
from channels.model import Attachment
from switchboard.jobs import PermanentJobError

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0
_PERMANENT = (TelegramBadRequest, TelegramForbiddenError, TelegramNotFound, TelegramUnauthorizedError)


class InvalidToken(ValueError):
    """The text given as a bot token is not shaped like one (`123456:ABC…`)."""


class TelegramClient:
    def __init__(
        self,
        token: str,
        api_base: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        locate: Callable[[str], Path] | None = None,
    ) -> None:
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_base.rstrip("/")), timeout=timeout)
        try:
            self._bot = Bot(token, session=session)
        except TokenValidationError:
            raise InvalidToken("this is not a Telegram bot token") from None
        self._timeout = timeout
        self._locate = locate

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

    async def send_file(self, chat_id: int | str, attachment: Attachment, caption: str) -> str:
        """A photo, voice note, video or document by its type; the file comes from `locate(stored_path)`."""
        upload = self._input_file(attachment)
        kind = attachment.content_type.split("/", 1)[0]
        text = caption[:1024] or None
        sent: Message
        if attachment.content_type in {"image/jpeg", "image/png", "image/webp"}:
            sent = await self._call(self._bot.send_photo(chat_id=chat_id, photo=upload, caption=text))
        elif attachment.content_type in {"audio/ogg", "audio/opus"}:
            sent = await self._call(self._bot.send_voice(chat_id=chat_id, voice=upload, caption=text))
        elif kind == "video" and attachment.content_type == "video/mp4":
            sent = await self._call(self._bot.send_video(chat_id=chat_id, video=upload, caption=text))
        else:
            sent = await self._call(self._bot.send_document(chat_id=chat_id, document=upload, caption=text))
        return f"{sent.chat.id}:{sent.message_id}"

    def _input_file(self, attachment: Attachment) -> InputFile:
        name = attachment.filename or "file"
        if attachment.stored_path and self._locate is not None:
            return FSInputFile(self._locate(attachment.stored_path), filename=name)
        if attachment.url:
            return URLInputFile(attachment.url, filename=name)
        return BufferedInputFile(b"", filename=name)

    async def download(self, file_id: str, max_bytes: int) -> bytes:
        """getFile, then the file itself: refused past `max_bytes` before or while it is read."""
        file = await self._call(self._bot.get_file(file_id))
        if file.file_size is not None and file.file_size > max_bytes:
            raise PermanentJobError(f"the file is larger than {max_bytes // (1024 * 1024)} MiB")
        if not file.file_path:
            raise PermanentJobError("Telegram gave no path for this file")
        url = self._bot.session.api.file_url(self._bot.token, file.file_path)
        data = bytearray()
        try:
            async for chunk in self._bot.session.stream_content(url, timeout=int(self._timeout)):
                data.extend(chunk)
                if len(data) > max_bytes:
                    raise PermanentJobError(f"the file is larger than {max_bytes // (1024 * 1024)} MiB")
        except PermanentJobError:
            raise
        except Exception as exc:  # aiohttp's errors while streaming: try again later
            raise TransientChannelError(
                f"the Telegram file could not be downloaded: {type(exc).__name__}"
            ) from None
        return bytes(data)

    async def close(self) -> None:
        await self._bot.session.close()
