"""Telegram: verify (the `X-Telegram-Bot-Api-Secret-Token` header), parse (an `Update`), send (text).

Only private chats are taken in: a bot added to a group is not a customer conversation. The message's
external id is `<chat id>:<message id>` (message ids are unique per chat), so a redelivered update is
stored once. Media come in as attachments whose url is `tg-file:<file_id>`: the file stays at Telegram
until a job downloads it with `getFile`.
"""

from __future__ import annotations

import hmac
from typing import Any

from channels.base import ChannelAdapter, Event, WebhookRejected, WebhookRequest
from channels.model import Attachment, Channel, InboundMessage, MessageKind, OutboundMessage, Sent
from channels.telegram.client import TelegramClient
from channels.telegram.schema import Message, parse_update
from switchboard.jobs import PermanentJobError

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
FILE_SCHEME = "tg-file:"


def file_url(file_id: str) -> str:
    return FILE_SCHEME + file_id


class TelegramAdapter(ChannelAdapter):
    channel = Channel.TELEGRAM

    def __init__(self, account_id: str, webhook_secret: str, client: TelegramClient) -> None:
        super().__init__(account_id)
        self._webhook_secret = webhook_secret
        self.client = client

    def __repr__(self) -> str:
        return f"TelegramAdapter(account_id={self.account_id!r})"

    # --- in ------------------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        given = request.headers.get(SECRET_HEADER)
        if not given:
            raise WebhookRejected(401, f"the {SECRET_HEADER} header is missing")
        if not hmac.compare_digest(given.encode(), self._webhook_secret.encode()):
            raise WebhookRejected(403, f"the {SECRET_HEADER} header is wrong")

    def parse(self, request: WebhookRequest) -> list[Event]:
        update = parse_update(request.json())
        message = update.message
        if message is None or message.chat.type != "private" or message.from_user is None:
            return []  # edits, channel posts, callbacks, groups: nothing for the inbox (yet)
        inbound = self._inbound(message)
        return [inbound] if inbound is not None else []

    def _inbound(self, m: Message) -> InboundMessage | None:
        sender = m.from_user
        assert sender is not None
        name = " ".join(part for part in (sender.first_name, sender.last_name) if part) or None
        body = m.text or m.caption or ""
        kind = MessageKind.TEXT
        attachments: tuple[Attachment, ...] = ()
        phone: str | None = None
        if m.photo:
            largest = max(m.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
            kind = MessageKind.IMAGE
            attachments = (
                Attachment(
                    "image/jpeg",
                    f"{largest.file_unique_id}.jpg",
                    largest.file_size,
                    file_url(largest.file_id),
                ),
            )
        elif m.voice:
            kind = MessageKind.AUDIO
            attachments = (
                Attachment(
                    m.voice.mime_type or "audio/ogg",
                    "voice.ogg",
                    m.voice.file_size,
                    file_url(m.voice.file_id),
                ),
            )
        elif m.video:
            kind = MessageKind.VIDEO
            attachments = (
                Attachment(
                    m.video.mime_type or "video/mp4",
                    m.video.file_name or f"{m.video.file_unique_id}.mp4",
                    m.video.file_size,
                    file_url(m.video.file_id),
                ),
            )
        elif m.document:
            kind = MessageKind.FILE
            attachments = (
                Attachment(
                    m.document.mime_type or "application/octet-stream",
                    m.document.file_name or m.document.file_unique_id,
                    m.document.file_size,
                    file_url(m.document.file_id),
                ),
            )
        elif m.location:
            kind = MessageKind.LOCATION
            body = f"{m.location.latitude},{m.location.longitude}"
        elif m.contact:
            kind = MessageKind.CONTACT
            shared = " ".join(p for p in (m.contact.first_name, m.contact.last_name) if p)
            body = f"{shared} {m.contact.phone_number}".strip()
            if m.contact.user_id == sender.id:  # the customer shared their own number
                phone = m.contact.phone_number
        elif not body:
            return None  # stickers, polls, service messages: not stored yet
        return InboundMessage(
            channel=Channel.TELEGRAM,
            account_id=self.account_id,
            external_id=f"{m.chat.id}:{m.message_id}",
            sender_id=str(sender.id),
            body=body,
            kind=kind,
            sender_name=name,
            sender_phone=phone,
            attachments=attachments,
            sent_at=m.date,
            language=_language(sender.language_code),
        )

    # --- out -----------------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> Sent:
        if message.attachments:
            first, *rest = message.attachments
            sent = await self.client.send_file(message.recipient_id, first, message.body)
            for attachment in rest:
                await self.client.send_file(message.recipient_id, attachment, "")
            return Sent(sent)
        if not message.body.strip():
            raise PermanentJobError("an empty message cannot be sent")
        return Sent(await self.client.send_text(message.recipient_id, message.body))

    async def check(self) -> dict[str, Any]:
        me = await self.client.get_me()
        return {"username": me.username or "", "bot_id": me.id}

    async def fetch_media(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        if not url.startswith(FILE_SCHEME):
            raise PermanentJobError("not a Telegram file reference")
        return await self.client.download(url.removeprefix(FILE_SCHEME), max_bytes), None

    async def connect(self, webhook_url: str) -> None:
        await self.client.set_webhook(webhook_url, self._webhook_secret)

    async def disconnect(self) -> None:
        await self.client.delete_webhook()

    async def close(self) -> None:
        await self.client.close()


def _language(code: str | None) -> str | None:
    short = (code or "")[:2].lower()
    return short if short in {"ro", "en", "ru"} else None
