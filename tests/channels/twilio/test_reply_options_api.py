"""The agent's side of WhatsApp and SMS rules through the JSON API: the reply options of a conversation, a
template sent once the 24-hour window has closed, and the SMS segment counter with its transliteration."""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.accounts_model import ChannelAccount
from inbox.models import Message
from switchboard.permissions import Role
from tests.channels.conftest import drain, messages_of, stored_message
from tests.channels.twilio.conftest import inbound, post_form
from tests.conftest import MakeUser, login, page_csrf
from tests.fakes.twilio import FakeTwilio


async def _as_admin(client: TestClient, make_user: MakeUser) -> str:
    admin = await make_user(Role.ADMIN)
    await login(client, admin.username)
    return await page_csrf(client, "/inbox")


async def _close_window(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as db, db.begin():
        await db.execute(
            update(Message)
            .where(Message.direction == "in")
            .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=30))
        )


async def test_after_24_hours_a_free_reply_is_refused_and_a_template_goes_out(
    tw_client: TestClient,
    tw_app: web.Application,
    whatsapp: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTwilio,
    make_user: MakeUser,
) -> None:
    assert (await post_form(tw_client, whatsapp, inbound(whatsapp))).status == 200
    conversation = (await messages_of(sessions, whatsapp))[0].conversation_id
    csrf = await _as_admin(tw_client, make_user)
    headers = {"X-CSRF-Token": csrf}
    options = await (await tw_client.get(f"/api/v1/conversations/{conversation}/reply-options")).json()
    assert options["channel"] == "whatsapp" and options["window"] == "open" and options["closes_at"]
    assert [t["name"] for t in options["templates"]] == ["Reminder", "Offer"]
    assert options["templates"][0]["variables"] == ["1", "2"]

    await _close_window(sessions)
    options = await (await tw_client.get(f"/api/v1/conversations/{conversation}/reply-options")).json()
    assert options["window"] == "template"
    url = f"/api/v1/conversations/{conversation}/messages"
    refused = await tw_client.post(url, json={"body": "Mai sunteți acolo?"}, headers=headers)
    body = await refused.json()
    assert (
        refused.status == 422 and body["error"]["field"] == "window" and "template" in body["error"]["reason"]
    )
    missing = await tw_client.post(
        url, json={"template": {"name": "Reminder", "variables": {"1": "Ion"}}}, headers=headers
    )
    assert missing.status == 422
    unknown = await tw_client.post(url, json={"template": {"name": "Nope"}}, headers=headers)
    assert unknown.status == 422

    sent = await tw_client.post(
        url, json={"template": {"name": "Reminder", "variables": {"1": "Ion", "2": "1200"}}}, headers=headers
    )
    assert sent.status == 201, await sent.text()
    view = (await sent.json())["message"]
    assert view["body"] == "Bună ziua, Ion! Rata de 1200 lei este scadentă mâine."
    await drain(tw_app)
    [call] = fake.calls_of("messages")
    assert call.form["ContentSid"] == "HX" + "1a" * 16 and "Body" not in call.form
    assert (await stored_message(sessions, view["id"])).status == "sent"


async def test_the_sms_counter_offers_transliteration_when_it_saves_a_part(
    tw_client: TestClient, sms: ChannelAccount, make_user: MakeUser
) -> None:
    csrf = await _as_admin(tw_client, make_user)
    text = "Bună ziua! Vă așteptăm mâine la filiala din Chișinău pentru semnarea contractului de credit."
    answer = await tw_client.post("/api/v1/sms/segments", json={"text": text}, headers={"X-CSRF-Token": csrf})
    data = await answer.json()
    assert answer.status == 200 and data["encoding"] == "UCS-2" and data["parts"] == 2
    assert data["transliterated"]["encoding"] == "GSM-7" and data["transliterated"]["parts"] == 1
    assert "Chisinau" in data["transliterated"]["text"]
    plain = await tw_client.post(
        "/api/v1/sms/segments", json={"text": "Buna ziua"}, headers={"X-CSRF-Token": csrf}
    )
    assert (await plain.json())["transliterated"] is None
    bad = await tw_client.post("/api/v1/sms/segments", json={"text": 5}, headers={"X-CSRF-Token": csrf})
    assert bad.status == 422
