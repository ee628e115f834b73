"""Messenger and Instagram webhooks through the real app: Meta's GET handshake, signed notifications, what is
stored and what is refused."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.meta.adapter import SIGNATURE_HEADER
from channels.model import Channel
from crm_core.models import Contact
from tests.channels.conftest import messages_of
from tests.channels.meta.conftest import Client, Meta, post_hook, sign

# --- the GET handshake ------------------------------------------------------------------------------------


async def test_the_handshake_with_the_right_verify_token_answers_the_challenge(
    meta_client: Client, meta: Meta
) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": meta.account.webhook_secret,
        "hub.challenge": "1158201444",
    }
    response = await meta_client.get(meta.path, params=query)
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.text() == "1158201444"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}, 403),
        ({"hub.mode": "subscribe", "hub.challenge": "1"}, 403),
        ({"hub.mode": "unsubscribe", "hub.verify_token": "right", "hub.challenge": "1"}, 400),
        ({"hub.mode": "subscribe", "hub.verify_token": "right"}, 400),
    ],
)
async def test_a_handshake_with_a_wrong_token_or_mode_is_refused(
    meta_client: Client, meta: Meta, query: dict[str, str], status: int
) -> None:
    if query.get("hub.verify_token") == "right":
        query = {**query, "hub.verify_token": meta.account.webhook_secret}
    response = await meta_client.get(meta.path, params=query)
    assert response.status == status
    answer = await response.json()
    assert answer["ok"] is False and "hub." in answer["error"]


# --- inbound messages -------------------------------------------------------------------------------------


async def test_messenger_text_and_media_arrive_in_one_conversation(
    meta_client: Client, messenger: Meta, sessions: async_sessionmaker[AsyncSession]
) -> None:
    kinds = ("text", "image", "file", "location", "fallback", "quick_reply", "postback")
    for kind in kinds:
        assert await post_hook(meta_client, messenger, messenger.fixture(kind)) == (200, "EVENT_RECEIVED")
    stored = await messages_of(sessions, messenger.account)
    assert [m.kind for m in stored] == ["text", "image", "file", "location", "text", "text", "text"]
    assert len({m.conversation_id for m in stored}) == 1
    assert {(m.direction, m.channel) for m in stored} == {("in", "messenger")}
    text, image, document, location, fallback, quick, postback = stored
    assert text.body == "Bună ziua! Aș vrea un credit de 30000 lei."
    assert text.external_id == messenger.fixture("text")["entry"][0]["messaging"][0]["message"]["mid"]
    assert [a["content_type"] for a in image.attachments] == ["image/jpeg", "image/png"]
    assert image.attachments[0]["url"].startswith("https://scontent.xx.fbcdn.net/")
    assert image.attachments[0]["filename"].endswith("_n.jpg")
    assert document.attachments[0]["filename"] == "adeverinta-salariu.pdf"
    assert document.attachments[0]["content_type"] == "application/pdf"
    assert location.body == "47.024512,28.832157"
    assert fallback.body == "Uitați oferta asta: https://www.bnm.md/ro/content/rate-de-referinta"
    assert quick.body == "Da, sunați-mă"
    assert postback.body == "Vreau să vorbesc cu un expert"
    async with sessions() as db:
        contact = await db.get(Contact, text.author_contact_id)
    assert contact is not None


async def test_instagram_text_and_media_arrive_in_one_conversation(
    meta_client: Client, instagram: Meta, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for kind in ("text", "image", "share"):
        assert await post_hook(meta_client, instagram, instagram.fixture(kind)) == (200, "EVENT_RECEIVED")
    text, image, share = await messages_of(sessions, instagram.account)
    assert len({text.conversation_id, image.conversation_id, share.conversation_id}) == 1
    assert (text.channel, text.direction, text.body) == (
        "instagram",
        "in",
        "Salut! Cât costă un credit pentru mașină?",
    )
    assert image.kind == "image"
    assert image.attachments[0]["url"].startswith("https://lookaside.fbsbx.com/ig_messaging_cdn/")
    assert share.kind == "text" and share.body.startswith("https://lookaside.fbsbx.com/")


async def test_the_same_notification_twice_is_one_message(
    meta_client: Client, meta: Meta, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for _ in range(2):
        assert (await post_hook(meta_client, meta, meta.fixture("text")))[0] == 200
    [stored] = await messages_of(sessions, meta.account)
    assert stored.direction == "in"


@pytest.mark.parametrize(
    ("signature", "status"), [(None, 401), ("sha256=" + "0" * 64, 403), ("md5=abc", 403)]
)
async def test_a_missing_or_wrong_signature_is_refused_and_nothing_stored(
    meta_client: Client,
    meta: Meta,
    sessions: async_sessionmaker[AsyncSession],
    signature: str | None,
    status: int,
) -> None:
    got, body = await post_hook(meta_client, meta, meta.fixture("text"), signature=signature)
    assert got == status and SIGNATURE_HEADER in json.loads(body)["error"]
    assert await messages_of(sessions, meta.account) == []


async def test_a_body_signed_with_another_apps_secret_is_refused(
    meta_client: Client, meta: Meta, sessions: async_sessionmaker[AsyncSession]
) -> None:
    data = json.dumps(meta.fixture("text")).encode()
    response = await meta_client.post(meta.path, data=data, headers={SIGNATURE_HEADER: sign(data, "other")})
    assert response.status == 403
    assert await messages_of(sessions, meta.account) == []


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"object": "page"}),
        json.dumps(
            {"object": "page", "entry": [{"id": "1", "messaging": [{"message": {"text": "no mid"}}]}]}
        ),
        json.dumps({"object": "page", "entry": [{"id": "1", "messaging": "nope"}]}),
    ],
)
async def test_a_malformed_body_is_400_with_a_reason(
    meta_client: Client, meta: Meta, sessions: async_sessionmaker[AsyncSession], body: str
) -> None:
    status, answer = await post_hook(meta_client, meta, body)
    assert status == 400 and json.loads(answer)["error"]
    assert await messages_of(sessions, meta.account) == []


async def test_entries_of_another_page_or_product_are_acknowledged_and_ignored(
    meta_client: Client, meta: Meta, sessions: async_sessionmaker[AsyncSession]
) -> None:
    other_page = meta.fixture("text")
    other_page["entry"][0]["id"] = "999999999999999"
    other_object = meta.fixture("text")
    other_object["object"] = "instagram" if meta.channel is Channel.MESSENGER else "page"
    for body in (other_page, other_object):
        assert (await post_hook(meta_client, meta, body))[0] == 200
    assert await messages_of(sessions, meta.account) == []


async def test_an_echo_of_a_page_message_sent_outside_the_hub_is_not_a_customer_message(
    meta_client: Client, meta: Meta, sessions: async_sessionmaker[AsyncSession]
) -> None:
    echo = meta.fixture("echo", mid="m_sent_from_the_meta_business_suite")
    assert (await post_hook(meta_client, meta, echo))[0] == 200
    assert await messages_of(sessions, meta.account) == []
