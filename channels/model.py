"""The normalised events every channel adapter produces, whatever the provider: plain frozen dataclasses
that the inbox takes in, so no room above `channels/` ever sees a provider's payload."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    WEBCHAT = "webchat"
    TELEGRAM = "telegram"
    VIBER = "viber"
    WHATSAPP = "whatsapp"
    SMS = "sms"
    MESSENGER = "messenger"
    INSTAGRAM = "instagram"
    EMAIL = "email"
    PHONE = "phone"


class MessageKind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    FILE = "file"
    LOCATION = "location"
    CONTACT = "contact"
    CALL = "call"
    SYSTEM = "system"
    NOTE = "note"  # a private note: never leaves the hub


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


@dataclass(frozen=True)
class Attachment:
    """A file that came with a message: either already in the file store (`stored_path`) or still at the
    provider (`url`, fetched into the store by a job because provider URLs expire)."""

    content_type: str
    filename: str = ""
    size: int | None = None
    url: str | None = None
    stored_path: str | None = None


@dataclass(frozen=True)
class VisitSource:
    """Where a customer came from: becomes the source of the lead a first contact creates."""

    page_url: str | None = None
    referrer: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_content: str | None = None
    utm_term: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    channel: Channel
    account_id: str  # the channel account (bot, number, page, widget) it came through
    external_id: str  # the provider's id of this message: (account, external_id) is unique
    sender_id: str  # the provider's id of the customer on this channel
    body: str = ""
    kind: MessageKind = MessageKind.TEXT
    sender_name: str | None = None
    sender_phone: str | None = None  # as the provider gave it; normalised to E.164 by crm_core
    attachments: tuple[Attachment, ...] = ()
    sent_at: dt.datetime | None = None
    source: VisitSource | None = None
    language: str | None = None
    # provider details worth keeping with the message (an e-mail's subject and sanitised HTML, …)
    meta: Mapping[str, Any] = field(default_factory=dict)
    # the provider id of an earlier message of ours this one answers (e-mail In-Reply-To / References):
    # a reply from an address the hub does not know yet still lands in the right conversation
    in_reply_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeliveryUpdate:
    channel: Channel
    account_id: str
    external_id: str  # the provider's id of our outgoing message
    status: DeliveryStatus
    reason: str | None = None
    at: dt.datetime | None = None


@dataclass(frozen=True)
class WatermarkUpdate:
    """Every message we sent this customer up to `up_to` reached `status` (Messenger's read and delivery
    watermarks, which name a time instead of message ids)."""

    channel: Channel
    account_id: str
    recipient_id: str
    status: DeliveryStatus
    up_to: dt.datetime


@dataclass(frozen=True)
class ConsentUpdate:
    """The customer opted in or out of messages on this channel (Viber unsubscribed / subscribed, SMS STOP /
    START). While opted out, the hub refuses to send them anything on this channel."""

    channel: Channel
    account_id: str
    sender_id: str
    subscribed: bool
    sender_name: str | None = None
    at: dt.datetime | None = None


@dataclass(frozen=True)
class TemplateRef:
    """A provider-approved template (WhatsApp Content SID, a Meta message tag…) and its variables: what may be
    sent outside a channel's customer-service window."""

    name: str
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundMessage:
    """What the inbox hands an adapter to send."""

    message_id: int
    channel: Channel
    account_id: str
    recipient_id: str
    body: str
    kind: MessageKind = MessageKind.TEXT
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)
    template: TemplateRef | None = None
    # the customer's latest message on this channel (e-mail threading: In-Reply-To, subject)
    reply_to: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sent:
    """The provider's answer to a send: its message id, and details worth keeping (SMS segments)."""

    external_id: str
    meta: Mapping[str, Any] = field(default_factory=dict)
