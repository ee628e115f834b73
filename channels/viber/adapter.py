"""Viber: verify (`X-Viber-Content-Signature`), parse (the REST bot API's callbacks), send, connect.

- The signature is the hex HMAC-SHA256 of the raw body keyed with the account's auth token — what
  viberbot's `Api.verify_signature` computes, compared here in constant time (viberbot uses `==`).
- `message` → `InboundMessage`, external id the `message_token` (a redelivered callback is stored once);
  `delivered` / `seen` / `failed` → `DeliveryUpdate` for the message whose token `send` returned;
  `subscribed` / `unsubscribed` → `ConsentUpdate`; `webhook` (the check `set_webhook` makes) and
  `conversation_started` (the customer opened the chat and has written nothing yet) store nothing.
- Media stay at Viber (`url` = the media URL, valid for about an hour) until the hub's media job calls
  `fetch_media`. A voice note arrives as an audio file and is stored as `AUDIO`; a sticker as the image
  Viber links to (a thumbs-up is an answer an agent should see), or "[sticker]" when there is no link.
- A shared contact is stored as `CONTACT` ("name phone"), never as the customer's own number: Viber's
  contact message says nothing about whose number it is, and Viber never tells a bot the user's phone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

from channels.base import ChannelAdapter, Event, WebhookRejected, WebhookRequest
from channels.model import (
    Attachment,
    Channel,
    ConsentUpdate,
    DeliveryStatus,
    DeliveryUpdate,
    InboundMessage,
    MessageKind,
    OutboundMessage,
    Sent,
)
from channels.viber import media
from channels.viber.client import ViberClient
from channels.viber.outbound import payloads
from channels.viber.schema import (
    Message,
    MessageCallback,
    Receipt,
    Subscribed,
    Unsubscribed,
    parse_callback,
)

SIGNATURE_HEADER = "X-Viber-Content-Signature"
# What the hub asks Viber for; `message`, `subscribed` and `unsubscribed` come whatever is asked.
EVENT_TYPES = ("delivered", "seen", "failed", "subscribed", "unsubscribed", "conversation_started")
_RECEIPTS = {
    "delivered": DeliveryStatus.DELIVERED,
    "seen": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
}
_LANGUAGES = {"ro", "en", "ru"}


def sign(body: bytes, token: str) -> str:
    """Viber's signature of a callback body."""
    return hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def _at(timestamp: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp / 1000, dt.UTC)


def _language(code: str | None) -> str | None:
    short = (code or "")[:2].lower()
    return short if short in _LANGUAGES else None


class ViberAdapter(ChannelAdapter):
    channel = Channel.VIBER

    def __init__(self, account_id: str, token: str, sender_name: str, client: ViberClient) -> None:
        super().__init__(account_id)
        self._token = token
        self.sender_name = sender_name
        self.client = client

    def __repr__(self) -> str:
        return f"ViberAdapter(account_id={self.account_id!r})"

    # --- in ------------------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        given = request.headers.get(SIGNATURE_HEADER, "").strip().lower()
        if not given:
            raise WebhookRejected(401, f"the {SIGNATURE_HEADER} header is missing")
        if not hmac.compare_digest(given.encode(), sign(request.body, self._token).encode()):
            raise WebhookRejected(403, f"the {SIGNATURE_HEADER} header is wrong")

    def parse(self, request: WebhookRequest) -> list[Event]:
        callback = parse_callback(request.json())
        if isinstance(callback, MessageCallback):
            inbound = self._inbound(callback)
            return [inbound] if inbound is not None else []
        if isinstance(callback, Receipt):
            status = _RECEIPTS[callback.event]
            reason = (
                (callback.desc or "Viber could not deliver the message")
                if callback.event == "failed"
                else None
            )
            return [
                DeliveryUpdate(
                    Channel.VIBER,
                    self.account_id,
                    str(callback.message_token),
                    status,
                    reason=reason,
                    at=_at(callback.timestamp),
                )
            ]
        if isinstance(callback, Subscribed):
            return [
                ConsentUpdate(
                    Channel.VIBER,
                    self.account_id,
                    callback.user.id,
                    subscribed=True,
                    sender_name=callback.user.name or None,
                    at=_at(callback.timestamp),
                )
            ]
        if isinstance(callback, Unsubscribed):
            return [
                ConsentUpdate(
                    Channel.VIBER,
                    self.account_id,
                    callback.user_id,
                    subscribed=False,
                    at=_at(callback.timestamp),
                )
            ]
        return []  # webhook check, conversation_started, events this hub does not know

    def _inbound(self, callback: MessageCallback) -> InboundMessage | None:
        m, sender = callback.message, callback.sender
        content = _content(m)
        if content is None:
            return None
        kind, body, attachments, meta = content
        if sender.country:
            meta["country"] = sender.country
        return InboundMessage(
            channel=Channel.VIBER,
            account_id=self.account_id,
            external_id=str(callback.message_token),
            sender_id=sender.id,
            body=body,
            kind=kind,
            sender_name=sender.name or None,
            attachments=attachments,
            sent_at=_at(callback.timestamp),
            language=_language(sender.language),
            meta=meta,
        )

    # --- out -----------------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> Sent:
        bodies = payloads(message, self.sender_name)  # every part checked before anything is sent
        tokens = [await self.client.send_message(body) for body in bodies]
        return Sent(tokens[0], {"parts": len(tokens)} if len(tokens) > 1 else {})

    async def check(self) -> dict[str, Any]:
        info = await self.client.account_info()
        return {"name": info.name, "uri": info.uri, "id": info.id}

    async def connect(self, webhook_url: str) -> None:
        await self.client.set_webhook(webhook_url, EVENT_TYPES)

    async def disconnect(self) -> None:
        await self.client.set_webhook("")

    async def fetch_media(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        return await self.client.download(url, max_bytes)

    async def close(self) -> None:
        await self.client.close()


Content = tuple[MessageKind, str, tuple[Attachment, ...], dict[str, Any]]


def _attachment(m: Message, default_type: str) -> Attachment:
    content_type, name = media.guess(m.file_name, m.media, default_type)
    return Attachment(content_type, name, m.file_size, m.media)


def _content(m: Message) -> Content | None:
    """Kind, body, attachments and details of a received message; None for nothing worth storing."""
    text = m.text or ""
    if m.type == "text":
        return (MessageKind.TEXT, text, (), {}) if text else None
    if m.type in {"picture", "video", "file"} and m.media:
        default = {"picture": "image/jpeg", "video": "video/mp4"}.get(m.type, "application/octet-stream")
        attachment = _attachment(m, default)
        major = attachment.content_type.split("/", 1)[0]
        kind = {"image": MessageKind.IMAGE, "audio": MessageKind.AUDIO, "video": MessageKind.VIDEO}.get(
            major, MessageKind.FILE
        )
        if m.type == "picture" and kind is MessageKind.FILE:
            kind = MessageKind.IMAGE
        meta: dict[str, Any] = {"duration": m.duration} if m.duration else {}
        return kind, text, (attachment,), meta
    if m.type == "location" and m.location is not None:
        return MessageKind.LOCATION, f"{m.location.lat},{m.location.lon}", (), {}
    if m.type == "contact" and m.contact is not None:
        shared = " ".join(p for p in (m.contact.name, m.contact.phone_number) if p)
        return MessageKind.CONTACT, shared, (), {}
    if m.type == "sticker":
        meta = {"sticker_id": m.sticker_id} if m.sticker_id is not None else {}
        if m.media:
            return MessageKind.IMAGE, "", (_attachment(m, "image/png"),), meta
        return MessageKind.TEXT, "[sticker]", (), meta
    if m.type == "url" and (m.media or text):
        return MessageKind.TEXT, m.media or text, (), {}
    return (MessageKind.TEXT, text, (), {"viber_type": m.type}) if text else None
