"""Twilio webhooks through the app: incoming WhatsApp and SMS messages, signatures, status callbacks, STOP and
START. Every form is Twilio's documented shape, signed with the account's auth token over the public URL."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.accounts_model import ChannelAccount
from channels.model import Channel
from channels.twilio.adapter import EMPTY_TWIML
from crm_core.models import Contact, ContactIdentity
from switchboard.errors import Invalid
from tests.channels.conftest import admin_viewer, drain, messages_of, stored_message
from tests.channels.twilio.conftest import CUSTOMER, as_channel, fixture, hook_url, inbound, post_form
from tests.conftest import MakeUser
from tests.fakes.twilio import AUTH_TOKEN, FakeTwilio, sign
from webui import keys

# --- incoming messages ------------------------------------------------------------------------------------


async def test_text_and_media_arrive_in_one_conversation_answered_with_empty_twiml(
    tw_client: TestClient, account: ChannelAccount, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for form in (inbound(account, "text"), inbound(account, "media")):
        answer = await post_form(tw_client, account, form)
        assert (answer.status, answer.text, answer.content_type) == (200, EMPTY_TWIML, "text/xml")
    text, media = await messages_of(sessions, account)
    assert text.conversation_id == media.conversation_id
    assert text.channel == account.channel and text.direction == "in" and text.kind == "text"
    assert text.external_id == inbound(account, "text")["MessageSid"]
    assert text.body.startswith("Bună ziua!")
    assert media.kind == "image" and media.body == "Buletinul meu"
    first = media.attachments[0]
    assert first["content_type"] == "image/jpeg"
    assert first["url"] == inbound(account, "media")["MediaUrl0"]
    assert first["filename"].endswith(".jpg")
    async with sessions() as db:
        contact = await db.get(Contact, text.author_contact_id)
        identity = await db.scalar(
            select(ContactIdentity).where(ContactIdentity.contact_id == text.author_contact_id)
        )
    assert contact is not None and contact.phone == CUSTOMER
    assert identity is not None and identity.external_id == CUSTOMER  # no "whatsapp:" prefix
    if account.channel == Channel.WHATSAPP:
        assert (contact.first_name, contact.last_name) == ("Ion", "Popescu")  # ProfileName


async def test_an_mms_keeps_every_media_file_and_takes_its_kind_from_the_first(
    tw_client: TestClient, sms: ChannelAccount, sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert (await post_form(tw_client, sms, fixture("sms_media"))).status == 200
    [stored] = await messages_of(sessions, sms)
    assert stored.kind == "image"
    assert [a["content_type"] for a in stored.attachments] == ["image/jpeg", "application/pdf"]


async def test_whatsapp_voice_notes_and_locations(
    tw_client: TestClient, whatsapp: ChannelAccount, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for name in ("whatsapp_voice", "whatsapp_location"):
        assert (await post_form(tw_client, whatsapp, fixture(name))).status == 200
    voice, location = await messages_of(sessions, whatsapp)
    assert voice.kind == "audio" and voice.attachments[0]["content_type"] == "audio/ogg"
    assert location.kind == "location" and location.body == "47.024512,28.832157"
    assert location.meta["label"] == "Oficiul central"


async def test_inbound_media_is_fetched_from_twilio_with_basic_auth_and_stored(
    tw_client: TestClient,
    tw_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTwilio,
) -> None:
    form = inbound(account, "media")
    form["NumMedia"] = "1"
    form["MediaUrl0"] = fake.add_media(b"\xff\xd8\xff\xe0 a jpeg", "image/jpeg")
    assert (await post_form(tw_client, account, form)).status == 200
    await drain(tw_app)
    [stored] = await messages_of(sessions, account)
    assert stored.attachments[0].get("stored_path"), stored.attachments
    [media] = fake.calls_of("media")
    [cdn] = fake.calls_of("cdn")
    assert media.user == account.config["account_sid"]
    assert cdn.user == ""  # the credentials never follow the redirect to another origin


async def test_the_same_webhook_twice_is_one_message(
    tw_client: TestClient, account: ChannelAccount, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for _ in range(2):
        assert (await post_form(tw_client, account, inbound(account))).status == 200
    assert len(await messages_of(sessions, account)) == 1


@pytest.mark.parametrize(("signature", "status"), [(None, 401), ("bm90IHRoZSBzaWduYXR1cmU=", 403)])
async def test_a_missing_or_wrong_signature_is_refused_and_nothing_stored(
    tw_client: TestClient,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    signature: str | None,
    status: int,
) -> None:
    answer = await post_form(tw_client, account, inbound(account), signature=signature)
    assert answer.status == status and "X-Twilio-Signature" in answer.json()["error"]
    assert await messages_of(sessions, account) == []


async def test_a_signature_made_with_another_token_or_over_a_changed_form_is_403(
    tw_client: TestClient, account: ChannelAccount, sessions: async_sessionmaker[AsyncSession]
) -> None:
    other = await post_form(tw_client, account, inbound(account), token="0" * 32)
    assert other.status == 403
    form = inbound(account)
    signed = await post_form(tw_client, account, form, signature="right")
    assert signed.status == 200
    tampered = dict(form, Body="Trimiteți banii pe alt cont", MessageSid="SM" + "e" * 32)
    answer = await post_form(
        tw_client, account, tampered, signature=sign(hook_url(account), form, AUTH_TOKEN)
    )
    assert answer.status == 403
    assert len(await messages_of(sessions, account)) == 1


async def test_a_webhook_of_another_twilio_account_is_403(
    tw_client: TestClient, account: ChannelAccount, sessions: async_sessionmaker[AsyncSession]
) -> None:
    form = dict(inbound(account), AccountSid="AC" + "9" * 32)
    answer = await post_form(tw_client, account, form)  # even correctly signed with our token
    assert answer.status == 403 and "another Twilio account" in answer.json()["error"]
    assert await messages_of(sessions, account) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"MessageSid": ""}, "MessageSid"),
        ({"MessageSid": "not-a-sid"}, "MessageSid"),
        ({"AccountSid": ""}, "AccountSid"),
        ({"From": ""}, "From"),
        ({"From": "whatsapp:someone"}, "From"),
        ({"NumMedia": "two"}, "NumMedia"),
        ({"NumMedia": "1"}, "MediaUrl0"),
        ({"NumMedia": "1", "MediaUrl0": "file:///etc/passwd"}, "MediaUrl0"),
        ({"Latitude": "47.0"}, "Latitude"),
        ({"Latitude": "north", "Longitude": "28.8"}, "Latitude"),
    ],
)
async def test_a_malformed_form_is_400_with_a_reason(
    tw_client: TestClient,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    change: dict[str, str],
    reason: str,
) -> None:
    form = dict(inbound(account), **change)
    if change.get("From", "x").startswith("whatsapp:") and account.channel == Channel.SMS:
        form["From"] = "someone"
    answer = await post_form(tw_client, account, form)
    assert answer.status == 400 and reason in answer.json()["error"]
    assert await messages_of(sessions, account) == []


@pytest.mark.parametrize("body", [b"just some text", b"MessageSid=\xff\xfe", b'{"MessageSid": "SM1"}'])
async def test_a_body_that_is_not_a_form_is_400_never_500(
    tw_client: TestClient, account: ChannelAccount, sessions: async_sessionmaker[AsyncSession], body: bytes
) -> None:
    answer = await post_form(tw_client, account, body)
    assert answer.status == 400 and answer.json()["error"]
    assert await messages_of(sessions, account) == []


async def test_a_message_of_the_other_channel_is_400(
    tw_client: TestClient, account: ChannelAccount, sessions: async_sessionmaker[AsyncSession]
) -> None:
    other = Channel.SMS if account.channel == Channel.WHATSAPP else Channel.WHATSAPP
    answer = await post_form(tw_client, account, as_channel(inbound(account), other))
    assert answer.status == 400
    assert await messages_of(sessions, account) == []


async def test_the_same_phone_on_whatsapp_and_sms_is_one_contact(
    tw_client: TestClient,
    whatsapp: ChannelAccount,
    sms: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    assert (await post_form(tw_client, whatsapp, fixture("whatsapp_text"))).status == 200
    assert (await post_form(tw_client, sms, fixture("sms_text"))).status == 200
    [on_whatsapp] = await messages_of(sessions, whatsapp)
    [on_sms] = await messages_of(sessions, sms)
    assert on_whatsapp.author_contact_id == on_sms.author_contact_id
    assert on_whatsapp.conversation_id == on_sms.conversation_id  # one thread per customer
    async with sessions() as db:
        channels = (
            await db.scalars(
                select(ContactIdentity.channel).where(ContactIdentity.contact_id == on_sms.author_contact_id)
            )
        ).all()
    assert sorted(channels) == ["sms", "whatsapp"]


# --- status callbacks -------------------------------------------------------------------------------------


async def _sent_reply(
    tw_client: TestClient,
    tw_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
) -> int:
    await post_form(tw_client, account, inbound(account))
    [first] = await messages_of(sessions, account)
    viewer = await admin_viewer(make_user)
    reply = await tw_app[keys.INBOX].send(viewer, first.conversation_id, "Mulțumim, revenim imediat.")
    await drain(tw_app)
    assert (await stored_message(sessions, reply.id)).status == "sent"
    return int(reply.id)


async def test_status_callbacks_move_the_ticks_forward_only(
    tw_client: TestClient,
    tw_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTwilio,
    make_user: MakeUser,
) -> None:
    reply_id = await _sent_reply(tw_client, tw_app, account, sessions, make_user)
    sid = (await stored_message(sessions, reply_id)).external_id
    assert sid in fake.sent
    seen = []
    for status in ("sent", "delivered", "sent", "read"):
        answer = await post_form(tw_client, account, fake.status_callback(sid, status))
        assert (answer.status, answer.text) == (200, EMPTY_TWIML)
        seen.append((await stored_message(sessions, reply_id)).status)
    assert seen == ["sent", "delivered", "delivered", "read"]
    stored = await stored_message(sessions, reply_id)
    assert stored.delivered_at is not None and stored.read_at is not None


async def test_an_undelivered_callback_fails_the_message_with_twilios_code_and_text(
    tw_client: TestClient,
    tw_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTwilio,
    make_user: MakeUser,
) -> None:
    reply_id = await _sent_reply(tw_client, tw_app, account, sessions, make_user)
    sid = (await stored_message(sessions, reply_id)).external_id
    assert sid is not None
    documented = fixture(f"{account.channel}_status_read") if account.channel == Channel.WHATSAPP else None
    if documented is not None:  # the documented WhatsApp read receipt first
        documented |= {"MessageSid": sid, "SmsSid": sid}
        assert (await post_form(tw_client, account, documented)).status == 200
    form = fixture("sms_status_undelivered") | {"MessageSid": sid, "SmsSid": sid}
    assert (await post_form(tw_client, account, form)).status == 200
    stored = await stored_message(sessions, reply_id)
    assert stored.status == "failed"
    assert stored.error == "Twilio 30003: Unreachable destination handset"
    failed = fake.status_callback(sid, "failed", error_code=63016, error_message="Outside the window")
    assert (await post_form(tw_client, account, failed)).status == 200
    assert (await stored_message(sessions, reply_id)).error == "Twilio 63016: Outside the window"


async def test_a_status_callback_for_a_message_we_do_not_know_is_acknowledged(
    tw_client: TestClient, account: ChannelAccount, sessions: async_sessionmaker[AsyncSession]
) -> None:
    form = fixture("sms_status_undelivered") | {"MessageSid": "SM" + "0" * 32}
    answer = await post_form(tw_client, account, form)
    assert answer.status == 200 and await messages_of(sessions, account) == []


# --- consent ------------------------------------------------------------------------------------------------


async def test_sms_stop_then_start_changes_consent(
    tw_client: TestClient,
    tw_app: web.Application,
    sms: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTwilio,
    make_user: MakeUser,
) -> None:
    assert (await post_form(tw_client, sms, fixture("sms_text"))).status == 200
    assert (await post_form(tw_client, sms, fixture("sms_stop"))).status == 200
    stored = await messages_of(sessions, sms)
    assert [m.body for m in stored] == [fixture("sms_text")["Body"], " Stop "]  # kept in the thread too
    inbox, viewer = tw_app[keys.INBOX], await admin_viewer(make_user)
    with pytest.raises(Invalid, match="unsubscribed"):
        await inbox.send(viewer, stored[0].conversation_id, "Oferta noastră")
    assert (await post_form(tw_client, sms, fixture("sms_start"))).status == 200
    reply = await inbox.send(viewer, stored[0].conversation_id, "Bine ați revenit!")
    await drain(tw_app)
    assert (await stored_message(sessions, reply.id)).status == "sent"
    assert [c.form["Body"] for c in fake.calls_of("messages")] == ["Bine ați revenit!"]


@pytest.mark.parametrize("body", ["STOP please", "Nu mai vreau să primesc mesaje"])
async def test_a_sentence_with_stop_in_it_is_not_an_opt_out(
    tw_client: TestClient,
    tw_app: web.Application,
    sms: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
    body: str,
) -> None:
    form = fixture("sms_stop") | {"Body": body}
    assert (await post_form(tw_client, sms, form)).status == 200
    [stored] = await messages_of(sessions, sms)
    reply = await tw_app[keys.INBOX].send(await admin_viewer(make_user), stored.conversation_id, "Bine")
    assert reply.status == "queued"


async def test_whatsapp_stop_is_an_ordinary_message_unless_twilio_says_opt_out(
    tw_client: TestClient,
    tw_app: web.Application,
    whatsapp: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
) -> None:
    form = fixture("whatsapp_text") | {"Body": "STOP"}
    assert (await post_form(tw_client, whatsapp, form)).status == 200
    [stored] = await messages_of(sessions, whatsapp)
    inbox, viewer = tw_app[keys.INBOX], await admin_viewer(make_user)
    assert (await inbox.send(viewer, stored.conversation_id, "Bine")).status == "queued"
    advanced = form | {"MessageSid": "SM" + "c" * 32, "OptOutType": "STOP"}  # Advanced Opt-Out's verdict
    assert (await post_form(tw_client, whatsapp, advanced)).status == 200
    with pytest.raises(Invalid, match="unsubscribed"):
        await inbox.send(viewer, stored.conversation_id, "Bine")
