"""The Graph client and the adapter's provider-facing calls against the fake Graph API: error mapping,
credentials check, page subscription, attachments out and media in, and secrets kept out of logs."""

from __future__ import annotations

import json
import logging

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import accounts as channel_accounts
from channels.base import BadPayload, TransientChannelError, WebhookRequest
from channels.meta.adapter import SUBSCRIBED_FIELDS, MetaAdapter
from channels.meta.client import GraphClient
from channels.model import Attachment, Channel, MessageKind, OutboundMessage
from channels.providers import PROVIDERS
from channels.secrets import SecretBox
from switchboard.jobs import PermanentJobError
from switchboard.settings import Settings
from tests.channels.meta.conftest import (
    APP_SECRET,
    IG_ID,
    PAGE_ID,
    PAGE_TOKEN,
    PSID,
    Client,
    Meta,
    fixture,
    post_hook,
)
from tests.channels.meta.test_send import reply
from tests.conftest import MakeUser
from tests.fakes.meta import IG_USERNAME, PAGE_NAME, FakeGraph
from webui import keys


def graph(fake: FakeGraph, *, token: str = PAGE_TOKEN, timeout: float = 2.0) -> GraphClient:
    return GraphClient(
        token, api_base=fake.base_url, version=fake.version, app_secret=APP_SECRET, timeout=timeout
    )


def adapter(fake: FakeGraph, channel: Channel = Channel.MESSENGER) -> MetaAdapter:
    own = PAGE_ID if channel is Channel.MESSENGER else IG_ID
    return MetaAdapter("1", channel, own_id=own, verify_token="v", app_secret=APP_SECRET, client=graph(fake))


async def test_graph_errors_map_to_permanent_or_retryable(fake: FakeGraph) -> None:
    client = graph(fake, timeout=0.5)
    try:
        for status, code in (
            (500, 2),
            (400, 1),
            (400, 2),
            (400, 4),
            (400, 17),
            (400, 32),
            (400, 613),
            (429, 4),
        ):
            fake.fail("", status, code=code)
            with pytest.raises(TransientChannelError):
                await client.node(PAGE_ID, "id,name")
        for code, text in ((100, "(#100) Param"), (190, "Invalid OAuth"), (551, "(#551)"), (10, "(#10)")):
            fake.fail("", 400, code=code)
            with pytest.raises(PermanentJobError, match=text.replace("(", r"\(").replace(")", r"\)")):
                await client.node(PAGE_ID, "id,name")
        fake.hang("", 1)
        with pytest.raises(TransientChannelError, match="did not answer"):
            await client.node(PAGE_ID, "id,name")
        assert (await client.node(PAGE_ID, "id,name"))["name"] == PAGE_NAME
    finally:
        await client.close()


async def test_a_wrong_token_is_permanent_and_an_unreachable_graph_is_retryable(fake: FakeGraph) -> None:
    wrong = graph(fake, token="EAAwrong")
    try:
        with pytest.raises(PermanentJobError, match="Invalid OAuth access token"):
            await wrong.node(PAGE_ID, "id,name")
    finally:
        await wrong.close()
    nowhere = GraphClient(PAGE_TOKEN, api_base="http://127.0.0.1:9", version="v21.0", timeout=1)
    try:
        with pytest.raises(TransientChannelError):
            await nowhere.node(PAGE_ID, "id,name")
    finally:
        await nowhere.close()


async def test_check_reads_the_page_or_the_instagram_account(fake: FakeGraph) -> None:
    messenger, instagram = adapter(fake), adapter(fake, Channel.INSTAGRAM)
    try:
        assert await messenger.check() == {"page_id": PAGE_ID, "name": PAGE_NAME}
        assert await instagram.check() == {"ig_id": IG_ID, "username": IG_USERNAME}
    finally:
        await messenger.close()
        await instagram.close()
    page, account = fake.calls_of("", "GET")
    assert (page.node, page.query["fields"]) == (PAGE_ID, "id,name")
    assert (account.node, account.query["fields"]) == (IG_ID, "id,username")
    assert page.query["appsecret_proof"] and page.token == PAGE_TOKEN


async def test_connect_subscribes_the_page_and_disconnect_removes_it(
    fake: FakeGraph, meta: Meta, meta_settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    adapters = channel_accounts.Adapters(sessions, SecretBox(meta_settings.secret), meta_settings)
    live = await adapters.get(meta.channel, meta.account.id)
    assert isinstance(live, MetaAdapter) and live.channel is meta.channel
    await live.connect(f"https://hub.example.md{meta.path}")
    await live.disconnect()
    await adapters.close()
    [subscribe] = fake.calls_of("subscribed_apps", "POST")
    [unsubscribe] = fake.calls_of("subscribed_apps", "DELETE")
    node = PAGE_ID if meta.channel is Channel.MESSENGER else "me"
    assert subscribe.node == unsubscribe.node == node
    assert subscribe.query["subscribed_fields"] == SUBSCRIBED_FIELDS


async def test_attachments_go_by_public_url_before_the_text(fake: FakeGraph) -> None:
    meta = adapter(fake)
    outbound = OutboundMessage(
        message_id=7,
        channel=Channel.MESSENGER,
        account_id="1",
        recipient_id=PSID,
        body="Oferta în atașament",
        kind=MessageKind.FILE,
        attachments=(
            Attachment("image/png", "grafic.png", url="https://hub.example.md/f/1?sig=a"),
            Attachment("application/pdf", "oferta.pdf", url="https://hub.example.md/f/2?sig=b"),
        ),
    )
    try:
        sent = await meta.send(outbound)
    finally:
        await meta.close()
    image, document, text = (c.body["message"] for c in fake.calls_of("messages"))
    assert image == {
        "attachment": {
            "type": "image",
            "payload": {"url": "https://hub.example.md/f/1?sig=a", "is_reusable": False},
        }
    }
    assert document["attachment"]["type"] == "file"
    assert text == {"text": "Oferta în atașament"}
    assert sent.external_id == "m_fake000001"
    assert sent.meta == {"mids": ["m_fake000001", "m_fake000002", "m_fake000003"]}


async def test_fetch_media_downloads_from_the_cdn_within_the_limit(fake: FakeGraph) -> None:
    meta = adapter(fake)
    photo = fake.add_media("photo.jpg", b"\xff\xd8\xff" + b"x" * 1000, "image/jpeg")
    gone = fake.add_media("expired.jpg", b"", "image/jpeg", status=403)
    flaky = fake.add_media("flaky.jpg", b"", "image/jpeg", status=502)
    try:
        data, content_type = await meta.fetch_media(photo, 2000)
        assert data.startswith(b"\xff\xd8\xff") and len(data) == 1003 and content_type == "image/jpeg"
        with pytest.raises(PermanentJobError, match="larger than"):
            await meta.fetch_media(photo, 1000)
        with pytest.raises(PermanentJobError, match="no longer available"):
            await meta.fetch_media(gone, 2000)
        with pytest.raises(TransientChannelError):
            await meta.fetch_media(flaky, 2000)
        with pytest.raises(PermanentJobError):
            await meta.fetch_media("file:///etc/passwd", 2000)
    finally:
        await meta.close()
    assert all(
        "Authorization" not in headers for headers in fake.media_requests
    )  # the CDN never sees the token


def hook(body: object) -> WebhookRequest:
    return WebhookRequest(
        "POST", "https://hub.example.md/webhooks/messenger/1", {}, {}, json.dumps(body).encode()
    )


def one_message(message: dict[str, object], **extra: object) -> dict[str, object]:
    event: dict[str, object] = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1763900060612,
        "message": message,
        **extra,
    }
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": 1763900061000, "messaging": [event]}]}


def test_parse_keeps_what_the_inbox_needs_and_drops_the_rest(fake: FakeGraph) -> None:
    meta = adapter(fake)
    sticker_url = "https://scontent.xx.fbcdn.net/v/t39.1997-6/851557_369239266556155_759568595_n.png"
    [sticker] = meta.parse(
        hook(
            one_message(
                {
                    "mid": "m_sticker",
                    "attachments": [
                        {"type": "image", "payload": {"url": sticker_url, "sticker_id": 369239263222822}},
                        {"type": "sticker", "payload": {"url": sticker_url, "sticker_id": 369239263222822}},
                    ],
                }
            )
        )
    )
    assert sticker.kind is MessageKind.IMAGE and len(sticker.attachments) == 1  # type: ignore[union-attr]
    assert meta.parse(hook(one_message({"mid": "m_gone", "text": "x", "is_deleted": True}))) == []
    assert meta.parse(hook(one_message({"mid": "m_gif", "is_unsupported": True}))) == []
    [answer] = meta.parse(hook(one_message({"mid": "m_2", "text": "Da", "reply_to": {"mid": "m_1"}})))
    assert answer.in_reply_to == ("m_1",)  # type: ignore[union-attr]
    assert answer.sent_at is not None and answer.sent_at.year == 2025  # type: ignore[union-attr]
    old_postback = fixture("messenger_postback")
    del old_postback["entry"][0]["messaging"][0]["postback"]["mid"]
    [tap] = meta.parse(hook(old_postback))
    assert tap.external_id == f"postback:{PSID}:1763900420333"  # type: ignore[union-attr]
    with pytest.raises(BadPayload):
        meta.parse(hook(one_message({"mid": "m_3"}, timestamp=10**20)))


def test_both_channels_are_in_the_provider_table_with_a_manual_webhook() -> None:
    for channel, own_field in ((Channel.MESSENGER, "page_id"), (Channel.INSTAGRAM, "instagram_id")):
        provider = PROVIDERS[channel]
        assert provider.manual_webhook and provider.notes
        names = [(f.name, f.secret) for f in provider.fields]
        assert names == [(own_field, False), ("page_access_token", True), ("app_secret", True)]


async def test_secrets_never_reach_the_logs_or_reprs(
    meta_client: Client,
    meta_app: web.Application,
    meta: Meta,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeGraph,
    make_user: MakeUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail("messages", 500)
    await reply(meta_client, meta_app, meta, sessions, make_user, "Salut")
    await meta_app[keys.WORKER].run_once()
    await post_hook(meta_client, meta, meta.fixture("text"), signature="sha256=wrong")
    assert caplog.records
    for secret in (PAGE_TOKEN, APP_SECRET):
        assert secret not in caplog.text
    live = adapter(fake)
    assert PAGE_TOKEN not in repr(live) and PAGE_TOKEN not in repr(live.client)
    await live.close()
