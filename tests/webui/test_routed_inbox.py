"""The inbox with the router wired in, through the app: a new conversation is routed by a job to the least
busy online agent, waits unassigned when everyone is full, and goes to the agent whose capacity frees up;
an agent's presence comes from the header; supervisors see the desk and ask "who would get this now?";
admins edit the rules and working hours."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import Channel, InboundMessage
from crm_core import tasks
from inbox.models import Conversation, Message
from inbox.routing import Routing
from inbox.service import Viewer
from router.hours import WorkingHours
from switchboard import accounts
from switchboard.app import build_app, router_settings
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.conftest import MakeUser, Person, login, page_csrf
from tests.router.conftest import add_branch
from webui import keys


@pytest.fixture
async def routed_app(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> web.Application:
    return build_app(settings.model_copy(update={"routing": True}))


@pytest.fixture
async def routed_client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], routed_app: web.Application
) -> TestClient:
    return await aiohttp_client(routed_app)


def chat(visitor: str, body: str = "Bună ziua") -> InboundMessage:
    return InboundMessage(Channel.TELEGRAM, "1", f"{visitor}:1", visitor, body, sender_name=visitor.title())


async def drain(app: web.Application) -> None:
    while await app[keys.WORKER].run_once():
        pass


async def assignee(sessions: async_sessionmaker[AsyncSession], conversation_id: int) -> int | None:
    async with sessions() as db:
        conversation = await db.get(Conversation, conversation_id)
    assert conversation is not None
    return conversation.assignee_id


async def two_online_agents_with_room_for_one(app: web.Application, make_user: MakeUser) -> list[Person]:
    agents = [await make_user(Role.AGENT), await make_user(Role.AGENT)]
    for agent in agents:
        await app[keys.ROUTER].set_capacity(agent.id, 1, False)
        await app[keys.ROUTER].set_presence(agent.id, "online")
    return agents


async def test_new_conversations_go_to_free_agents_then_wait_then_follow_freed_capacity(
    routed_client: TestClient,
    routed_app: web.Application,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
) -> None:
    ana, bob = await two_online_agents_with_room_for_one(routed_app, make_user)
    inbox = routed_app[keys.INBOX]
    got = [await inbox.ingest(chat(v)) for v in ("ion", "maria", "vasile")]
    assert await assignee(sessions, got[0].conversation_id) is None  # routed by the job, not inline
    await drain(routed_app)  # the worker may route the three at once: which one waits is not fixed
    holders = {g.conversation_id: await assignee(sessions, g.conversation_id) for g in got}
    assert sorted(h for h in holders.values() if h is not None) == sorted([ana.id, bob.id])
    [waiting] = [c for c, h in holders.items() if h is None]  # everyone is full: one waits

    done, holder = next((c, h) for c, h in holders.items() if h is not None)
    assert holder is not None
    await inbox.set_status(Viewer(holder, Role.AGENT, None), done, "resolved")
    assert await assignee(sessions, waiting) == holder  # the freed capacity pulls the queue


async def test_an_agent_who_sets_themself_away_gets_nothing_new(
    routed_client: TestClient,
    routed_app: web.Application,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
) -> None:
    ana, bob = await make_user(Role.AGENT), await make_user(Role.AGENT)
    router = routed_app[keys.ROUTER]
    await router.set_presence(bob.id, "online")
    await login(routed_client, ana.username)
    csrf = await page_csrf(routed_client, "/inbox")
    headers = {"X-CSRF-Token": csrf}
    online = await routed_client.post("/api/v1/me/presence", json={"presence": "online"}, headers=headers)
    assert (await online.json())["presence"] == "online"
    away = await routed_client.post("/api/v1/me/presence", json={"presence": "away"}, headers=headers)
    assert away.status == 200 and (await away.json())["presence"] == "away"
    bad = await routed_client.post("/api/v1/me/presence", json={"presence": "asleep"}, headers=headers)
    assert bad.status == 422
    beat = await routed_client.post("/api/v1/me/heartbeat", json={}, headers=headers)
    assert beat.status == 200
    got = await routed_app[keys.INBOX].ingest(chat("ion"))
    await drain(routed_app)
    assert await assignee(sessions, got.conversation_id) == bob.id


async def test_supervisors_see_the_desk_change_capacity_and_ask_who_would_get_a_chat(
    routed_client: TestClient, routed_app: web.Application, make_user: MakeUser
) -> None:
    ana = await make_user(Role.AGENT, username="ana_expert")
    await routed_app[keys.ROUTER].set_presence(ana.id, "online")
    await login(routed_client, ana.username)
    csrf = await page_csrf(routed_client, "/inbox")
    refused = await routed_client.post(
        "/api/v1/routing/dry-run", json={"channel": "telegram"}, headers={"X-CSRF-Token": csrf}
    )
    assert refused.status == 403  # agents don't run the desk

    boss = await make_user(Role.SUPERVISOR)
    await login(routed_client, boss.username)
    page = await routed_client.get("/routing")
    html = await page.text()
    assert page.status == 200 and "Ana_Expert" in html and 'id="dry-run"' in html
    csrf = await page_csrf(routed_client, "/routing")
    headers = {"X-CSRF-Token": csrf}
    answer = await routed_client.post(
        "/api/v1/routing/dry-run", json={"channel": "telegram"}, headers=headers
    )
    data = await answer.json()
    assert answer.status == 200 and data["agent_id"] == ana.id and data["reason"] == "least_busy"
    changed = await routed_client.post(
        f"/api/v1/routing/agents/{ana.id}", json={"capacity": 2, "chats_during_call": True}, headers=headers
    )
    assert changed.status == 200 and (await changed.json())["agent"]["capacity"] == 2
    too_many = await routed_client.post(
        f"/api/v1/routing/agents/{ana.id}", json={"capacity": 500}, headers=headers
    )
    assert too_many.status == 422
    off = await routed_client.post(
        f"/api/v1/routing/agents/{ana.id}", json={"presence": "offline"}, headers=headers
    )
    assert (await off.json())["agent"]["presence"] == "offline"
    nobody = await routed_client.post(
        "/api/v1/routing/dry-run", json={"channel": "telegram"}, headers=headers
    )
    assert (await nobody.json())["agent_id"] is None


async def test_admins_edit_rules_and_hours_with_validation_and_supervisors_only_read_them(
    routed_client: TestClient, routed_app: web.Application, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    await login(routed_client, admin.username)
    csrf = await page_csrf(routed_client, "/routing")
    headers = {"X-CSRF-Token": csrf}
    saved = await routed_client.post(
        "/api/v1/routing/rules",
        json={"channel": "whatsapp", "sticky_mode": "last", "accept_timeout_seconds": 45},
        headers=headers,
    )
    assert saved.status == 200, await saved.text()
    assert (await saved.json())["rule"]["accept_timeout_seconds"] == 45
    bad = await routed_client.post(
        "/api/v1/routing/rules", json={"channel": "whatsapp", "accept_timeout_seconds": 1}, headers=headers
    )
    assert bad.status == 422 and (await bad.json())["error"]["field"] == "accept_timeout_seconds"
    page = await (await routed_client.get("/routing")).text()
    assert 'id="rule-form"' in page and "whatsapp" in page

    async with routed_app[keys.SESSIONS]() as db:
        branch_id = (await accounts.list_branches(db))[0].id
    week = {"mon": [["09:00", "18:00"]], "sat": [["10:00", "14:00"]]}
    hours = await routed_client.post(
        "/api/v1/routing/hours",
        json={
            "branch_id": branch_id,
            "timezone": "Europe/Chisinau",
            "week": week,
            "holidays": ["2026-12-25"],
        },
        headers=headers,
    )
    assert hours.status == 200, await hours.text()
    wrong = await routed_client.post(
        "/api/v1/routing/hours",
        json={"branch_id": branch_id, "week": {"mon": [["18:00", "09:00"]]}},
        headers=headers,
    )
    assert wrong.status == 422
    listed = await (await routed_client.get("/api/v1/routing/rules")).json()
    assert listed["hours"][0]["holidays"] == ["2026-12-25"] and listed["rules"][0]["sticky_mode"] == "last"

    boss = await make_user(Role.SUPERVISOR)
    await login(routed_client, boss.username)
    csrf = await page_csrf(routed_client, "/routing")
    refused = await routed_client.post(
        "/api/v1/routing/rules", json={"channel": "sms"}, headers={"X-CSRF-Token": csrf}
    )
    assert refused.status == 403
    assert 'id="rule-form"' not in await (await routed_client.get("/routing")).text()


async def test_supervisors_set_an_agents_skills_with_validation(
    routed_client: TestClient, routed_app: web.Application, make_user: MakeUser
) -> None:
    ana = await make_user(Role.AGENT)
    await login(routed_client, ana.username)
    csrf = await page_csrf(routed_client, "/inbox")
    refused = await routed_client.post(
        f"/api/v1/routing/agents/{ana.id}/skills", json={"languages": ["ro"]}, headers={"X-CSRF-Token": csrf}
    )
    assert refused.status == 403

    boss = await make_user(Role.SUPERVISOR)
    await login(routed_client, boss.username)
    headers = {"X-CSRF-Token": await page_csrf(routed_client, "/routing")}
    async with routed_app[keys.SESSIONS]() as db:
        branch_id = (await accounts.list_branches(db))[0].id
    body = {"branches": [branch_id], "languages": ["RU", "ro"], "products": [" Mortgage "]}
    body["channels"] = ["viber"]
    saved = await routed_client.post(f"/api/v1/routing/agents/{ana.id}/skills", json=body, headers=headers)
    assert saved.status == 200, await saved.text()
    assert (await saved.json())["agent"]["skills"] == {
        "branches": [branch_id],
        "languages": ["ro", "ru"],
        "products": ["mortgage"],
        "channels": ["viber"],
    }
    for wrong, field in (
        ({"channels": ["pigeon"]}, "channels"),
        ({"languages": ["xx"]}, "languages"),
        ({"branches": [10**6]}, "branches"),
        ({"products": "mortgage"}, "products"),
    ):
        path = f"/api/v1/routing/agents/{ana.id}/skills"
        answer = await routed_client.post(path, json=wrong, headers=headers)
        assert answer.status == 422 and (await answer.json())["error"]["field"] == field
    view = await routed_app[keys.ROUTER].agent(ana.id)
    assert view is not None and view.skills.products == ("mortgage",)  # the bad writes changed nothing


async def test_a_supervisor_pins_a_conversation_to_a_busy_agent_and_agents_may_not(
    routed_client: TestClient,
    routed_app: web.Application,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
) -> None:
    ana, bob = await two_online_agents_with_room_for_one(routed_app, make_user)
    inbox = routed_app[keys.INBOX]
    first, second = await inbox.ingest(chat("ion")), await inbox.ingest(chat("maria"))
    await drain(routed_app)
    holders = {await assignee(sessions, c.conversation_id) for c in (first, second)}
    assert holders == {ana.id, bob.id}
    first_at_ana = await assignee(sessions, first.conversation_id) == ana.id
    at_ana = first.conversation_id if first_at_ana else second.conversation_id

    await login(routed_client, ana.username)
    headers = {"X-CSRF-Token": await page_csrf(routed_client, "/inbox")}
    refused = await routed_client.post(
        f"/api/v1/conversations/{at_ana}/pin", json={"agent_id": bob.id}, headers=headers
    )
    assert refused.status == 403

    boss = await make_user(Role.SUPERVISOR)
    await login(routed_client, boss.username)
    headers = {"X-CSRF-Token": await page_csrf(routed_client, "/inbox")}
    pinned = await routed_client.post(
        f"/api/v1/conversations/{at_ana}/pin", json={"agent_id": bob.id}, headers=headers
    )
    assert pinned.status == 200, await pinned.text()
    assert (await pinned.json())["conversation"]["assignee_id"] is None  # bob is full: it waits for him
    assert await assignee(sessions, at_ana) is None
    bad = await routed_client.post(
        f"/api/v1/conversations/{at_ana}/pin", json={"agent_id": "bob"}, headers=headers
    )
    assert bad.status == 422
    other = at_ana ^ first.conversation_id ^ second.conversation_id  # bob's own conversation
    await inbox.set_status(Viewer(bob.id, Role.AGENT, None), other, "resolved")
    assert await assignee(sessions, at_ana) == bob.id  # bob's freed room took the pinned conversation


async def test_a_chat_outside_working_hours_gets_the_reply_once_and_a_callback_task_that_follows_it(
    routed_client: TestClient,
    routed_app: web.Application,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
) -> None:
    router = routed_app[keys.ROUTER]
    branch_id = await add_branch(sessions)
    closed_all_week = WorkingHours.parse(
        branch_id, "Europe/Chisinau", {}, replies={"ro": "Revenim mâine.", "ru": "Ответим завтра."}
    )
    await router.save_hours(closed_all_week)
    ana = await make_user(Role.AGENT)
    await router.set_presence(ana.id, "online")
    inbox = routed_app[keys.INBOX]
    got = await inbox.ingest(chat("ion", "Aș vrea un credit"))
    async with sessions() as db, db.begin():
        conversation = await db.get(Conversation, got.conversation_id)
        assert conversation is not None
        conversation.branch_id = branch_id
    await drain(routed_app)
    assert await assignee(sessions, got.conversation_id) is None  # closed: nobody gets it tonight
    automatic = await automatic_messages(sessions, got.conversation_id)
    assert [m.body for m in automatic] == ["Revenim mâine."]  # no Russian speaker: the Romanian text
    async with sessions() as db:
        task = (await tasks.tasks_for(db, assignee_id=None, include_unassigned_branch_id=branch_id))[0]
    assert (task.kind, task.status, task.conversation_id, task.assignee_id) == (
        "callback", "open", got.conversation_id, None,
    )  # fmt: skip
    assert task.note == "Aș vrea un credit"

    routing = Routing(inbox, router)  # the job runs again (a retry): nothing is sent or created twice
    request = await routing.request_for(got.conversation_id)
    assert request is not None
    await routing.apply(await router.assign(request))
    assert len(await automatic_messages(sessions, got.conversation_id)) == 1
    async with sessions() as db:
        assert len(await tasks.tasks_for(db, assignee_id=None, include_unassigned_branch_id=branch_id)) == 1

    await router.delete_hours(branch_id)  # morning: the branch opens, the queue moves
    await router.tick()
    assert await assignee(sessions, got.conversation_id) == ana.id
    async with sessions() as db:
        mine = await tasks.tasks_for(db, assignee_id=ana.id)
    assert [t.id for t in mine] == [task.id]  # the callback followed the conversation to its agent


async def automatic_messages(
    sessions: async_sessionmaker[AsyncSession], conversation_id: int
) -> list[Message]:
    async with sessions() as db:
        rows = await db.scalars(select(Message).where(Message.conversation_id == conversation_id))
        return [m for m in rows if (m.meta or {}).get("automatic") == "off_hours"]


async def test_the_decision_log_explains_who_got_a_conversation_and_why(
    routed_client: TestClient, routed_app: web.Application, make_user: MakeUser
) -> None:
    ana = await make_user(Role.AGENT, username="ana_log")
    router = routed_app[keys.ROUTER]
    await router.set_presence(ana.id, "online")
    got = await routed_app[keys.INBOX].ingest(chat("ion"))
    await drain(routed_app)
    boss = await make_user(Role.SUPERVISOR)
    await login(routed_client, boss.username)
    answer = await routed_client.get(
        "/api/v1/routing/decisions", params={"kind": "chat", "item_id": str(got.conversation_id)}
    )
    assert answer.status == 200
    [decision] = (await answer.json())["decisions"]
    assert (decision["agent_id"], decision["agent"], decision["reason"]) == (ana.id, "Ana_Log", "least_busy")
    assert decision["load_before"] == 0 and decision["load_after"] == 1
    page = await (await routed_client.get("/routing")).text()
    assert f'href="/inbox/{got.conversation_id}"' in page and 'data-reason="least_busy"' in page
    bad = await routed_client.get("/api/v1/routing/decisions", params={"kind": "fax"})
    assert bad.status == 422
    await login(routed_client, ana.username)
    assert (await routed_client.get("/api/v1/routing/decisions")).status == 403


def test_the_routers_process_settings_come_from_the_hubs_settings(settings: Settings) -> None:
    tuned = settings.model_copy(
        update={
            "routing_default_capacity": 3,
            "routing_wrap_up_seconds": 45,
            "routing_absence_grace_seconds": 300,
            "routing_give_back": False,
            "routing_idle_away_seconds": 60,
        }
    )
    got = router_settings(tuned)
    assert (got.default_capacity, got.wrap_up_seconds, got.absence_grace_seconds) == (3, 45, 300)
    assert (got.give_back, got.heartbeat_timeout_seconds) == (False, 60)
