"""The Twilio client and the account-level calls against the fake REST API: error mapping, the credentials
check, the SMS number's webhook, media downloads, and the auth token kept out of logs and reprs."""

from __future__ import annotations

import logging
import socket

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import accounts as channel_accounts
from channels.accounts_model import ChannelAccount
from channels.base import TransientChannelError
from channels.model import Channel
from channels.secrets import SecretBox
from channels.twilio.adapter import TwilioAdapter
from channels.twilio.client import TwilioClient
from switchboard.jobs import PermanentJobError
from switchboard.settings import Settings
from tests.channels.conftest import admin_viewer, drain, messages_of
from tests.channels.twilio.conftest import NUMBER, PUBLIC, inbound, post_form
from tests.conftest import MakeUser
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FRIENDLY_NAME, FakeTwilio
from webui import keys


def _client(fake: FakeTwilio, token: str = AUTH_TOKEN, timeout: float = 2.0) -> TwilioClient:
    return TwilioClient(ACCOUNT_SID, token, fake.base_url, timeout=timeout)


async def test_errors_map_to_permanent_or_retryable(fake: FakeTwilio) -> None:
    client = _client(fake, timeout=0.5)
    try:
        fake.fail("account", 500)
        with pytest.raises(TransientChannelError):
            await client.account()
        fake.fail("account", 429)
        with pytest.raises(TransientChannelError):
            await client.account()
        fake.fail("account", 404)
        with pytest.raises(PermanentJobError, match="Twilio 20404: The requested resource was not found"):
            await client.account()
        fake.hang("account", 3)
        with pytest.raises(TransientChannelError, match="did not answer"):
            await client.account()
        fake.fail("numbers.list", 500)
        with pytest.raises(TransientChannelError):
            await client.find_number(NUMBER)
        assert (await client.account()).friendly_name == FRIENDLY_NAME
    finally:
        await client.close()


async def test_a_wrong_auth_token_is_permanent(fake: FakeTwilio) -> None:
    client = _client(fake, token="0" * 32)
    try:
        with pytest.raises(PermanentJobError, match="Twilio 20003: Authenticate"):
            await client.send(to="+37369123456", from_=NUMBER, body="x")
        with pytest.raises(PermanentJobError):
            await client.find_number(NUMBER)
    finally:
        await client.close()


async def test_a_twilio_that_cannot_be_reached_is_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the call: nobody listens there
    client = TwilioClient(ACCOUNT_SID, AUTH_TOKEN, f"http://127.0.0.1:{port}", timeout=1)
    try:
        with pytest.raises(TransientChannelError, match="did not answer"):
            await client.send(to="+37369123456", from_=NUMBER, body="x")
    finally:
        await client.close()


def _adapter(fake: FakeTwilio, channel: Channel, account_id: str = "7") -> TwilioAdapter:
    return TwilioAdapter(account_id, channel, auth_token=AUTH_TOKEN, phone=NUMBER, client=_client(fake))


async def test_check_returns_what_the_account_page_shows(fake: FakeTwilio) -> None:
    adapter = _adapter(fake, Channel.SMS)
    try:
        assert await adapter.check() == {
            "account_sid": ACCOUNT_SID,
            "friendly_name": FRIENDLY_NAME,
            "phone": NUMBER,
        }
        fake.account_status = "suspended"
        with pytest.raises(PermanentJobError, match="suspended"):
            await adapter.check()
    finally:
        await adapter.close()


async def test_connect_points_the_sms_numbers_webhook_at_the_hub_and_disconnect_clears_it(
    fake: FakeTwilio,
) -> None:
    [number] = fake.numbers[ACCOUNT_SID]
    adapter = _adapter(fake, Channel.SMS)
    url = f"{PUBLIC}/webhooks/sms/7"
    try:
        await adapter.connect(url)
        assert (number.sms_url, number.sms_method) == (url, "POST")
        assert adapter.status_callback == url
        [listed] = fake.calls_of("numbers.list")
        assert listed.form["PhoneNumber"] == NUMBER
        await adapter.disconnect()
        assert number.sms_url == ""
        number.sms_url = "https://another-app.example.com/sms"
        await adapter.disconnect()  # another application's webhook is left alone
        assert number.sms_url == "https://another-app.example.com/sms"
    finally:
        await adapter.close()


async def test_connect_refuses_a_number_that_is_not_the_accounts(fake: FakeTwilio) -> None:
    adapter = TwilioAdapter(
        "7", Channel.SMS, auth_token=AUTH_TOKEN, phone="+37322999999", client=_client(fake)
    )
    try:
        with pytest.raises(PermanentJobError, match=r"\+37322999999 is not a phone number of this"):
            await adapter.connect(f"{PUBLIC}/webhooks/sms/7")
    finally:
        await adapter.close()
    assert fake.calls_of("numbers.update") == []


async def test_whatsapp_connect_only_remembers_the_status_callback_address(fake: FakeTwilio) -> None:
    adapter = _adapter(fake, Channel.WHATSAPP)
    try:
        await adapter.connect(f"{PUBLIC}/webhooks/whatsapp/7")
        await adapter.disconnect()
    finally:
        await adapter.close()
    assert adapter.status_callback == f"{PUBLIC}/webhooks/whatsapp/7"
    assert fake.calls == []


async def test_media_downloads_are_capped_and_missing_files_are_permanent(fake: FakeTwilio) -> None:
    adapter = _adapter(fake, Channel.WHATSAPP)
    url = fake.add_media(b"x" * 2048, "application/pdf")
    try:
        assert await adapter.fetch_media(url, 4096) == (b"x" * 2048, "application/pdf")
        with pytest.raises(PermanentJobError, match="larger than"):
            await adapter.fetch_media(url, 1024)
        with pytest.raises(PermanentJobError, match="not available"):
            await adapter.fetch_media(url.rsplit("/", 1)[0] + "/ME" + "0" * 32, 4096)
        fake.fail("media", 502)
        with pytest.raises(TransientChannelError):
            await adapter.fetch_media(url, 4096)
    finally:
        await adapter.close()


async def test_the_credentials_go_only_to_twilio(fake: FakeTwilio) -> None:
    """A media address on another host never receives the account's credentials."""
    elsewhere = fake.add_media(b"data", "image/png").replace("127.0.0.1", "localhost")
    adapter = _adapter(fake, Channel.SMS)
    try:
        with pytest.raises(PermanentJobError):  # the fake refuses the call without credentials
            await adapter.fetch_media(elsewhere, 4096)
    finally:
        await adapter.close()
    [call] = fake.calls_of("media")
    assert call.user == ""


async def test_the_adapters_connect_through_the_accounts_table(
    fake: FakeTwilio,
    tw_settings: Settings,
    sms: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    adapters = channel_accounts.Adapters(sessions, SecretBox(tw_settings.secret), tw_settings)
    adapter = await adapters.get(Channel.SMS, sms.id)
    assert isinstance(adapter, TwilioAdapter) and adapter.channel is Channel.SMS
    assert adapter.status_callback == f"{PUBLIC}/webhooks/sms/{sms.id}"
    await adapter.connect(f"{PUBLIC}/webhooks/sms/{sms.id}")
    await adapters.close()
    assert fake.numbers[ACCOUNT_SID][0].sms_url == f"{PUBLIC}/webhooks/sms/{sms.id}"


async def test_the_auth_token_never_reaches_logs_or_reprs(
    tw_client: TestClient,
    tw_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTwilio,
    make_user: MakeUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail("messages", 500)
    await post_form(tw_client, account, inbound(account))
    await post_form(tw_client, account, inbound(account), signature="d3Jvbmc=")
    [first] = await messages_of(sessions, account)
    await tw_app[keys.INBOX].send(await admin_viewer(make_user), first.conversation_id, "Salut")
    await drain(tw_app)
    assert caplog.records and AUTH_TOKEN not in caplog.text
    adapter = await tw_app[keys.CHANNEL_ADAPTERS].get(Channel(account.channel), account.id)
    assert adapter is not None
    assert AUTH_TOKEN not in repr(adapter) and AUTH_TOKEN not in repr(adapter.client)  # type: ignore[attr-defined]
    async with sessions() as db:
        stored = await db.get(ChannelAccount, account.id)
    assert stored is not None and AUTH_TOKEN not in stored.secrets and AUTH_TOKEN not in repr(stored)
