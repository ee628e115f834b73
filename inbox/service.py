"""The inbox's front door: `ingest()` for everything that comes in, `send()` for everything that goes out,
and the queries and actions of the agent workspace.

Every use case is one transaction. Bus events go out after the commit; a message whose event did not go
out (the process died in between) keeps `published_at` NULL and is published by `publish_pending()` at the
next start, so a crash between storing and publishing loses nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Text,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from channels import windows
from channels.model import (
    Attachment,
    Channel,
    ConsentUpdate,
    DeliveryStatus,
    DeliveryUpdate,
    InboundMessage,
    MessageKind,
    TemplateRef,
    WatermarkUpdate,
)
from crm_core import contacts, leads, scoring
from crm_core.models import Contact, ContactIdentity
from inbox import labels as label_rules
from inbox import notifications
from inbox.models import OPEN_STATUSES, Conversation, Message
from router.model import RoutingRequest
from switchboard import jobs
from switchboard.bus import EventBus
from switchboard.db import cast_table, insert_ignoring_duplicates, utcnow
from switchboard.errors import N_, Invalid, NotFound
from switchboard.files import StoredFile
from switchboard.files import valid_id as valid_file_id
from switchboard.permissions import Role

if TYPE_CHECKING:
    from router.engine import Router

log = logging.getLogger(__name__)

SEND_JOB = "inbox.deliver"
MEDIA_JOB = "inbox.fetch_media"
ROUTE_JOB = "inbox.route"
MARK_DELAY = 0.05
MAX_BODY = 10_000
_STATUS_ORDER = {"queued": 0, "sent": 1, "delivered": 2, "read": 3}


@dataclass(frozen=True)
class Viewer:
    """Who is looking: decides which conversations they may see (pages, API and live feed alike)."""

    user_id: int
    role: Role
    branch_id: int | None

    def can_see(self, conversation: dict[str, Any]) -> bool:
        """The same rule as `visible_to()`, for a conversation in a bus event (the live feed)."""
        if self.role is Role.ADMIN:
            return True
        branch = conversation.get("branch_id")
        in_branch = branch is None or branch == self.branch_id
        if self.role is Role.SUPERVISOR:
            return in_branch
        if self.role is Role.AGENT:
            assignee = conversation.get("assignee_id")
            return assignee == self.user_id or (assignee is None and in_branch)
        return False


@dataclass(frozen=True)
class MessageView:
    id: int
    conversation_id: int
    direction: str
    kind: str
    body: str
    channel: str | None
    status: str
    error: str | None
    author_user_id: int | None
    created_at: dt.datetime
    attachments: list[dict[str, Any]]
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data


@dataclass(frozen=True)
class IngestResult:
    conversation_id: int
    message_id: int
    duplicate: bool
    new_contact: bool
    new_conversation: bool


@dataclass(frozen=True)
class CallConversation:
    """The customer behind an inbound call and the conversation the call belongs to."""

    contact_id: int
    conversation_id: int
    branch_id: int | None
    owner_id: int | None
    new_contact: bool
    new_conversation: bool


def message_view(m: Message) -> MessageView:
    return MessageView(
        id=m.id,
        conversation_id=m.conversation_id,
        direction=m.direction,
        kind=m.kind,
        body=m.body,
        channel=m.channel,
        status=m.status,
        error=m.error,
        author_user_id=m.author_user_id,
        created_at=m.created_at,
        attachments=list(m.attachments or []),
        meta=dict(m.meta or {}),
    )


def conversation_event(conversation: Conversation) -> dict[str, Any]:
    """An `inbox.conversation` event's conversation: what the live feed needs to move it between lists."""
    return {
        "id": conversation.id,
        "status": conversation.status,
        "assignee_id": conversation.assignee_id,
        "branch_id": conversation.branch_id,
    }


def event_payload(message: Message, conversation: Conversation) -> dict[str, Any]:
    """The bus event for a stored message: enough for the live feed to filter by visibility and render."""
    return {
        "message": message_view(message).as_json(),
        "conversation": {
            "id": conversation.id,
            "contact_id": conversation.contact_id,
            "status": conversation.status,
            "assignee_id": conversation.assignee_id,
            "branch_id": conversation.branch_id,
            "unread": conversation.unread,
            "last_inbound_channel": conversation.last_inbound_channel,
        },
    }


_MESSAGES = cast_table(Message)
_CONVERSATIONS = cast_table(Conversation)
_EVENT_COLUMNS = tuple(
    _CONVERSATIONS.c[name]
    for name in ("id", "contact_id", "status", "assignee_id", "branch_id", "unread", "last_inbound_channel")
)
# the customer's unresolved conversation if there is one (at most one: a partial unique index), else the
# latest: reopening an older one next to an open one would break that index
_CUSTOMERS_THREAD = (
    select(_CONVERSATIONS.c.id)
    .where(_CONVERSATIONS.c.contact_id == bindparam("b_contact_id"))
    .order_by(case((_CONVERSATIONS.c.status == "resolved", 1), else_=0), _CONVERSATIONS.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
# Built once with bound parameters: statements built with inline values cost more CPU than they take to
# run, and these run for every inbound message.
# an agent had answered everything (nothing was waiting): this message is the customer's reply
_REPLIED = "_replied"
_WAS_ANSWERED = _CONVERSATIONS.c.waiting_since == bindparam("now", type_=_CONVERSATIONS.c.waiting_since.type)
_TOUCH_CONVERSATION = (
    update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id == _CUSTOMERS_THREAD)
    .values(
        last_inbound_channel=bindparam("channel"),
        last_inbound_account=bindparam("account"),
        last_activity_at=bindparam("now", type_=_CONVERSATIONS.c.last_activity_at.type),
        unread=_CONVERSATIONS.c.unread + 1,
        waiting_since=func.coalesce(
            _CONVERSATIONS.c.waiting_since, bindparam("now", type_=_CONVERSATIONS.c.waiting_since.type)
        ),
        status="open",
        snoozed_until=None,
    )
    .returning(*_EVENT_COLUMNS, _WAS_ANSWERED.label(_REPLIED))
)
_OPEN_CONVERSATION = insert(_CONVERSATIONS).returning(*_EVENT_COLUMNS)
# a call reopens the customer's thread like a message does, but counts nothing unread and keeps the channel
# replies go to: the call's own item (written when it ends) does that
_REOPEN_FOR_CALL = (
    update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id == _CUSTOMERS_THREAD)
    .values(
        last_activity_at=bindparam("now", type_=_CONVERSATIONS.c.last_activity_at.type),
        status="open",
        snoozed_until=None,
    )
    .returning(*_EVENT_COLUMNS)
)


class _Duplicate(Exception):
    """Raised inside `ingest` to roll back the transaction of a webhook we already stored."""


class Inbox:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], bus: EventBus, *, region: str = "MD"
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        self.region = region
        # set by the composition root: new conversations are then routed (an `inbox.route` job) instead of
        # going straight to the customer's responsible expert, and the router hears of replies and closings
        self.router: Router | None = None
        self._to_mark: list[int] = []
        self._marker: asyncio.Task[None] | None = None

    # --- in ------------------------------------------------------------------------------------------

    async def ingest(self, event: InboundMessage) -> IngestResult:
        """Store an inbound message (idempotent on channel account + external id), then publish it.

        The hot path of every channel, so it is written in Core statements: five round trips for a known
        customer (find the contact, bump the conversation, insert the message, begin/commit), eight for a
        new one. A repeated webhook is caught by the unique key itself (`ON CONFLICT DO NOTHING`), so the
        common case pays no look-up for it, and the duplicate's transaction is rolled back whole.
        """
        _check_inbound(event)
        try:
            async with self.sessions() as session, session.begin():
                thread_contact = await self._thread_contact(session, event) if event.in_reply_to else None
                resolved = await contacts.resolve_contact(
                    session,
                    channel=event.channel.value,
                    account_id=event.account_id,
                    external_id=event.sender_id,
                    name=event.sender_name,
                    phone=event.sender_phone,
                    source=event.source,
                    region=self.region,
                    language=event.language,
                    contact_id=thread_contact,
                )
                now = utcnow()
                conversation, opened = await self._touch_conversation(session, resolved, event, now)
                if conversation.pop(_REPLIED, False):
                    await scoring.note_engagement(session, resolved.contact_id, scoring.Engagement.REPLY)
                values = {
                    "conversation_id": conversation["id"],
                    "direction": "in",
                    "kind": event.kind.value,
                    "body": event.body,
                    "attachments": [inbound_attachment(a) for a in event.attachments],
                    "author_contact_id": resolved.contact_id,
                    "channel": event.channel.value,
                    "account_id": event.account_id,
                    "external_id": event.external_id,
                    "status": "delivered",
                    "created_at": now,
                    "sent_at": event.sent_at or now,
                    "meta": dict(event.meta),
                }
                inserted = await session.execute(insert_ignoring_duplicates(session, _MESSAGES, "id"), values)
                message_id = inserted.scalar_one_or_none()
                if message_id is None:
                    raise _Duplicate
                if any(a.url and not a.stored_path for a in event.attachments):
                    await jobs.enqueue(session, MEDIA_JOB, {"message_id": message_id})
                if opened and self.router is not None:
                    await jobs.enqueue(session, ROUTE_JOB, {"conversation_id": conversation["id"]})
        except _Duplicate:
            async with self.sessions() as session:
                duplicate = await _find_inbound(session, event)
            assert duplicate is not None
            return duplicate
        message = message_view(Message(id=message_id, **values)).as_json()
        await self._publish("inbox.message", {"message": message, "conversation": conversation}, [message_id])
        return IngestResult(conversation["id"], message_id, False, resolved.created, opened)

    async def _thread_contact(self, session: AsyncSession, event: InboundMessage) -> int | None:
        """The customer of the conversation holding one of our messages this one answers (e-mail
        In-Reply-To / References): a reply from an address we do not know yet joins that customer."""
        return await session.scalar(
            select(Conversation.contact_id)
            .join(Message, Message.conversation_id == Conversation.id)
            .where(
                Message.channel == event.channel.value,
                Message.account_id == event.account_id,
                Message.direction == "out",
                Message.external_id.in_(event.in_reply_to[:20]),
            )
            .limit(1)
        )

    async def _touch_conversation(
        self, session: AsyncSession, resolved: contacts.Resolved, event: InboundMessage, now: dt.datetime
    ) -> tuple[dict[str, Any], bool]:
        """Record the inbound message on the customer's conversation — one thread per customer, so the
        latest one, reopened if resolved or snoozed — or open the first one. Returns the conversation
        as the bus event carries it."""
        params = {
            "b_contact_id": resolved.contact_id,
            "channel": event.channel.value,
            "account": event.account_id,
            "now": now,
        }
        row = None
        if not resolved.created:
            row = (await session.execute(_TOUCH_CONVERSATION, params)).first()
        opened = row is None
        if row is None:
            values: dict[str, Any] = {
                "contact_id": resolved.contact_id,
                "branch_id": resolved.branch_id,
                # with a router, the responsible expert gets it only when free (sticky routing)
                "assignee_id": resolved.owner_id if self.router is None else None,
                "status": "open",
                "labels": [],
                "priority": 0,
                "unread": 1,
                "waiting_since": now,
                "created_at": now,
                "last_activity_at": now,
                "last_inbound_channel": event.channel.value,
                "last_inbound_account": event.account_id,
            }
            row = (await session.execute(_OPEN_CONVERSATION, values)).one()
        return dict(row._mapping), opened

    async def call_conversation(self, *, phone: str, account_id: str, name: str | None) -> CallConversation:
        """An inbound call from `phone` (E.164) on the number `account_id`: the customer, resolved as any
        inbound message is (a new number gets a contact and a lead with source `phone`), and their
        conversation — the unresolved one, else the latest reopened, else a new one. One transaction;
        nothing is counted unread and no chat routing starts: the call is routed as a call."""
        async with self.sessions() as session, session.begin():
            resolved = await contacts.resolve_contact(
                session,
                channel=Channel.PHONE.value,
                account_id=account_id,
                external_id=phone,
                name=name,
                phone=phone,
                region=self.region,
            )
            now = utcnow()
            row = None
            if not resolved.created:
                params = {"b_contact_id": resolved.contact_id, "now": now}
                row = (await session.execute(_REOPEN_FOR_CALL, params)).first()
            opened = row is None
            if row is None:
                values: dict[str, Any] = {
                    "contact_id": resolved.contact_id,
                    "branch_id": resolved.branch_id,
                    "assignee_id": resolved.owner_id if self.router is None else None,
                    "status": "open",
                    "labels": [],
                    "priority": 0,
                    "unread": 0,
                    "created_at": now,
                    "last_activity_at": now,
                    "last_inbound_channel": Channel.PHONE.value,
                    "last_inbound_account": account_id,
                }
                row = (await session.execute(_OPEN_CONVERSATION, values)).one()
            conversation = dict(row._mapping)
        event = {key: conversation[key] for key in ("id", "status", "assignee_id", "branch_id")}
        await self.bus.publish("inbox.conversation", {"conversation": event})
        return CallConversation(
            contact_id=resolved.contact_id,
            conversation_id=conversation["id"],
            branch_id=conversation["branch_id"],
            owner_id=resolved.owner_id,
            new_contact=resolved.created,
            new_conversation=opened,
        )

    async def update_delivery(self, update_: DeliveryUpdate) -> bool:
        """Apply a provider's status callback; statuses only move forward (a late 'sent' after 'read'
        changes nothing), except 'failed', which always records the provider's reason."""
        async with self.sessions() as session, session.begin():
            message = await session.scalar(
                select(Message).where(
                    Message.channel == update_.channel.value,
                    Message.account_id == update_.account_id,
                    Message.external_id == update_.external_id,
                    Message.direction == "out",
                )
            )
            if message is None:
                return False
            at = update_.at or utcnow()
            if update_.status is DeliveryStatus.FAILED:
                message.status, message.error = "failed", (update_.reason or "failed")[:2000]
            elif _STATUS_ORDER.get(update_.status.value, 0) > _STATUS_ORDER.get(message.status, -1):
                message.status = update_.status.value
                if update_.status is DeliveryStatus.DELIVERED:
                    message.delivered_at = at
                elif update_.status is DeliveryStatus.READ:
                    message.read_at = at
            else:
                return False
            conversation = await session.get(Conversation, message.conversation_id)
            assert conversation is not None
            payload = event_payload(message, conversation)
        await self.bus.publish("inbox.status", payload)
        return True

    # --- out -----------------------------------------------------------------------------------------

    async def send(
        self,
        viewer: Viewer,
        conversation_id: int,
        body: str,
        *,
        note: bool = False,
        channel: str | None = None,
        account_id: str | None = None,
        attachments: Sequence[dict[str, Any]] = (),
        template: TemplateRef | None = None,
    ) -> MessageView:
        """Store an agent's reply and the job that delivers it, in one transaction. A private note is
        stored only. The channel is the one the customer last wrote on unless the agent picks another
        identity of the same contact. `attachments` (see `attach()`) may stand in for the body.

        Refused (`Invalid`, field `channel` or `window`) when the customer opted out of the channel, or
        when the channel's customer-service window has closed and no allowed template / message tag is
        given (`channels.windows`): the provider would refuse it anyway, hours later, in a failed tick."""
        body = body.strip()
        if not body and not attachments:
            raise Invalid(N_("Write a message first."), field="body")
        if len(body) > MAX_BODY:
            raise Invalid(N_("The message is too long."), field="body")
        async with self.sessions() as session, session.begin():
            conversation = await self._visible(session, viewer, conversation_id)
            now = utcnow()
            message = Message(
                conversation_id=conversation.id,
                direction="out",
                kind=MessageKind.NOTE.value if note else _kind_of(attachments),
                body=body,
                attachments=[dict(a) for a in attachments],
                author_user_id=viewer.user_id,
                created_at=now,
                status="sent" if note else "queued",
            )
            if not note:
                target_channel, target_account, recipient = await self._route_reply(
                    session, conversation, channel, account_id
                )
                await self._check_reachable(
                    session,
                    conversation.contact_id,
                    (target_channel, target_account, recipient),
                    template,
                    now,
                )
                message.channel, message.account_id = target_channel, target_account
                if template is not None:
                    message.meta = {
                        "template": {"name": template.name, "variables": dict(template.variables)}
                    }
                session.add(message)
                await session.flush()
                await jobs.enqueue(
                    session,
                    SEND_JOB,
                    {"message_id": message.id, "recipient_id": recipient},
                )
                conversation.waiting_since = None
                conversation.unread = 0
                if conversation.first_response_at is None:
                    conversation.first_response_at = now
                    await leads.note_first_response(session, conversation.contact_id, now)
                if conversation.assignee_id is None:
                    conversation.assignee_id = viewer.user_id
            else:
                session.add(message)
                await session.flush()
            mentions = await notifications.notify_mentions(session, conversation, message) if note else []
            conversation.last_activity_at = now
            payload = event_payload(message, conversation)
            view = message_view(message)
        await self._publish("inbox.message", payload, [view.id])
        await notifications.publish(self.bus, mentions)
        if self.router is not None and not note:  # the agent answered: the offer is taken
            await self.router.accept("chat", str(conversation_id), viewer.user_id)
        return view

    async def send_automatic(
        self, conversation_id: int, body: str, purpose: str, *, once: bool = False
    ) -> MessageView | None:
        """A message the hub writes by itself (the off-hours reply) on the customer's last channel; None when
        it cannot go there (opted out, window closed, no identity) — an automatic message is never forced.
        `once`: not again in a conversation that already got one for this purpose (a retried job)."""
        body = body.strip()[:MAX_BODY]
        if not body:
            return None
        async with self.sessions() as session, session.begin():
            conversation = await session.get(Conversation, conversation_id, with_for_update=once)
            if conversation is None:
                return None
            if once and await self._sent_automatic(session, conversation_id, purpose):
                return None
            now = utcnow()
            try:
                target = await self._route_reply(session, conversation, None, None)
                await self._check_reachable(session, conversation.contact_id, target, None, now)
            except Invalid as exc:
                log.info(
                    "automatic %s message for conversation %s not sent: %s", purpose, conversation_id, exc
                )
                return None
            message = Message(
                conversation_id=conversation.id,
                direction="out",
                kind=MessageKind.TEXT.value,
                body=body,
                attachments=[],
                created_at=now,
                status="queued",
                channel=target[0],
                account_id=target[1],
                meta={"automatic": purpose},
            )
            session.add(message)
            await session.flush()
            await jobs.enqueue(session, SEND_JOB, {"message_id": message.id, "recipient_id": target[2]})
            conversation.last_activity_at = now
            payload = event_payload(message, conversation)
            view = message_view(message)
        await self._publish("inbox.message", payload, [view.id])
        return view

    async def _sent_automatic(self, session: AsyncSession, conversation_id: int, purpose: str) -> bool:
        metas = await session.scalars(
            select(Message.meta).where(
                Message.conversation_id == conversation_id,
                Message.direction == "out",
                Message.author_user_id.is_(None),
            )
        )
        return any((meta or {}).get("automatic") == purpose for meta in metas)

    async def retry(self, viewer: Viewer, message_id: int) -> MessageView:
        """Send a failed reply again (the agent's "retry"): back to queued with a new delivery job. The
        same checks as a new reply apply — the customer may have opted out, or the window closed."""
        async with self.sessions() as session, session.begin():
            message = await session.get(Message, message_id, with_for_update=True)
            if message is None or message.direction != "out" or message.kind == MessageKind.NOTE.value:
                raise NotFound(N_("No such message."))
            conversation = await self._visible(session, viewer, message.conversation_id)
            if message.status != DeliveryStatus.FAILED.value:
                raise Invalid(N_("Only a message that failed can be sent again."), field="message")
            recipient = await session.scalar(
                select(ContactIdentity.external_id).where(
                    ContactIdentity.contact_id == conversation.contact_id,
                    ContactIdentity.channel == message.channel,
                    ContactIdentity.account_id == message.account_id,
                )
            )
            if recipient is None or message.channel is None or message.account_id is None:
                raise Invalid(N_("This customer cannot be reached on that channel."), field="channel")
            template = template_of(message.meta or {})
            target = (message.channel, message.account_id, recipient)
            await self._check_reachable(session, conversation.contact_id, target, template, utcnow())
            message.status, message.error = DeliveryStatus.QUEUED.value, None
            await jobs.enqueue(session, SEND_JOB, {"message_id": message.id, "recipient_id": recipient})
            payload = event_payload(message, conversation)
            view = message_view(message)
        await self.bus.publish("inbox.status", payload)
        return view

    async def _check_reachable(
        self,
        session: AsyncSession,
        contact_id: int,
        target: tuple[str, str, str],
        template: TemplateRef | None,
        now: dt.datetime,
    ) -> None:
        channel, account, recipient = target
        if await contacts.unsubscribed(session, channel=channel, account_id=account, external_id=recipient):
            raise Invalid(
                N_("This customer unsubscribed on %(channel)s: nothing can be sent to them there."),
                field="channel",
                channel=channel,
            )
        current = windows.window(
            channel, await self.last_inbound_at(session, contact_id, channel, account), now
        )
        if template is not None and not windows.takes_templates(channel):
            raise Invalid(
                N_("%(channel)s has no templates or message tags."), field="window", channel=channel
            )
        tag_refused = current.verdict is not windows.Verdict.OPEN and channel != Channel.WHATSAPP
        if template is not None and tag_refused and template.name not in current.tags:
            raise Invalid(
                N_("This message tag cannot be used on %(channel)s now."), field="window", channel=channel
            )
        if current.verdict is windows.Verdict.OPEN or template is not None:
            return
        if current.verdict is windows.Verdict.TEMPLATE:
            raise Invalid(
                N_(
                    "The customer last wrote on WhatsApp more than 24 hours ago: "
                    "only an approved template can be sent now."
                ),
                field="window",
            )
        if current.verdict is windows.Verdict.TAG:
            raise Invalid(
                N_(
                    "The 24-hour window on %(channel)s has closed: send the reply with a message tag "
                    "(%(tags)s) or wait for the customer to write."
                ),
                field="window",
                channel=channel,
                tags=", ".join(current.tags),
            )
        raise Invalid(
            N_("The messaging window on %(channel)s has closed: the customer has to write first."),
            field="window",
            channel=channel,
        )

    async def last_inbound_at(
        self, session: AsyncSession, contact_id: int, channel: str, account: str
    ) -> dt.datetime | None:
        """When the customer last wrote on this channel account (any of their conversations)."""
        return await session.scalar(
            select(func.max(Message.created_at))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Conversation.contact_id == contact_id,
                Message.direction == "in",
                Message.channel == channel,
                Message.account_id == account,
            )
        )

    async def reply_window(
        self, viewer: Viewer, conversation_id: int, channel: str | None = None, account_id: str | None = None
    ) -> tuple[str, str, windows.Window, bool]:
        """Where a reply would go now and what may be sent there: (channel, account, window, opted out)."""
        async with self.sessions() as session:
            conversation = await self._visible(session, viewer, conversation_id)
            target_channel, target_account, recipient = await self._route_reply(
                session, conversation, channel, account_id
            )
            last = await self.last_inbound_at(
                session, conversation.contact_id, target_channel, target_account
            )
            opted_out = await contacts.unsubscribed(
                session, channel=target_channel, account_id=target_account, external_id=recipient
            )
        return target_channel, target_account, windows.window(target_channel, last, utcnow()), opted_out

    async def receive(self, event: InboundMessage | DeliveryUpdate | ConsentUpdate | WatermarkUpdate) -> None:
        """Whatever a channel adapter produced: a message, a delivery status or a consent change."""
        if isinstance(event, DeliveryUpdate):
            await self.update_delivery(event)
        elif isinstance(event, WatermarkUpdate):
            await self.update_watermark(event)
        elif isinstance(event, ConsentUpdate):
            await self.update_consent(event)
        else:
            await self.ingest(event)

    async def update_watermark(self, event: WatermarkUpdate) -> int:
        """Move every message we sent this customer on this channel account up to the watermark (by the
        time it was handed to the provider) to `event.status`; returns how many moved."""
        lower = [s for s, rank in _STATUS_ORDER.items() if rank < _STATUS_ORDER[event.status.value]]
        async with self.sessions() as session, session.begin():
            contact_id = (
                select(ContactIdentity.contact_id)
                .where(
                    ContactIdentity.channel == event.channel.value,
                    ContactIdentity.account_id == event.account_id,
                    ContactIdentity.external_id == event.recipient_id,
                )
                .scalar_subquery()
            )
            rows = await session.scalars(
                select(Message)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(
                    Conversation.contact_id == contact_id,
                    Message.direction == "out",
                    Message.channel == event.channel.value,
                    Message.account_id == event.account_id,
                    Message.status.in_(lower),
                    Message.status != "queued",
                    Message.sent_at <= event.up_to,
                )
                .order_by(Message.id)
                .limit(500)
            )
            moved = list(rows)
            payloads = []
            for message in moved:
                message.status = event.status.value
                if event.status is DeliveryStatus.READ:
                    message.read_at = event.up_to
                elif event.status is DeliveryStatus.DELIVERED:
                    message.delivered_at = event.up_to
                conversation = await session.get(Conversation, message.conversation_id)
                assert conversation is not None
                payloads.append(event_payload(message, conversation))
        for payload in payloads:
            await self.bus.publish("inbox.status", payload)
        return len(moved)

    async def update_consent(self, event: ConsentUpdate) -> bool:
        """A customer opted in or out on a channel (Viber subscribed / unsubscribed, SMS STOP / START)."""
        async with self.sessions() as session, session.begin():
            resolved = await contacts.set_consent(
                session,
                channel=event.channel.value,
                account_id=event.account_id,
                external_id=event.sender_id,
                subscribed=event.subscribed,
                at=event.at or utcnow(),
                name=event.sender_name,
                region=self.region,
            )
        if resolved is None:
            return False
        await self.bus.publish(
            "inbox.consent",
            {
                "contact_id": resolved.contact_id,
                "channel": event.channel.value,
                "subscribed": event.subscribed,
            },
        )
        return True

    async def _route_reply(
        self, session: AsyncSession, conversation: Conversation, channel: str | None, account_id: str | None
    ) -> tuple[str, str, str]:
        identities = await contacts.identities_of(session, conversation.contact_id)
        wanted_channel = channel or conversation.last_inbound_channel
        wanted_account = account_id or (conversation.last_inbound_account if not channel else None)
        for identity in reversed(identities):
            if identity.channel == wanted_channel and (
                wanted_account is None or identity.account_id == wanted_account
            ):
                return identity.channel, identity.account_id, identity.external_id
        raise Invalid(N_("This customer cannot be reached on that channel."), field="channel")

    # --- attachments ---------------------------------------------------------------------------------

    async def attach(
        self,
        viewer: Viewer,
        conversation_id: int,
        stored: StoredFile,
        body: str = "",
        note: bool = False,
        *,
        channel: str | None = None,
        account_id: str | None = None,
    ) -> MessageView:
        """Send (or, as a note, keep) a file from the file store, with an optional caption."""
        return await self.send(
            viewer,
            conversation_id,
            body,
            note=note,
            channel=channel,
            account_id=account_id,
            attachments=[attachment_of(stored)],
        )

    async def attachment_for(self, viewer: Viewer, file_id: str) -> dict[str, Any] | None:
        """The attachment with this file id, if the viewer may read the message that carries it: the same
        rule as `thread()`, which shows every message of a customer whose conversation the viewer sees.
        None otherwise, so a caller cannot tell a hidden file from a missing one."""
        if not valid_file_id(file_id):
            return None
        owner = aliased(Conversation)
        visible = (
            select(Conversation.id)
            .where(Conversation.contact_id == owner.contact_id, visible_to(viewer))
            .exists()
        )
        query = (
            select(Message.attachments)
            .join(owner, owner.id == Message.conversation_id)
            .where(cast(Message.attachments, Text).contains(file_id, autoescape=True), visible)
            .limit(20)
        )
        async with self.sessions() as session:
            for attachments in await session.scalars(query):
                for attachment in attachments or []:
                    if isinstance(attachment, dict) and attachment.get("id") == file_id:
                        return dict(attachment)
        return None

    # --- the workspace -------------------------------------------------------------------------------

    async def can_see_contact(self, viewer: Viewer, contact_id: int) -> bool:
        """Whether the viewer may see this customer: admins always, others when at least one of the
        customer's conversations is visible to them (`visible_to`)."""
        if viewer.role is Role.ADMIN:
            return True
        async with self.sessions() as session:
            found = await session.scalar(
                select(Conversation.id)
                .where(Conversation.contact_id == contact_id, visible_to(viewer))
                .limit(1)
            )
        return found is not None

    async def _visible(self, session: AsyncSession, viewer: Viewer, conversation_id: int) -> Conversation:
        conversation = await session.scalar(
            select(Conversation).where(Conversation.id == conversation_id, visible_to(viewer))
        )
        if conversation is None:
            raise NotFound(N_("No such conversation."))
        return conversation

    async def conversations(
        self,
        viewer: Viewer,
        *,
        scope: str = "all",
        status: str | None = "open",
        channel: str | None = None,
        limit: int = 100,
        label: str | None = None,
    ) -> list[dict[str, Any]]:
        """The list pane: waiting longest first, then most recent activity."""
        query = (
            select(Conversation, Contact)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(visible_to(viewer))
        )
        if scope == "mine":
            query = query.where(Conversation.assignee_id == viewer.user_id)
        elif scope == "unassigned":
            query = query.where(Conversation.assignee_id.is_(None))
        if status == "open":
            query = query.where(Conversation.status.in_(OPEN_STATUSES))
        elif status:
            query = query.where(Conversation.status == status)
        if channel:
            query = query.where(Conversation.last_inbound_channel == channel)
        if label:
            query = query.where(label_rules.has_label(label))
        query = query.order_by(
            Conversation.waiting_since.is_(None),
            Conversation.waiting_since,
            Conversation.last_activity_at.desc(),
        ).limit(limit)
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
            last = await self._last_messages(session, [c.id for c, _ in rows])
        return [
            {
                "id": c.id,
                "contact": {"id": k.id, "name": k.display_name, "phone": k.phone},
                "status": c.status,
                "assignee_id": c.assignee_id,
                "branch_id": c.branch_id,
                "unread": c.unread,
                "channel": c.last_inbound_channel,
                "waiting_since": c.waiting_since.isoformat() if c.waiting_since else None,
                "last_activity_at": c.last_activity_at.isoformat(),
                "last_message": last.get(c.id),
                "labels": list(c.labels or []),
            }
            for c, k in rows
        ]

    async def unread_counts(self, viewer: Viewer) -> dict[str, int]:
        """The badges on the list pane's scope tabs: how many open conversations in each scope have
        unread customer messages, so an agent sees work waiting in a tab they are not looking at."""
        waiting = and_(Conversation.unread > 0, Conversation.status.in_(OPEN_STATUSES), visible_to(viewer))
        query = select(
            func.count().filter(Conversation.assignee_id == viewer.user_id),
            func.count().filter(Conversation.assignee_id.is_(None)),
            func.count(),
        ).where(waiting)
        async with self.sessions() as session:
            mine, unassigned, every = (await session.execute(query)).one()
        return {"mine": int(mine), "unassigned": int(unassigned), "all": int(every)}

    async def _last_messages(self, session: AsyncSession, ids: Sequence[int]) -> dict[int, str]:
        if not ids:
            return {}
        latest = (
            select(Message.conversation_id, Message.body)
            .where(Message.conversation_id.in_(ids))
            .order_by(Message.conversation_id, Message.id.desc())
        )
        out: dict[int, str] = {}
        for conversation_id, body in (await session.execute(latest)).all():
            out.setdefault(conversation_id, body[:140])
        return out

    async def thread(self, viewer: Viewer, conversation_id: int, *, mark_read: bool = True) -> dict[str, Any]:
        async with self.sessions() as session, session.begin():
            conversation = await self._visible(session, viewer, conversation_id)
            messages = await session.scalars(
                select(Message)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.contact_id == conversation.contact_id)
                .order_by(Message.id)
            )
            card = await contacts.contact_card(session, conversation.contact_id)
            if mark_read and conversation.unread:
                conversation.unread = 0
            return {
                "conversation": {
                    "id": conversation.id,
                    "status": conversation.status,
                    "assignee_id": conversation.assignee_id,
                    "branch_id": conversation.branch_id,
                    "channel": conversation.last_inbound_channel,
                    "account_id": conversation.last_inbound_account,
                    "labels": list(conversation.labels or []),
                },
                "contact": dataclasses.asdict(card) if card else None,
                "messages": [message_view(m).as_json() for m in messages],
            }

    async def messages_since(self, viewer: Viewer, after_id: int, limit: int = 500) -> list[dict[str, Any]]:
        """Catch-up for a live feed that reconnects: every visible message stored after `after_id`."""
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Message, Conversation)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .where(Message.id > after_id, visible_to(viewer))
                    .order_by(Message.id)
                    .limit(limit)
                )
            ).all()
        return [event_payload(m, c) for m, c in rows]

    async def visitor_messages(
        self,
        channel: Channel,
        account_id: str,
        sender_id: str,
        after_id: int = 0,
        *,
        external_prefix: str | None = None,
        limit: int = 100,
    ) -> list[CustomerMessage]:
        """What a customer may read back (the web chat's history and polling): messages on this channel
        account in the conversations of the contact behind `sender_id`, never private notes. An adapter
        that namespaces provider ids per customer passes `external_prefix`, so a visitor linked to an
        existing contact by an (unverified) phone number sees only their own exchange, not that
        contact's history; an outgoing message counts once its adapter has sent it (it has an id then)."""
        query = (
            select(Message)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(ContactIdentity, ContactIdentity.contact_id == Conversation.contact_id)
            .where(
                ContactIdentity.channel == channel.value,
                ContactIdentity.account_id == account_id,
                ContactIdentity.external_id == sender_id,
                Message.channel == channel.value,
                Message.account_id == account_id,
                Message.kind != MessageKind.NOTE.value,
                Message.id > after_id,
            )
            .order_by(Message.id)
            .limit(limit)
        )
        if external_prefix is not None:
            query = query.where(Message.external_id.startswith(external_prefix, autoescape=True))
        async with self.sessions() as session:
            return [
                CustomerMessage(m.id, m.direction, m.kind, m.body, m.external_id, m.created_at)
                for m in await session.scalars(query)
            ]

    async def conversation_of_identity(
        self, channel: Channel | str, account_id: str, sender_id: str
    ) -> dict[str, Any] | None:
        """The latest conversation of the customer behind this channel identity, as bus events carry it
        (for the visitor's "typing…"); None while the identity has written nothing."""
        channel_value = channel.value if isinstance(channel, Channel) else channel
        query = (
            select(
                Conversation.id,
                Conversation.contact_id,
                Conversation.status,
                Conversation.assignee_id,
                Conversation.branch_id,
            )
            .join(ContactIdentity, ContactIdentity.contact_id == Conversation.contact_id)
            .where(
                ContactIdentity.channel == channel_value,
                ContactIdentity.account_id == account_id,
                ContactIdentity.external_id == sender_id,
            )
            .order_by(Conversation.id.desc())
            .limit(1)
        )
        async with self.sessions() as session:
            row = (await session.execute(query)).first()
        return dict(row._mapping) if row is not None else None

    async def reply_identity(self, viewer: Viewer, conversation_id: int) -> tuple[str, str, str] | None:
        """Where a reply would go by default — (channel, account id, customer's id on it), the identity
        the customer last wrote from — if the viewer may see the conversation; None otherwise, so a caller
        cannot tell a hidden conversation from a missing one."""
        async with self.sessions() as session:
            conversation = await session.scalar(
                select(Conversation).where(Conversation.id == conversation_id, visible_to(viewer))
            )
            if conversation is None or conversation.last_inbound_channel is None:
                return None
            identity = await session.scalar(
                select(ContactIdentity)
                .where(
                    ContactIdentity.contact_id == conversation.contact_id,
                    ContactIdentity.channel == conversation.last_inbound_channel,
                    ContactIdentity.account_id == conversation.last_inbound_account,
                )
                .order_by(ContactIdentity.id.desc())
                .limit(1)
            )
        if identity is None:
            return None
        return identity.channel, identity.account_id, identity.external_id

    async def set_status(
        self, viewer: Viewer, conversation_id: int, status: str, *, snooze_until: dt.datetime | None = None
    ) -> None:
        if status not in ("open", "pending", "snoozed", "resolved"):
            raise Invalid(N_("Unknown status."), field="status")
        if status == "snoozed" and (snooze_until is None or snooze_until <= utcnow()):
            raise Invalid(N_("Snooze until a time in the future."), field="snooze_until")
        async with self.sessions() as session, session.begin():
            conversation = await self._visible(session, viewer, conversation_id)
            if status != "resolved" and conversation.status == "resolved":
                clash = await session.scalar(
                    select(Conversation.id).where(
                        Conversation.contact_id == conversation.contact_id,
                        Conversation.status.in_(OPEN_STATUSES),
                    )
                )
                if clash is not None:
                    raise Invalid(N_("This customer already has an open conversation."), field="status")
            conversation.status = status
            conversation.snoozed_until = snooze_until if status == "snoozed" else None
            conversation.last_activity_at = utcnow()
            data = conversation_event(conversation)
        await self.bus.publish("inbox.conversation", {"conversation": data})
        if self.router is not None and status == "resolved":
            await self.router.release("chat", str(conversation_id))  # frees the agent for the queue

    async def assign(self, viewer: Viewer, conversation_id: int, assignee_id: int | None) -> None:
        async with self.sessions() as session, session.begin():
            conversation = await self._visible(session, viewer, conversation_id)
            conversation.assignee_id = assignee_id
            data = conversation_event(conversation)
            request = RoutingRequest(
                kind="chat",
                item_id=str(conversation.id),
                channel=conversation.last_inbound_channel or Channel.WEBCHAT.value,
                branch_id=conversation.branch_id,
            )
        await self.bus.publish("inbox.conversation", {"conversation": data})
        if (
            self.router is not None
        ):  # the router keeps every agent's load: a manual move is recorded there too
            if assignee_id is None:
                await self.router.release("chat", request.item_id)
            else:
                await self.router.manual_assign(request, assignee_id)

    async def pin(self, viewer: Viewer, conversation_id: int, agent_id: int | None) -> int | None:
        """A supervisor pins the conversation to one agent: it waits for them alone and reaches them as soon
        as they have room (None: back to the normal strategy). Returns who has it now."""
        if self.router is None:
            raise Invalid(N_("Routing is switched off in this hub."), field="agent_id")
        async with self.sessions() as session:
            conversation = await self._visible(session, viewer, conversation_id)
            if conversation.status == "resolved":
                raise Invalid(N_("Reopen the conversation first."), field="agent_id")
            request = RoutingRequest(
                kind="chat",
                item_id=str(conversation.id),
                channel=conversation.last_inbound_channel or Channel.WEBCHAT.value,
                branch_id=conversation.branch_id,
                priority=conversation.priority,
            )
        decision = await self.router.pin(request, agent_id)
        async with self.sessions() as session, session.begin():
            current = await session.get(Conversation, conversation_id, with_for_update=True)
            if current is None:
                return None
            current.assignee_id = decision.agent_id  # None: it waits in the queue for them
            data = conversation_event(current)
        await self.bus.publish("inbox.conversation", {"conversation": data})
        return decision.agent_id

    async def assign_routed(self, conversation_id: int, agent_id: int) -> bool:
        """The router's choice: the conversation goes to `agent_id` unless it was resolved meanwhile."""
        async with self.sessions() as session, session.begin():
            conversation = await session.get(Conversation, conversation_id, with_for_update=True)
            if conversation is None or conversation.status == "resolved":
                return False
            conversation.assignee_id = agent_id
            data = conversation_event(conversation)
        await self.bus.publish("inbox.conversation", {"conversation": data})
        return True

    # --- publishing ----------------------------------------------------------------------------------

    async def _publish(self, topic: str, payload: dict[str, Any], message_ids: list[int]) -> None:
        try:
            await self.bus.publish(topic, payload)
        except Exception:
            log.exception("could not publish %s; it goes out with publish_pending()", topic)
            return
        # Marking `published_at` is batched off the hot path: after a crash, at most the last batch is
        # published twice, which the live feed tolerates (it de-duplicates by message id).
        self._to_mark.extend(message_ids)
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(
                self.flush_marks(delay=MARK_DELAY), name="inbox-mark-published"
            )

    async def flush_marks(self, delay: float = 0.0) -> None:
        """Record as published every message whose event went out. Called directly, it also waits for a
        batch the background marker has already taken and is still writing."""
        if delay:
            await asyncio.sleep(delay)
        elif self._marker is not None and self._marker is not asyncio.current_task():
            await asyncio.wait([self._marker])
        while self._to_mark:
            ids, self._to_mark = self._to_mark[:1000], self._to_mark[1000:]
            try:
                async with self.sessions() as session, session.begin():
                    await session.execute(
                        update(Message).where(Message.id.in_(ids)).values(published_at=utcnow())
                    )
            except Exception:
                log.exception("could not mark %s messages published; they may be published again", len(ids))

    async def close(self) -> None:
        if self._marker is not None:
            await asyncio.wait([self._marker])
        await self.flush_marks()

    async def publish_pending(self, limit: int = 1000) -> int:
        """Publish messages whose bus event never went out (a crash after the commit)."""
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Message, Conversation)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .where(Message.published_at.is_(None))
                    .order_by(Message.id)
                    .limit(limit)
                )
            ).all()
        for message, conversation in rows:
            await self._publish("inbox.message", event_payload(message, conversation), [message.id])
        await self.close()
        return len(rows)


@dataclass(frozen=True)
class CustomerMessage:
    """A message as its customer may see it: no author, no status, no error, never a note."""

    id: int
    direction: str
    kind: str
    body: str
    external_id: str | None
    created_at: dt.datetime


def attachment_of(stored: StoredFile) -> dict[str, Any]:
    """A stored file as a message attachment: the fields of `channels.model.Attachment` plus its id (what
    `/files/{id}` serves), kind and checksum."""
    return {
        "id": stored.id,
        "kind": _kind_of_type(stored.content_type),
        "content_type": stored.content_type,
        "filename": stored.filename,
        "size": stored.size,
        "sha256": stored.sha256,
        "stored_path": stored.path,
        "url": None,
    }


def template_of(meta: Mapping[str, Any]) -> TemplateRef | None:
    """The template or message tag an outgoing message was sent with (kept in its meta)."""
    data = meta.get("template")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    variables = data.get("variables")
    return TemplateRef(data["name"], {str(k): str(v) for k, v in (variables or {}).items()})


def inbound_attachment(attachment: Attachment) -> dict[str, Any]:
    """An inbound attachment as stored: one the adapter already put in the file store gets its file id
    (what `/files/{id}` serves); one still at the provider waits for the media job."""
    data = dataclasses.asdict(attachment)
    data["kind"] = _kind_of_type(attachment.content_type)
    if attachment.stored_path:
        data["id"] = attachment.stored_path.rsplit("/", 1)[-1]
    return data


def _kind_of_type(content_type: str) -> str:
    major = content_type.split("/", 1)[0]
    kinds = {"image": MessageKind.IMAGE, "video": MessageKind.VIDEO, "audio": MessageKind.AUDIO}
    return kinds.get(major, MessageKind.FILE).value


def _kind_of(attachments: Sequence[dict[str, Any]]) -> str:
    if not attachments:
        return MessageKind.TEXT.value
    return _kind_of_type(str(attachments[0].get("content_type", "")))


def visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """Admins see everything; supervisors their branch; agents their own and their branch's unassigned
    conversations. A conversation with no branch belongs to every branch's queue."""
    if viewer.role is Role.ADMIN:
        return true()
    in_branch = or_(Conversation.branch_id.is_(None), Conversation.branch_id == viewer.branch_id)
    if viewer.role is Role.SUPERVISOR:
        return in_branch
    if viewer.role is Role.AGENT:
        return or_(
            Conversation.assignee_id == viewer.user_id,
            and_(Conversation.assignee_id.is_(None), in_branch),
        )
    return false()


async def _find_inbound(session: AsyncSession, event: InboundMessage) -> IngestResult | None:
    found = (
        await session.execute(
            select(Message.id, Message.conversation_id).where(
                Message.channel == event.channel.value,
                Message.account_id == event.account_id,
                Message.external_id == event.external_id,
            )
        )
    ).first()
    if found is None:
        return None
    return IngestResult(found.conversation_id, found.id, True, False, False)


def _check_inbound(event: InboundMessage) -> None:
    if not event.account_id or not event.external_id or not event.sender_id:
        raise Invalid(N_("An inbound message needs an account, a message id and a sender."))
    if max(len(event.account_id), len(event.sender_id)) > 100 or len(event.external_id) > 200:
        raise Invalid(N_("An identifier is too long."))
    if len(event.body) > MAX_BODY:
        raise Invalid(N_("The message is too long."), field="body")
    if not isinstance(event.channel, Channel):
        raise Invalid(N_("Unknown channel."))
