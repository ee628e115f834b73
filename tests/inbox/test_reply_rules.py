"""What `inbox.send` refuses before anything is queued: a customer who opted out of the channel, and a reply
outside a provider's customer-service window without an allowed template or message tag; plus e-mail
threading, read watermarks and the signed media links outbound files travel by."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import media_links, windows
from channels.model import (
    Attachment,
    Channel,
    ConsentUpdate,
    DeliveryStatus,
    InboundMessage,
    TemplateRef,
    WatermarkUpdate,
)
from crm_core.models import ContactIdentity
from inbox.models import Message
from inbox.service import Inbox, Viewer
from switchboard.errors import Invalid
from switchboard.jobs_model import Job
from switchboard.permissions import Role
from tests.conftest import MakeUser

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def message(channel: Channel, external_id: str, sender: str = "+37369123456", **kw: object) -> InboundMessage:
    return InboundMessage(
        channel=channel,
        account_id="1",
        external_id=external_id,
        sender_id=sender,
        body=str(kw.pop("body", "Bună ziua")),
        **kw,  # type: ignore[arg-type]
    )


async def admin_viewer(make_user: MakeUser) -> Viewer:
    admin = await make_user(Role.ADMIN)
    return Viewer(admin.id, Role.ADMIN, None)


async def age_inbound(sessions: async_sessionmaker[AsyncSession], hours: float) -> None:
    """Make every customer message `hours` old: the window is measured from the last one."""
    async with sessions() as db, db.begin():
        await db.execute(
            update(Message)
            .where(Message.direction == "in")
            .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours))
        )


# --- the windows as the providers define them ---------------------------------------------------------------


def test_whatsapp_is_free_for_24_hours_then_templates_only() -> None:
    assert windows.window(Channel.WHATSAPP, NOW - 23 * HOUR, NOW).verdict is windows.Verdict.OPEN
    closed = windows.window(Channel.WHATSAPP, NOW - 25 * HOUR, NOW)
    assert closed.verdict is windows.Verdict.TEMPLATE and closed.closes_at == NOW - HOUR
    assert windows.window(Channel.WHATSAPP, None, NOW).verdict is windows.Verdict.TEMPLATE


def test_messenger_allows_the_human_agent_tag_for_7_days_and_update_tags_always() -> None:
    day3 = windows.window(Channel.MESSENGER, NOW - 72 * HOUR, NOW)
    assert day3.verdict is windows.Verdict.TAG and windows.HUMAN_AGENT in day3.tags
    day8 = windows.window(Channel.MESSENGER, NOW - 8 * 24 * HOUR, NOW)
    assert windows.HUMAN_AGENT not in day8.tags and "ACCOUNT_UPDATE" in day8.tags


def test_instagram_has_only_the_human_agent_tag_and_then_nothing() -> None:
    assert windows.window(Channel.INSTAGRAM, NOW - 48 * HOUR, NOW).tags == (windows.HUMAN_AGENT,)
    assert windows.window(Channel.INSTAGRAM, NOW - 8 * 24 * HOUR, NOW).verdict is windows.Verdict.CLOSED


@pytest.mark.parametrize("channel", [Channel.TELEGRAM, Channel.VIBER, Channel.SMS, Channel.EMAIL])
def test_channels_without_a_window_are_always_open(channel: Channel) -> None:
    assert windows.window(channel, NOW - 1000 * HOUR, NOW).verdict is windows.Verdict.OPEN


# --- inbox.send ---------------------------------------------------------------------------------------------


async def test_a_whatsapp_reply_after_24_hours_is_refused_unless_it_is_a_template(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    viewer = await admin_viewer(make_user)
    got = await inbox.ingest(message(Channel.WHATSAPP, "SM1"))
    assert (await inbox.send(viewer, got.conversation_id, "Vă sun acum")).status == "queued"
    await age_inbound(sessions, 25)
    with pytest.raises(Invalid) as refused:
        await inbox.send(viewer, got.conversation_id, "Mai sunteți interesat?")
    assert refused.value.field == "window" and "template" in refused.value.message
    _, _, current, _ = await inbox.reply_window(viewer, got.conversation_id)
    assert current.verdict is windows.Verdict.TEMPLATE
    template = TemplateRef("HX" + "a" * 32, {"1": "Ion"})
    sent = await inbox.send(viewer, got.conversation_id, "Bună, Ion! Oferta e gata.", template=template)
    async with sessions() as db:
        stored = await db.get(Message, sent.id)
        jobs = (await db.scalars(select(Job))).all()
    assert stored is not None and stored.meta["template"] == {
        "name": "HX" + "a" * 32,
        "variables": {"1": "Ion"},
    }
    assert len(jobs) == 2  # the first reply and the template; the refused one queued nothing


async def test_a_messenger_reply_after_the_window_needs_an_allowed_tag(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    viewer = await admin_viewer(make_user)
    got = await inbox.ingest(message(Channel.MESSENGER, "m.1", sender="6789012345678901"))
    await age_inbound(sessions, 30)
    with pytest.raises(Invalid) as refused:
        await inbox.send(viewer, got.conversation_id, "Revin cu oferta")
    assert "HUMAN_AGENT" in str(refused.value.params)
    with pytest.raises(Invalid):
        await inbox.send(viewer, got.conversation_id, "Promo!", template=TemplateRef("CONFIRMED_SPAM"))
    assert await inbox.send(
        viewer, got.conversation_id, "Revin cu oferta", template=TemplateRef("HUMAN_AGENT")
    )


async def test_a_template_on_a_channel_without_templates_is_refused(
    inbox: Inbox, make_user: MakeUser
) -> None:
    viewer = await admin_viewer(make_user)
    got = await inbox.ingest(message(Channel.TELEGRAM, "1:1", sender="424242"))
    with pytest.raises(Invalid):
        await inbox.send(viewer, got.conversation_id, "x", template=TemplateRef("HUMAN_AGENT"))


async def test_an_opted_out_customer_gets_nothing_until_they_opt_in_again(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    viewer = await admin_viewer(make_user)
    got = await inbox.ingest(message(Channel.SMS, "SM1", body="STOP"))
    assert await inbox.update_consent(ConsentUpdate(Channel.SMS, "1", "+37369123456", subscribed=False))
    with pytest.raises(Invalid) as refused:
        await inbox.send(viewer, got.conversation_id, "Oferta noastră")
    assert refused.value.field == "channel" and "unsubscribed" in refused.value.message
    assert (await inbox.reply_window(viewer, got.conversation_id))[3] is True
    assert await inbox.update_consent(ConsentUpdate(Channel.SMS, "1", "+37369123456", subscribed=True))
    assert (await inbox.send(viewer, got.conversation_id, "Oferta noastră")).status == "queued"


async def test_an_opt_in_from_someone_unknown_makes_a_contact_and_an_opt_out_does_not(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert not await inbox.update_consent(ConsentUpdate(Channel.VIBER, "1", "nobody==", subscribed=False))
    assert await inbox.update_consent(
        ConsentUpdate(Channel.VIBER, "1", "01234567890A==", subscribed=True, sender_name="Ana Rusu")
    )
    async with sessions() as db:
        [identity] = (await db.scalars(select(ContactIdentity))).all()
    assert identity.external_id == "01234567890A==" and identity.unsubscribed_at is None


# --- e-mail threading, watermarks ---------------------------------------------------------------------------


async def test_a_reply_from_a_new_address_joins_the_conversation_of_the_mail_it_answers(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    viewer = await admin_viewer(make_user)
    first = await inbox.ingest(message(Channel.EMAIL, "a@mail.md", sender="ion@mail.md"))
    reply = await inbox.send(viewer, first.conversation_id, "Vă trimitem oferta")
    async with sessions() as db, db.begin():
        await db.execute(update(Message).where(Message.id == reply.id).values(external_id="ours@hub.md"))
    other = message(
        Channel.EMAIL, "b@work.md", sender="ion.popescu@work.md", in_reply_to=("x@y", "ours@hub.md")
    )
    answered = await inbox.ingest(other)
    assert answered.conversation_id == first.conversation_id and not answered.new_contact


async def test_a_read_watermark_moves_every_reply_sent_before_it(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    viewer = await admin_viewer(make_user)
    got = await inbox.ingest(message(Channel.MESSENGER, "m.1", sender="6789"))
    replies = [await inbox.send(viewer, got.conversation_id, text) for text in ("Unu", "Doi", "Trei")]
    sent_at = dt.datetime.now(dt.UTC)
    async with sessions() as db, db.begin():
        for reply, offset in zip(replies, (-10, -5, 60), strict=True):
            await db.execute(
                update(Message)
                .where(Message.id == reply.id)
                .values(status="sent", sent_at=sent_at + dt.timedelta(seconds=offset))
            )
    moved = await inbox.update_watermark(
        WatermarkUpdate(Channel.MESSENGER, "1", "6789", DeliveryStatus.READ, sent_at)
    )
    assert moved == 2
    async with sessions() as db:
        statuses = [(await db.get(Message, r.id)).status for r in replies]  # type: ignore[union-attr]
    assert statuses == ["read", "read", "sent"]


# --- media links --------------------------------------------------------------------------------------------


def test_a_media_link_names_its_file_and_cannot_be_forged_or_outlive_a_day() -> None:
    secret = b"s" * 32
    file = Attachment("image/jpeg", "oferta.jpg", stored_path="ab/abcdef")
    token = media_links.sign(secret, file, now=1000.0)
    linked = media_links.verify(secret, token, now=2000.0)
    assert linked == media_links.LinkedFile("ab/abcdef", "image/jpeg", "oferta.jpg")
    assert media_links.verify(b"t" * 32, token, now=2000.0) is None
    assert media_links.verify(secret, token, now=1000.0 + media_links.LIFETIME_SECONDS + 1) is None
    body, mac = token.split(".")
    assert media_links.verify(secret, body[:-2] + "xx." + mac, now=2000.0) is None
    assert media_links.verify(secret, "garbage", now=2000.0) is None
    url = media_links.public_url("https://hub.example.md/", secret, file)
    assert url.startswith("https://hub.example.md/media/") and url.endswith("/oferta.jpg")
