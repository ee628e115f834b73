"""Replies through Twilio: the agent's message goes through the inbox and the jobs worker to the real SDK,
which posts to the fake Messages endpoint; retries, permanent failures, media, SMS segments, WhatsApp
templates."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.accounts_model import ChannelAccount
from channels.model import Attachment, Channel, OutboundMessage, TemplateRef
from channels.twilio.adapter import TwilioAdapter
from channels.twilio.client import TwilioClient
from channels.twilio.templates import parse_templates, render
from switchboard.jobs import PermanentJobError
from switchboard.settings import Settings
from tests.channels.conftest import admin_viewer, drain, messages_of, stored_message
from tests.channels.twilio.conftest import (
    CUSTOMER,
    NUMBER,
    PUBLIC,
    TEMPLATES,
    inbound,
    make_account,
    post_form,
)
from tests.conftest import MakeUser
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from webui import keys


async def _conversation(
    tw_client: TestClient, account: ChannelAccount, sessions: async_sessionmaker[AsyncSession]
) -> int:
    assert (await post_form(tw_client, account, inbound(account))).status == 200
    return (await messages_of(sessions, account))[0].conversation_id


async def _reply(
    tw_client: TestClient,
    tw_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
    text: str,
) -> int:
    conversation = await _conversation(tw_client, account, sessions)
    reply = await tw_app[keys.INBOX].send(await admin_viewer(make_user), conversation, text)
    return int(reply.id)


def _prefix(account: ChannelAccount) -> str:
    return "whatsapp:" if account.channel == Channel.WHATSAPP else ""


async def test_a_reply_reaches_twilio_with_the_right_form_fields(
    tw_client: TestClient,
    tw_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTwilio,
    make_user: MakeUser,
) -> None:
    reply_id = await _reply(tw_client, tw_app, account, sessions, make_user, "Bună ziua, Ion!")
    await drain(tw_app)
    [call] = fake.calls_of("messages")
    assert call.user == ACCOUNT_SID and call.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert call.form == {
        "To": _prefix(account) + CUSTOMER,
        "From": _prefix(account) + NUMBER,
        "Body": "Bună ziua, Ion!",
        "StatusCallback": f"{PUBLIC}/webhooks/{account.channel}/{account.id}",
    }
    stored = await stored_message(sessions, reply_id)
    assert stored.status == "sent" and stored.external_id in fake.sent
    if account.channel == Channel.SMS:
        assert stored.meta == {"segments": 1, "encoding": "UCS-2"}  # "ă" is not GSM-7


async def test_a_long_sms_reports_its_segments(
    tw_client: TestClient,
    tw_app: web.Application,
    sms: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
) -> None:
    reply_id = await _reply(tw_client, tw_app, sms, sessions, make_user, "Rata lunara: 1500 lei. " * 10)
    await drain(tw_app)
    assert (await stored_message(sessions, reply_id)).meta == {"segments": 2, "encoding": "GSM-7"}


async def test_an_sms_account_may_send_romanian_without_diacritics(
    tw_client: TestClient,
    tw_app: web.Application,
    tw_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTwilio,
    make_user: MakeUser,
) -> None:
    plain = await make_account(sessions, tw_settings, Channel.SMS, plain_sms="on")
    reply_id = await _reply(tw_client, tw_app, plain, sessions, make_user, "Știm că rata e scadentă mâine.")
    await drain(tw_app)
    [call] = fake.calls_of("messages")
    assert call.form["Body"] == "Stim ca rata e scadenta maine."
    stored = await stored_message(sessions, reply_id)
    assert stored.body == "Știm că rata e scadentă mâine."  # the conversation keeps what the agent wrote
    assert stored.meta == {"segments": 1, "encoding": "GSM-7", "transliterated": True}


async def test_a_5xx_twice_then_201_is_delivered_once(
    tw_client: TestClient,
    tw_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTwilio,
    make_user: MakeUser,
) -> None:
    fake.fail("messages", 503, times=2)
    reply_id = await _reply(tw_client, tw_app, account, sessions, make_user, "Revin imediat")
    await drain(tw_app)
    stored = await stored_message(sessions, reply_id)
    assert stored.status == "sent" and stored.error is None
    assert len(fake.calls_of("messages")) == 3
    assert list(fake.sent) == [stored.external_id]  # Twilio created exactly one message


async def test_a_rate_limit_is_retried(
    tw_client: TestClient,
    tw_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTwilio,
    make_user: MakeUser,
) -> None:
    fake.fail("messages", 429)
    reply_id = await _reply(tw_client, tw_app, account, sessions, make_user, "Salut")
    await drain(tw_app)
    assert (await stored_message(sessions, reply_id)).status == "sent"
    assert len(fake.calls_of("messages")) == 2


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (21211, "Twilio 21211: The 'To' number is not a valid phone number."),
        (
            63016,
            "Twilio 63016: Failed to send freeform message because you are outside the allowed window. "
            "If you are using WhatsApp, please use a Message Template.",
        ),
        (21610, "Twilio 21610: Attempt to send to unsubscribed recipient"),
    ],
)
async def test_a_permanent_4xx_marks_the_message_failed_with_twilios_reason(
    tw_client: TestClient,
    tw_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTwilio,
    make_user: MakeUser,
    code: int,
    reason: str,
) -> None:
    fake.fail("messages", 400, code=code, times=5)
    reply_id = await _reply(tw_client, tw_app, account, sessions, make_user, "Mai sunteți acolo?")
    await drain(tw_app)
    stored = await stored_message(sessions, reply_id)
    assert (stored.status, stored.error) == ("failed", reason)
    assert len(fake.calls_of("messages")) == 1  # never retried


async def test_files_go_by_their_signed_public_address(
    tw_client: TestClient,
    tw_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTwilio,
    make_user: MakeUser,
) -> None:
    conversation = await _conversation(tw_client, account, sessions)
    files = tw_app[keys.FILES]
    photo = await files.save(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png", "contract.png")
    reply = await tw_app[keys.INBOX].attach(
        await admin_viewer(make_user), conversation, photo, "Contractul semnat"
    )
    await drain(tw_app)
    [call] = fake.calls_of("messages")
    [url] = call.all("MediaUrl")
    assert url.startswith(f"{PUBLIC}/media/")
    assert call.form["Body"] == "Contractul semnat"
    assert (await stored_message(sessions, reply.id)).status == "sent"


def _adapter(account: ChannelAccount, fake: FakeTwilio, **overrides: object) -> TwilioAdapter:
    values: dict[str, object] = {
        "auth_token": AUTH_TOKEN,
        "phone": NUMBER,
        "client": TwilioClient(ACCOUNT_SID, AUTH_TOKEN, fake.base_url, timeout=2),
        "templates": tuple(parse_templates(TEMPLATES)),
    }
    values.update(overrides)
    return TwilioAdapter(str(account.id), Channel(account.channel), **values)  # type: ignore[arg-type]


def _outbound(account: ChannelAccount, **values: object) -> OutboundMessage:
    base: dict[str, object] = {
        "message_id": 1,
        "channel": Channel(account.channel),
        "account_id": str(account.id),
        "recipient_id": CUSTOMER,
        "body": "",
    }
    base.update(values)
    return OutboundMessage(**base)  # type: ignore[arg-type]


async def test_a_file_without_a_public_address_fails_with_a_clear_reason(
    account: ChannelAccount, fake: FakeTwilio
) -> None:
    adapter = _adapter(account, fake)
    try:
        stored_only = Attachment("image/png", "a.png", 10, stored_path="ab/abcdef")
        with pytest.raises(PermanentJobError, match="public address"):
            await adapter.send(_outbound(account, attachments=(stored_only,)))
    finally:
        await adapter.close()
    assert fake.calls_of("messages") == []


async def test_whatsapp_sends_one_file_a_message_with_the_text_on_the_first(
    whatsapp: ChannelAccount, fake: FakeTwilio
) -> None:
    adapter = _adapter(whatsapp, fake)
    files = tuple(
        Attachment("image/jpeg", f"{n}.jpg", 10, url=f"https://hub.example.md/media/{n}") for n in range(2)
    )
    try:
        sent = await adapter.send(_outbound(whatsapp, body="Actele", attachments=files))
    finally:
        await adapter.close()
    first, second = fake.calls_of("messages")
    assert (first.form["Body"], first.all("MediaUrl")) == ("Actele", ["https://hub.example.md/media/0"])
    assert ("Body" not in second.form, second.all("MediaUrl")) == (True, ["https://hub.example.md/media/1"])
    assert sent.external_id == next(iter(fake.sent))


async def test_an_empty_message_is_not_sent(account: ChannelAccount, fake: FakeTwilio) -> None:
    adapter = _adapter(account, fake)
    try:
        with pytest.raises(PermanentJobError, match="empty"):
            await adapter.send(_outbound(account, body="  "))
    finally:
        await adapter.close()


# --- WhatsApp templates -----------------------------------------------------------------------------------


async def test_a_whatsapp_template_goes_by_content_sid_with_its_variables(
    tw_client: TestClient,
    tw_app: web.Application,
    whatsapp: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTwilio,
    make_user: MakeUser,
) -> None:
    conversation = await _conversation(tw_client, whatsapp, sessions)
    [reminder, _] = parse_templates(TEMPLATES)
    variables = {"1": "Ion", "2": "1500"}
    text = render(reminder, variables)
    assert text == "Bună ziua, Ion! Rata de 1500 lei este scadentă mâine."
    reply = await tw_app[keys.INBOX].send(
        await admin_viewer(make_user),
        conversation,
        text,
        template=TemplateRef(reminder.content_sid, variables),
    )
    await drain(tw_app)
    [call] = fake.calls_of("messages")
    assert call.form["ContentSid"] == reminder.content_sid
    assert json.loads(call.form["ContentVariables"]) == variables
    assert "Body" not in call.form
    assert call.form["To"] == f"whatsapp:{CUSTOMER}"
    stored = await stored_message(sessions, reply.id)
    assert stored.status == "sent" and stored.body == text


async def test_a_template_may_be_named_as_the_account_lists_it(
    whatsapp: ChannelAccount, sms: ChannelAccount, fake: FakeTwilio
) -> None:
    adapter = _adapter(whatsapp, fake)
    try:
        await adapter.send(_outbound(whatsapp, template=TemplateRef("offer")))
        with pytest.raises(PermanentJobError, match="no template named"):
            await adapter.send(_outbound(whatsapp, template=TemplateRef("Birthday")))
    finally:
        await adapter.close()
    [call] = fake.calls_of("messages")
    assert call.form["ContentSid"] == "HX" + "2b" * 16 and json.loads(call.form["ContentVariables"]) == {}
    sms_adapter = _adapter(sms, fake)
    try:
        with pytest.raises(PermanentJobError, match="WhatsApp"):
            await sms_adapter.send(_outbound(sms, template=TemplateRef("HX" + "2b" * 16)))
    finally:
        await sms_adapter.close()
