"""WhatsApp and SMS through Twilio: one adapter class, one instance per account, `channel` set per account.

- verify: `X-Twilio-Signature` with the SDK's `RequestValidator` over the URL Twilio called and the form
  parameters; then the form's `AccountSid` must be this account's (a webhook for another account is 403).
- parse: an incoming message (sender = the phone in E.164 without `whatsapp:`, also given as the sender's
  phone so that the same person on WhatsApp, SMS and calls is one contact; media stay at Twilio as
  attachments with their `MediaUrl`, fetched later through `fetch_media`), an SMS opt-out / opt-in keyword
  (also a `ConsentUpdate`), or a status callback of one of our messages (`DeliveryUpdate`).
- send: text, media by public URL, or a WhatsApp template (Content SID + variables); each SMS reports its
  segments. Status callbacks come back to the account's webhook address (`status_callback`).
- Twilio gets an empty TwiML answer, so that it sends no reply of its own.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from multidict import MultiDict
from twilio.request_validator import (  # type: ignore[import-untyped]
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from channels.base import BadPayload, ChannelAdapter, Event, WebhookRejected, WebhookReply, WebhookRequest
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
    TemplateRef,
)
from channels.twilio import optout
from channels.twilio.client import TwilioClient
from channels.twilio.schema import WHATSAPP_PREFIX, Incoming, StatusCallback, parse_form
from channels.twilio.segments import segments, transliterate
from channels.twilio.templates import CONTENT_SID, WhatsAppTemplate
from switchboard.jobs import PermanentJobError

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
CHANNELS = (Channel.WHATSAPP, Channel.SMS)
STATUSES = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
# what the common delivery errors mean, for callbacks that carry only the code
ERRORS = {
    "21610": "the recipient replied STOP and is unsubscribed",
    "30003": "Unreachable destination handset",
    "30004": "Message blocked",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered by the carrier",
    "30008": "Unknown error",
    "63003": "the number is not on WhatsApp",
    "63016": "outside the 24-hour WhatsApp window: only an approved template can be sent",
    "63024": "invalid message recipient",
}
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/amr": ".amr",
    "audio/mp4": ".m4a",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "application/pdf": ".pdf",
    "text/vcard": ".vcf",
    "text/x-vcard": ".vcf",
}


class TwilioAdapter(ChannelAdapter):
    reply = WebhookReply(EMPTY_TWIML, "text/xml")

    def __init__(
        self,
        account_id: str,
        channel: Channel,
        *,
        auth_token: str,
        phone: str,
        client: TwilioClient,
        status_callback: str | None = None,
        templates: tuple[WhatsAppTemplate, ...] = (),
        plain_sms: bool = False,
    ) -> None:
        if channel not in CHANNELS:
            raise ValueError(f"Twilio serves WhatsApp and SMS, not {channel}")
        super().__init__(account_id)
        self.channel = channel
        self.client = client
        self.phone = phone
        self.status_callback = status_callback
        self.templates = templates
        self.plain_sms = plain_sms  # SMS sent without Romanian diacritics: GSM-7, 160 characters a part
        self._validator = RequestValidator(auth_token)

    def __repr__(self) -> str:
        return f"TwilioAdapter({self.channel.value!r}, account_id={self.account_id!r})"

    @property
    def whatsapp(self) -> bool:
        return self.channel is Channel.WHATSAPP

    # --- in ------------------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise WebhookRejected(401, f"the {SIGNATURE_HEADER} header is missing")
        params = _signed_params(request.body)
        algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
        if not self._validator.validate(request.url, params, signature, algorithm):
            raise WebhookRejected(403, f"the {SIGNATURE_HEADER} header is wrong")
        account = params.get("AccountSid")
        if account and account != self.client.account_sid:
            raise WebhookRejected(403, "this webhook is for another Twilio account")

    def parse(self, request: WebhookRequest) -> list[Event]:
        parsed = parse_form(request.form())
        if isinstance(parsed, StatusCallback):
            update = self._delivery(parsed)
            return [update] if update is not None else []
        return self._incoming(parsed)

    def _delivery(self, callback: StatusCallback) -> DeliveryUpdate | None:
        status = STATUSES.get(callback.status)
        if status is None:
            return None  # a status Twilio may add later: nothing to show yet
        reason = None
        if status is DeliveryStatus.FAILED:
            reason = _reason(callback)
        return DeliveryUpdate(self.channel, self.account_id, callback.message_sid, status, reason)

    def _incoming(self, form: Incoming) -> list[Event]:
        if form.whatsapp != self.whatsapp:
            came = "WhatsApp" if form.whatsapp else "SMS"
            raise BadPayload(f"From is a {came} address, and this is a {self.channel.value} account")
        kind, body = MessageKind.TEXT, form.body
        attachments: tuple[Attachment, ...] = ()
        meta: dict[str, Any] = {}
        if form.media:
            kind = _kind_of(form.media[0].content_type)
            attachments = tuple(
                Attachment(m.content_type, _filename(form.message_sid, n, m.content_type), url=m.url)
                for n, m in enumerate(form.media)
            )
        elif form.latitude is not None and form.longitude is not None:
            kind = MessageKind.LOCATION
            body = f"{form.latitude},{form.longitude}"
            meta = {k: v for k, v in (("address", form.address), ("label", form.label)) if v}
        elif not body.strip():
            return []  # nothing a person wrote (a reaction, an unsupported type): acknowledged, not stored
        events: list[Event] = [
            InboundMessage(
                channel=self.channel,
                account_id=self.account_id,
                external_id=form.message_sid,
                sender_id=form.sender,
                body=body,
                kind=kind,
                sender_name=form.profile_name,
                sender_phone=form.sender if form.sender.startswith("+") else None,
                attachments=attachments,
                meta=meta,
                in_reply_to=(form.replied_to,) if form.replied_to else (),
            )
        ]
        consent = optout.consent_of(form.body, form.opt_out_type, keywords=not self.whatsapp)
        if consent is not None:
            events.append(
                ConsentUpdate(self.channel, self.account_id, form.sender, consent, form.profile_name)
            )
        return events

    # --- out -----------------------------------------------------------------------------------------

    def address(self, phone: str) -> str:
        """A phone as Twilio addresses it on this channel (`whatsapp:+373…` on WhatsApp)."""
        phone = phone.strip()
        if self.whatsapp and not phone.lower().startswith(WHATSAPP_PREFIX):
            return WHATSAPP_PREFIX + phone
        return phone

    async def send(self, message: OutboundMessage) -> Sent:
        to, from_ = self.address(message.recipient_id), self.address(self.phone)
        if message.template is not None:
            return await self._send_template(to, from_, message.template)
        media = [_public_url(a) for a in message.attachments]
        body = message.body.strip()
        if not body and not media:
            raise PermanentJobError("an empty message cannot be sent")
        if self.whatsapp:
            # WhatsApp takes one media file a message: the text goes with the first, as its caption
            first = await self.client.send(
                to=to, from_=from_, body=body, media_urls=media[:1], status_callback=self.status_callback
            )
            for url in media[1:]:
                await self.client.send(
                    to=to, from_=from_, media_urls=[url], status_callback=self.status_callback
                )
            return Sent(first.sid)
        text = transliterate(body) if self.plain_sms else body
        sent = await self.client.send(
            to=to, from_=from_, body=text, media_urls=media, status_callback=self.status_callback
        )
        info = segments(text)
        meta: dict[str, Any] = {"segments": info.parts, "encoding": info.encoding}
        if text != body:
            meta["transliterated"] = True
        return Sent(sent.sid, meta)

    async def _send_template(self, to: str, from_: str, template: TemplateRef) -> Sent:
        if not self.whatsapp:
            raise PermanentJobError("templates are a WhatsApp feature")
        sid = self.content_sid(template.name)
        sent = await self.client.send(
            to=to,
            from_=from_,
            content_sid=sid,
            content_variables=json.dumps(dict(template.variables), ensure_ascii=False),
            status_callback=self.status_callback,
        )
        return Sent(sent.sid, {"content_sid": sid})

    def content_sid(self, name: str) -> str:
        """The template's Content SID: the name itself when it is one, else the account's template of
        that name."""
        if CONTENT_SID.fullmatch(name):
            return name
        for template in self.templates:
            if template.name.casefold() == name.casefold():
                return template.content_sid
        raise PermanentJobError(f"this WhatsApp account has no template named {name!r}")

    # --- the account ---------------------------------------------------------------------------------

    async def check(self) -> dict[str, Any]:
        account = await self.client.account()
        if account.status and account.status != "active":
            raise PermanentJobError(f"the Twilio account is {account.status}")
        return {"account_sid": account.sid, "friendly_name": account.friendly_name, "phone": self.phone}

    async def connect(self, webhook_url: str) -> None:
        """SMS: point the number's incoming-message webhook at the hub (the IncomingPhoneNumber API).
        A WhatsApp sender's webhook has no such API: the admin pastes the address in the Twilio console.
        Either way, our own messages ask for status callbacks at this address from now on."""
        self.status_callback = webhook_url
        if self.whatsapp:
            return
        number = await self.client.find_number(self.phone)
        if number is None:
            raise PermanentJobError(f"{self.phone} is not a phone number of this Twilio account")
        await self.client.set_sms_url(number.sid, webhook_url)

    async def disconnect(self) -> None:
        """SMS: clear the number's webhook, if it still points at this account's address."""
        if self.whatsapp:
            return
        number = await self.client.find_number(self.phone)
        if number is not None and number.sms_url.rstrip("/").endswith(f"/webhooks/sms/{self.account_id}"):
            await self.client.set_sms_url(number.sid, "")

    async def fetch_media(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        return await self.client.download(url, max_bytes)

    async def close(self) -> None:
        await self.client.close()


def _signed_params(body: bytes) -> MultiDict[str]:
    """The form as Twilio signed it: every value of every parameter. Lenient on purpose — a body that is
    not a valid form is refused by `parse` with a reason, after its signature was checked."""
    text = body.decode("utf-8", errors="replace")
    return MultiDict(parse_qsl(text, keep_blank_values=True))


def _reason(callback: StatusCallback) -> str:
    code = callback.error_code
    text = callback.error_message or ERRORS.get(code or "", "")
    if code and text:
        return f"Twilio {code}: {text}"
    if code:
        return f"Twilio error {code}"
    return text or f"Twilio: {callback.status}"


def _kind_of(content_type: str) -> MessageKind:
    major = content_type.split("/", 1)[0]
    return {"image": MessageKind.IMAGE, "audio": MessageKind.AUDIO, "video": MessageKind.VIDEO}.get(
        major, MessageKind.FILE
    )


def _filename(message_sid: str, n: int, content_type: str) -> str:
    return f"{message_sid}-{n}{_EXTENSIONS.get(content_type, '')}"


def _public_url(attachment: Attachment) -> str:
    url = attachment.url or ""
    if not url.startswith(("https://", "http://")):
        raise PermanentJobError(
            "Twilio fetches files by their public address and this one has none: "
            "set the hub's public URL (SWITCHBOARD_PUBLIC_URL)"
        )
    return url
