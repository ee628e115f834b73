"""WhatsApp and SMS as the admin connects them: the form's fields checked and shaped into the account's
config, the credentials proven with Twilio before anything is stored, the SMS number's webhook set, the
WhatsApp webhook address shown to paste in the Twilio console."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.accounts_model import ChannelAccount
from channels.model import Channel
from channels.providers import provider_of
from channels.secrets import mask
from channels.twilio.provider import SMS, WHATSAPP, prepare
from switchboard.errors import Invalid
from switchboard.permissions import Role
from tests.channels.twilio.conftest import NUMBER, TEMPLATES
from tests.conftest import MakeUser, login, page_csrf
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FRIENDLY_NAME, FakeTwilio


def test_both_channels_are_in_the_provider_table() -> None:
    assert provider_of("whatsapp") is WHATSAPP and provider_of("sms") is SMS
    assert WHATSAPP.manual_webhook and not SMS.manual_webhook
    for provider in (WHATSAPP, SMS):
        secret = {f.name for f in provider.fields if f.secret}
        assert secret == {"auth_token"}


def test_prepare_checks_and_shapes_the_config() -> None:
    config = prepare({"account_sid": f" {ACCOUNT_SID} ", "phone": "+373 22 123 456", "templates": TEMPLATES})
    assert config["account_sid"] == ACCOUNT_SID and config["phone"] == NUMBER
    assert [t["name"] for t in config["templates"]] == ["Reminder", "Offer"]
    assert config["templates"][0]["variables"] == ["1", "2"]
    sms = prepare({"account_sid": ACCOUNT_SID, "phone": NUMBER, "plain_sms": "on"})
    assert sms == {"account_sid": ACCOUNT_SID, "phone": NUMBER, "plain_sms": True}
    assert prepare({"account_sid": ACCOUNT_SID, "phone": NUMBER, "plain_sms": ""})["plain_sms"] is False


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"account_sid": "AC123", "phone": NUMBER}, "account_sid"),
        ({"account_sid": "SK" + "3f" * 16, "phone": NUMBER}, "account_sid"),
        ({"account_sid": ACCOUNT_SID, "phone": "022 123 456"}, "phone"),
        ({"account_sid": ACCOUNT_SID, "phone": "whatsapp"}, "phone"),
        ({"account_sid": ACCOUNT_SID, "phone": NUMBER, "templates": "Reminder | HX1 | x"}, "templates"),
    ],
)
def test_prepare_names_the_bad_field(values: dict[str, str], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        prepare(values)
    assert caught.value.field == field


async def _admin(client: TestClient, make_user: MakeUser) -> str:
    admin = await make_user(Role.ADMIN)
    await login(client, admin.username)
    return await page_csrf(client, "/admin/channels")


async def test_an_admin_connects_tests_and_disconnects_an_sms_number(
    tw_client: TestClient,
    fake: FakeTwilio,
    make_user: MakeUser,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    csrf = await _admin(tw_client, make_user)
    form = {"name": "SMS Chișinău", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "phone": NUMBER}
    bad_sid = await tw_client.post(
        "/admin/channels/connect/sms", data={**form, "account_sid": "AC42", "_csrf": csrf}
    )
    assert bad_sid.status == 422 and "32 hexadecimal" in await bad_sid.text()
    refused = await tw_client.post(
        "/admin/channels/connect/sms", data={**form, "auth_token": "0" * 32, "_csrf": csrf}
    )
    assert refused.status == 422 and "Authenticate" in await refused.text()
    async with sessions() as db:
        assert (await db.scalars(select(ChannelAccount))).all() == []

    done = await tw_client.post(
        "/admin/channels/connect/sms", data={**form, "plain_sms": "on", "_csrf": csrf}, allow_redirects=False
    )
    assert done.status == 302, await done.text()
    async with sessions() as db:
        [account] = (await db.scalars(select(ChannelAccount))).all()
    assert account.channel == "sms" and AUTH_TOKEN not in account.secrets
    assert account.config["friendly_name"] == FRIENDLY_NAME and account.config["plain_sms"] is True
    [number] = fake.numbers[ACCOUNT_SID]
    assert number.sms_url.endswith(f"/webhooks/sms/{account.id}")
    assert account.config["webhook_url"] == number.sms_url
    page = await (await tw_client.get("/admin/channels")).text()
    assert "SMS Chișinău" in page and mask(AUTH_TOKEN) in page and AUTH_TOKEN not in page

    tested = await tw_client.post(f"/admin/channels/accounts/{account.id}/test", data={"_csrf": csrf})
    assert tested.status == 200 and FRIENDLY_NAME in await tested.text()
    gone = await tw_client.post(f"/admin/channels/accounts/{account.id}/disconnect", data={"_csrf": csrf})
    assert gone.status == 200 and number.sms_url == ""


async def test_an_admin_connects_a_whatsapp_sender_and_sees_the_address_to_paste(
    tw_client: TestClient,
    fake: FakeTwilio,
    make_user: MakeUser,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    csrf = await _admin(tw_client, make_user)
    form = {
        "name": "WhatsApp Credit",
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "phone": NUMBER,
        "templates": TEMPLATES,
        "_csrf": csrf,
    }
    bad = await tw_client.post(
        "/admin/channels/connect/whatsapp", data={**form, "templates": "Reminder | HX1 | Bună"}
    )
    assert bad.status == 422 and "line 1" in await bad.text()
    done = await tw_client.post("/admin/channels/connect/whatsapp", data=form, allow_redirects=False)
    assert done.status == 302, await done.text()
    async with sessions() as db:
        [account] = (await db.scalars(select(ChannelAccount))).all()
    assert account.channel == Channel.WHATSAPP.value
    assert [t["content_sid"] for t in account.config["templates"]] == ["HX" + "1a" * 16, "HX" + "2b" * 16]
    assert fake.calls_of("numbers.update") == []  # no API for a WhatsApp sender's webhook
    page = await (await tw_client.get("/admin/channels")).text()
    assert f"/webhooks/whatsapp/{account.id}" in page
