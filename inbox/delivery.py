"""The job that hands an outgoing message to its channel adapter and records the provider's answer.

Adapters are plain async callables registered by the composition root (the inbox never imports a
provider's SDK): `send(OutboundMessage) -> provider message id`. A `PermanentJobError` from an adapter
(a provider 4xx that cannot succeed) marks the message failed with the reason; anything else is retried
by the jobs worker with backoff, and the message is marked failed only when the job dies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy import select

from channels.model import (
    Attachment,
    Channel,
    DeliveryStatus,
    MessageKind,
    OutboundMessage,
    Sent,
)
from inbox.models import Conversation, Message
from inbox.service import SEND_JOB, Inbox, event_payload, template_of
from switchboard.db import utcnow
from switchboard.jobs import JobContext, JobRegistry, PermanentJobError

Sender = Callable[[OutboundMessage], Awaitable[Sent]]


class Delivery:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.senders: dict[Channel, Sender] = {}

    def register(self, registry: JobRegistry) -> None:
        registry.add(SEND_JOB, self.run)

    def add_sender(self, channel: Channel, sender: Sender) -> None:
        self.senders[channel] = sender

    async def run(self, context: JobContext, payload: dict[str, Any]) -> None:
        message_id = int(payload["message_id"])
        async with self.inbox.sessions() as session:
            message = await session.scalar(select(Message).where(Message.id == message_id))
        if message is None or message.status not in ("queued", "failed") or message.kind == MessageKind.NOTE:
            return  # already sent by an earlier attempt, or nothing to send
        channel = Channel(message.channel or "")
        sender = self.senders.get(channel)
        try:
            if sender is None:
                raise PermanentJobError(f"no adapter is connected for {channel.value}")
            outbound = OutboundMessage(
                message_id=message.id,
                channel=channel,
                account_id=message.account_id or "",
                recipient_id=str(payload["recipient_id"]),
                body=message.body,
                kind=MessageKind(message.kind),
                attachments=tuple(_attachment(a) for a in message.attachments or []),
                template=template_of(message.meta or {}),
                reply_to=await self._reply_to(message) if channel is Channel.EMAIL else {},
            )
            sent = await sender(outbound)
        except PermanentJobError as exc:
            await self._record(message_id, DeliveryStatus.FAILED, None, str(exc))
            raise
        except Exception as exc:
            if context.attempt >= context.max_attempts:
                await self._record(message_id, DeliveryStatus.FAILED, None, f"gave up: {exc}")
            raise
        await self._record(message_id, DeliveryStatus.SENT, sent.external_id, None, sent.meta)

    async def _reply_to(self, message: Message) -> dict[str, Any]:
        """The details of the customer's latest message on this channel account (an e-mail's subject and
        Message-ID), so that the reply threads under it in their mail program."""
        async with self.inbox.sessions() as session:
            contact_id = select(Conversation.contact_id).where(Conversation.id == message.conversation_id)
            meta = await session.scalar(
                select(Message.meta)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(
                    Conversation.contact_id == contact_id.scalar_subquery(),
                    Message.direction == "in",
                    Message.channel == message.channel,
                    Message.account_id == message.account_id,
                )
                .order_by(Message.id.desc())
                .limit(1)
            )
        return dict(meta or {})

    async def _record(
        self,
        message_id: int,
        status: DeliveryStatus,
        external_id: str | None,
        error: str | None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        async with self.inbox.sessions() as session, session.begin():
            message = await session.get(Message, message_id)
            if message is None:
                return
            message.status = status.value
            message.error = error[:2000] if error else None
            if external_id:
                message.external_id = external_id
                message.sent_at = utcnow()
            if meta:
                message.meta = {**(message.meta or {}), **meta}
            conversation = await session.get(Conversation, message.conversation_id)
            assert conversation is not None
            payload = event_payload(message, conversation)
        await self.inbox.bus.publish("inbox.status", payload)


def _attachment(data: dict[str, Any]) -> Attachment:
    """A stored attachment (see `inbox.service.attachment_of`) as the channel model's `Attachment`."""
    size = data.get("size")
    return Attachment(
        content_type=str(data.get("content_type") or "application/octet-stream"),
        filename=str(data.get("filename") or ""),
        size=size if isinstance(size, int) else None,
        url=data.get("url") if isinstance(data.get("url"), str) else None,
        stored_path=data.get("stored_path") if isinstance(data.get("stored_path"), str) else None,
    )
