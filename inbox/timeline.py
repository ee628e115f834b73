"""The inbox's part of a contact's timeline: their messages and notes, and their phone calls, newest first.

A public reader for the contact page (webui composes it with crm_core's tasks and field changes); call
items in a conversation are left out here because the `calls` row says more about the same call."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.model import MessageKind
from inbox.calls_model import Call
from inbox.models import Conversation, Message

MAX_BODY = 300


@dataclass(frozen=True)
class InboxEntry:
    at: dt.datetime
    kind: str  # "message", "note" or "call"
    ref_id: int  # the message's or the call's id
    body: str
    direction: str | None  # "in" / "out"
    channel: str | None
    conversation_id: int | None
    result: str | None = None  # a call's: answered, missed, busy, unreachable
    talk_seconds: float = 0.0


async def contact_entries(session: AsyncSession, contact_id: int, *, limit: int) -> list[InboxEntry]:
    """The contact's newest `limit` messages (notes included, system lines and call items left out) and
    newest `limit` calls, merged newest first and cut to `limit`."""
    messages = await session.execute(
        select(Message, Conversation.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.contact_id == contact_id,
            Message.kind.not_in((MessageKind.CALL.value, MessageKind.SYSTEM.value)),
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    )
    entries = [
        InboxEntry(
            at=m.created_at,
            kind="note" if m.kind == MessageKind.NOTE.value else "message",
            ref_id=m.id,
            body=(m.body or ", ".join(a.get("name", "") for a in m.attachments) or m.kind)[:MAX_BODY],
            direction=m.direction,
            channel=m.channel,
            conversation_id=conversation_id,
        )
        for m, conversation_id in messages
    ]
    calls = await session.scalars(
        select(Call)
        .where(Call.contact_id == contact_id)
        .order_by(Call.started_at.desc(), Call.id.desc())
        .limit(limit)
    )
    entries += [
        InboxEntry(
            at=c.started_at,
            kind="call",
            ref_id=c.id,
            body=c.customer_number or c.customer_number_raw or "",
            direction=c.direction,
            channel="phone",
            conversation_id=c.conversation_id,
            result=c.result,
            talk_seconds=c.talk_seconds or 0.0,
        )
        for c in calls
    ]
    entries.sort(key=lambda e: (e.at, e.ref_id), reverse=True)
    return entries[:limit]
