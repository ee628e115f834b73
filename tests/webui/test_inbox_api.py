"""The agent workspace over HTTP: the inbox pages, the JSON API under /api/v1/conversations and the /live
WebSocket feed, with who-sees-what checked through the API and the feed alike."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import Channel, InboundMessage, VisitSource
from inbox.models import Conversation, Message
from switchboard.accounts_model import User
from switchboard.permissions import Role
from tests.conftest import MakeUser, Person, login, page_csrf, second_browser
from webui import keys
from webui.live import LIVE_SOCKETS

Frame = dict[str, Any]


@dataclass
class Agent:
    """A logged-in browser: its own cookies, CSRF token and person."""

    person: Person
    client: TestClient
    csrf: str

    async def get(self, path: str) -> tuple[int, Any]:
        response = await self.client.get(path)
        return response.status, await response.json()

    async def post(self, path: str, body: Any, *, raw: str | None = None) -> tuple[int, Any]:
        response = await self.client.post(
            path,
            data=raw if raw is not None else json.dumps(body),
            headers={"X-CSRF-Token": self.csrf, "Content-Type": "application/json"},
        )
        return response.status, await response.json()

    async def ids(self, query: str = "") -> set[int]:
        status, data = await self.get(f"/api/v1/conversations{query}")
        assert status == 200, data
        return {c["id"] for c in data["conversations"]}


@pytest.fixture
async def sign_in(client: TestClient, make_user: MakeUser) -> AsyncIterator[Callable[..., Any]]:
    """A new user of `role` in `branch`, logged in through their own browser on the running app."""
    opened: list[TestClient] = []

    async def sign_in(role: Role, branch: str = "Chișinău") -> Agent:
        person = await make_user(role, branch=branch)
        browser = client if not opened else await second_browser(client)
        opened.append(browser)
        assert (await login(browser, person.username)).status == 302
        return Agent(person, browser, await page_csrf(browser, "/inbox"))

    yield sign_in
    for browser in opened[1:]:
        await browser.session.close()


def chat(external_id: str, sender: str, body: str = "Bună ziua", **kw: Any) -> InboundMessage:
    return InboundMessage(
        channel=kw.pop("channel", Channel.WEBCHAT),
        account_id="site",
        external_id=external_id,
        sender_id=sender,
        body=body,
        sender_name=kw.pop("name", f"Client {sender}"),
        **kw,
    )


async def _branch_of(sessions: async_sessionmaker[AsyncSession], person: Person) -> int | None:
    async with sessions() as db:
        return await db.scalar(select(User.branch_id).where(User.id == person.id))


async def _place(
    sessions: async_sessionmaker[AsyncSession],
    conversation_id: int,
    branch_id: int | None,
    assignee: int | None,
) -> None:
    """What routing would have done: put the conversation in a branch's queue or on someone's desk."""
    async with sessions() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(branch_id=branch_id, assignee_id=assignee)
        )


@dataclass
class Floor:
    """Two branches, their people and five conversations placed so every visibility rule is exercised."""

    a: Agent  # agent in Chișinău
    b: Agent  # another agent in Chișinău
    c: Agent  # agent in Bălți
    sup: Agent  # supervisor of Chișinău
    admin: Agent
    conv: dict[str, int]  # a_own, branch_queue, b_own, balti_queue, no_branch


@pytest.fixture
async def floor(
    sign_in: Callable[..., Any], app: web.Application, sessions: async_sessionmaker[AsyncSession]
) -> Floor:
    a, b = await sign_in(Role.AGENT), await sign_in(Role.AGENT)
    c = await sign_in(Role.AGENT, branch="Bălți")
    sup, admin = await sign_in(Role.SUPERVISOR), await sign_in(Role.ADMIN)
    chisinau, balti = await _branch_of(sessions, a.person), await _branch_of(sessions, c.person)
    placement = {
        "a_own": (chisinau, a.person.id),
        "branch_queue": (chisinau, None),
        "b_own": (chisinau, b.person.id),
        "balti_queue": (balti, None),
        "no_branch": (None, None),
    }
    conv: dict[str, int] = {}
    for name, (branch, assignee) in placement.items():
        result = await app[keys.INBOX].ingest(chat(f"{name}-1", name))
        await _place(sessions, result.conversation_id, branch, assignee)
        conv[name] = result.conversation_id
    return Floor(a, b, c, sup, admin, conv)


def _expected(floor: Floor, *names: str) -> set[int]:
    return {floor.conv[n] for n in names}


# --- pages ---------------------------------------------------------------------------------------------


async def test_the_inbox_page_is_the_workspace_shell(floor: Floor) -> None:
    response = await floor.a.client.get("/inbox")
    html = await response.text()
    assert response.status == 200
    for hook in (
        'id="conversation-list"',
        'id="thread"',
        'id="reply-body"',
        'id="contact-panel"',
        "js/inbox.js",
    ):
        assert hook in html
    response = await floor.a.client.get(f"/inbox/{floor.conv['a_own']}")
    assert response.status == 200
    assert f'"open_id": {floor.conv["a_own"]}' in await response.text()


async def test_a_conversation_page_the_viewer_may_not_see_is_not_found(floor: Floor) -> None:
    response = await floor.a.client.get(f"/inbox/{floor.conv['b_own']}")
    assert response.status == 404
    response = await floor.a.client.get("/inbox/abc")
    assert response.status == 404


async def test_an_agent_may_hand_conversations_only_to_themselves(floor: Floor) -> None:
    html = await (await floor.a.client.get("/inbox")).text()
    config = json.loads(html.split('id="inbox-config">', 1)[1].split("</script>", 1)[0])
    assert [p["id"] for p in config["people"]] == [floor.a.person.id]
    html = await (await floor.sup.client.get("/inbox")).text()
    config = json.loads(html.split('id="inbox-config">', 1)[1].split("</script>", 1)[0])
    ids = {p["id"] for p in config["people"]}
    assert {floor.a.person.id, floor.b.person.id, floor.sup.person.id} <= ids
    assert floor.c.person.id not in ids  # another branch


# --- visibility through the API ------------------------------------------------------------------------


async def test_each_role_lists_exactly_the_conversations_it_may_see(floor: Floor) -> None:
    assert await floor.a.ids() == _expected(floor, "a_own", "branch_queue", "no_branch")
    assert await floor.c.ids() == _expected(floor, "balti_queue", "no_branch")
    assert await floor.sup.ids() == _expected(floor, "a_own", "branch_queue", "b_own", "no_branch")
    assert await floor.admin.ids() == set(floor.conv.values())


async def test_a_hidden_conversation_is_not_found_for_reading_or_writing(floor: Floor) -> None:
    hidden = floor.conv["b_own"]
    status, data = await floor.a.get(f"/api/v1/conversations/{hidden}")
    assert status == 404 and data["error"]["reason"]
    for path, body in [
        ("messages", {"body": "hi"}),
        ("status", {"status": "resolved"}),
        ("assign", {"assignee_id": floor.a.person.id}),
    ]:
        status, _ = await floor.a.post(f"/api/v1/conversations/{hidden}/{path}", body)
        assert status == 404, path


async def test_filters_scope_status_channel_and_unread_badges(floor: Floor, app: web.Application) -> None:
    await app[keys.INBOX].ingest(chat("tg-1", "no_branch", channel=Channel.TELEGRAM))  # its own contact
    a = floor.a
    assert await a.ids("?scope=mine") == _expected(floor, "a_own")
    unassigned = await a.ids("?scope=unassigned")
    assert _expected(floor, "branch_queue", "no_branch") < unassigned and len(unassigned) == 3
    assert len(await a.ids("?channel=telegram")) == 1
    assert await a.ids("?status=resolved") == set()
    status, data = await a.get("/api/v1/conversations")
    assert status == 200
    assert data["unread"] == {"mine": 1, "unassigned": 3, "all": 4}
    first = data["conversations"][0]
    assert first["waiting_since"] and first["unread"] == 1 and first["contact"]["name"].startswith("Client")
    for query, field in [
        ("?scope=everyone", "scope"),
        ("?status=gone", "status"),
        ("?channel=pigeon", "channel"),
    ]:
        status, data = await a.get(f"/api/v1/conversations{query}")
        assert status == 422 and data["error"]["field"] == field


# --- working a conversation ----------------------------------------------------------------------------


async def test_reading_a_thread_shows_contact_card_and_marks_it_read(
    floor: Floor, app: web.Application
) -> None:
    source = VisitSource(
        page_url="https://credit.example/ipoteca", utm_source="facebook", utm_campaign="toamna"
    )
    got = await app[keys.INBOX].ingest(
        chat("m-1", "ion", "Vreau un credit", name="Ion Popescu", source=source)
    )
    await app[keys.INBOX].ingest(
        chat("m-2", "ion-tg", "Tot eu", channel=Channel.TELEGRAM, name="Ion P.", sender_phone="+37369000001")
    )
    status, thread = await floor.a.get(f"/api/v1/conversations/{got.conversation_id}")
    assert status == 200
    assert thread["contact"]["name"] == "Ion Popescu"
    assert thread["contact"]["leads"][0]["utm_source"] == "facebook"
    assert [i["channel"] for i in thread["contact"]["identities"]] == ["webchat"]
    assert [m["body"] for m in thread["messages"]] == ["Vreau un credit"]
    listed = {c["id"]: c for c in (await floor.a.get("/api/v1/conversations"))[1]["conversations"]}
    assert listed[got.conversation_id]["unread"] == 0


async def test_reply_note_status_and_assignment(
    floor: Floor, app: web.Application, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, conv = floor.a, floor.conv["branch_queue"]
    status, data = await a.post(f"/api/v1/conversations/{conv}/messages", {"body": "Bună! Cu ce vă ajut?"})
    assert status == 201
    reply = data["message"]
    assert (reply["direction"], reply["kind"], reply["status"], reply["channel"]) == (
        "out",
        "text",
        "queued",
        "webchat",
    )
    status, data = await a.post(
        f"/api/v1/conversations/{conv}/messages", {"body": "sună-l mâine", "note": True}
    )
    assert status == 201 and data["message"]["kind"] == "note"
    listed = {c["id"]: c for c in (await a.get("/api/v1/conversations"))[1]["conversations"]}
    assert listed[conv]["assignee_id"] == a.person.id  # replying took it
    assert listed[conv]["waiting_since"] is None

    status, _ = await a.post(f"/api/v1/conversations/{conv}/status", {"status": "resolved"})
    assert status == 200
    assert conv in await a.ids("?status=resolved")
    status, _ = await a.post(f"/api/v1/conversations/{conv}/status", {"status": "open"})
    assert status == 200
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    status, _ = await a.post(
        f"/api/v1/conversations/{conv}/status", {"status": "snoozed", "snooze_until": later}
    )
    assert status == 200
    assert conv in await a.ids("?status=snoozed")
    status, data = await a.post(
        f"/api/v1/conversations/{conv}/status", {"status": "snoozed", "snooze_until": "2030-01-01T09:00:00"}
    )
    assert status == 422 and data["error"]["field"] == "snooze_until"
    status, data = await a.post(f"/api/v1/conversations/{conv}/status", {"status": "archived"})
    assert status == 422 and data["error"]["field"] == "status"

    # An agent releases or takes; a supervisor dispatches within the branch only.
    status, data = await a.post(f"/api/v1/conversations/{conv}/assign", {"assignee_id": floor.b.person.id})
    assert status == 422 and data["error"]["field"] == "assignee_id"
    status, _ = await a.post(f"/api/v1/conversations/{conv}/assign", {"assignee_id": None})
    assert status == 200
    status, _ = await floor.sup.post(
        f"/api/v1/conversations/{conv}/assign", {"assignee_id": floor.b.person.id}
    )
    assert status == 200
    assert conv not in await a.ids()
    status, _ = await floor.sup.post(
        f"/api/v1/conversations/{conv}/assign", {"assignee_id": floor.c.person.id}
    )
    assert status == 422
    status, _ = await floor.sup.post(f"/api/v1/conversations/{conv}/assign", {"assignee_id": 999999})
    assert status == 422
    async with sessions() as db:
        assert (
            await db.scalar(select(Conversation.assignee_id).where(Conversation.id == conv))
            == floor.b.person.id
        )
        notes = await db.scalars(select(Message.kind).where(Message.conversation_id == conv))
        assert sorted(notes) == ["note", "text", "text"]


async def test_a_reply_goes_to_the_identity_the_agent_picks(
    sign_in: Callable[..., Any], app: web.Application
) -> None:
    """One customer on the web chat and Telegram (matched by phone): the reply goes to the last channel
    unless the agent picks another identity; a channel the customer has not used is refused."""
    admin = await sign_in(Role.ADMIN)
    inbox = app[keys.INBOX]
    await inbox.ingest(chat("tg-1", "4711", channel=Channel.TELEGRAM, sender_phone="+37369123456"))
    web_chat = await inbox.ingest(chat("wc-1", "visitor-1", sender_phone="069123456"))
    assert not web_chat.new_contact and not web_chat.new_conversation
    conv = web_chat.conversation_id
    status, thread = await admin.get(f"/api/v1/conversations/{conv}")
    assert status == 200
    assert (thread["conversation"]["channel"], thread["conversation"]["account_id"]) == ("webchat", "site")
    identities = {(i["channel"], i["account_id"], i["external_id"]) for i in thread["contact"]["identities"]}
    assert identities == {("telegram", "site", "4711"), ("webchat", "site", "visitor-1")}

    path = f"/api/v1/conversations/{conv}/messages"
    status, data = await admin.post(
        path, {"body": "pe Telegram", "channel": "telegram", "account_id": "site"}
    )
    assert status == 201 and data["message"]["channel"] == "telegram"
    status, data = await admin.post(path, {"body": "tot pe Telegram", "channel": "telegram"})
    assert status == 201 and data["message"]["channel"] == "telegram"
    status, data = await admin.post(path, {"body": "pe chat"})
    assert status == 201 and data["message"]["channel"] == "webchat"
    status, data = await admin.post(path, {"body": "pe Viber", "channel": "viber"})
    assert status == 422 and data["error"]["field"] == "channel"
    status, data = await admin.post(path, {"body": "notă", "note": True, "channel": "telegram"})
    assert status == 201 and (data["message"]["kind"], data["message"]["channel"]) == ("note", None)
    async with app[keys.SESSIONS]() as db:
        sent = await db.execute(
            select(Message.body, Message.channel).where(
                Message.conversation_id == conv, Message.direction == "out"
            )
        )
        assert sorted(sent.all()) == sorted(
            [
                ("pe Telegram", "telegram"),
                ("tot pe Telegram", "telegram"),
                ("pe chat", "webchat"),
                ("notă", None),
            ]
        )


async def test_bad_bodies_are_400_and_bad_fields_422(floor: Floor) -> None:
    path = f"/api/v1/conversations/{floor.conv['a_own']}/messages"
    for raw in ["{", "", "[1, 2]", '"text"', "\xff"]:
        status, data = await floor.a.post(path, None, raw=raw)
        assert status == 400, raw
        assert data["error"]["status"] == 400 and data["error"]["reason"], raw
    for body, field in [
        ({"body": 5}, "body"),
        ({}, "body"),
        ({"body": "hi", "note": "yes"}, "note"),
        ({"body": "   "}, "body"),
        ({"body": "x" * 10_001}, "body"),
        ({"body": "hi", "channel": 3}, "channel"),
    ]:
        status, data = await floor.a.post(path, body)
        assert status == 422 and data["error"]["field"] == field, body
    assign = f"/api/v1/conversations/{floor.conv['a_own']}/assign"
    for body in [{}, {"assignee_id": "7"}, {"assignee_id": True}, {"assignee_id": -1}]:
        status, data = await floor.a.post(assign, body)
        assert status == 422 and data["error"]["field"] == "assignee_id", body


async def test_a_write_without_the_csrf_header_is_refused(floor: Floor) -> None:
    response = await floor.a.client.post(
        f"/api/v1/conversations/{floor.conv['a_own']}/messages", json={"body": "hi"}
    )
    assert response.status == 403


# --- the live feed -------------------------------------------------------------------------------------


async def _open_feed(agent: Agent, query: str = "") -> tuple[aiohttp.ClientWebSocketResponse, list[Frame]]:
    """A connected feed and the frames that came before `ready` (the catch-up)."""
    ws = await agent.client.ws_connect(f"/live{query}")
    frames = await _frames_until(ws, lambda f: f["type"] == "ready")
    return ws, frames[:-1]


async def _frames_until(ws: aiohttp.ClientWebSocketResponse, done: Callable[[Frame], bool]) -> list[Frame]:
    frames: list[Frame] = []
    async with asyncio.timeout(5):
        while True:
            msg = await ws.receive()
            assert msg.type is WSMsgType.TEXT, msg
            frame = json.loads(msg.data)
            frames.append(frame)
            if done(frame):
                return frames


def _is_message(body: str) -> Callable[[Frame], bool]:
    return lambda f: f["type"] == "message" and f["message"]["body"] == body


def _conversations(frames: Iterable[Frame]) -> set[int]:
    return {f["conversation"]["id"] for f in frames if "conversation" in f}


async def test_the_feed_carries_each_event_only_to_those_who_may_see_it(
    floor: Floor, app: web.Application
) -> None:
    viewers = [floor.a, floor.c, floor.sup, floor.admin]
    sockets = [(await _open_feed(v))[0] for v in viewers]
    inbox = app[keys.INBOX]
    for name in ["a_own", "branch_queue", "b_own", "balti_queue"]:
        await inbox.ingest(chat(f"{name}-2", name, f"again {name}"))
    await inbox.ingest(chat("no_branch-2", "no_branch", "the last one"))  # visible to all: ends each stream
    seen = [_conversations(await _frames_until(ws, _is_message("the last one"))) for ws in sockets]
    assert seen[0] == _expected(floor, "a_own", "branch_queue", "no_branch")
    assert seen[1] == _expected(floor, "balti_queue", "no_branch")
    assert seen[2] == _expected(floor, "a_own", "branch_queue", "b_own", "no_branch")
    assert seen[3] == set(floor.conv.values())
    for ws in sockets:
        await ws.close()


async def test_replies_statuses_and_assignments_arrive_as_their_own_frames(floor: Floor) -> None:
    a, conv = floor.a, floor.conv["a_own"]
    ws, _ = await _open_feed(a)
    await a.post(f"/api/v1/conversations/{conv}/messages", {"body": "Vă sun acum"})
    frames = await _frames_until(ws, _is_message("Vă sun acum"))
    assert frames[-1]["message"]["direction"] == "out" and frames[-1]["conversation"]["id"] == conv
    await a.post(f"/api/v1/conversations/{conv}/status", {"status": "resolved"})
    frame = (await _frames_until(ws, lambda f: f["type"] == "conversation"))[-1]
    assert frame["conversation"] == {
        "id": conv,
        "status": "resolved",
        "assignee_id": a.person.id,
        "branch_id": frame["conversation"]["branch_id"],
    }
    await ws.close()


async def test_a_conversation_taken_away_is_removed_from_the_agents_view(floor: Floor) -> None:
    ws, _ = await _open_feed(floor.a)
    conv = floor.conv["branch_queue"]
    status, _ = await floor.sup.post(
        f"/api/v1/conversations/{conv}/assign", {"assignee_id": floor.b.person.id}
    )
    assert status == 200
    frame = (await _frames_until(ws, lambda f: f["type"] != "status"))[-1]
    assert frame == {"type": "removed", "conversation_id": conv}
    await ws.close()


async def test_a_reconnecting_tab_gets_what_it_missed_once(floor: Floor, app: web.Application) -> None:
    inbox = app[keys.INBOX]
    ws, catch_up = await _open_feed(floor.a)
    assert catch_up == []
    await inbox.ingest(chat("seen-1", "a_own", "before the gap"))
    last = (await _frames_until(ws, _is_message("before the gap")))[-1]["message"]["id"]
    await ws.close()
    await inbox.ingest(chat("gap-1", "a_own", "missed one"))
    await inbox.ingest(chat("gap-2", "b_own", "not for this agent"))
    await inbox.ingest(chat("gap-3", "branch_queue", "missed two"))
    ws, catch_up = await _open_feed(floor.a, f"?after={last}")
    assert [f["message"]["body"] for f in catch_up] == ["missed one", "missed two"]
    assert all(f["type"] == "message" and f["catchup"] for f in catch_up)
    await inbox.ingest(chat("live-1", "no_branch", "live again"))
    frames = await _frames_until(ws, _is_message("live again"))
    assert [f["message"]["body"] for f in frames if f["type"] == "message"] == ["live again"]
    await ws.close()


async def test_a_message_both_caught_up_and_published_live_is_sent_once(
    floor: Floor, app: web.Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = app[keys.INBOX]
    before = await inbox.ingest(chat("race-0", "a_own", "already seen"))
    original = inbox.messages_since
    raced = False

    async def racing(viewer: Any, after_id: int, limit: int = 500) -> list[dict[str, Any]]:
        nonlocal raced
        if not raced:  # committed after the feed subscribed, before its catch-up query read
            raced = True
            await inbox.ingest(chat("race-1", "a_own", "in both"))
        return await original(viewer, after_id, limit=limit)

    monkeypatch.setattr(inbox, "messages_since", racing)
    ws, catch_up = await _open_feed(floor.a, f"?after={before.message_id}")
    assert [f["message"]["body"] for f in catch_up] == ["in both"]
    await inbox.ingest(chat("race-2", "a_own", "after"))
    frames = await _frames_until(ws, _is_message("after"))
    assert [f["message"]["body"] for f in frames if f["type"] == "message"] == ["after"]
    await ws.close()


async def test_the_feed_refuses_other_sites_plain_requests_and_bad_cursors(floor: Floor) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await floor.a.client.ws_connect("/live", headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    response = await floor.a.client.get("/live")
    assert response.status == 426
    with pytest.raises(aiohttp.WSServerHandshakeError) as bad:
        await floor.a.client.ws_connect("/live?after=-1")
    assert bad.value.status == 400
    host = floor.a.client.make_url("/").host
    port = floor.a.client.make_url("/").port
    ws = await floor.a.client.ws_connect("/live", headers={"Origin": f"http://{host}:{port}"})
    assert json.loads((await ws.receive()).data) == {"type": "ready"}
    await ws.close()


async def test_the_feed_needs_a_login_and_the_inbox_permission(
    client: TestClient, make_user: MakeUser, app: web.Application
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as anonymous:
        await client.ws_connect("/live")
    assert anonymous.value.request_info.url.path == "/login"  # sent to log in, like any page
    marketer = await make_user(Role.MARKETER)
    await login(client, marketer.username)
    with pytest.raises(aiohttp.WSServerHandshakeError) as forbidden:
        await client.ws_connect("/live")
    assert forbidden.value.status == 403


async def test_shutdown_closes_open_feeds(floor: Floor, app: web.Application) -> None:
    ws, _ = await _open_feed(floor.a)
    assert len(app[LIVE_SOCKETS]) == 1
    await app.shutdown()  # what the server does first when it stops; idempotent for the later cleanup
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type is WSMsgType.CLOSE and msg.data == aiohttp.WSCloseCode.GOING_AWAY
    await ws.close()
