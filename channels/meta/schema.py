"""Meta's webhook notifications as models: the Messenger Platform's `page` object and the Instagram Messaging
`instagram` object share one shape (`{"object", "entry": [{"id", "time", "messaging": [...]}]}`), so one set
of models reads both. Fields the hub does not use are ignored; a body Meta would never send (wrong types,
no `entry`) becomes `BadPayload` rather than an exception.

References: the Messenger Platform's webhook events (messages, message_echoes, message_deliveries,
message_reads, messaging_postbacks) and Instagram Messaging's webhooks (messages with `is_echo`,
messaging_seen with `read.mid`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from channels.schema import parse_object


class _Model(BaseModel):
    # Meta sends ids as strings, but a number where a string is expected is still the same id
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)


class Ref(_Model):
    id: str


class Coordinates(_Model):
    lat: float
    long: float


class AttachmentPayload(_Model):
    url: str | None = None
    title: str | None = None
    coordinates: Coordinates | None = None  # the (retired) location attachment
    sticker_id: str | None = None


class MessageAttachment(_Model):
    type: str
    payload: AttachmentPayload | None = None
    # older `fallback` attachments carry these at the top level instead of in `payload`
    title: str | None = None
    url: str | None = None


class QuickReply(_Model):
    payload: str | None = None


class ReplyTo(_Model):
    mid: str | None = None


class Message(_Model):
    mid: str
    text: str | None = None
    is_echo: bool = False
    is_deleted: bool = False  # Instagram: the customer unsent the message
    is_unsupported: bool = False  # Instagram: a message type the API does not deliver
    attachments: tuple[MessageAttachment, ...] = ()
    quick_reply: QuickReply | None = None
    reply_to: ReplyTo | None = None


class Delivery(_Model):
    mids: tuple[str, ...] = ()
    watermark: int | None = None


class Read(_Model):
    watermark: int | None = None  # Messenger: every message sent up to this time (ms) was read
    mid: str | None = None  # Instagram (messaging_seen): the message that was read


class Postback(_Model):
    mid: str | None = None
    title: str | None = None
    payload: str | None = None


class Messaging(_Model):
    sender: Ref | None = None
    recipient: Ref | None = None
    timestamp: int | None = None  # milliseconds since the epoch
    message: Message | None = None
    delivery: Delivery | None = None
    read: Read | None = None
    postback: Postback | None = None


class Entry(_Model):
    id: str
    time: int | None = None
    messaging: tuple[Messaging, ...] = ()


class Notification(_Model):
    object: str
    entry: tuple[Entry, ...] = Field(min_length=1)


def parse_notification(payload: Any) -> Notification:
    return parse_object(Notification, payload, "Meta webhook notification")
