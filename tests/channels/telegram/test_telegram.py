"""Telegram end to end: the real aiogram client against the fake Bot API server, webhooks through the app."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
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
from channels.model import Channel, MessageKind
from channels.secrets import SecretBox, SecretsError, mask
from channels.telegram.adapter import SECRET_HEADER, TelegramAdapter
from channels.telegram.client import InvalidToken, TelegramClient
from crm_core.models import Contact
from inbox.service import Viewer
from switchboard.app import build_app
from switchboard.audit import SYSTEM
from switchboard.audit_model import AuditEntry
from switchboard.jobs import PermanentJobError
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.channels.conftest import drain, messages_of, reply_as_admin, run_until_sent, stored_message
from tests.conftest import MakeUser, login, page_csrf
from tests.fakes.telegram import FakeTelegram
from webui import keys

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "7000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def tg_settings(settings: Settings, fake: FakeTelegram) -> Settings:
    return settings.model_copy(update={"telegram_api_base": fake.base_url, "jobs_backoff_base_seconds": 0.01})


@pytest.fixture
async def tg_app(tg_settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> web.Application:
    return build_app(tg_settings)


@pytest.fixture
async def tg_client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tg_app: web.Application
) -> TestClient:
    return await aiohttp_client(tg_app)


@pytest.fixture
async def account(sessions: async_sessionmaker[AsyncSession], tg_settings: Settings) -> ChannelAccount:
    async with sessions() as db, db.begin():
        return await channel_accounts.create_account(
            db,
            SYSTEM,
            SecretBox(tg_settings.secret),
            channel=Channel.TELEGRAM,
            name="Credit bot",
            secrets={"token": TOKEN},
            config={"username": "switchboard_test_bot"},
        )


async def post_update(
    client: TestClient, account: ChannelAccount, body: Any, *, secret: str | None = "right"
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if secret == "right":
        headers[SECRET_HEADER] = account.webhook_secret
    elif secret is not None:
        headers[SECRET_HEADER] = secret
    data = body if isinstance(body, str) else json.dumps(body)
    response = await client.post(f"/webhooks/telegram/{account.id}", data=data, headers=headers)
    return response.status, await response.json()


# --- inbound ----------------------------------------------------------------------------------------------


async def test_text_and_media_arrive_in_one_conversation(
    tg_client: TestClient, account: ChannelAccount, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for name in ("text", "photo", "document", "voice", "video", "location", "contact"):
        status, body = await post_update(tg_client, account, fixture(name))
        assert (status, body) == (200, {"ok": True}), name
    stored = await messages_of(sessions, account)
    assert [m.kind for m in stored] == ["text", "image", "file", "audio", "video", "location", "contact"]
    assert len({m.conversation_id for m in stored}) == 1
    text, photo, document, voice = stored[:4]
    assert text.body == "Bună ziua! Vreau un credit de 50000 lei."
    assert text.external_id == "424242:101" and text.direction == "in" and text.channel == "telegram"
    assert photo.body == "Buletinul meu"
    assert photo.attachments[0]["url"] == "tg-file:AgACAgIAAxkBAAIBZ2large"  # the largest size
    assert photo.attachments[0]["content_type"] == "image/jpeg"
    assert document.attachments[0]["filename"] == "adeverinta.pdf"
    assert voice.attachments[0]["content_type"] == "audio/ogg"
    assert stored[5].body == "47.024512,28.832157"
    async with sessions() as db:
        contact = await db.get(Contact, text.author_contact_id)
    assert contact is not None
    assert (contact.first_name, contact.last_name) == ("Ion", "Popescu")
    assert contact.phone == "+37369123456"  # from the contact the customer shared of themself


async def test_the_same_update_twice_is_one_message(
    tg_client: TestClient, account: ChannelAccount, sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert (await post_update(tg_client, account, fixture("text")))[0] == 200
    assert (await post_update(tg_client, account, fixture("text")))[0] == 200
    assert len(await messages_of(sessions, account)) == 1


async def test_edits_and_group_messages_are_acknowledged_but_not_stored(
    tg_client: TestClient, account: ChannelAccount, sessions: async_sessionmaker[AsyncSession]
) -> None:
    group = fixture("text")
    group["message"]["chat"] = {"id": -100123, "title": "Group", "type": "supergroup"}
    for body in (fixture("edited_message"), group):
        assert (await post_update(tg_client, account, body))[0] == 200
    assert await messages_of(sessions, account) == []


@pytest.mark.parametrize(("secret", "status"), [(None, 401), ("wrong-secret", 403)])
async def test_a_missing_or_wrong_secret_is_refused_and_nothing_stored(
    tg_client: TestClient,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    secret: str | None,
    status: int,
) -> None:
    got, body = await post_update(tg_client, account, fixture("text"), secret=secret)
    assert got == status and body["ok"] is False and SECRET_HEADER in body["error"]
    assert await messages_of(sessions, account) == []


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", json.dumps({"update_id": "x", "message": 5})])
async def test_a_malformed_body_is_400_with_a_reason(
    tg_client: TestClient, account: ChannelAccount, sessions: async_sessionmaker[AsyncSession], body: str
) -> None:
    status, answer = await post_update(tg_client, account, body)
    assert status == 400 and answer["ok"] is False and answer["error"]
    assert await messages_of(sessions, account) == []


async def test_unknown_or_inactive_accounts_are_404(
    tg_client: TestClient, account: ChannelAccount, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await tg_client.post("/webhooks/telegram/999999", data="{}")
    assert response.status == 404
    response = await tg_client.post("/webhooks/telegram/abc", data="{}")
    assert response.status == 404
    async with sessions() as db, db.begin():
        await channel_accounts.set_active(db, SYSTEM, account.id, False)
    assert (await post_update(tg_client, account, fixture("text")))[0] == 404


# --- outbound ---------------------------------------------------------------------------------------------


async def _reply(
    make_user: MakeUser,
    tg_client: TestClient,
    tg_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    text: str,
) -> int:
    await post_update(tg_client, account, fixture("text"))
    return await reply_as_admin(tg_app, sessions, account, make_user, text)


async def test_a_reply_reaches_telegram_with_the_chat_id_and_text(
    tg_client: TestClient,
    tg_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTelegram,
    make_user: MakeUser,
) -> None:
    message_id = await _reply(make_user, tg_client, tg_app, account, sessions, "Bună ziua, Ion!")
    assert await tg_app[keys.WORKER].run_once() == 1
    [call] = fake.calls_of("sendMessage")
    assert call.token == TOKEN
    assert call.params["chat_id"] == "424242" and call.params["text"] == "Bună ziua, Ion!"
    message = await stored_message(sessions, message_id)
    assert message.status == "sent" and message.external_id == "424242:5000"


async def test_a_5xx_twice_then_200_is_delivered_once(
    tg_client: TestClient,
    tg_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTelegram,
    make_user: MakeUser,
) -> None:
    fake.fail("sendMessage", 502, times=2)
    message_id = await _reply(make_user, tg_client, tg_app, account, sessions, "Revin imediat")
    assert (await run_until_sent(tg_app, sessions, message_id)).status == "sent"
    assert len(fake.calls_of("sendMessage")) == 3
    oks = [c for c in fake.calls_of("sendMessage")][2:]
    assert len(oks) == 1


async def test_a_blocked_bot_marks_the_message_failed_with_telegrams_reason(
    tg_client: TestClient,
    tg_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTelegram,
    make_user: MakeUser,
) -> None:
    fake.fail("sendMessage", 403, "Forbidden: bot was blocked by the user", times=5)
    message_id = await _reply(make_user, tg_client, tg_app, account, sessions, "Mai sunteți acolo?")
    await tg_app[keys.WORKER].run_once()
    message = await stored_message(sessions, message_id)
    assert message.status == "failed"
    assert message.error == "Forbidden: bot was blocked by the user"
    assert len(fake.calls_of("sendMessage")) == 1  # permanent: no retry


async def test_connect_sets_the_webhook_with_the_secret_token(
    fake: FakeTelegram,
    tg_settings: Settings,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    adapters = channel_accounts.Adapters(sessions, SecretBox(tg_settings.secret), tg_settings)
    adapter = await adapters.get(Channel.TELEGRAM, account.id)
    assert isinstance(adapter, TelegramAdapter)
    await adapter.connect(f"https://hub.example.md/webhooks/telegram/{account.id}")
    await adapter.disconnect()
    await adapters.close()
    [call] = fake.calls_of("setWebhook")
    assert call.params["url"] == f"https://hub.example.md/webhooks/telegram/{account.id}"
    assert call.params["secret_token"] == account.webhook_secret
    assert len(fake.calls_of("deleteWebhook")) == 1


async def test_client_errors_map_to_permanent_or_retryable(fake: FakeTelegram) -> None:
    client = TelegramClient(TOKEN, fake.base_url, timeout=0.5)
    try:
        fake.fail("getMe", 401)
        with pytest.raises(PermanentJobError, match="Unauthorized"):
            await client.get_me()
        fake.fail("getMe", 500)
        with pytest.raises(TransientChannelError):
            await client.get_me()
        fake.fail("getMe", 429)
        with pytest.raises(TransientChannelError):
            await client.get_me()
        fake.hang("getMe", 3)
        with pytest.raises(TransientChannelError):
            await client.get_me()
        assert (await client.get_me()).username == "switchboard_test_bot"
    finally:
        await client.close()
    with pytest.raises(InvalidToken):
        TelegramClient("not a token", fake.base_url)


async def test_the_token_never_reaches_the_logs(
    tg_client: TestClient,
    tg_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTelegram,
    make_user: MakeUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail("sendMessage", 500, times=1)
    await _reply(make_user, tg_client, tg_app, account, sessions, "Salut")
    await tg_app[keys.WORKER].run_once()
    await post_update(tg_client, account, fixture("text"), secret="wrong")
    assert caplog.records
    secret_part = TOKEN.split(":", 1)[1]
    assert secret_part not in caplog.text
    async with sessions() as db:
        stored = await db.get(ChannelAccount, account.id)
    assert stored is not None and secret_part not in stored.secrets and secret_part not in repr(stored)


# --- secrets ----------------------------------------------------------------------------------------------


def test_secrets_round_trip_and_a_different_key_cannot_read_them() -> None:
    box = SecretBox(b"k" * 32)
    token = box.encrypt({"token": TOKEN})
    assert TOKEN not in token
    assert box.decrypt(token) == {"token": TOKEN}
    with pytest.raises(SecretsError):
        SecretBox(b"x" * 32).decrypt(token)
    assert mask(TOKEN) == "••••saw"[:0] + "••••" + TOKEN[-4:]
    assert mask("") == ""


def hook(body: bytes) -> WebhookRequest:
    return WebhookRequest("POST", "https://hub.example.md/webhooks/telegram/1", {}, {}, body)


def test_parse_refuses_what_telegram_would_not_send() -> None:
    adapter = TelegramAdapter("1", "s", TelegramClient(TOKEN, "http://127.0.0.1:9"))
    with pytest.raises(BadPayload):
        adapter.parse(hook(b"[1]"))
    with pytest.raises(BadPayload):
        adapter.parse(hook(b"{not json"))
    [message] = adapter.parse(hook(json.dumps(fixture("text")).encode()))
    assert message.kind is MessageKind.TEXT and message.sender_name == "Ion Popescu"


# --- the admin page ---------------------------------------------------------------------------------------


async def test_an_admin_connects_tests_and_disconnects_a_bot(
    tg_client: TestClient,
    fake: FakeTelegram,
    make_user: MakeUser,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    admin = await make_user(Role.ADMIN)
    await login(tg_client, admin.username)
    csrf = await page_csrf(tg_client, "/admin/channels")
    bad = await tg_client.post(
        "/admin/channels/connect/telegram", data={"name": "Bot", "token": "nonsense", "_csrf": csrf}
    )
    assert bad.status == 422 and "not a Telegram bot token" in await bad.text()
    fake.fail("getMe", 401)
    refused = await tg_client.post(
        "/admin/channels/connect/telegram", data={"name": "Bot", "token": TOKEN, "_csrf": csrf}
    )
    assert refused.status == 422 and "Unauthorized" in await refused.text()
    async with sessions() as db:
        assert (await db.scalars(select(ChannelAccount))).all() == []

    done = await tg_client.post(
        "/admin/channels/connect/telegram",
        data={"name": "Credit bot", "token": TOKEN, "_csrf": csrf},
        allow_redirects=False,
    )
    assert done.status == 302, await done.text()
    async with sessions() as db:
        [account] = (await db.scalars(select(ChannelAccount))).all()
    assert account.config["username"] == "switchboard_test_bot" and TOKEN not in account.secrets
    [hook] = fake.calls_of("setWebhook")
    assert hook.params["url"].endswith(f"/webhooks/telegram/{account.id}")
    assert hook.params["secret_token"] == account.webhook_secret
    page = await (await tg_client.get("/admin/channels")).text()
    assert "Credit bot" in page and mask(TOKEN) in page and TOKEN.split(":")[1] not in page

    tested = await tg_client.post(f"/admin/channels/accounts/{account.id}/test", data={"_csrf": csrf})
    assert tested.status == 200 and "Telegram answers: switchboard_test_bot" in await tested.text()
    gone = await tg_client.post(f"/admin/channels/accounts/{account.id}/disconnect", data={"_csrf": csrf})
    assert gone.status == 200
    assert len(fake.calls_of("deleteWebhook")) == 1
    async with sessions() as db:
        stored = await db.get(ChannelAccount, account.id)
        assert stored is not None and stored.active is False
        actions = (
            await db.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.record_type == "channel_account", AuditEntry.record_id == str(account.id)
                )
            )
        ).all()
    assert sorted(actions) == ["create", "read", "update"]


# --- media in and out, retry --------------------------------------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 2000


async def test_an_inbound_photo_is_fetched_into_the_file_store_by_a_job(
    tg_client: TestClient,
    tg_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTelegram,
) -> None:
    fake.files["AgACAgIAAxkBAAIBZ2large"] = JPEG
    assert (await post_update(tg_client, account, fixture("photo")))[0] == 200
    await drain(tg_app)
    [photo] = await messages_of(sessions, account)
    [attachment] = photo.attachments
    assert attachment["stored_path"] and attachment["id"] and attachment["content_type"] == "image/jpeg"
    assert attachment["size"] == len(JPEG) and not attachment.get("url")
    located = tg_app[keys.FILES].locate(attachment["stored_path"])
    assert located.read_bytes() == JPEG
    [call] = fake.calls_of("getFile")
    assert call.params["file_id"] == "AgACAgIAAxkBAAIBZ2large"


async def test_an_inbound_file_over_the_limit_is_refused_with_a_reason(
    tg_client: TestClient,
    tg_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTelegram,
) -> None:
    fake.files["AgACAgIAAxkBAAIBZ2large"] = JPEG * 20_000  # ~40 MB, over the 25 MiB default
    assert (await post_update(tg_client, account, fixture("photo")))[0] == 200
    await drain(tg_app)
    [photo] = await messages_of(sessions, account)
    [attachment] = photo.attachments
    assert "larger than" in attachment["error"] and not attachment.get("stored_path")


async def test_an_agents_file_goes_to_telegram_as_a_photo_with_its_caption(
    tg_client: TestClient,
    tg_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTelegram,
    make_user: MakeUser,
) -> None:
    await post_update(tg_client, account, fixture("text"))
    conversation = (await messages_of(sessions, account))[0].conversation_id
    admin = await make_user(Role.ADMIN)
    stored = await tg_app[keys.FILES].save(JPEG, "image/jpeg", "oferta.jpg")
    sent = await tg_app[keys.INBOX].attach(Viewer(admin.id, Role.ADMIN, None), conversation, stored, "Oferta")
    await drain(tg_app)
    [call] = fake.calls_of("sendPhoto")
    assert call.params["chat_id"] == "424242" and call.params["caption"] == "Oferta"
    assert call.params["photo"].startswith("attach://") and "oferta.jpg" in call.params.values()
    assert (await stored_message(sessions, sent.id)).status == "sent"


async def test_an_agent_sends_a_failed_reply_again(
    tg_client: TestClient,
    tg_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTelegram,
    make_user: MakeUser,
) -> None:
    fake.fail("sendMessage", 400, "Bad Request: chat not found")
    message_id = await _reply(make_user, tg_client, tg_app, account, sessions, "Vă sun mâine")
    await drain(tg_app)
    assert (await stored_message(sessions, message_id)).status == "failed"
    agent = await make_user(Role.AGENT)
    await login(tg_client, agent.username)
    csrf = await page_csrf(tg_client, "/inbox")
    hidden = await tg_client.post(f"/api/v1/messages/{message_id}/retry", headers={"X-CSRF-Token": csrf})
    assert hidden.status == 404  # not this agent's conversation
    admin = await make_user(Role.ADMIN)
    await login(tg_client, admin.username)
    csrf = await page_csrf(tg_client, "/inbox")
    again = await tg_client.post(f"/api/v1/messages/{message_id}/retry", headers={"X-CSRF-Token": csrf})
    assert again.status == 200 and (await again.json())["message"]["status"] == "queued"
    await drain(tg_app)
    message = await stored_message(sessions, message_id)
    assert message.status == "sent" and message.error is None
    twice = await tg_client.post(f"/api/v1/messages/{message_id}/retry", headers={"X-CSRF-Token": csrf})
    assert twice.status == 422  # only a failed message goes again


async def test_an_account_disabled_by_another_process_stops_taking_webhooks_within_the_recheck_time(
    tg_client: TestClient,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (await post_update(tg_client, account, fixture("text")))[0] == 200
    async with sessions() as db, db.begin():  # as another hub process would
        await channel_accounts.set_active(db, SYSTEM, account.id, False)
    # within RECHECK_SECONDS the cached adapter still answers (the row is not read on every webhook)
    assert (await post_update(tg_client, account, fixture("photo")))[0] == 200
    monkeypatch.setattr(channel_accounts, "RECHECK_SECONDS", 0.0)  # the recheck time has passed
    assert (await post_update(tg_client, account, fixture("video")))[0] == 404
