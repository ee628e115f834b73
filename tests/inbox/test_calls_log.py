"""`CallLog` fed the real Asterisk 20 recordings (turned into `CallEvent`s by the CallTracker, no network):
the calls row and the call item in the caller's conversation, the router told of the answer and the end, the
screen pop, missed calls becoming one callback task (and notification) however often they are replayed, and
returned calls closing them."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.asterisk.calls import CallTracker
from channels.asterisk.model import CallEvent, CallRecord
from channels.asterisk.routing_model import CallRequest
from channels.model import Channel, InboundMessage
from crm_core import tasks
from crm_core.models import Contact
from crm_core.tasks_model import Task
from inbox.calls import CallLog, get_call, list_calls
from inbox.calls_model import Call
from inbox.calls_routing import CallRouting
from inbox.models import Conversation, Message
from inbox.notifications_model import Notification
from inbox.service import Inbox
from router.engine import Router
from router.tables import RoutingItem
from switchboard.accounts_model import User
from switchboard.bus import InMemoryBus, Subscription
from tests.fakes.ami_server import load_fixture
from tests.router.conftest import Clock, add_users, make_router

Sessions = async_sessionmaker[AsyncSession]
BASE = dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC)


def recorded(name: str, tracker: CallTracker | None = None) -> list[CallEvent]:
    """The call events a recording gives, at its recorded times."""
    tracker = tracker or CallTracker()
    out: list[CallEvent] = []
    for t, fields in load_fixture(name).messages():
        out += tracker.feed(fields, BASE + dt.timedelta(seconds=t))
    return out


def click_to_call(name: str, channel_id: str, number: str) -> list[CallEvent]:
    tracker = CallTracker()
    tracker.note_originate(
        channel_id, agent_endpoint="PJSIP/1001", number=number, at=BASE + dt.timedelta(seconds=1.6)
    )
    return recorded(name, tracker)


@dataclasses.dataclass
class Desk:
    log: CallLog
    inbox: Inbox
    router: Router
    sessions: Sessions
    events: Subscription
    agents: dict[str, int]  # endpoint -> user id

    async def play(self, events: list[CallEvent]) -> None:
        for event in events:
            await self.log.on_call_event(event)

    def published(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        while not self.events._queue.empty():
            event = self.events._queue.get_nowait()
            if event is not None:
                out.append((event.topic, event.data))
        return out

    async def rows(self, model: Any) -> list[Any]:
        async with self.sessions() as db:
            return list(await db.scalars(select(model).order_by(model.id)))


@pytest.fixture
async def desk(sessions: Sessions, bus: InMemoryBus) -> AsyncIterator[Desk]:
    clock = Clock(BASE)
    router = make_router(sessions, clock)
    inbox = Inbox(sessions, bus)
    inbox.router = router
    ids = await add_users(sessions, 2)
    agents = {"PJSIP/1001": ids[0], "PJSIP/1002": ids[1]}
    async with sessions() as db, db.begin():
        await db.execute(update(User).where(User.id == ids[0]).values(full_name="Ana Rusu"))
        await db.execute(update(User).where(User.id == ids[1]).values(full_name="Ion Popa"))
    for endpoint, agent in agents.items():
        await router.set_capacity(agent, 3, False)
        await router.set_endpoint(agent, endpoint)
    log = CallLog(inbox, router, sessions, bus, clock=clock)
    async with bus.subscribe("inbox.*") as events:
        yield Desk(log, inbox, router, sessions, events, agents)
    await inbox.close()


async def route(desk: Desk, linkedid: str, caller: str, name: str = "") -> None:
    """What the dialplan's FastAGI request does before Asterisk dials the agent."""
    answer = await CallRouting(desk.inbox, desk.router).route_call(
        CallRequest(
            linkedid=linkedid,
            uniqueid=linkedid,
            caller=caller,
            caller_e164="+" + caller,
            caller_name=name,
            dialled="74951234567",
            channel="PJSIP/trunk-00000002",
        )
    )
    assert answer.target == "PJSIP/1001", answer


async def routing_status(desk: Desk, linkedid: str) -> str | None:
    async with desk.sessions() as db:
        return await db.scalar(select(RoutingItem.status).where(RoutingItem.item_id == linkedid))


async def test_an_answered_call_is_one_call_item_in_the_callers_conversation(desk: Desk) -> None:
    await desk.router.set_presence(desk.agents["PJSIP/1001"], "online")
    await route(desk, "1795431712.4", "79161234501", "Ivan Petrov")
    assert await routing_status(desk, "1795431712.4") == "offered"
    desk.published()
    events = recorded("inbound_answered")
    assert [e.kind for e in events] == ["ringing", "answered", "ended"]
    await desk.play(events[:1])
    pops = [d for t, d in desk.published() if t == "inbox.call"]
    assert pops == [
        {
            "user_id": desk.agents["PJSIP/1001"],
            "call": {
                "event": "ringing",
                "call_id": pops[0]["call"]["call_id"],
                "linkedid": "1795431712.4",
                "direction": "in",
                "number": "+79161234501",
                "name": "Ivan Petrov",
                "new_caller": True,
                "region": "Russia",
                "contact_id": pops[0]["call"]["contact_id"],
                "conversation_id": pops[0]["call"]["conversation_id"],
                "open_leads": 1,
            },
        }
    ]
    await desk.play(events[1:2])
    assert await routing_status(desk, "1795431712.4") == "accepted"
    answered = [d["call"] for t, d in desk.published() if t == "inbox.call"]
    assert answered == [
        {
            "event": "answered",
            "call_id": pops[0]["call"]["call_id"],
            "linkedid": "1795431712.4",
            "agent_id": desk.agents["PJSIP/1001"],
            "conversation_id": pops[0]["call"]["conversation_id"],
        }
    ]
    await desk.play(events[2:])
    assert await routing_status(desk, "1795431712.4") == "ended"

    (call,) = await desk.rows(Call)
    (message,) = await desk.rows(Message)
    (conversation,) = await desk.rows(Conversation)
    (contact,) = await desk.rows(Contact)
    assert contact.phone == "+79161234501" and conversation.contact_id == contact.id
    assert (call.result, call.direction, call.customer_number, call.dialled) == (
        "answered",
        "in",
        "+79161234501",
        "74951234567",
    )
    assert call.agent_id == desk.agents["PJSIP/1001"] and call.agent_endpoint == "PJSIP/1001"
    assert call.recording_file == "1795431712.4.wav"  # the bare name, never the PBX's path
    assert call.routed_reason == "available-agent" and call.ended and not call.reconciled
    assert (call.conversation_id, call.contact_id, call.message_id) == (
        conversation.id,
        contact.id,
        message.id,
    )
    assert (message.kind, message.channel, message.account_id, message.external_id) == (
        "call",
        "phone",
        "pbx",
        "1795431712.4",
    )
    meta = message.meta["call"]
    assert meta["call_id"] == call.id and meta["result"] == "answered" and meta["ended"] is True
    assert meta["agent_name"] == "Ana Rusu" and meta["has_recording"] is True
    assert meta["talk_seconds"] == pytest.approx(3.0, abs=0.1) and meta["wait_seconds"] == pytest.approx(
        1.0, abs=0.1
    )
    assert meta["region"] == "Russia" and meta["caller_name"] == "Ivan Petrov"
    topics = [t for t, _ in desk.published()]
    assert "inbox.status" in topics and "inbox.call" in topics  # the item updated live, the pop closed
    assert await desk.rows(Task) == []

    await desk.play(events)  # the stream replayed (a reconnect, a takeover): nothing new
    assert len(await desk.rows(Call)) == 1 and len(await desk.rows(Message)) == 1

    async with desk.sessions() as db:
        view = await get_call(db, call.id)
        assert view is not None and view.agent_name == "Ana Rusu" and view.contact_name == "Ivan Petrov"
        assert [c.id for c in await list_calls(db, number="916 123-45-01", result="answered")] == [call.id]
        assert await list_calls(db, direction="out") == []
        assert await list_calls(db, agent_id=desk.agents["PJSIP/1002"]) == []


async def test_a_missed_call_is_one_callback_task_and_notification_for_the_rung_agent(desk: Desk) -> None:
    events = recorded("inbound_missed")
    await desk.play(events)
    await desk.play(events)  # replayed: still one of each
    (task,) = await desk.rows(Task)
    (notification,) = await desk.rows(Notification)
    (call,) = await desk.rows(Call)
    agent = desk.agents["PJSIP/1001"]
    assert call.result == "missed" and call.agent_id == agent
    assert (task.kind, task.status, task.assignee_id) == ("callback", "open", agent)
    assert task.source_key == "missed-call:1795431741.10"
    assert (task.contact_id, task.conversation_id) == (call.contact_id, call.conversation_id)
    assert task.due_at is not None and task.due_at.replace(tzinfo=dt.UTC) == BASE
    assert (notification.user_id, notification.kind) == (agent, "missed_call")
    assert (notification.conversation_id, notification.message_id) == (call.conversation_id, call.message_id)
    assert "+79161234503" in notification.text
    sent = [d for t, d in desk.published() if t == "inbox.notification"]
    assert [d["user_id"] for d in sent] == [agent]


async def test_a_missed_queue_call_rang_two_agents_and_is_one_task_in_the_queue(desk: Desk) -> None:
    await desk.play(recorded("queue_missed"))
    (task,) = await desk.rows(Task)
    assert task.kind == "callback" and task.assignee_id is None
    assert await desk.rows(Notification) == []
    pops = [d for t, d in desk.published() if t == "inbox.call"]
    rung = {d["user_id"] for d in pops if d["call"]["event"] == "ringing"}
    closed = {d["user_id"] for d in pops if d["call"]["event"] == "ended"}
    assert rung == closed == set(desk.agents.values())  # every screen it popped on is cleared


async def test_a_call_nobody_could_take_is_a_task_for_the_branch_queue(desk: Desk) -> None:
    await desk.play(recorded("inbound_no_agent"))
    (task,) = await desk.rows(Task)
    (call,) = await desk.rows(Call)
    assert call.result == "no_agent" and call.agent_id is None
    assert (task.kind, task.assignee_id, task.contact_id) == ("callback", None, call.contact_id)


async def test_a_click_to_call_made_from_a_task_completes_it_and_closes_the_customers_callbacks(
    desk: Desk, sessions: Sessions
) -> None:
    number = "+79161234507"
    await desk.inbox.ingest(
        InboundMessage(Channel.TELEGRAM, "bot", "m-1", "tg-7", "Sunați-mă", sender_phone=number)
    )
    async with sessions() as db, db.begin():
        contact_id = await db.scalar(select(Contact.id))
        assert contact_id is not None
        callback = await tasks.create_task(
            db, title="Call back", kind="callback", contact_id=contact_id, source_key="missed-call:old"
        )
        await db.execute(
            insert(Task).values(id=42, title="Offer", kind="call", status="open", contact_id=contact_id)
        )
    await desk.play(click_to_call("click_to_call", "c2c-16a407d0c479", "79161234507"))
    (call,) = await desk.rows(Call)
    assert (call.direction, call.result, call.customer_number, call.task_id) == (
        "out",
        "answered",
        number,
        42,
    )
    assert call.contact_id == contact_id and call.agent_id == desk.agents["PJSIP/1001"]
    done = {t.id: t for t in await desk.rows(Task)}
    assert done[42].status == "done" and done[42].done_by_id == desk.agents["PJSIP/1001"]
    assert done[callback.id].status == "done" and done[callback.id].outcome
    (item,) = [m for m in await desk.rows(Message) if m.kind == "call"]
    assert (item.direction, item.author_user_id) == ("out", desk.agents["PJSIP/1001"])
    assert len(await desk.rows(Task)) == 2  # an outbound call never makes a callback task


async def test_an_unanswered_click_to_call_leaves_the_tasks_open(desk: Desk, sessions: Sessions) -> None:
    await desk.play(recorded("inbound_missed"))
    await desk.play(click_to_call("click_to_call_agent_no_answer", "c2c-3f637199b43d", "79161234503"))
    calls = await desk.rows(Call)
    assert [c.result for c in calls] == ["missed", "failed"]
    (task,) = await desk.rows(Task)
    assert task.status == "open"


async def test_ten_calls_in_one_second_are_ten_items_with_their_cyrillic_names(desk: Desk) -> None:
    await desk.play(recorded("concurrent_10"))
    calls = await desk.rows(Call)
    items = [m for m in await desk.rows(Message) if m.kind == "call"]
    assert len(calls) == len(items) == 10
    assert len({m.conversation_id for m in items}) == 10
    names = {m.meta["call"]["caller_name"] for m in items}
    assert {"Иван Петров", "Ольга Смирнова", "José Núñez", "Анна Волкова"} <= names
    contacts = {f"{c.first_name} {c.last_name}" for c in await desk.rows(Contact)}
    assert {"Иван Петров", "Анна Волкова"} <= contacts
    assert {c.agent_id for c in calls} == set(desk.agents.values())


async def test_a_reconciled_end_after_the_real_end_changes_nothing(desk: Desk) -> None:
    events = recorded("inbound_answered")
    await desk.play(events)
    (before,) = await desk.rows(Call)
    late = dataclasses.replace(
        events[-1],
        record=dataclasses.replace(events[-1].record, reconciled=True, result="missed", talk_seconds=99.0),
    )
    await desk.play([late])
    (after,) = await desk.rows(Call)
    assert (after.result, after.talk_seconds, after.reconciled) == (before.result, before.talk_seconds, False)
    assert await desk.rows(Task) == []


async def test_a_withheld_number_keeps_its_row_but_makes_no_contact_item_or_task(desk: Desk) -> None:
    record = CallRecord(
        linkedid="1795439999.1",
        direction="in",
        started_at=BASE,
        caller_number_raw="anonymous",
        called_number="+74951234567",
        called_number_raw="74951234567",
        result="missed",
        ended_at=BASE + dt.timedelta(seconds=5),
        agent_endpoint="PJSIP/1001",
        ended=True,
    )
    await desk.play([CallEvent("ended", record, BASE + dt.timedelta(seconds=5))])
    (call,) = await desk.rows(Call)
    assert (call.result, call.customer_number, call.customer_number_raw) == ("missed", None, "anonymous")
    assert call.conversation_id is None and call.message_id is None
    assert await desk.rows(Contact) == [] and await desk.rows(Message) == [] and await desk.rows(Task) == []


async def test_on_standby_only_the_latest_state_is_kept_and_written_on_takeover(
    desk: Desk, sessions: Sessions, bus: InMemoryBus
) -> None:
    standby = CallLog(desk.inbox, desk.router, sessions, bus, standby=True)
    await desk.play(recorded("inbound_answered")[:2])  # the old leader saw the ringing and the answer
    for event in recorded("inbound_answered") + recorded("inbound_missed"):
        await standby.on_call_event(event)
    assert [c.ended for c in await desk.rows(Call)] == [False]  # nothing written on standby
    leading = asyncio.create_task(standby.lead())
    for _ in range(200):
        await asyncio.sleep(0.01)
        if len([c for c in await desk.rows(Call) if c.ended]) == 2:
            break
    leading.cancel()
    calls = await desk.rows(Call)
    assert [(c.result, c.ended) for c in calls] == [("answered", True), ("missed", True)]
    assert len(await desk.rows(Task)) == 1
