"""The website chat widget: who may talk through it, what a visitor's message becomes, and that the agent's
replies (and only those: never a private note) come back over the socket and by polling."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import webchat
from channels.model import Channel, InboundMessage, MessageKind, OutboundMessage
from channels.webchat import RateLimiter, WidgetConfig
from channels.webchat_model import WebchatWidget
from crm_core.models import Contact, ContactIdentity, Lead
from inbox.models import Message
from inbox.service import Viewer
from switchboard import accounts
from switchboard.accounts_model import User
from switchboard.app import _worker, build_app, login_policy
from switchboard.bus import InMemoryBus, RedisBus
from switchboard.jobs import PermanentJobError
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.conftest import MakeUser, login, redis_url
from webui import keys
from webui.views.widget import WEBCHAT, setup_webchat

ORIGIN = "https://shop.example.md"


@pytest.fixture
async def app(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> web.Application:
    """The hub with the web chat connected (idempotent once build_app does it itself)."""
    app = build_app(settings)
    setup_webchat(app)
    return app


@pytest.fixture
async def widget(sessions: async_sessionmaker[AsyncSession]) -> WidgetConfig:
    async with sessions() as db, db.begin():
        return await webchat.create_widget(
            db, name="Shop", allowed_origins=[ORIGIN + "/"], greeting="Salut!", prechat=True
        )


def visitor() -> str:
    return str(uuid.uuid4())


def payload(visitor_id: str, body: str = "Bună ziua, vreau un credit", **extra: Any) -> dict[str, Any]:
    return {"visitor_id": visitor_id, "message_id": str(uuid.uuid4()), "body": body, **extra}


async def post(
    client: TestClient, widget: WidgetConfig, data: Any, *, origin: str | None = ORIGIN
) -> tuple[int, Any, Any]:
    headers = {"Origin": origin} if origin else {}
    body = data if isinstance(data, bytes | str) else json.dumps(data)
    response = await client.post(
        f"/widget/{widget.public_key}/messages",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    return response.status, await response.json(), response.headers


async def count(sessions: async_sessionmaker[AsyncSession], model: type, *where: Any) -> int:
    async with sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def conversation_of(sessions: async_sessionmaker[AsyncSession], message_id: int) -> int:
    async with sessions() as db:
        found = await db.scalar(select(Message.conversation_id).where(Message.id == message_id))
    assert found is not None
    return int(found)


# --- who may talk through it -----------------------------------------------------------------------------


async def test_an_allowed_origin_gets_cors_and_others_get_403_json(
    client: TestClient, widget: WidgetConfig
) -> None:
    status, body, headers = await post(client, widget, payload(visitor()))
    assert status == 201 and body["id"] > 0
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Set-Cookie" not in headers  # no cookie on visitors of other sites

    status, body, headers = await post(client, widget, payload(visitor()), origin="https://evil.example")
    assert status == 403 and "not allowed" in body["error"]["reason"]
    assert "Access-Control-Allow-Origin" not in headers

    status, body, _ = await post(client, widget, payload(visitor()), origin=None)
    assert status == 403 and body["error"]["status"] == 403

    status, _, _ = await post(client, widget, payload(visitor()), origin="null")
    assert status == 403


async def test_preflight_answers_allowed_origins_only(client: TestClient, widget: WidgetConfig) -> None:
    path = f"/widget/{widget.public_key}/messages"
    ok = await client.options(path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert ok.status == 204
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in ok.headers["Access-Control-Allow-Headers"]
    refused = await client.options(path, headers={"Origin": "https://evil.example"})
    assert refused.status == 403
    assert "Access-Control-Allow-Origin" not in refused.headers


async def test_an_unknown_or_inactive_key_is_a_json_404(
    client: TestClient, widget: WidgetConfig, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await client.get("/widget/nope/config", headers={"Origin": ORIGIN})
    assert response.status == 404
    assert (await response.json())["error"]["status"] == 404
    async with sessions() as db, db.begin():
        row = await db.get(WebchatWidget, widget.id)
        assert row is not None
        row.active = False
    response = await client.get(f"/widget/{widget.public_key}/config", headers={"Origin": ORIGIN})
    assert response.status == 404


async def test_config_tells_the_look_and_whether_an_agent_is_online(
    client: TestClient, widget: WidgetConfig, app: web.Application, make_user: MakeUser
) -> None:
    response = await client.get(f"/widget/{widget.public_key}/config", headers={"Origin": ORIGIN})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert await response.json() == {
        "colour": "#206bc4",
        "greeting": "Salut!",
        "language": "ro",
        "position": "right",
        "prechat": True,
        "online": False,
    }
    agent = await make_user(Role.AGENT)
    assert (await login(client, agent.username)).status == 302
    app[WEBCHAT].online.forget()
    response = await client.get(f"/widget/{widget.public_key}/config", headers={"Origin": ORIGIN})
    assert (await response.json())["online"] is True


async def test_only_people_who_answer_chats_count_as_online(
    sessions: async_sessionmaker[AsyncSession], make_user: MakeUser, settings: Settings
) -> None:
    marketer = await make_user(Role.MARKETER)
    agent = await make_user(Role.AGENT)
    policy = login_policy(settings)
    async with sessions() as db, db.begin():
        assert await accounts.agents_online(db) == 0
        user = await db.get(User, marketer.id)
        assert user is not None
        await accounts.start_web_session(db, policy, user, ip="127.0.0.1", user_agent="test")
    async with sessions() as db, db.begin():
        assert await accounts.agents_online(db) == 0
        user = await db.get(User, agent.id)
        assert user is not None
        await accounts.start_web_session(db, policy, user, ip="127.0.0.1", user_agent="test")
        await accounts.start_web_session(db, policy, user, ip="127.0.0.1", user_agent="other tab")
    async with sessions() as db:
        assert await accounts.agents_online(db) == 1


# --- limits ----------------------------------------------------------------------------------------------


async def test_a_visitor_sending_too_fast_gets_429_json(client: TestClient, widget: WidgetConfig) -> None:
    noisy = visitor()
    statuses = [(await post(client, widget, payload(noisy, f"m{i}")))[0] for i in range(10)]
    assert statuses == [201] * 10
    status, body, headers = await post(client, widget, payload(noisy, "one more"))
    assert status == 429 and body["error"]["reason"]
    assert int(headers["Retry-After"]) >= 1
    assert headers["Access-Control-Allow-Origin"] == ORIGIN  # so the widget can read why
    assert (await post(client, widget, payload(visitor())))[0] == 201  # others are not affected


async def test_oversized_empty_and_malformed_messages_are_refused(
    client: TestClient, widget: WidgetConfig, sessions: async_sessionmaker[AsyncSession]
) -> None:
    someone = visitor()
    status, body, _ = await post(client, widget, payload(someone, "x" * (webchat.MAX_BODY + 1)))
    assert status == 413 and "2000" in body["error"]["reason"]
    assert (await post(client, widget, payload(someone, "x" * webchat.MAX_BODY)))[0] == 201
    assert (await post(client, widget, payload(someone, "   ")))[0] == 422
    assert (await post(client, widget, b"{not json"))[0] == 400
    assert (await post(client, widget, b"[1, 2]"))[0] == 400
    assert (await post(client, widget, b"\xff\xfe"))[0] == 400
    assert (await post(client, widget, payload("short")))[0] == 422
    assert (await post(client, widget, payload("has_underscore-1234")))[0] == 422
    assert (await post(client, widget, payload(someone, utm="spring")))[0] == 422
    assert (await post(client, widget, b"x" * (webchat.MAX_REQUEST_BYTES + 1)))[0] == 413
    assert await count(sessions, Message) == 1


async def test_the_rate_limiter_refills_and_forgets_idle_visitors() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 2.0, max_keys=3, clock=lambda: now[0])
    assert limiter.take("a") == 0 and limiter.take("a") == 0
    assert limiter.take("a") == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.take("a") == 0
    for key in ("b", "c"):
        limiter.take(key)
    now[0] += 10.0
    limiter.take("d")  # the table is full: buckets that have refilled are dropped
    assert len(limiter) == 1


def test_origins_are_compared_in_one_normal_form() -> None:
    assert webchat.normalise_origin("HTTPS://Shop.Example.md:443") == "https://shop.example.md"
    assert webchat.normalise_origin("http://localhost:8080/") == "http://localhost:8080"
    for bad in (None, "", "null", "file://", "ftp://x", "https://a/b", "https://u:p@x", "https://x:99999"):
        assert webchat.normalise_origin(bad) is None, bad


# --- what a message becomes ------------------------------------------------------------------------------


async def test_a_retried_post_stores_one_message(
    client: TestClient, widget: WidgetConfig, sessions: async_sessionmaker[AsyncSession]
) -> None:
    data = payload(visitor())
    first = await post(client, widget, data)
    again = await post(client, widget, data)
    assert first[0] == 201 and again[0] == 200
    assert again[1] == {"id": first[1]["id"], "message_id": data["message_id"], "duplicate": True}
    assert await count(sessions, Message) == 1


async def test_page_url_referrer_and_utm_become_the_leads_source(
    client: TestClient, widget: WidgetConfig, sessions: async_sessionmaker[AsyncSession]
) -> None:
    data = payload(
        visitor(),
        name="Ion Popescu",
        page_url="https://shop.example.md/credit?utm_source=google&utm_campaign=spring",
        referrer="https://www.google.com/",
        utm={"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring", "utm_term": "x" * 500},
    )
    assert (await post(client, widget, data))[0] == 201
    async with sessions() as db:
        lead = (await db.scalars(select(Lead))).one()
        contact = await db.get(Contact, lead.contact_id)
    assert lead.source_channel == "webchat"
    assert lead.page_url == data["page_url"] and lead.referrer == "https://www.google.com/"
    assert (lead.utm_source, lead.utm_medium, lead.utm_campaign) == ("google", "cpc", "spring")
    assert lead.utm_term == "x" * 200
    assert contact is not None and (contact.first_name, contact.last_name) == ("Ion", "Popescu")


async def test_the_prechat_phone_links_the_visitor_to_an_existing_contact(
    client: TestClient, widget: WidgetConfig, app: web.Application, sessions: async_sessionmaker[AsyncSession]
) -> None:
    known = await app[keys.INBOX].ingest(
        InboundMessage(
            Channel.TELEGRAM, "bot", "tg-1", "tg-user-7", body="hello", sender_phone="+37369123456"
        )
    )
    data = payload(visitor(), name="Maria", phone="069 123 456")
    status, body, _ = await post(client, widget, data)
    assert status == 201
    assert await conversation_of(sessions, body["id"]) == known.conversation_id
    assert await count(sessions, Contact) == 1
    assert await count(sessions, ContactIdentity, ContactIdentity.channel == "webchat") == 1


# --- replies back to the visitor --------------------------------------------------------------------------


async def _frames_until(ws: Any, predicate: Any) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while True:
            msg = await ws.receive()
            assert msg.type is WSMsgType.TEXT, msg
            frames.append(json.loads(msg.data))
            if predicate(frames[-1]):
                return frames


async def test_an_agent_reply_reaches_the_visitor_live_and_by_polling_and_a_note_never_does(
    client: TestClient,
    widget: WidgetConfig,
    app: web.Application,
    make_user: MakeUser,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    me = visitor()
    status, first, _ = await post(client, widget, payload(me, "Cât costă?"))
    assert status == 201
    conversation = await conversation_of(sessions, first["id"])
    ws = await client.ws_connect(
        f"/widget/{widget.public_key}/ws?visitor={me}&after=0", headers={"Origin": ORIGIN}
    )
    frames = await _frames_until(ws, lambda f: f.get("type") == "message")
    assert frames[0] == {"type": "status", "online": False}
    assert frames[-1]["message"]["body"] == "Cât costă?"  # the history the socket starts with
    assert frames[-1]["message"]["client_id"] and frames[-1]["message"]["direction"] == "in"

    admin = await make_user(Role.ADMIN)
    viewer = Viewer(admin.id, Role.ADMIN, None)
    inbox = app[keys.INBOX]
    await inbox.send(viewer, conversation, "Private: this one asked before, twice", note=True)
    reply = await inbox.send(viewer, conversation, "Dobânda este 9%")
    assert await app[keys.WORKER].run_once() == 1  # only the reply is a delivery job

    frames = await _frames_until(ws, lambda f: f.get("type") == "message")
    assert frames[-1]["message"]["id"] == reply.id
    assert frames[-1]["message"]["body"] == "Dobânda este 9%"
    assert frames[-1]["message"]["direction"] == "out"
    assert set(frames[-1]["message"]) == {"id", "direction", "kind", "body", "created_at", "client_id"}

    # a message over the socket is acknowledged, stored and echoed to the visitor's other tabs
    data = payload(me, "Mulțumesc")
    await ws.send_json({"type": "message", **data})
    frames = await _frames_until(ws, lambda f: f.get("type") == "ack")
    ack = frames[-1]
    assert ack["message_id"] == data["message_id"] and not ack["duplicate"]
    await ws.send_json({"type": "message", **{**data, "visitor_id": visitor()}})
    refused = await _frames_until(ws, lambda f: f.get("type") == "error")
    assert refused[-1]["status"] == 422
    await ws.send_json({"type": "ping"})
    rest = await _frames_until(ws, lambda f: f.get("type") == "pong")
    everything = json.dumps(frames + refused + rest)
    assert "Private" not in everything
    await ws.close()

    response = await client.get(
        f"/widget/{widget.public_key}/messages?visitor={me}&after=0", headers={"Origin": ORIGIN}
    )
    assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == ORIGIN
    polled = await response.json()
    assert [(m["direction"], m["body"]) for m in polled["messages"]] == [
        ("in", "Cât costă?"),
        ("out", "Dobânda este 9%"),
        ("in", "Mulțumesc"),
    ]
    assert "Private" not in json.dumps(polled)
    response = await client.get(
        f"/widget/{widget.public_key}/messages?visitor={me}&after={reply.id}", headers={"Origin": ORIGIN}
    )
    assert [m["body"] for m in (await response.json())["messages"]] == ["Mulțumesc"]


async def test_a_phone_linked_visitor_reads_only_their_own_exchange(
    client: TestClient,
    widget: WidgetConfig,
    app: web.Application,
    make_user: MakeUser,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    owner, stranger = visitor(), visitor()
    _, first, _ = await post(client, widget, payload(owner, "my salary is 9000", phone="069123456"))
    admin = await make_user(Role.ADMIN)
    await app[keys.INBOX].send(
        Viewer(admin.id, Role.ADMIN, None), await conversation_of(sessions, first["id"]), "approved"
    )
    await app[keys.WORKER].run_once()
    # Someone else types the same (unverified) phone number: linked to the contact, blind to its past.
    _, second, _ = await post(client, widget, payload(stranger, "hi", phone="+373 69 123 456"))
    assert await conversation_of(sessions, second["id"]) == await conversation_of(sessions, first["id"])
    response = await client.get(
        f"/widget/{widget.public_key}/messages?visitor={stranger}", headers={"Origin": ORIGIN}
    )
    assert [m["body"] for m in (await response.json())["messages"]] == ["hi"]


async def test_polling_needs_the_origin_and_a_well_formed_visitor(
    client: TestClient, widget: WidgetConfig
) -> None:
    path = f"/widget/{widget.public_key}/messages"
    assert (await client.get(f"{path}?visitor={visitor()}")).status == 403
    assert (await client.get(f"{path}?visitor=bad", headers={"Origin": ORIGIN})).status == 422
    assert (await client.get(f"{path}?visitor={visitor()}&after=x", headers={"Origin": ORIGIN})).status == 422
    ws_refused = await client.get(f"/widget/{widget.public_key}/ws?visitor={visitor()}")
    assert ws_refused.status == 403


async def test_the_sender_never_sends_a_note_and_publishes_on_the_visitors_topic() -> None:
    bus = InMemoryBus()
    await bus.start()
    send = webchat.make_sender(bus)
    someone = visitor()
    async with bus.subscribe("webchat.out.*") as events:
        provider_id = await send(OutboundMessage(7, Channel.WEBCHAT, "3", someone, "hello"))
        event = await asyncio.wait_for(anext(events), 1)
    assert provider_id.external_id == f"{someone}:agent:7"
    assert event.topic == f"webchat.out.3.{someone}" and event.data["message"]["body"] == "hello"
    with pytest.raises(PermanentJobError):
        await send(OutboundMessage(8, Channel.WEBCHAT, "3", someone, "secret", kind=MessageKind.NOTE))
    with pytest.raises(PermanentJobError):
        await send(OutboundMessage(9, Channel.WEBCHAT, "3", "not a visitor", "hello"))
    await bus.close()


async def test_the_script_is_served_with_a_long_cache(client: TestClient) -> None:
    response = await client.get("/widget.js")
    assert response.status == 200
    assert response.content_type == "text/javascript"
    assert "max-age=86400" in response.headers["Cache-Control"]
    assert "innerHTML" not in await response.text()


@pytest.mark.redis
async def test_a_reply_sent_by_a_worker_in_another_process_reaches_the_socket(
    aiohttp_client: Any, settings: Settings, sessions: async_sessionmaker[AsyncSession], widget: WidgetConfig
) -> None:
    """Socket in one hub process, delivery job in another: the reply crosses over Redis."""
    app = build_app(settings.model_copy(update={"bus": "redis", "redis_url": redis_url()}))
    setup_webchat(app)
    client = await aiohttp_client(app)
    me = visitor()
    ws = await client.ws_connect(f"/widget/{widget.public_key}/ws?visitor={me}", headers={"Origin": ORIGIN})
    await _frames_until(ws, lambda f: f.get("type") == "status")
    worker_bus = RedisBus(redis_url())
    await worker_bus.start()
    try:
        await webchat.make_sender(worker_bus)(
            OutboundMessage(41, Channel.WEBCHAT, widget.account_id, me, "from the other process")
        )
        frames = await _frames_until(ws, lambda f: f.get("type") == "message")
        assert frames[-1]["message"]["body"] == "from the other process"
    finally:
        await worker_bus.close()
        await ws.close()


def test_setup_connects_the_sender_before_the_worker_starts_and_only_once(settings: Settings) -> None:
    app = build_app(settings)
    setup_webchat(app, before=_worker)
    setup_webchat(app, before=_worker)  # build_app may already have done it: no second copy
    names = [getattr(ctx, "__name__", "") for ctx in app.cleanup_ctx]
    assert names.count("_webchat_ctx") == 1
    assert names.index("_webchat_ctx") == names.index("_worker") - 1
