"""`CallRouting.route_call`: the caller resolved like any customer, their one conversation, and the router's
choice of agent turned into the endpoint the dialplan dials."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.asterisk.routing_model import CallRequest
from channels.model import Channel, InboundMessage
from crm_core.models import Contact, ContactIdentity, Lead
from inbox.calls_routing import CallRouting
from inbox.models import Conversation
from inbox.service import Inbox, Viewer
from router.engine import Router
from router.hours import WorkingHours
from router.model import Status
from router.rules import RoutingRule
from router.tables import RoutingItem
from switchboard.bus import InMemoryBus
from switchboard.permissions import Role
from tests.router.conftest import Clock, add_agents, add_branch, call, chat, make_router

Sessions = async_sessionmaker[AsyncSession]
NUMBER = "79161234501"  # as the trunk presents it (the recorded calls): international without "+"
E164 = "+79161234501"
WEEKDAYS = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def ringing(
    linkedid: str = "1795431712.4", caller: str | None = NUMBER, name: str = "Ivan Petrov"
) -> CallRequest:
    return CallRequest(
        linkedid=linkedid,
        uniqueid=linkedid,
        caller=caller or "",
        caller_e164=("+" + caller) if caller else None,
        caller_name=name,
        dialled="74951234567",
        channel="PJSIP/trunk-00000002",
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def router(sessions: Sessions, clock: Clock) -> Router:
    return make_router(sessions, clock)


@pytest.fixture
async def routed_inbox(sessions: Sessions, bus: InMemoryBus, router: Router) -> AsyncIterator[Inbox]:
    inbox = Inbox(sessions, bus)
    inbox.router = router
    yield inbox
    await inbox.close()


@pytest.fixture
def calls(routed_inbox: Inbox, router: Router) -> CallRouting:
    return CallRouting(routed_inbox, router)


async def on_call(router: Router) -> dict[int, bool]:
    return {view.agent_id: view.on_call for view in await router.agents()}


async def test_an_unknown_number_becomes_a_contact_with_a_phone_lead_and_goes_to_the_least_busy(
    calls: CallRouting, router: Router, sessions: Sessions
) -> None:
    a, b = await add_agents(router, sessions, 2, chats_during_call=True, phones=True)
    await router.manual_assign(chat("chat-1"), a)  # a: one chat, b: none
    route = await calls.route_call(ringing())
    assert (route.target, route.reason, route.agent_id) == (f"PJSIP/{b}", "least_busy", b)
    async with sessions() as db:
        contact = (await db.scalars(select(Contact))).one()
        identity = (await db.scalars(select(ContactIdentity))).one()
        lead = (await db.scalars(select(Lead))).one()
        conversation = (await db.scalars(select(Conversation))).one()
    assert (contact.phone, contact.first_name, contact.last_name) == (E164, "Ivan", "Petrov")
    assert (identity.channel, identity.account_id, identity.external_id) == ("phone", "74951234567", E164)
    assert lead.contact_id == contact.id and lead.source_channel == "phone"
    assert (route.contact_id, route.conversation_id) == (contact.id, conversation.id)
    assert conversation.status == "open" and conversation.unread == 0 and conversation.assignee_id is None
    assert (await on_call(router))[b]


async def test_a_known_customer_goes_to_their_responsible_expert_in_their_conversation(
    calls: CallRouting, routed_inbox: Inbox, router: Router, sessions: Sessions
) -> None:
    a, b = await add_agents(router, sessions, 2, phones=True)
    written = await routed_inbox.ingest(
        InboundMessage(Channel.TELEGRAM, "bot", "m-1", "tg-7", "Salut", sender_phone=E164)
    )
    async with sessions() as db, db.begin():
        await db.execute(update(Contact).values(owner_id=b))
    await router.manual_assign(chat("x"), b)  # b was given something last: a is the least busy now
    await router.release("chat", "x")
    assert (await router.dry_run(call("probe"))).agent_id == a  # without the owner: a
    route = await calls.route_call(ringing())
    assert (route.target, route.reason, route.agent_id) == (f"PJSIP/{b}", "sticky", b)
    assert route.conversation_id == written.conversation_id  # one thread per customer
    async with sessions() as db:
        assert len((await db.scalars(select(Contact))).all()) == 1
        assert len((await db.scalars(select(Lead))).all()) == 1  # no second lead for a known customer


async def test_an_agent_already_on_a_call_never_gets_a_second_call(
    calls: CallRouting, router: Router, sessions: Sessions
) -> None:
    (a,) = await add_agents(router, sessions, 1, chats_during_call=True, phones=True)
    first = await calls.route_call(ringing("1795431712.4"))
    second = await calls.route_call(ringing("1795431712.9", caller="37369123456"))
    assert first.target == f"PJSIP/{a}"
    assert (second.target, second.reason, second.agent_id) == ("", "queued", None)
    async with sessions() as db:  # a caller cannot wait in the hub's queue: nothing left queued
        queued = (await db.scalars(select(RoutingItem).where(RoutingItem.status == Status.QUEUED))).all()
    assert queued == []
    await calls.release("1795431712.4")  # the first call ended: the agent takes calls again
    third = await calls.route_call(ringing("1795431713.2"))
    assert third.target == f"PJSIP/{a}"


async def test_a_call_outside_the_branchs_hours_gets_the_off_hours_fallback(
    calls: CallRouting, router: Router, sessions: Sessions, clock: Clock
) -> None:
    branch = await add_branch(sessions)
    await router.save_hours(WorkingHours.parse(branch, "Europe/Chisinau", WEEKDAYS))
    await add_agents(router, sessions, 1, phones=True)
    async with sessions() as db, db.begin():
        db.add(Contact(first_name="Ion", phone=E164, branch_id=branch))
    clock.advance(9 * 3600)  # Monday 21:00 in Chișinău
    route = await calls.route_call(ringing())
    assert (route.target, route.reason, route.agent_id) == ("", "off_hours", None)
    assert route.contact_id is not None and route.conversation_id is not None


async def test_an_agent_without_a_phone_endpoint_is_never_given_a_call(
    calls: CallRouting, router: Router, sessions: Sessions
) -> None:
    (chat_only,) = await add_agents(router, sessions, 1)
    assert (await calls.route_call(ringing("c-1"))).reason == "queued"
    (phone,) = await add_agents(router, sessions, 1, chats_during_call=True, phones=True)
    await router.manual_assign(chat("busy"), phone)  # the phone agent is the busier one
    route = await calls.route_call(ringing("c-2"))
    assert (route.target, route.agent_id) == (f"PJSIP/{phone}", phone)
    assert not (await on_call(router))[chat_only]


async def test_a_busy_expert_with_a_wait_rule_does_not_keep_the_caller_waiting(
    calls: CallRouting, router: Router, sessions: Sessions
) -> None:
    await router.save_rule(RoutingRule(sticky_wait_seconds=60))  # chats may wait a minute for the expert
    expert, other = await add_agents(router, sessions, 2, phones=True)
    async with sessions() as db, db.begin():
        db.add(Contact(first_name="Ion", phone=E164, owner_id=expert))
    await router.manual_assign(call("other-call"), expert)  # the expert is on another call
    route = await calls.route_call(ringing())
    assert (route.target, route.reason) == (f"PJSIP/{other}", "least_busy")


async def test_a_withheld_number_is_routed_without_a_customer(
    calls: CallRouting, router: Router, sessions: Sessions
) -> None:
    (a,) = await add_agents(router, sessions, 1, phones=True)
    route = await calls.route_call(ringing(caller=None, name=""))
    assert (route.target, route.contact_id, route.conversation_id) == (f"PJSIP/{a}", None, None)
    async with sessions() as db:
        assert (await db.scalars(select(Contact))).all() == []


async def test_asking_again_for_the_same_call_gives_the_same_agent(
    calls: CallRouting, router: Router, sessions: Sessions
) -> None:
    await add_agents(router, sessions, 2, phones=True)
    first = await calls.route_call(ringing())
    again = await calls.route_call(ringing())
    assert again.target == first.target and again.agent_id == first.agent_id
    assert sum((await on_call(router)).values()) == 1


async def test_a_resolved_conversation_is_reopened_for_the_call(
    calls: CallRouting, routed_inbox: Inbox, router: Router, sessions: Sessions
) -> None:
    await add_agents(router, sessions, 1, phones=True)
    first = await calls.route_call(ringing("c-1"))
    await calls.release("c-1")
    assert first.conversation_id is not None
    await routed_inbox.set_status(Viewer(0, Role.ADMIN, None), first.conversation_id, "resolved")
    second = await calls.route_call(ringing("c-2"))
    assert second.conversation_id == first.conversation_id
    async with sessions() as db:
        conversation = await db.get(Conversation, first.conversation_id)
    assert conversation is not None and conversation.status == "open"
