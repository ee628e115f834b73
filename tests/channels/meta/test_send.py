"""Replies to Messenger and Instagram customers: the inbox stores them, the jobs worker hands them to the real
Graph client against the fake Graph API; Meta's echoes, deliveries and reads come back as webhooks."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import TemplateRef
from inbox.service import Viewer
from switchboard.app import build_app
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.channels.conftest import messages_of, run_until_sent, stored_message
from tests.channels.meta.conftest import PAGE_TOKEN, Client, Meta, post_hook
from tests.conftest import MakeUser
from tests.fakes.meta import FakeGraph
from webui import keys


async def reply(
    meta_client: Client,
    meta_app: web.Application,
    meta: Meta,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
    text: str,
    *,
    template: TemplateRef | None = None,
    attachments: list[dict[str, object]] | None = None,
) -> int:
    """The customer writes first (opening the 24-hour window), then an admin answers through the inbox."""
    await post_hook(meta_client, meta, meta.fixture("text"))
    conversation = (await messages_of(sessions, meta.account))[0].conversation_id
    admin = await make_user(Role.ADMIN)
    sent = await meta_app[keys.INBOX].send(
        Viewer(admin.id, Role.ADMIN, None),
        conversation,
        text,
        template=template,
        attachments=attachments or (),
    )
    return int(sent.id)


async def test_a_reply_reaches_the_send_api_with_the_recipient_and_text(
    meta_client: Client,
    meta_app: web.Application,
    meta: Meta,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeGraph,
    make_user: MakeUser,
) -> None:
    message_id = await reply(meta_client, meta_app, meta, sessions, make_user, "Bună ziua! Vă sunăm imediat.")
    assert await meta_app[keys.WORKER].run_once() == 1
    [call] = fake.calls_of("messages")
    assert call.method == "POST" and call.token == PAGE_TOKEN
    assert call.node == (meta.own_id if meta.name == "messenger" else "me")
    assert call.body == {
        "recipient": {"id": meta.customer},
        "messaging_type": "RESPONSE",
        "message": {"text": "Bună ziua! Vă sunăm imediat."},
    }
    assert "access_token" not in call.query  # the token travels in the header, never in a URL
    sent = await stored_message(sessions, message_id)
    assert (sent.status, sent.external_id) == ("sent", "m_fake000001")


async def test_a_reply_with_a_message_tag_is_sent_as_message_tag(
    meta_client: Client,
    meta_app: web.Application,
    meta: Meta,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeGraph,
    make_user: MakeUser,
) -> None:
    tag = TemplateRef("HUMAN_AGENT")
    message_id = await reply(
        meta_client, meta_app, meta, sessions, make_user, "Revenim cu oferta.", template=tag
    )
    await meta_app[keys.WORKER].run_once()
    [call] = fake.calls_of("messages")
    assert call.body["messaging_type"] == "MESSAGE_TAG" and call.body["tag"] == "HUMAN_AGENT"
    assert call.body["message"] == {"text": "Revenim cu oferta."}
    assert (await stored_message(sessions, message_id)).status == "sent"


async def test_a_5xx_twice_then_200_is_delivered_once(
    meta_client: Client,
    meta_app: web.Application,
    meta: Meta,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeGraph,
    make_user: MakeUser,
) -> None:
    fake.fail("messages", 503, times=2)
    message_id = await reply(meta_client, meta_app, meta, sessions, make_user, "Revin imediat")
    sent = await run_until_sent(meta_app, sessions, message_id)
    assert (sent.status, sent.external_id) == ("sent", "m_fake000001")
    assert len(fake.calls_of("messages")) == 3  # two refused, one accepted: one message reached Meta


async def test_a_rate_limit_answered_as_400_is_retried(
    meta_client: Client,
    meta_app: web.Application,
    meta: Meta,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeGraph,
    make_user: MakeUser,
) -> None:
    fake.fail("messages", 400, code=613)
    message_id = await reply(meta_client, meta_app, meta, sessions, make_user, "Un moment")
    assert (await run_until_sent(meta_app, sessions, message_id)).status == "sent"
    assert len(fake.calls_of("messages")) == 2


async def test_a_permanent_graph_error_marks_the_message_failed_with_metas_reason(
    meta_client: Client,
    meta_app: web.Application,
    meta: Meta,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeGraph,
    make_user: MakeUser,
) -> None:
    fake.fail("messages", 400, code=10, subcode=2018278, times=5)
    message_id = await reply(meta_client, meta_app, meta, sessions, make_user, "Mai sunteți acolo?")
    await meta_app[keys.WORKER].run_once()
    failed = await stored_message(sessions, message_id)
    assert failed.status == "failed"
    assert failed.error == "(#10) This message is sent outside of allowed window."
    assert len(fake.calls_of("messages")) == 1  # permanent: no retry


async def test_a_file_without_a_public_address_fails_with_a_clear_reason(
    meta_client: Client,
    meta_app: web.Application,
    meta: Meta,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeGraph,
    make_user: MakeUser,
) -> None:
    stored: dict[str, object] = {
        "content_type": "application/pdf",
        "filename": "oferta.pdf",
        "stored_path": "ab/cd/oferta",
    }
    message_id = await reply(meta_client, meta_app, meta, sessions, make_user, "", attachments=[stored])
    await meta_app[keys.WORKER].run_once()
    failed = await stored_message(sessions, message_id)
    assert failed.status == "failed" and failed.error is not None and "public" in failed.error
    assert fake.calls_of("messages") == []


async def test_the_echo_of_our_own_send_is_not_stored_again(
    meta_client: Client,
    meta_app: web.Application,
    meta: Meta,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
) -> None:
    message_id = await reply(
        meta_client, meta_app, meta, sessions, make_user, "Vă sună un expert în 5 minute."
    )
    await meta_app[keys.WORKER].run_once()
    mid = (await stored_message(sessions, message_id)).external_id
    assert mid
    for _ in range(2):
        assert await post_hook(meta_client, meta, meta.fixture("echo", mid=mid)) == (200, "EVENT_RECEIVED")
    stored = await messages_of(sessions, meta.account)
    assert [(m.direction, m.external_id) for m in stored][1:] == [("out", mid)]
    assert [m.direction for m in stored].count("in") == 1  # the customer's first message only
    assert stored[1].status == "sent"


async def test_a_messenger_delivery_moves_the_tick_to_delivered(
    meta_client: Client,
    meta_app: web.Application,
    messenger: Meta,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
) -> None:
    message_id = await reply(meta_client, meta_app, messenger, sessions, make_user, "Oferta e gata.")
    await meta_app[keys.WORKER].run_once()
    mid = (await stored_message(sessions, message_id)).external_id
    assert mid
    assert (await post_hook(meta_client, messenger, messenger.fixture("delivery", mid=mid)))[0] == 200
    delivered = await stored_message(sessions, message_id)
    assert delivered.status == "delivered" and delivered.delivered_at is not None


async def test_a_messenger_read_watermark_moves_every_message_sent_before_it_to_read(
    meta_client: Client,
    meta_app: web.Application,
    messenger: Meta,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
) -> None:
    message_id = await reply(meta_client, meta_app, messenger, sessions, make_user, "Oferta e gata.")
    await meta_app[keys.WORKER].run_once()
    early = messenger.fixture("read")  # a watermark from before our send: changes nothing
    assert await post_hook(meta_client, messenger, early) == (200, "EVENT_RECEIVED")
    assert (await stored_message(sessions, message_id)).status == "sent"
    late = messenger.fixture("read")
    late["entry"][0]["messaging"][0]["read"]["watermark"] = int(time.time() * 1000) + 1000
    assert await post_hook(meta_client, messenger, late) == (200, "EVENT_RECEIVED")
    read = await stored_message(sessions, message_id)
    assert read.status == "read" and read.read_at is not None
    assert len(await messages_of(sessions, messenger.account)) == 2


async def test_an_instagram_seen_moves_the_tick_to_read(
    meta_client: Client,
    meta_app: web.Application,
    instagram: Meta,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
) -> None:
    message_id = await reply(meta_client, meta_app, instagram, sessions, make_user, "Oferta e gata.")
    await meta_app[keys.WORKER].run_once()
    mid = (await stored_message(sessions, message_id)).external_id
    assert mid
    assert (await post_hook(meta_client, instagram, instagram.fixture("seen", mid=mid)))[0] == 200
    seen = await stored_message(sessions, message_id)
    assert seen.status == "read" and seen.read_at is not None


async def test_a_stored_file_goes_to_meta_by_the_hubs_signed_public_link(
    aiohttp_client: Callable[..., Awaitable[Client]],
    meta_settings: Settings,
    meta: Meta,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeGraph,
    make_user: MakeUser,
) -> None:
    app = build_app(meta_settings.model_copy(update={"public_url": "https://hub.example.md"}))
    client = await aiohttp_client(app)
    stored: dict[str, object] = {
        "content_type": "image/png",
        "filename": "grafic.png",
        "stored_path": "ab/grafic",
    }
    message_id = await reply(
        client, app, meta, sessions, make_user, "Graficul de plăți", attachments=[stored]
    )
    await app[keys.WORKER].run_once()
    image, text = (call.body["message"] for call in fake.calls_of("messages"))
    assert image["attachment"]["type"] == "image"
    assert image["attachment"]["payload"]["url"].startswith("https://hub.example.md/media/")
    assert image["attachment"]["payload"]["url"].endswith("/grafic.png")
    assert text == {"text": "Graficul de plăți"}
    sent = await stored_message(sessions, message_id)
    assert sent.status == "sent" and sent.external_id == "m_fake000001"
    assert sent.meta["mids"] == ["m_fake000001", "m_fake000002"]


async def test_an_inbound_photo_is_brought_from_the_cdn_into_the_file_store(
    meta_client: Client,
    meta_app: web.Application,
    meta: Meta,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeGraph,
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
    body = meta.fixture("image")
    event = body["entry"][0]["messaging"][0]["message"]
    event["attachments"] = [
        {"type": "image", "payload": {"url": fake.add_media("ig_photo.png", png, "image/png")}}
    ]
    assert (await post_hook(meta_client, meta, body))[0] == 200
    assert await meta_app[keys.WORKER].run_once() == 1
    [photo] = await messages_of(sessions, meta.account)
    [attachment] = photo.attachments
    assert (
        attachment["stored_path"]
        and attachment["content_type"] == "image/png"
        and attachment["size"] == len(png)
    )
