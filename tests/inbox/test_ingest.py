"""`inbox.ingest`: one conversation per customer across channels, idempotent, nothing lost."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import Channel, DeliveryStatus, DeliveryUpdate, InboundMessage, Sent, VisitSource
from crm_core.models import Contact, ContactIdentity, Lead
from inbox.delivery import Delivery
from inbox.models import Conversation, Message
from inbox.service import Inbox, Viewer
from switchboard.bus import InMemoryBus
from switchboard.errors import Invalid, NotFound
from switchboard.jobs import JobRegistry, Worker
from switchboard.permissions import Role
from tests.conftest import MakeUser


def chat(
    external_id: str, body: str = "Bună ziua", *, sender: str = "visitor-1", **kw: object
) -> InboundMessage:
    return InboundMessage(
        channel=kw.pop("channel", Channel.WEBCHAT),  # type: ignore[arg-type]
        account_id=str(kw.pop("account_id", "site")),
        external_id=external_id,
        sender_id=sender,
        body=body,
        **kw,  # type: ignore[arg-type]
    )


async def _count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def test_the_same_webhook_twice_stores_one_message(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], bus: InMemoryBus
) -> None:
    async with bus.subscribe("inbox.*") as events:
        first = await inbox.ingest(chat("m-1"))
        again = await inbox.ingest(chat("m-1"))
        assert not first.duplicate and again.duplicate and again.message_id == first.message_id
        assert await _count(sessions, Message) == 1
        assert events.pending == 1  # the duplicate publishes nothing


async def test_a_first_message_creates_contact_identity_lead_with_its_source(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession]
) -> None:
    source = VisitSource(
        page_url="https://credit.example/ipoteca", utm_source="facebook", utm_campaign="toamna"
    )
    result = await inbox.ingest(chat("m-1", sender_name="Ion Popescu", source=source))
    assert result.new_contact and result.new_conversation
    async with sessions() as db:
        contact = (await db.scalars(select(Contact))).one()
        lead = (await db.scalars(select(Lead))).one()
    assert (contact.first_name, contact.last_name) == ("Ion", "Popescu")
    assert (
        lead.source_channel == "webchat" and lead.utm_source == "facebook" and lead.utm_campaign == "toamna"
    )


async def test_one_conversation_per_customer_across_channels(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession]
) -> None:
    web = await inbox.ingest(chat("w-1", sender="visitor-9", sender_phone="069 123 456"))
    viber = await inbox.ingest(
        chat("v-1", channel=Channel.VIBER, account_id="bot", sender="viber-abc", sender_phone="+37369123456")
    )
    assert viber.conversation_id == web.conversation_id and not viber.new_contact
    async with sessions() as db:
        assert (await db.scalars(select(Contact))).one().phone == "+37369123456"
        channels = {i.channel for i in await db.scalars(select(ContactIdentity))}
        conversation = await db.get(Conversation, web.conversation_id)
    assert channels == {"webchat", "viber"}
    assert (
        conversation is not None and conversation.last_inbound_channel == "viber" and conversation.unread == 2
    )
    assert await _count(sessions, Lead) == 1  # a returning customer is not a new lead


async def test_a_new_message_reopens_a_resolved_conversation(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    viewer = Viewer(admin.id, Role.ADMIN, None)
    first = await inbox.ingest(chat("m-1"))
    await inbox.set_status(viewer, first.conversation_id, "resolved")
    second = await inbox.ingest(chat("m-2", "Încă o întrebare"))
    assert second.conversation_id == first.conversation_id
    async with sessions() as db:
        conversation = await db.get(Conversation, first.conversation_id)
    assert conversation is not None and conversation.status == "open"


async def test_a_crash_between_storing_and_publishing_loses_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    class DeadBus(InMemoryBus):
        async def publish(self, topic: str, data: object) -> object:  # type: ignore[override]
            raise ConnectionError("the process died here")

    crashed = Inbox(sessions, DeadBus())
    stored = await crashed.ingest(chat("m-1"))  # stored and committed, event lost
    async with sessions() as db:
        assert (await db.get(Message, stored.message_id)).published_at is None  # type: ignore[union-attr]

    restarted_bus = InMemoryBus()
    await restarted_bus.start()
    async with restarted_bus.subscribe("inbox.message") as events:
        assert await Inbox(sessions, restarted_bus).publish_pending() == 1
        event = await events.__anext__()
    assert event.data["message"]["id"] == stored.message_id
    assert await Inbox(sessions, restarted_bus).publish_pending() == 0


async def test_an_agent_reply_goes_out_by_the_customers_last_channel_through_a_job(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    agent = await make_user(Role.AGENT)
    viewer = Viewer(agent.id, Role.AGENT, None)
    got = await inbox.ingest(chat("m-1", sender="visitor-7"))
    sent: list[tuple[str, str]] = []
    delivery = Delivery(inbox)

    async def webchat_sender(out: object) -> Sent:
        sent.append((out.recipient_id, out.body))  # type: ignore[attr-defined]
        return Sent("out-1")

    delivery.add_sender(Channel.WEBCHAT, webchat_sender)
    registry = JobRegistry()
    delivery.register(registry)
    reply = await inbox.send(viewer, got.conversation_id, "Vă sunăm imediat")
    assert reply.status == "queued"
    assert await Worker(sessions, registry).run_once() == 1
    assert sent == [("visitor-7", "Vă sunăm imediat")]
    async with sessions() as db:
        stored = await db.get(Message, reply.id)
        conversation = await db.get(Conversation, got.conversation_id)
    assert stored is not None and stored.status == "sent" and stored.external_id == "out-1"
    assert (
        conversation is not None
        and conversation.assignee_id == agent.id
        and conversation.waiting_since is None
    )
    assert await inbox.update_delivery(DeliveryUpdate(Channel.WEBCHAT, "site", "out-1", DeliveryStatus.READ))
    assert not await inbox.update_delivery(
        DeliveryUpdate(Channel.WEBCHAT, "site", "out-1", DeliveryStatus.SENT)
    )


async def test_a_private_note_never_becomes_a_delivery_job(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    agent = await make_user(Role.AGENT)
    got = await inbox.ingest(chat("m-1"))
    note = await inbox.send(
        Viewer(agent.id, Role.AGENT, None), got.conversation_id, "@ana sună-l mâine", note=True
    )
    assert note.kind == "note"
    from switchboard.jobs_model import Job

    assert await _count(sessions, Job) == 0


async def test_a_channel_without_an_adapter_marks_the_message_failed(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    agent = await make_user(Role.AGENT)
    got = await inbox.ingest(chat("m-1", channel=Channel.TELEGRAM, account_id="bot"))
    reply = await inbox.send(Viewer(agent.id, Role.AGENT, None), got.conversation_id, "Salut")
    registry = JobRegistry()
    Delivery(inbox).register(registry)
    await Worker(sessions, registry).run_once()
    async with sessions() as db:
        stored = await db.get(Message, reply.id)
    assert stored is not None and stored.status == "failed" and "no adapter" in (stored.error or "")


async def test_visibility_agent_own_and_branch_unassigned_supervisor_branch_admin_all(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    north = await make_user(Role.AGENT, branch="Bălți")
    south = await make_user(Role.AGENT, branch="Cahul")
    boss = await make_user(Role.SUPERVISOR, branch="Bălți")
    admin = await make_user(Role.ADMIN, branch="Cahul")
    async with sessions() as db:
        from switchboard.accounts_model import User

        branch = {u.id: u.branch_id for u in await db.scalars(select(User))}
    a = await inbox.ingest(chat("a", sender="s-a"))
    b = await inbox.ingest(chat("b", sender="s-b"))
    async with sessions() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id == a.conversation_id)
            .values(branch_id=branch[north.id])
        )
        await db.execute(
            update(Conversation)
            .where(Conversation.id == b.conversation_id)
            .values(branch_id=branch[south.id])
        )

    def viewer(p: object, role: Role) -> Viewer:
        return Viewer(p.id, role, branch[p.id])  # type: ignore[attr-defined]

    seen = {
        name: {c["id"] for c in await inbox.conversations(viewer(p, r))}
        for name, p, r in (
            ("north", north, Role.AGENT),
            ("south", south, Role.AGENT),
            ("boss", boss, Role.SUPERVISOR),
            ("admin", admin, Role.ADMIN),
        )
    }
    assert seen == {
        "north": {a.conversation_id},
        "south": {b.conversation_id},
        "boss": {a.conversation_id},
        "admin": {a.conversation_id, b.conversation_id},
    }
    with pytest.raises(NotFound):
        await inbox.thread(viewer(north, Role.AGENT), b.conversation_id)
    await inbox.assign(viewer(admin, Role.ADMIN), b.conversation_id, north.id)
    assert b.conversation_id in {c["id"] for c in await inbox.conversations(viewer(north, Role.AGENT))}
    assert b.conversation_id not in {c["id"] for c in await inbox.conversations(viewer(south, Role.AGENT))}


async def test_bad_inbound_events_are_refused(inbox: Inbox) -> None:
    for event in (chat(""), chat("x", sender=""), chat("x", "y" * 20_000)):
        with pytest.raises(Invalid):
            await inbox.ingest(event)
