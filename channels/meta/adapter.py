"""Facebook Messenger and Instagram Direct through the Messenger Platform: one adapter, two channels.

- `handshake`: Meta's GET (`hub.mode=subscribe`, `hub.verify_token` = the account's webhook secret) is
  answered with `hub.challenge` as text/plain.
- `verify`: `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with the app secret>`.
- `parse`: the entries of the account's own page / Instagram account only. A message's `mid` is its external
  id, so a redelivered notification is stored once. Echoes (`is_echo`: what the page itself sent, through the
  hub or Meta's own inbox) are never stored as customer messages: the hub's sends are already stored under
  the mid the Send API returned. Deliveries (`delivery.mids`) and Instagram reads (`read.mid`) become
  `DeliveryUpdate`s; a Messenger read (and a delivery without mids) only carries a watermark — every
  message up to a time — and becomes a `WatermarkUpdate`. Postbacks (a button the customer tapped)
  are stored as text with the button's title.
- `send`: text, or attachments by their public URL (Meta fetches them), tagged with a message tag when the
  inbox gives a `TemplateRef` outside the 24-hour window.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import mimetypes
import posixpath
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from channels.base import BadPayload, ChannelAdapter, Event, WebhookRejected, WebhookReply, WebhookRequest
from channels.meta.client import GraphClient
from channels.meta.schema import Entry, MessageAttachment, Messaging, parse_notification
from channels.meta.schema import Message as MetaMessage
from channels.model import (
    Attachment,
    Channel,
    DeliveryStatus,
    DeliveryUpdate,
    InboundMessage,
    MessageKind,
    OutboundMessage,
    Sent,
    WatermarkUpdate,
)
from switchboard.jobs import PermanentJobError

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
WEBHOOK_OBJECT = {Channel.MESSENGER: "page", Channel.INSTAGRAM: "instagram"}
SUBSCRIBED_FIELDS = "messages,message_echoes,message_deliveries,message_reads,messaging_postbacks"
MEDIA_KINDS = {
    "image": MessageKind.IMAGE,
    "sticker": MessageKind.IMAGE,
    "audio": MessageKind.AUDIO,
    "video": MessageKind.VIDEO,
    "file": MessageKind.FILE,
}
DEFAULT_TYPES = {
    MessageKind.IMAGE: "image/jpeg",
    MessageKind.AUDIO: "audio/mp4",
    MessageKind.VIDEO: "video/mp4",
    MessageKind.FILE: "application/octet-stream",
}
SEND_TYPES = {"image": "image", "audio": "audio", "video": "video"}  # anything else goes as "file"


class MetaAdapter(ChannelAdapter):
    reply = WebhookReply(body="EVENT_RECEIVED", content_type="text/plain")

    def __init__(
        self,
        account_id: str,
        channel: Channel,
        *,
        own_id: str,
        verify_token: str,
        app_secret: str,
        client: GraphClient,
    ) -> None:
        if channel not in WEBHOOK_OBJECT:
            raise ValueError(f"the Meta adapter does not serve {channel.value}")
        super().__init__(account_id)
        self.channel = channel
        self.own_id = own_id  # the page id (Messenger) or the Instagram professional account id
        self._verify_token = verify_token
        self._app_secret = app_secret
        self.client = client

    def __repr__(self) -> str:
        return f"MetaAdapter({self.channel.value}, account_id={self.account_id!r}, own_id={self.own_id!r})"

    @property
    def _node(self) -> str:
        """Where the Send API and the page subscription live: the page itself for Messenger; for Instagram
        the page the token belongs to (`me`), since Instagram messages flow through the linked page."""
        return self.own_id if self.channel is Channel.MESSENGER else "me"

    # --- in ------------------------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest) -> WebhookReply:
        if request.query.get("hub.mode") != "subscribe":
            raise WebhookRejected(400, "hub.mode must be subscribe")
        token = request.query.get("hub.verify_token", "")
        if not token or not hmac.compare_digest(token.encode(), self._verify_token.encode()):
            raise WebhookRejected(403, "hub.verify_token is wrong")
        challenge = request.query.get("hub.challenge", "")
        if not challenge:
            raise WebhookRejected(400, "hub.challenge is missing")
        return WebhookReply(body=challenge, content_type="text/plain")

    def verify(self, request: WebhookRequest) -> None:
        given = request.headers.get(SIGNATURE_HEADER)
        if not given:
            raise WebhookRejected(401, f"the {SIGNATURE_HEADER} header is missing")
        expected = "sha256=" + hmac.new(self._app_secret.encode(), request.body, hashlib.sha256).hexdigest()
        if not self._app_secret or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise WebhookRejected(403, f"the {SIGNATURE_HEADER} header is wrong")

    def parse(self, request: WebhookRequest) -> list[Event]:
        notification = parse_notification(request.json())
        if notification.object != WEBHOOK_OBJECT[self.channel]:
            log.warning(
                "%s account %s got a %r notification: is the callback URL pasted under the right product?",
                self.channel.value,
                self.account_id,
                notification.object,
            )
            return []
        events: list[Event] = []
        for entry in notification.entry:
            if entry.id != self.own_id:
                continue  # another page / Instagram account of the same app
            events.extend(self._events(entry))
        return events

    def _events(self, entry: Entry) -> Iterator[Event]:
        for item in entry.messaging:
            at = _time(item.timestamp)
            if item.message is not None:
                inbound = self._inbound(item, item.message, at)
                if inbound is not None:
                    yield inbound
            elif item.postback is not None:
                inbound = self._postback(item, at)
                if inbound is not None:
                    yield inbound
            elif item.delivery is not None:
                for mid in item.delivery.mids:
                    yield self._update(mid, DeliveryStatus.DELIVERED, at)
                if not item.delivery.mids:
                    yield from self._watermark(item, DeliveryStatus.DELIVERED, item.delivery.watermark)
            elif item.read is not None and item.read.mid:
                yield self._update(item.read.mid, DeliveryStatus.READ, at)
            elif item.read is not None:
                yield from self._watermark(item, DeliveryStatus.READ, item.read.watermark)

    def _watermark(self, item: Messaging, status: DeliveryStatus, watermark: int | None) -> Iterator[Event]:
        customer = self._customer(item)
        up_to = _time(watermark)
        if customer is not None and up_to is not None:
            yield WatermarkUpdate(self.channel, self.account_id, customer, status, up_to)

    def _update(self, mid: str, status: DeliveryStatus, at: dt.datetime | None) -> DeliveryUpdate:
        return DeliveryUpdate(self.channel, self.account_id, mid, status, at=at)

    def _customer(self, item: Messaging) -> str | None:
        """The customer's PSID / IGSID, or None for what the page itself sent."""
        if item.sender is None or item.sender.id == self.own_id:
            return None
        return item.sender.id

    def _inbound(self, item: Messaging, m: MetaMessage, at: dt.datetime | None) -> InboundMessage | None:
        sender = self._customer(item)
        if sender is None or m.is_echo or m.is_deleted:
            return None  # our own page's message echoed back, or a message the customer unsent
        body = m.text or ""
        kind = MessageKind.TEXT
        attachments: list[Attachment] = []
        links: list[str] = []
        meta: dict[str, Any] = {}
        for a in m.attachments:
            media = MEDIA_KINDS.get(a.type)
            payload = a.payload
            url = (payload.url if payload else None) or a.url
            if a.type == "location" and payload is not None and payload.coordinates is not None:
                kind = MessageKind.LOCATION
                body = f"{payload.coordinates.lat},{payload.coordinates.long}"
            elif media is not None and url:
                if kind is MessageKind.TEXT:
                    kind = media
                if all(x.url != url for x in attachments):  # a sticker also comes as an image, same URL
                    attachments.append(_attachment(media, url))
            elif url:  # fallback (a shared link), share, story_mention, reel, post…: kept as a link
                if url not in body:
                    links.append(url)
                meta.setdefault("shares", []).append({"type": a.type, "url": url, "title": _title(a)})
        if links:
            body = "\n".join(part for part in (body, *links) if part)
        if m.quick_reply is not None and m.quick_reply.payload:
            meta["quick_reply"] = m.quick_reply.payload
        if not body and not attachments:
            return None  # unsupported content (a GIF on Instagram, a reaction…): nothing to show
        return InboundMessage(
            channel=self.channel,
            account_id=self.account_id,
            external_id=m.mid,
            sender_id=sender,
            body=body,
            kind=kind,
            attachments=tuple(attachments),
            sent_at=at,
            meta=meta,
            in_reply_to=(m.reply_to.mid,) if m.reply_to is not None and m.reply_to.mid else (),
        )

    def _postback(self, item: Messaging, at: dt.datetime | None) -> InboundMessage | None:
        sender = self._customer(item)
        postback = item.postback
        if sender is None or postback is None:
            return None
        body = postback.title or postback.payload or ""
        if not body:
            return None
        # postbacks before Graph v11 carry no mid: the tap's time tells two taps apart
        external_id = postback.mid or f"postback:{sender}:{item.timestamp or 0}"
        return InboundMessage(
            channel=self.channel,
            account_id=self.account_id,
            external_id=external_id,
            sender_id=sender,
            body=body,
            sent_at=at,
            meta={"postback": postback.payload} if postback.payload else {},
        )

    # --- out -----------------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> Sent:
        """Attachments first (each its own Send API call), then the text; the first message id is the
        message's external id, all of them are kept in `meta["mids"]`."""
        bodies: list[dict[str, Any]] = []
        for attachment in message.attachments:
            if not attachment.url:
                raise PermanentJobError(
                    f"{self.channel.value.capitalize()} fetches attachments from a public URL: set the hub's "
                    "public address (SWITCHBOARD_PUBLIC_URL) to send files"
                )
            kind = SEND_TYPES.get(attachment.content_type.split("/", 1)[0], "file")
            bodies.append(
                {"attachment": {"type": kind, "payload": {"url": attachment.url, "is_reusable": False}}}
            )
        if message.body.strip():
            bodies.append({"text": message.body})
        if not bodies:
            raise PermanentJobError("an empty message cannot be sent")
        routing: dict[str, Any] = {"messaging_type": "RESPONSE"}
        if message.template is not None:
            routing = {"messaging_type": "MESSAGE_TAG", "tag": message.template.name}
        mids = [
            await self.client.send_message(
                self._node, {"recipient": {"id": message.recipient_id}, **routing, "message": body}
            )
            for body in bodies
        ]
        return Sent(mids[0], {"mids": mids} if len(mids) > 1 else {})

    async def check(self) -> dict[str, Any]:
        if self.channel is Channel.MESSENGER:
            page = await self.client.node(self.own_id, "id,name")
            return {"page_id": str(page.get("id", self.own_id)), "name": str(page.get("name", ""))}
        account = await self.client.node(self.own_id, "id,username")
        return {"ig_id": str(account.get("id", self.own_id)), "username": str(account.get("username", ""))}

    async def connect(self, webhook_url: str) -> None:
        """Subscribe the page to the app's webhook fields; the callback URL and verify token themselves are
        pasted into the Meta app dashboard by the admin (Meta has no API for a page-level callback)."""
        await self.client.subscribe(self._node, SUBSCRIBED_FIELDS)

    async def disconnect(self) -> None:
        await self.client.unsubscribe(self._node)

    async def fetch_media(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        return await self.client.download(url, max_bytes)

    async def close(self) -> None:
        await self.client.close()


def _time(ms: int | None) -> dt.datetime | None:
    if ms is None or ms <= 0:
        return None
    try:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise BadPayload("a timestamp is out of range") from None


def _title(a: MessageAttachment) -> str:
    return (a.payload.title if a.payload else None) or a.title or ""


def _attachment(kind: MessageKind, url: str) -> Attachment:
    """Meta's webhook says only image / audio / video / file: the type is guessed from the CDN path (the
    download job learns the real one) and the file name is the path's last part."""
    name = posixpath.basename(urlsplit(url).path)
    guessed = mimetypes.guess_type(name)[0] if name else None
    content_type = guessed or DEFAULT_TYPES[kind]
    return Attachment(content_type=content_type, filename=name or kind.value, url=url)
