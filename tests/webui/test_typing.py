""" "typing…" both ways between a web chat visitor and the agents: the visitor's widget socket tells the
agents who may see the conversation (over /live), an agent's /live socket tells the visitor, and neither
is stored or reaches anyone who may not see the conversation."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import webchat
from channels.model import Channel, InboundMessage
from channels.webchat import WidgetConfig
from inbox.models import Conversation, Message
from switchboard.accounts_model import User
from switchboard.permissions import Role
from tests.conftest import MakeUser, login, second_browser
from webui import keys
from webui.views.widget import TYPING_RATE

ORIGIN = "https://shop.example.md"
Frame = dict[str, Any]


@dataclass
class Floor:
    """A visitor's conversation in Chișinău's queue, an agent there and one in Bălți, both on /live."""

    client: TestClient
    widget: WidgetConfig
    visitor_id: str
    conversation_id: int
    near: aiohttp.ClientWebSocketResponse  # agent in Chișinău: sees the conversation
    far: aiohttp.ClientWebSocketResponse  # agent in Bălți: does not


async def _frames_until(ws: aiohttp.ClientWebSocketResponse, done: Callable[[Frame], bool]) -> list[Frame]:
    frames: list[Frame] = []
    async with asyncio.timeout(5):
        while True:
            msg = await ws.receive()
            assert msg.type is WSMsgType.TEXT, msg
            frames.append(json.loads(msg.data))
            if done(frames[-1]):
                return frames


async def _settled(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Wait until the hub has handled every frame sent on `ws` before now: it reads frames in order and
    answers a ping only when it gets to it (the socket must be opened with `autoping=False`)."""
    await ws.ping(b"sync")
    async with asyncio.timeout(5):
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.PONG:
                return
            assert msg.type is WSMsgType.TEXT, msg


@pytest.fixture
async def floor(
    client: TestClient,
    app: web.Application,
    make_user: MakeUser,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Floor]:
    async with sessions() as db, db.begin():
        widget = await webchat.create_widget(
            db, name="Shop", allowed_origins=[ORIGIN + "/"], greeting="Salut!"
        )
    visitor_id = str(uuid.uuid4())
    result = await app[keys.INBOX].ingest(
        webchat.to_inbound(widget, webchat.VisitorPost(visitor_id, str(uuid.uuid4()), "Bună ziua"))
    )
    near_agent = await make_user(Role.AGENT)
    far_agent = await make_user(Role.AGENT, branch="Bălți")
    async with sessions() as db, db.begin():
        branch = await db.scalar(select(User.branch_id).where(User.id == near_agent.id))
        await db.execute(
            update(Conversation).where(Conversation.id == result.conversation_id).values(branch_id=branch)
        )
    browsers: list[TestClient] = []
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    for person in (near_agent, far_agent):
        browser = await second_browser(client)
        browsers.append(browser)
        assert (await login(browser, person.username)).status == 302
        ws = await browser.ws_connect("/live", autoping=False)
        await _frames_until(ws, lambda f: f["type"] == "ready")
        sockets.append(ws)
    yield Floor(client, widget, visitor_id, result.conversation_id, sockets[0], sockets[1])
    for ws in sockets:
        await ws.close()
    for browser in browsers:
        await browser.session.close()


async def _visitor_socket(floor: Floor) -> aiohttp.ClientWebSocketResponse:
    ws = await floor.client.ws_connect(
        f"/widget/{floor.widget.public_key}/ws?visitor={floor.visitor_id}&after=0",
        headers={"Origin": ORIGIN},
        autoping=False,
    )
    await _frames_until(ws, lambda f: f.get("type") == "message")  # the status, then the history
    return ws


async def _everyone_sees(app: web.Application, body: str) -> None:
    """A message in a conversation without a branch, which every agent sees: it ends a stream of frames."""
    sender = str(uuid.uuid4())
    await app[keys.INBOX].ingest(
        InboundMessage(
            channel=Channel.TELEGRAM, account_id="bot", external_id=sender, sender_id=sender, body=body
        )
    )


def _typing(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f["type"] == "typing"]


async def test_a_visitor_typing_reaches_only_the_agents_who_may_see_the_conversation(
    floor: Floor, app: web.Application, sessions: async_sessionmaker[AsyncSession]
) -> None:
    visitor = await _visitor_socket(floor)
    async with sessions() as db:
        stored_before = await db.scalar(select(func.count()).select_from(Message))
    for _ in range(5):  # the widget sends one every 2 s; a burst is cut down to the limiter's capacity
        await visitor.send_json({"type": "typing"})
    await visitor.send_json({"type": "ping"})
    answers = await _frames_until(visitor, lambda f: f.get("type") == "pong")
    assert answers == [{"type": "pong"}]  # "typing" gets no answer, not even an error
    await _everyone_sees(app, "the end")

    near = await _frames_until(
        floor.near, lambda f: f["type"] == "message" and f["message"]["body"] == "the end"
    )
    typing = _typing(near)
    assert len(typing) == TYPING_RATE[0]
    assert typing[0]["conversation"]["id"] == floor.conversation_id
    assert set(typing[0]["conversation"]) >= {"id", "contact_id", "status", "assignee_id", "branch_id"}
    far = await _frames_until(
        floor.far, lambda f: f["type"] == "message" and f["message"]["body"] == "the end"
    )
    assert _typing(far) == []
    async with sessions() as db:  # never stored
        assert await db.scalar(select(func.count()).select_from(Message)) == (stored_before or 0) + 1
    await visitor.close()


async def test_a_visitor_who_has_not_written_yet_tells_nobody(floor: Floor, app: web.Application) -> None:
    stranger = await floor.client.ws_connect(
        f"/widget/{floor.widget.public_key}/ws?visitor={uuid.uuid4()}&after=0",
        headers={"Origin": ORIGIN},
    )
    await _frames_until(stranger, lambda f: f.get("type") == "status")
    await stranger.send_json({"type": "typing"})
    await stranger.send_json({"type": "ping"})
    assert await _frames_until(stranger, lambda f: f.get("type") == "pong") == [{"type": "pong"}]
    await _everyone_sees(app, "the end")
    near = await _frames_until(
        floor.near, lambda f: f["type"] == "message" and f["message"]["body"] == "the end"
    )
    assert _typing(near) == []
    await stranger.close()


async def test_an_agent_typing_reaches_the_visitor(floor: Floor) -> None:
    visitor = await _visitor_socket(floor)
    await floor.near.send_json({"type": "typing", "conversation_id": floor.conversation_id})
    frames = await _frames_until(visitor, lambda f: f.get("type") == "typing")
    assert frames[-1] == {"type": "typing", "typing": True}
    await visitor.close()


async def test_an_agent_who_cannot_see_the_conversation_cannot_make_the_visitor_see_typing(
    floor: Floor, app: web.Application
) -> None:
    visitor = await _visitor_socket(floor)
    await floor.far.send_json({"type": "typing", "conversation_id": floor.conversation_id})
    for junk in ("not json", '{"type": "typing", "conversation_id": "1"}', '{"type": "other"}', "[]"):
        await floor.far.send_str(junk)  # ignored, and the feed stays open
    await _settled(floor.far)
    topic = webchat.visitor_topic(floor.widget.account_id, floor.visitor_id)
    await app[keys.BUS].publish(topic, {"type": "marker"})
    frames = await _frames_until(visitor, lambda f: f.get("type") == "marker")
    assert _typing(frames) == []
    assert not floor.far.closed
    await visitor.close()


async def test_an_agent_typing_on_a_conversation_that_is_not_a_web_chat_tells_no_visitor(
    floor: Floor, app: web.Application
) -> None:
    """The customer last wrote from Telegram: their web chat stays quiet (the reply goes to Telegram)."""
    async with app[keys.SESSIONS]() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id == floor.conversation_id)
            .values(last_inbound_channel="telegram", last_inbound_account="bot")
        )
    visitor = await _visitor_socket(floor)
    await floor.near.send_json({"type": "typing", "conversation_id": floor.conversation_id})
    await _settled(floor.near)
    await app[keys.BUS].publish(
        webchat.visitor_topic(floor.widget.account_id, floor.visitor_id), {"type": "marker"}
    )
    frames = await _frames_until(visitor, lambda f: f.get("type") == "marker")
    assert _typing(frames) == []
    await visitor.close()
