"""E-mail end to end: the real aioimaplib and aiosmtplib clients against the fake IMAP and SMTP servers, the
mailbox polled into the real inbox, replies sent through the app's jobs worker."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import accounts as channel_accounts
from channels.accounts_model import ChannelAccount
from channels.base import Event, TransientChannelError
from channels.email.adapter import EmailAdapter
from channels.email.config import prepare_config
from channels.email.provider import PROVIDER
from channels.model import Channel, InboundMessage, OutboundMessage
from channels.provider_spec import AccountData
from channels.secrets import SecretBox
from crm_core.models import Contact
from inbox.service import Viewer
from switchboard.app import build_app
from switchboard.audit import SYSTEM
from switchboard.files import FileStore
from switchboard.jobs import PermanentJobError
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.channels.conftest import messages_of, reply_as_admin, run_until_sent, stored_message
from tests.conftest import MakeUser
from tests.fakes.imap import PASSWORD, USERNAME, FakeImap, self_signed_context
from tests.fakes.smtp import FakeSmtp
from webui import keys

FIXTURES = Path(__file__).parent / "fixtures"
ADDRESS = "credite@banca-test.md"


def eml(name: str) -> bytes:
    return (FIXTURES / f"{name}.eml").read_bytes()


@pytest.fixture
async def imap() -> AsyncIterator[FakeImap]:
    server = FakeImap()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def smtp() -> AsyncIterator[FakeSmtp]:
    server = FakeSmtp(username=USERNAME, password=PASSWORD)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def mail_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"jobs_backoff_base_seconds": 0.01, "media_max_mb": 1})


@pytest.fixture
async def mail_app(mail_settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> web.Application:
    return build_app(mail_settings)


@pytest.fixture
async def mail_client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], mail_app: web.Application
) -> TestClient:
    return await aiohttp_client(mail_app)  # runs the app's start-up: inbox, worker, adapters


def form(imap: FakeImap, smtp: FakeSmtp, **changes: str) -> dict[str, str]:
    values = {
        "address": ADDRESS,
        "imap_host": "127.0.0.1",
        "imap_port": str(imap.port),
        "imap_ssl": "",
        "smtp_host": "127.0.0.1",
        "smtp_port": str(smtp.port),
        "smtp_security": "none",
        "username": USERNAME,
        "folder": "",
    }
    values.update(changes)
    return values


@pytest.fixture
async def account(
    sessions: async_sessionmaker[AsyncSession], mail_settings: Settings, imap: FakeImap, smtp: FakeSmtp
) -> ChannelAccount:
    async with sessions() as db, db.begin():
        return await channel_accounts.create_account(
            db,
            SYSTEM,
            SecretBox(mail_settings.secret),
            channel=Channel.EMAIL,
            name="Credit Center",
            secrets={"password": PASSWORD},
            config=prepare_config(form(imap, smtp)),
        )


async def adapter_of(app: web.Application, account: ChannelAccount) -> EmailAdapter:
    adapter = await app[keys.CHANNEL_ADAPTERS].get(Channel.EMAIL, account.id)
    assert isinstance(adapter, EmailAdapter)
    return adapter


async def poll(app: web.Application, account: ChannelAccount) -> None:
    adapter = await adapter_of(app, account)
    await adapter.poll(app[keys.INBOX].receive)


# --- inbound ----------------------------------------------------------------------------------------------


async def test_plain_html_and_attachment_mail_become_one_message_each_and_are_marked_seen(
    mail_client: TestClient,
    mail_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    imap: FakeImap,
    mail_settings: Settings,
) -> None:
    uids = [imap.append(eml(name)) for name in ("plain", "html_only", "attachment")]
    await poll(mail_app, account)

    plain, html, attached = await messages_of(sessions, account)
    assert all(imap.seen(uid) for uid in uids)
    assert plain.external_id == "CAF3k9Qx1pZ7@mail.example.md" and plain.direction == "in"
    assert plain.body.startswith("Bună ziua,\n\nAș dori un credit ipotecar de 900000 lei")
    assert plain.meta["subject"] == "Cerere credit ipotecar \u2013 și o întrebare"
    assert plain.meta["message_id"] == "CAF3k9Qx1pZ7@mail.example.md" and "html" not in plain.meta

    assert html.body.startswith("Bună ziua,\n\nAş vrea să refinanţez un credit de consum de 45 000 lei.")
    assert "document.cookie" not in html.body and "Refinantare" not in html.body  # <script>, <title>
    safe = html.meta["html"]
    assert "<b>45 000 lei</b>" in safe and 'rel="noopener noreferrer"' in safe
    for hostile in ("<script", "onload", "onclick", "<iframe", "track.example.net", "cid:", "<style"):
        assert hostile not in safe

    assert attached.kind == "text" and attached.body.startswith("Vă trimit adeverința de salariu")
    assert "“factura.exe” was not saved: Programs and scripts cannot be uploaded." in attached.body
    pdf, jpg = attached.attachments
    assert (pdf["content_type"], pdf["filename"], pdf["size"]) == (
        "application/pdf",
        "adeverinta salariu.pdf",
        142,
    )
    assert jpg["content_type"] == "image/jpeg" and jpg["filename"] == "buletin.jpg"
    store = FileStore(mail_settings.files_root, mail_settings.media_max_bytes)
    assert store.locate(pdf["stored_path"]).read_bytes().startswith(b"%PDF-1.4")

    assert plain.conversation_id == attached.conversation_id != html.conversation_id
    async with sessions() as db:
        ion = await db.get(Contact, plain.author_contact_id)
        maria = await db.get(Contact, html.author_contact_id)
    assert ion is not None and (ion.first_name, ion.last_name) == ("Ion", "Popescu")
    assert maria is not None and (maria.first_name, maria.last_name) == ("Maria", "Rusu")

    await poll(mail_app, account)  # nothing unseen: nothing fetched, nothing stored
    assert len(await messages_of(sessions, account)) == 3
    assert len(imap.commands_of("UID FETCH")) == 4  # the sizes, then three bodies, in the first round only


async def test_the_same_mail_read_twice_is_stored_once(
    mail_client: TestClient,
    mail_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    imap: FakeImap,
) -> None:
    first = imap.append(eml("plain"))
    await poll(mail_app, account)
    imap.unsee_all()  # another mail program marked it unread again
    copy = imap.append(eml("plain"))  # and the server delivered it a second time
    await poll(mail_app, account)
    assert len(await messages_of(sessions, account)) == 1
    assert imap.seen(first) and imap.seen(copy)


async def test_a_reply_from_a_new_address_joins_the_conversation_of_our_mail_it_answers(
    mail_client: TestClient,
    mail_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    imap: FakeImap,
    smtp: FakeSmtp,
    make_user: MakeUser,
) -> None:
    imap.append(eml("plain"))
    await poll(mail_app, account)
    [first] = await messages_of(sessions, account)
    admin = await make_user(Role.ADMIN)
    await mail_app[keys.INBOX].send(Viewer(admin.id, Role.ADMIN, None), first.conversation_id, "Vă așteptăm!")
    assert await mail_app[keys.WORKER].run_once() == 1
    [sent] = smtp.messages
    ours = str(sent.message["Message-ID"])

    imap.append(eml("reply_new_address").replace(b"<ORIGINAL-ID@banca-test.md>", ours.encode()))
    await poll(mail_app, account)
    *_, reply = await messages_of(sessions, account)
    assert reply.body == "Vă scriu de pe adresa de serviciu. Pot veni vineri?"
    assert reply.conversation_id == first.conversation_id
    assert reply.author_contact_id == first.author_contact_id


async def test_malformed_mail_is_skipped_and_marked_seen_without_stopping_the_poll(
    mail_client: TestClient,
    mail_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    imap: FakeImap,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="channels.email.adapter")
    broken = imap.append(eml("malformed"))
    good = imap.append(eml("alternative"))
    await poll(mail_app, account)
    [stored] = await messages_of(sessions, account)
    assert stored.body == "Salut! Pot veni mâine la ora 10 la sucursala din Botanica?"
    assert stored.meta["html"].startswith('<div dir="ltr">Salut! Pot veni <b>mâine</b>')
    assert "pixel" not in stored.meta["html"]
    assert imap.seen(broken) and imap.seen(good)
    assert f"uid {broken}" in caplog.text and "no usable From address" in caplog.text


async def test_auto_replies_and_bulk_mail_are_not_stored_and_a_bounce_fails_our_message(
    mail_client: TestClient,
    mail_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    imap: FakeImap,
    smtp: FakeSmtp,
    make_user: MakeUser,
) -> None:
    imap.append(eml("plain"))
    await poll(mail_app, account)
    [first] = await messages_of(sessions, account)
    admin = await make_user(Role.ADMIN)
    reply = await mail_app[keys.INBOX].send(
        Viewer(admin.id, Role.ADMIN, None), first.conversation_id, "Salut"
    )
    await mail_app[keys.WORKER].run_once()
    ours = str(smtp.messages[0].message["Message-ID"])

    uids = [
        imap.append(eml("autoreply")),
        imap.append(eml("newsletter")),
        imap.append(eml("bounce").replace(b"<ORIGINAL-ID@banca-test.md>", ours.encode())),
    ]
    await poll(mail_app, account)
    assert [m.id for m in await messages_of(sessions, account)] == [first.id, reply.id]
    assert all(imap.seen(uid) for uid in uids)
    failed = await stored_message(sessions, reply.id)
    assert failed.status == "failed"
    assert (
        failed.error is not None
        and "550 5.1.1 <nobody@example.md>: Recipient address rejected" in failed.error
    )


async def test_a_failing_handle_leaves_the_mail_unseen_for_the_next_round(
    mail_client: TestClient, mail_app: web.Application, account: ChannelAccount, imap: FakeImap
) -> None:
    uid = imap.append(eml("plain"))
    adapter = await adapter_of(mail_app, account)
    taken: list[Event] = []

    async def broken(event: Event) -> None:
        raise RuntimeError("database is down")

    async def working(event: Event) -> None:
        taken.append(event)

    await adapter.poll(broken)
    assert not imap.seen(uid)
    await adapter.poll(working)
    assert imap.seen(uid)
    [event] = taken
    assert isinstance(event, InboundMessage) and event.external_id == "CAF3k9Qx1pZ7@mail.example.md"


async def test_a_poll_takes_at_most_one_batch_oldest_first(
    mail_app: web.Application, mail_client: TestClient, account: ChannelAccount, imap: FakeImap
) -> None:
    adapter = await adapter_of(mail_app, account)
    adapter.batch = 2
    uids = [imap.append(eml("plain").replace(b"CAF3k9Qx1pZ7", f"id{n}".encode())) for n in range(5)]
    taken: list[str] = []

    async def handle(event: Event) -> None:
        assert isinstance(event, InboundMessage)
        taken.append(event.external_id)

    await adapter.poll(handle)
    assert taken == ["id0@mail.example.md", "id1@mail.example.md"]
    assert [imap.seen(uid) for uid in uids] == [True, True, False, False, False]
    await adapter.poll(handle)
    assert len(taken) == 4


async def test_an_attachment_over_the_limit_is_left_out_with_a_note(
    mail_app: web.Application, mail_client: TestClient, account: ChannelAccount, imap: FakeImap
) -> None:
    message = EmailMessage()
    message["From"] = "Ion Popescu <ion.popescu@example.md>"
    message["To"] = ADDRESS
    message["Subject"] = "Extras de cont"
    message["Message-ID"] = make_msgid(domain="example.md")
    message.set_content("")
    message.add_attachment(
        b"%PDF-1.4\n" + b"0" * (1024 * 1024 + 10), "application", "pdf", filename="extras.pdf"
    )
    message.add_attachment(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image", "png", filename="semnatura.png")
    imap.append(message.as_bytes())
    adapter = await adapter_of(mail_app, account)
    taken: list[Event] = []

    async def handle(event: Event) -> None:
        taken.append(event)

    await adapter.poll(handle)
    [event] = taken
    assert isinstance(event, InboundMessage)
    assert event.body == "[Attachment “extras.pdf” was not saved: it is larger than 1 MB.]"
    assert [a.filename for a in event.attachments] == ["semnatura.png"]
    assert event.kind == "text"  # the note is the body; an attachment alone would make it an image


async def test_a_mail_with_only_a_picture_is_an_image_message(
    mail_app: web.Application, mail_client: TestClient, account: ChannelAccount, imap: FakeImap
) -> None:
    message = EmailMessage()
    message["From"] = "ion.popescu@example.md"
    message["To"] = ADDRESS
    message["Message-ID"] = make_msgid(domain="example.md")
    message.set_content("")
    message.add_attachment(b"\xff\xd8\xff\xe0" + b"\x00" * 200, "image", "jpeg", filename="IMG_2041.jpg")
    imap.append(message.as_bytes())
    taken: list[Event] = []

    async def handle(event: Event) -> None:
        taken.append(event)

    await (await adapter_of(mail_app, account)).poll(handle)
    [event] = taken
    assert isinstance(event, InboundMessage) and event.kind == "image" and event.body == ""


async def test_a_message_too_large_to_fetch_comes_in_as_its_header_and_a_note(
    mail_app: web.Application, mail_client: TestClient, account: ChannelAccount, imap: FakeImap
) -> None:
    adapter = await adapter_of(mail_app, account)
    adapter.max_message_bytes = 300
    uid = imap.append(eml("plain"))
    taken: list[Event] = []

    async def handle(event: Event) -> None:
        taken.append(event)

    await adapter.poll(handle)
    [event] = taken
    assert isinstance(event, InboundMessage) and event.external_id == "CAF3k9Qx1pZ7@mail.example.md"
    assert event.sender_id == "ion.popescu@example.md" and "open it in the mailbox" in event.body
    assert imap.commands_of("UID FETCH")[-1] == f"UID FETCH {uid} (BODY.PEEK[HEADER])" and imap.seen(uid)


# --- the connection ---------------------------------------------------------------------------------------


async def test_a_dropped_connection_is_a_retryable_error_and_the_mail_stays_unseen(
    mail_app: web.Application, mail_client: TestClient, account: ChannelAccount, imap: FakeImap
) -> None:
    uid = imap.append(eml("plain"))
    adapter = await adapter_of(mail_app, account)
    adapter.timeout = 5.0
    imap.drop_on("UID FETCH")
    with pytest.raises(TransientChannelError, match="closed the connection"):
        await asyncio.wait_for(adapter.poll(mail_app[keys.INBOX].receive), 2)
    assert not imap.seen(uid)
    await adapter.poll(mail_app[keys.INBOX].receive)
    assert imap.seen(uid)


async def test_a_server_that_does_not_answer_times_out(
    mail_app: web.Application, mail_client: TestClient, account: ChannelAccount, imap: FakeImap
) -> None:
    adapter = await adapter_of(mail_app, account)
    adapter.timeout = 0.3
    imap.hang_on("UID SEARCH")
    with pytest.raises(TransientChannelError, match="UID SEARCH"):
        await adapter.poll(mail_app[keys.INBOX].receive)


async def test_a_refused_connection_is_retryable(
    mail_settings: Settings, imap: FakeImap, smtp: FakeSmtp
) -> None:
    await imap.close()
    adapter = build_adapter(mail_settings, prepare_config(form(imap, smtp)))
    with pytest.raises(TransientChannelError, match="connecting"):
        await adapter.poll(_ignore)


async def test_an_untrusted_tls_certificate_is_refused(mail_settings: Settings, smtp: FakeSmtp) -> None:
    server = FakeImap()
    await server.start(self_signed_context())
    try:
        adapter = build_adapter(mail_settings, prepare_config(form(server, smtp, imap_ssl="on")))
        with pytest.raises(
            TransientChannelError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"
        ):
            await adapter.check()
        assert server.logins == 0
    finally:
        await server.close()


def build_adapter(settings: Settings, config: dict[str, object], password: str = PASSWORD) -> EmailAdapter:
    account = AccountData(7, Channel.EMAIL, "Credit Center", config, {"password": password}, "unused")
    adapter = PROVIDER.build(account, settings)
    assert isinstance(adapter, EmailAdapter)
    return adapter


async def _ignore(event: Event) -> None:
    pass


# --- check ------------------------------------------------------------------------------------------------


async def test_check_logs_in_to_both_servers_and_names_the_address(
    mail_settings: Settings, imap: FakeImap, smtp: FakeSmtp
) -> None:
    adapter = build_adapter(mail_settings, prepare_config(form(imap, smtp)))
    assert await adapter.check() == {"address": ADDRESS}
    assert imap.commands_of("SELECT") == ["SELECT INBOX"] and imap.logins == 1


async def test_a_wrong_password_fails_the_check_with_the_servers_reason(
    mail_settings: Settings, imap: FakeImap, smtp: FakeSmtp
) -> None:
    adapter = build_adapter(mail_settings, prepare_config(form(imap, smtp)), password="wrong")
    with pytest.raises(PermanentJobError, match=r"IMAP server refused the login: .*Invalid credentials"):
        await adapter.check()
    injected = build_adapter(mail_settings, prepare_config(form(imap, smtp)), password="x\r\nA2 DELETE INBOX")
    with pytest.raises(PermanentJobError, match="not allowed") as refused:
        await injected.check()
    assert "DELETE" not in str(refused.value) and not imap.commands_of("DELETE")
    smtp.password = "other"  # IMAP accepts, SMTP refuses
    good = build_adapter(mail_settings, prepare_config(form(imap, smtp)))
    with pytest.raises(PermanentJobError, match="SMTP server refused the login: 535"):
        await good.check()


async def test_a_missing_folder_fails_the_check(
    mail_settings: Settings, imap: FakeImap, smtp: FakeSmtp
) -> None:
    adapter = build_adapter(mail_settings, prepare_config(form(imap, smtp, folder="Clienți")))
    with pytest.raises(PermanentJobError, match="'Clienți' cannot be opened"):
        await adapter.check()
    assert imap.commands_of("SELECT") == ["SELECT Clien&Ahs-i"]  # modified UTF-7
    imap.folders["Clien&Ahs-i"] = []
    assert await adapter.check() == {"address": ADDRESS}


# --- outbound ---------------------------------------------------------------------------------------------


async def _reply(
    app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    imap: FakeImap,
    make_user: MakeUser,
    text: str,
) -> int:
    imap.append(eml("plain"))
    imap.append(eml("attachment"))  # the latest mail: the one the reply answers
    await poll(app, account)
    return await reply_as_admin(app, sessions, account, make_user, text)


async def test_a_reply_reaches_smtp_threaded_under_the_customers_latest_mail(
    mail_client: TestClient,
    mail_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    imap: FakeImap,
    smtp: FakeSmtp,
    make_user: MakeUser,
) -> None:
    message_id = await _reply(mail_app, account, sessions, imap, make_user, "Bună ziua, domnule Popescu!")
    assert await mail_app[keys.WORKER].run_once() == 1
    [received] = smtp.messages
    mail = received.message
    assert received.mail_from == ADDRESS and received.rcpt_tos == ["ion.popescu@example.md"]
    assert received.login == USERNAME
    assert mail["From"] == f"Credit Center <{ADDRESS}>" and mail["To"] == "ion.popescu@example.md"
    assert mail["Subject"] == "Re: Cerere credit ipotecar"  # already a reply: no second "Re:"
    assert mail["In-Reply-To"] == "<7e1c0b52-3f4a-4d7e-9a51-0c2b9d1e8f60@mail.example.md>"
    assert str(mail["References"]).split() == [
        "<CAF3k9Qx1pZ7@mail.example.md>",
        "<7e1c0b52-3f4a-4d7e-9a51-0c2b9d1e8f60@mail.example.md>",
    ]
    assert str(mail["Message-ID"]).endswith("@banca-test.md>")
    body = mail.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "Bună ziua, domnule Popescu!"
    stored = await stored_message(sessions, message_id)
    assert stored.status == "sent" and stored.external_id == str(mail["Message-ID"]).strip("<>")


async def test_the_first_reply_to_a_subject_gets_re(
    mail_client: TestClient,
    mail_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    imap: FakeImap,
    smtp: FakeSmtp,
    make_user: MakeUser,
) -> None:
    imap.append(eml("html_only"))
    await poll(mail_app, account)
    [inbound] = await messages_of(sessions, account)
    admin = await make_user(Role.ADMIN)
    await mail_app[keys.INBOX].send(Viewer(admin.id, Role.ADMIN, None), inbound.conversation_id, "Desigur.")
    await mail_app[keys.WORKER].run_once()
    [received] = smtp.messages
    assert received.message["Subject"] == "Re: Refinantare"
    assert str(received.message["References"]).strip() == f"<{inbound.external_id}>"


async def test_a_reply_with_a_file_carries_it_as_an_attachment(
    mail_client: TestClient,
    mail_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    imap: FakeImap,
    smtp: FakeSmtp,
    make_user: MakeUser,
    mail_settings: Settings,
) -> None:
    imap.append(eml("plain"))
    await poll(mail_app, account)
    [inbound] = await messages_of(sessions, account)
    store = FileStore(mail_settings.files_root, mail_settings.max_upload_bytes)
    pdf = b"%PDF-1.4\n% oferta\n%%EOF\n"
    stored = await store.save(pdf, "application/pdf", "oferta.pdf")
    admin = await make_user(Role.ADMIN)
    await mail_app[keys.INBOX].attach(
        Viewer(admin.id, Role.ADMIN, None), inbound.conversation_id, stored, "Oferta"
    )
    await mail_app[keys.WORKER].run_once()
    [received] = smtp.messages
    [attachment] = list(received.message.iter_attachments())
    assert attachment.get_filename() == "oferta.pdf" and attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == pdf


async def test_a_4xx_twice_then_ok_is_delivered_once(
    mail_client: TestClient,
    mail_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    imap: FakeImap,
    smtp: FakeSmtp,
    make_user: MakeUser,
) -> None:
    smtp.fail("RCPT", 450, times=2)
    message_id = await _reply(mail_app, account, sessions, imap, make_user, "Revin imediat")
    assert (await run_until_sent(mail_app, sessions, message_id)).status == "sent"
    assert smtp.attempts["RCPT"] == 3 and len(smtp.messages) == 1


async def test_a_5xx_marks_the_message_failed_with_the_servers_reason(
    mail_client: TestClient,
    mail_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    imap: FakeImap,
    smtp: FakeSmtp,
    make_user: MakeUser,
) -> None:
    smtp.fail("RCPT", 550, times=5)
    message_id = await _reply(mail_app, account, sessions, imap, make_user, "Mai sunteți acolo?")
    await mail_app[keys.WORKER].run_once()
    message = await stored_message(sessions, message_id)
    assert message.status == "failed"
    assert (
        message.error is not None
        and "550 5.1.1 The email account that you tried to reach does not exist" in (message.error)
    )
    assert smtp.attempts["RCPT"] == 1 and smtp.messages == []  # permanent: no retry


async def test_a_message_refused_at_data_with_5xx_is_permanent_and_a_drop_is_retryable(
    mail_settings: Settings, imap: FakeImap, smtp: FakeSmtp
) -> None:
    adapter = build_adapter(mail_settings, prepare_config(form(imap, smtp)))
    outbound = OutboundMessage(1, Channel.EMAIL, "7", "ion.popescu@example.md", "Salut")
    smtp.fail("DATA", 554, "5.7.1 Message rejected as spam")
    with pytest.raises(PermanentJobError, match=r"message was refused: 554 5\.7\.1 Message rejected as spam"):
        await adapter.send(outbound)
    smtp.drop("DATA")
    with pytest.raises(TransientChannelError):
        await adapter.send(outbound)
    smtp.fail("MAIL", 421)
    with pytest.raises(TransientChannelError, match="421"):
        await adapter.send(outbound)
    with pytest.raises(PermanentJobError, match="not an e-mail address"):
        await adapter.send(OutboundMessage(1, Channel.EMAIL, "7", "Ion <x@y.md>, z@w.md", "Salut"))
    sent = await adapter.send(outbound)
    assert sent.external_id == str(smtp.messages[-1].message["Message-ID"]).strip("<>")
    assert smtp.messages[-1].message["Subject"] == "Credit Center"  # nothing to answer: the account's name


# --- secrets ----------------------------------------------------------------------------------------------


async def test_the_password_never_reaches_the_logs(
    mail_client: TestClient,
    mail_app: web.Application,
    account: ChannelAccount,
    sessions: async_sessionmaker[AsyncSession],
    imap: FakeImap,
    smtp: FakeSmtp,
    make_user: MakeUser,
    mail_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    smtp.fail("RCPT", 451)
    await _reply(mail_app, account, sessions, imap, make_user, "Salut")
    await mail_app[keys.WORKER].run_once()
    bad = build_adapter(mail_settings, prepare_config(form(imap, smtp)), password=PASSWORD + "x")
    with pytest.raises(PermanentJobError) as refused:
        await bad.check()
    assert caplog.records and "LOGIN" in " ".join(imap.commands)
    for secret in (PASSWORD, "w0rd"):  # whole, or in the escaped form of an IMAP quoted string
        assert secret not in caplog.text and secret not in str(refused.value)
    adapter = await adapter_of(mail_app, account)
    assert PASSWORD not in repr(adapter) and PASSWORD not in repr(adapter.config)
    assert PASSWORD not in repr(adapter.smtp)


def test_prepare_config_fills_the_defaults_and_names_a_bad_field() -> None:
    from switchboard.errors import Invalid

    prepared = prepare_config(
        {
            "address": " credite@banca-test.md ",
            "imap_host": "imap.banca-test.md",
            "smtp_host": "smtp.banca-test.md",
        }
    )
    assert prepared == {
        "address": "credite@banca-test.md",
        "imap_host": "imap.banca-test.md",
        "smtp_host": "smtp.banca-test.md",
        "imap_port": 993,
        "smtp_port": 587,
        "imap_ssl": False,
        "smtp_security": "starttls",
        "username": "credite@banca-test.md",
        "folder": "INBOX",
        "since": dt.datetime.now(dt.UTC).date().isoformat(),  # the day it was connected
    }
    good = {"address": "a@b.md", "imap_host": "imap.b.md", "smtp_host": "smtp.b.md"}
    for field, value in (("address", "not an address"), ("imap_port", "99999"), ("smtp_security", "tls")):
        with pytest.raises(Invalid) as bad:
            prepare_config({**good, field: value})
        assert bad.value.field == field


async def test_mail_from_before_the_mailbox_was_connected_is_not_taken_in(
    mail_client: TestClient,
    mail_app: web.Application,
    account: ChannelAccount,
    imap: FakeImap,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Connecting a mailbox with years of unread mail must not turn each old mail into a new lead."""
    old = imap.append(eml("plain"), received=dt.date(2020, 1, 15))
    async with sessions() as db, db.begin():
        stored = await db.get(ChannelAccount, account.id)
        assert stored is not None
        stored.config = {**stored.config, "since": "2026-01-01"}
    adapter = await adapter_of(mail_app, account)
    await adapter.poll(mail_app[keys.INBOX].receive)
    assert not imap.seen(old)
    assert any("SINCE 1-Jan-2026" in c for c in imap.commands)
