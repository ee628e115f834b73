"""Viber end to end: the real aiohttp client against the fake Viber REST API, webhooks through the app,
signed the way Viber signs them (hex HMAC-SHA256 of the body with the auth token)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import accounts as channel_accounts
from channels.accounts_model import ChannelAccount
from channels.base import BadPayload, TransientChannelError, WebhookRequest
from channels.model import (
    Attachment,
    Channel,
    ConsentUpdate,
    DeliveryStatus,
    DeliveryUpdate,
    InboundMessage,
    MessageKind,
    OutboundMessage,
)
from channels.providers import provider_of
from channels.secrets import SecretBox
from channels.viber.adapter import EVENT_TYPES, SIGNATURE_HEADER, ViberAdapter, sign
from channels.viber.client import ViberClient
from channels.viber.outbound import text_parts
from crm_core.models import Contact, ContactIdentity
from inbox.service import Viewer
from switchboard.app import build_app
from switchboard.audit import SYSTEM
from switchboard.errors import Invalid
from switchboard.jobs import PermanentJobError
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.channels.conftest import messages_of, reply_as_admin, run_until_sent, stored_message
from tests.conftest import MakeUser
from tests.fakes.viber import ACCOUNT_ID, ACCOUNT_URI, FIRST_TOKEN, FakeViber
from webui import keys

FIXTURES = Path(__file__).parent / "fixtures"
VbClient = TestClient[web.Request, web.Application]
TOKEN = "4dc7a8e1b0f3c9d2-1234abcd5678efgh-9012ijkl3456mnop"
USER = "01234567890A="
ACCOUNT_NAME = "Credit Moldova — consultanți online"  # longer than Viber's 28 characters


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


@pytest.fixture
async def fake() -> AsyncIterator[FakeViber]:
    server = FakeViber(tokens={TOKEN})
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def vb_settings(settings: Settings, fake: FakeViber) -> Settings:
    return settings.model_copy(update={"viber_api_base": fake.base_url, "jobs_backoff_base_seconds": 0.01})


@pytest.fixture
async def vb_app(vb_settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> web.Application:
    return build_app(vb_settings)


@pytest.fixture
async def vb_client(aiohttp_client: Callable[..., Awaitable[VbClient]], vb_app: web.Application) -> VbClient:
    return await aiohttp_client(vb_app)


@pytest.fixture
async def account(sessions: async_sessionmaker[AsyncSession], vb_settings: Settings) -> ChannelAccount:
    async with sessions() as db, db.begin():
        return await channel_accounts.create_account(
            db,
            SYSTEM,
            SecretBox(vb_settings.secret),
            channel=Channel.VIBER,
            name=ACCOUNT_NAME,
            secrets={"token": TOKEN},
            config={"name": "Credit Moldova", "uri": ACCOUNT_URI},
        )


async def post_callback(
    client: VbClient,
    account: ChannelAccount,
    body: Any,
    *,
    signature: str | None = "right",
) -> tuple[int, dict[str, Any]]:
    raw = (body if isinstance(body, str) else json.dumps(body)).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "right":
        headers[SIGNATURE_HEADER] = sign(raw, TOKEN)
    elif signature is not None:
        headers[SIGNATURE_HEADER] = signature
    response = await client.post(f"/webhooks/viber/{account.id}", data=raw, headers=headers)
    return response.status, await response.json()


def _adapter(fake: FakeViber, *, timeout: float = 5.0) -> ViberAdapter:
    return ViberAdapter("7", TOKEN, ACCOUNT_NAME, ViberClient(TOKEN, fake.base_url, timeout=timeout))


def _hook(body: bytes) -> WebhookRequest:
    return WebhookRequest(
        "POST", "https://hub.example.md/webhooks/viber/7", {SIGNATURE_HEADER: sign(body, TOKEN)}, {}, body
    )


# --- inbound ----------------------------------------------------------------------------------------------


async def test_text_and_media_arrive_as_one_message_each_in_one_conversation(
    vb_client: VbClient,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    names = ("text", "picture", "file", "video", "contact", "location", "sticker", "url")
    for name in names:
        status, body = await post_callback(vb_client, account, fixture(name))
        assert (status, body) == (200, {"ok": True}), name
    stored = await messages_of(sessions, account)
    assert [m.kind for m in stored] == [
        "text",
        "image",
        "file",
        "video",
        "contact",
        "location",
        "image",
        "text",
    ]
    assert len({m.conversation_id for m in stored}) == 1
    assert len({m.author_contact_id for m in stored}) == 1
    text, picture, document, video, contact, location, sticker, link = stored
    assert text.body == "Bună ziua! Vreau un credit de 50000 lei."
    assert text.external_id == "5741311803571700101" and text.direction == "in" and text.channel == "viber"
    assert text.meta["country"] == "MD"
    assert picture.body == "Buletinul meu"
    assert picture.attachments[0]["url"] == fixture("picture")["message"]["media"]
    assert picture.attachments[0]["content_type"] == "image/jpeg"
    assert picture.attachments[0]["filename"] == "IMG_2025.jpg"
    assert (document.attachments[0]["filename"], document.attachments[0]["size"]) == ("adeverinta.pdf", 88213)
    assert document.attachments[0]["content_type"] == "application/pdf"
    assert video.attachments[0]["content_type"] == "video/mp4" and video.meta["duration"] == 12
    assert contact.body == "Maria Popescu +37369123456"
    assert location.body == "47.024512,28.832157"
    assert sticker.attachments[0]["url"].endswith("00040138.png") and sticker.meta["sticker_id"] == 40138
    assert link.body == "https://www.bnm.md/ro/content/rate-de-schimb"
    async with sessions() as db:
        customer = await db.get(Contact, text.author_contact_id)
    assert customer is not None
    assert (customer.first_name, customer.last_name) == ("Ion", "Popescu")
    assert customer.phone is None  # a shared contact is not the customer's own number


async def test_a_voice_note_becomes_an_audio_attachment(
    vb_client: VbClient,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    as_file = fixture("voice")
    as_video = fixture("voice")  # some Viber clients send the recording as a video message
    as_video["message_token"] += 1
    as_video["message"] = {
        "type": "video",
        "media": "https://dl-media.viber.com/3/media/2/short/any/sig/video/0x0/77aa/record.m4a?Expires=1",
        "file_size": 8120,
        "duration": 3,
    }
    for body in (as_file, as_video):
        assert (await post_callback(vb_client, account, body))[0] == 200
    first, second = await messages_of(sessions, account)
    assert (first.kind, second.kind) == (MessageKind.AUDIO, MessageKind.AUDIO)
    assert first.attachments[0]["content_type"] == "audio/mp4"
    assert first.attachments[0]["filename"] == "Voice message.m4a"
    assert first.attachments[0]["url"] == as_file["message"]["media"]
    assert second.attachments[0]["filename"] == "record.m4a"


async def test_the_same_callback_twice_is_one_message(
    vb_client: VbClient,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    assert (await post_callback(vb_client, account, fixture("text")))[0] == 200
    assert (await post_callback(vb_client, account, fixture("text")))[0] == 200
    assert len(await messages_of(sessions, account)) == 1


@pytest.mark.parametrize(
    ("signature", "status"), [(None, 401), ("0" * 64, 403), (sign(b"other", TOKEN), 403)]
)
async def test_a_missing_or_wrong_signature_is_refused_and_nothing_stored(
    vb_client: VbClient,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    signature: str | None,
    status: int,
) -> None:
    got, body = await post_callback(vb_client, account, fixture("text"), signature=signature)
    assert got == status and body["ok"] is False and SIGNATURE_HEADER in body["error"]
    assert await messages_of(sessions, account) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"timestamp": 1763900040000}), "event"),
        (json.dumps({**fixture("text"), "sender": None}), "sender"),
        (json.dumps({**fixture("text"), "message": {"text": "no type"}}), "message.type"),
        (json.dumps({**fixture("delivered"), "message_token": "abc"}), "message_token"),
    ],
)
async def test_a_malformed_body_is_400_with_a_reason(
    vb_client: VbClient,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    body: str,
    reason: str,
) -> None:
    status, answer = await post_callback(vb_client, account, body)
    assert status == 400 and answer["ok"] is False and reason in answer["error"]
    assert await messages_of(sessions, account) == []


async def test_the_webhook_check_and_a_started_conversation_store_nothing(
    vb_client: VbClient,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    unknown = {"event": "client_status", "timestamp": 1763900000000}  # an event Viber may add one day
    for body in (fixture("webhook"), fixture("conversation_started"), unknown):
        assert await post_callback(vb_client, account, body) == (200, {"ok": True})
    assert await messages_of(sessions, account) == []
    async with sessions() as db:
        assert (await db.scalars(select(ContactIdentity))).all() == []


async def test_an_inbound_picture_is_fetched_into_the_file_store_by_the_media_job(
    vb_client: VbClient,
    vb_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeViber,
) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"p" * 5000
    picture = fixture("picture")
    picture["message"]["media"] = fake.add_media("95e0.jpg", jpeg, "image/jpeg")
    assert (await post_callback(vb_client, account, picture))[0] == 200
    assert await vb_app[keys.WORKER].run_once() == 1
    [message] = await messages_of(sessions, account)
    [attachment] = message.attachments
    assert attachment["stored_path"] and attachment["url"] is None
    assert attachment["size"] == len(jpeg) and attachment["content_type"] == "image/jpeg"
    assert fake.media_requests == ["95e0.jpg"]


# --- outbound ---------------------------------------------------------------------------------------------


async def _reply(
    make_user: MakeUser,
    vb_client: VbClient,
    vb_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    text: str,
) -> int:
    await post_callback(vb_client, account, fixture("text"))
    return await reply_as_admin(vb_app, sessions, account, make_user, text)


async def test_a_reply_reaches_viber_with_the_receiver_sender_name_and_text(
    vb_client: VbClient,
    vb_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeViber,
    make_user: MakeUser,
) -> None:
    message_id = await _reply(make_user, vb_client, vb_app, account, sessions, "Bună ziua, Ion!")
    assert await vb_app[keys.WORKER].run_once() == 1
    [call] = fake.calls_of("send_message")
    assert call.token == TOKEN
    assert call.body == {
        "receiver": USER,
        "type": "text",
        "text": "Bună ziua, Ion!",
        "sender": {"name": ACCOUNT_NAME[:28]},
    }
    message = await stored_message(sessions, message_id)
    assert message.status == "sent" and message.external_id == str(FIRST_TOKEN)


async def test_a_5xx_twice_then_200_is_delivered_once(
    vb_client: VbClient,
    vb_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeViber,
    make_user: MakeUser,
) -> None:
    fake.fail_http("send_message", 502, times=2)
    message_id = await _reply(make_user, vb_client, vb_app, account, sessions, "Revin imediat")
    message = await run_until_sent(vb_app, sessions, message_id)
    assert message.status == "sent" and message.external_id == str(FIRST_TOKEN)
    assert len(fake.calls_of("send_message")) == 3  # two refused, one accepted: sent once
    for _ in range(3):
        await vb_app[keys.WORKER].run_once()
    assert len(fake.calls_of("send_message")) == 3


async def test_a_permanent_viber_error_marks_the_message_failed_with_the_reason(
    vb_client: VbClient,
    vb_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeViber,
    make_user: MakeUser,
) -> None:
    fake.fail_status("send_message", 6, times=5)
    message_id = await _reply(make_user, vb_client, vb_app, account, sessions, "Mai sunteți acolo?")
    await vb_app[keys.WORKER].run_once()
    message = await stored_message(sessions, message_id)
    assert message.status == "failed"
    assert message.error is not None and message.error.startswith("receiverNotSubscribed")
    assert "Viber status 6" in message.error
    assert len(fake.calls_of("send_message")) == 1  # permanent: no retry


async def test_delivered_and_seen_callbacks_move_the_ticks_and_failed_records_the_reason(
    vb_client: VbClient,
    vb_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeViber,
    make_user: MakeUser,
) -> None:
    message_id = await _reply(make_user, vb_client, vb_app, account, sessions, "Oferta e gata")
    await vb_app[keys.WORKER].run_once()
    assert (await stored_message(sessions, message_id)).external_id == str(FIRST_TOKEN)
    assert (await post_callback(vb_client, account, fixture("delivered")))[0] == 200
    delivered = await stored_message(sessions, message_id)
    assert delivered.status == "delivered" and delivered.delivered_at is not None
    assert (await post_callback(vb_client, account, fixture("seen")))[0] == 200
    seen = await stored_message(sessions, message_id)
    assert seen.status == "read" and seen.read_at is not None
    assert (await post_callback(vb_client, account, fixture("delivered")))[0] == 200
    assert (await stored_message(sessions, message_id)).status == "read"  # ticks never go back
    assert (await post_callback(vb_client, account, fixture("failed")))[0] == 200
    failed = await stored_message(sessions, message_id)
    assert (failed.status, failed.error) == ("failed", "failure description")


async def test_unsubscribed_marks_the_identity_and_the_inbox_refuses_to_send(
    vb_client: VbClient,
    vb_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeViber,
    make_user: MakeUser,
) -> None:
    await post_callback(vb_client, account, fixture("text"))
    conversation = (await messages_of(sessions, account))[0].conversation_id
    assert await post_callback(vb_client, account, fixture("unsubscribed")) == (200, {"ok": True})
    async with sessions() as db:
        identity = await db.scalar(select(ContactIdentity).where(ContactIdentity.channel == "viber"))
    assert identity is not None and identity.external_id == USER and identity.unsubscribed_at is not None
    admin = await make_user(Role.ADMIN)
    viewer = Viewer(admin.id, Role.ADMIN, None)
    with pytest.raises(Invalid):
        await vb_app[keys.INBOX].send(viewer, conversation, "Mai aveți nevoie de credit?")
    assert fake.calls_of("send_message") == []

    assert (await post_callback(vb_client, account, fixture("subscribed")))[0] == 200
    async with sessions() as db:
        again = await db.get(ContactIdentity, identity.id)
    assert again is not None and again.unsubscribed_at is None
    await vb_app[keys.INBOX].send(viewer, conversation, "Bine ați revenit!")
    await vb_app[keys.WORKER].run_once()
    assert len(fake.calls_of("send_message")) == 1


async def test_a_subscription_from_someone_new_makes_a_contact_and_no_message(
    vb_client: VbClient,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    assert (await post_callback(vb_client, account, fixture("subscribed")))[0] == 200
    assert await messages_of(sessions, account) == []
    async with sessions() as db:
        [identity] = (await db.scalars(select(ContactIdentity))).all()
        contact = await db.get(Contact, identity.contact_id)
    assert identity.external_id == USER and identity.unsubscribed_at is None
    assert contact is not None and contact.first_name == "Ion"


async def test_attachments_go_as_picture_video_and_file_with_their_urls(fake: FakeViber) -> None:
    adapter = _adapter(fake)
    base = "https://hub.example.md/media/t0k3n"
    message = OutboundMessage(
        1,
        Channel.VIBER,
        "7",
        USER,
        "Contractul și graficul de plăți",
        MessageKind.IMAGE,
        attachments=(
            Attachment("image/png", "grafic.png", 48_000, f"{base}/grafic.png"),
            Attachment("video/mp4", "prezentare.mp4", 3_000_000, f"{base}/prezentare.mp4"),
            Attachment("application/pdf", "contract.pdf", 120_000, f"{base}/contract.pdf"),
            Attachment("image/png", "scan.png", 5_000_000, f"{base}/scan.png"),  # over 1 MB: a file
        ),
    )
    try:
        sent = await adapter.send(message)
    finally:
        await adapter.close()
    picture, video, document, big = (c.body for c in fake.calls_of("send_message"))
    assert sent.external_id == str(FIRST_TOKEN) and sent.meta == {"parts": 4}
    assert picture["type"] == "picture" and picture["media"] == f"{base}/grafic.png"
    assert picture["text"] == "Contractul și graficul de plăți"
    assert video == {
        "type": "video",
        "media": f"{base}/prezentare.mp4",
        "size": 3_000_000,
        "receiver": USER,
        "sender": {"name": ACCOUNT_NAME[:28]},
    }
    assert (document["type"], document["file_name"], document["size"]) == ("file", "contract.pdf", 120_000)
    assert (big["type"], big["file_name"]) == ("file", "scan.png")


async def test_an_attachment_without_a_public_url_fails_for_good_with_a_clear_reason(fake: FakeViber) -> None:
    adapter = _adapter(fake)
    stored_only = Attachment("application/pdf", "contract.pdf", 1000, None, stored_path="ab/cd/contract.pdf")
    message = OutboundMessage(1, Channel.VIBER, "7", USER, "Contractul", attachments=(stored_only,))
    try:
        with pytest.raises(PermanentJobError, match="public"):
            await adapter.send(message)
        with pytest.raises(PermanentJobError, match="empty"):
            await adapter.send(replace(message, body=" ", attachments=()))
    finally:
        await adapter.close()
    assert fake.calls_of("send_message") == []  # nothing half-sent


async def test_long_text_goes_in_parts_within_vibers_limit(fake: FakeViber) -> None:
    words = "credit " * 2100  # 14,700 characters
    parts = text_parts(words)
    assert len(parts) == 3 and all(len(p) <= 7000 for p in parts)
    assert " ".join(parts).split() == words.split()
    adapter = _adapter(fake)
    try:
        sent = await adapter.send(OutboundMessage(1, Channel.VIBER, "7", USER, words))
    finally:
        await adapter.close()
    assert len(fake.calls_of("send_message")) == 3 and sent.meta == {"parts": 3}


# --- the account: webhook, check, errors, media -------------------------------------------------------------


async def test_connect_check_and_disconnect_call_viber(
    fake: FakeViber,
    vb_settings: Settings,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    adapters = channel_accounts.Adapters(sessions, SecretBox(vb_settings.secret), vb_settings)
    adapter = await adapters.get(Channel.VIBER, account.id)
    assert isinstance(adapter, ViberAdapter)
    url = f"https://hub.example.md/webhooks/viber/{account.id}"
    await adapter.connect(url)
    assert await adapter.check() == {"name": "Credit Moldova", "uri": ACCOUNT_URI, "id": ACCOUNT_ID}
    await adapter.disconnect()
    await adapters.close()
    connect, disconnect = fake.calls_of("set_webhook")
    assert connect.token == TOKEN
    assert connect.body == {
        "url": url,
        "event_types": list(EVENT_TYPES),
        "send_name": True,
        "send_photo": False,
    }
    assert disconnect.body == {"url": ""}
    assert fake.webhook == ""


async def test_vibers_webhook_check_reaches_the_hub_and_is_answered(
    vb_client: VbClient,
    fake: FakeViber,
    account: ChannelAccount,
    vb_settings: Settings,
) -> None:
    fake.check_webhook = True  # like Viber: set_webhook first POSTs a signed `webhook` callback
    provider = provider_of(Channel.VIBER)
    assert provider is not None and provider.title == "Viber"
    adapter = provider.build(channel_accounts.data_of(account, SecretBox(vb_settings.secret)), vb_settings)
    try:
        await adapter.connect(str(vb_client.make_url(f"/webhooks/viber/{account.id}")))
        with pytest.raises(PermanentJobError, match="invalidUrl"):
            await adapter.connect(str(vb_client.make_url("/webhooks/viber/999999")))
    finally:
        await adapter.close()
    assert fake.webhook.endswith(f"/webhooks/viber/{account.id}")


async def test_client_errors_map_to_permanent_or_retryable(fake: FakeViber) -> None:
    client = ViberClient(TOKEN, fake.base_url, timeout=0.5)
    try:
        for status in (2, 3, 5, 6, 7):
            fake.fail_status("get_account_info", status)
            with pytest.raises(PermanentJobError, match=f"Viber status {status}"):
                await client.account_info()
        for status in (12, 99):  # the rate limit, an undocumented "general error"
            fake.fail_status("get_account_info", status)
            with pytest.raises(TransientChannelError):
                await client.account_info()
        fake.fail_http("get_account_info", 500)
        with pytest.raises(TransientChannelError, match="HTTP 500"):
            await client.account_info()
        fake.hang("get_account_info", 3)
        with pytest.raises(TransientChannelError, match="did not answer"):
            await client.account_info()
        assert (await client.account_info()).name == "Credit Moldova"
    finally:
        await client.close()
    wrong = ViberClient("not-the-token", fake.base_url)
    try:
        with pytest.raises(PermanentJobError, match="invalidAuthToken"):
            await wrong.account_info()
    finally:
        await wrong.close()
    unreachable = ViberClient(TOKEN, "http://127.0.0.1:9/pa", timeout=2)
    try:
        with pytest.raises(TransientChannelError):
            await unreachable.account_info()
    finally:
        await unreachable.close()


@pytest.mark.parametrize("chunked", [False, True])
async def test_fetch_media_refuses_files_past_the_size_limit(fake: FakeViber, chunked: bool) -> None:
    voice = b"\x00\x00\x00\x1cftypM4A " + b"v" * 20_000
    url = fake.add_media("Voice_message.m4a", voice, "audio/mp4", chunked=chunked)
    adapter = _adapter(fake)
    try:
        assert await adapter.fetch_media(url, max_bytes=len(voice)) == (voice, "audio/mp4")
        with pytest.raises(PermanentJobError, match="larger than"):
            await adapter.fetch_media(url, max_bytes=10_000)
    finally:
        await adapter.close()


async def test_fetch_media_retries_a_5xx_and_gives_up_on_an_expired_link(fake: FakeViber) -> None:
    url = fake.add_media("scan.jpg", b"\xff\xd8jpeg", "image/jpeg")
    fake.fail_media("scan.jpg", 503)
    adapter = _adapter(fake)
    try:
        with pytest.raises(TransientChannelError, match="503"):
            await adapter.fetch_media(url, 1000)
        assert await adapter.fetch_media(url, 1000) == (b"\xff\xd8jpeg", "image/jpeg")
        with pytest.raises(PermanentJobError, match="expired"):
            await adapter.fetch_media(f"{fake.root}/media/gone.jpg", 1000)
        with pytest.raises(PermanentJobError):
            await adapter.fetch_media("file:///etc/passwd", 1000)
    finally:
        await adapter.close()


async def test_the_token_never_reaches_logs_or_reprs(
    vb_client: VbClient,
    vb_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeViber,
    make_user: MakeUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail_http("send_message", 500)
    await _reply(make_user, vb_client, vb_app, account, sessions, "Salut")
    await vb_app[keys.WORKER].run_once()
    await post_callback(vb_client, account, fixture("text"), signature="wrong")
    adapter = _adapter(fake)
    assert caplog.records
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(adapter) and TOKEN not in repr(adapter.client)
    await adapter.close()


# --- parsing alone ------------------------------------------------------------------------------------------


def test_parse_turns_each_callback_into_the_hubs_event() -> None:
    adapter = ViberAdapter("7", TOKEN, ACCOUNT_NAME, ViberClient(TOKEN, "http://127.0.0.1:9/pa"))

    def parse(body: dict[str, Any]) -> list[Any]:
        raw = json.dumps(body).encode()
        adapter.verify(_hook(raw))
        return adapter.parse(_hook(raw))

    [message] = parse(fixture("text"))
    assert isinstance(message, InboundMessage)
    assert (message.sender_id, message.sender_name, message.language) == (USER, "Ion Popescu", "ro")
    assert message.sent_at is not None and message.sent_at.year == 2025
    [delivered] = parse(fixture("delivered"))
    [seen] = parse(fixture("seen"))
    [failed] = parse(fixture("failed"))
    assert isinstance(delivered, DeliveryUpdate) and delivered.external_id == str(FIRST_TOKEN)
    assert [u.status for u in (delivered, seen, failed)] == [
        DeliveryStatus.DELIVERED,
        DeliveryStatus.READ,
        DeliveryStatus.FAILED,
    ]
    [gone] = parse(fixture("unsubscribed"))
    [back] = parse(fixture("subscribed"))
    assert gone == ConsentUpdate(Channel.VIBER, "7", USER, subscribed=False, at=gone.at)
    assert isinstance(back, ConsentUpdate) and back.subscribed and back.sender_name == "Ion Popescu"
    sticker = fixture("sticker")
    del sticker["message"]["media"]
    [plain] = parse(sticker)
    assert (plain.kind, plain.body) == (MessageKind.TEXT, "[sticker]")
    with pytest.raises(BadPayload):
        adapter.parse(_hook(b"[1]"))
