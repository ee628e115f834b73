"""The file store (`switchboard.files`) and attachments on messages (`Inbox.attach` / `attachment_for`)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import Channel, InboundMessage, OutboundMessage, Sent
from inbox.delivery import Delivery
from inbox.models import Conversation, Message
from inbox.service import Inbox, Viewer
from switchboard.accounts_model import User
from switchboard.errors import Invalid, NotFound, TooLarge
from switchboard.files import (
    DOCX,
    REFUSED_MACROS,
    REFUSED_MARKUP,
    REFUSED_PROGRAM,
    REFUSED_TYPE,
    XLSX,
    FileStore,
    sanitize_filename,
    sniff,
)
from switchboard.jobs import JobRegistry, Worker
from switchboard.permissions import Role
from tests.conftest import MakeUser

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200)


def office(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<xml/>")
    return buffer.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files", max_bytes=1024 * 1024)


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# --- the store -----------------------------------------------------------------------------------------


async def test_a_saved_file_is_named_by_a_random_id_and_checksummed(store: FileStore) -> None:
    stored = await store.save(PNG, "image/png", "../../Poză de la client.PNG")
    assert stored.content_type == "image/png" and stored.size == len(PNG)
    assert stored.path == f"{stored.id[:2]}/{stored.id}" and len(stored.id) >= 32
    assert stored.filename == "Poză de la client.PNG"
    assert (store.root / stored.path).read_bytes() == PNG
    import hashlib

    assert stored.sha256 == hashlib.sha256(PNG).hexdigest()
    assert files_under(store.root) == [store.root / stored.path]  # no temporary file left behind
    other = await store.save(PNG, "image/png", "a.png")
    assert other.id != stored.id
    with await store.open(stored.path) as handle:
        assert handle.read() == PNG


async def test_a_stream_is_saved_chunk_by_chunk(store: FileStore) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"%PDF-1.7\n"
        for _ in range(10):
            yield b"x" * 10_000

    stored = await store.save(chunks(), "application/octet-stream", "offer.pdf")
    assert stored.content_type == "application/pdf" and stored.size == 9 + 100_000


async def test_a_file_over_the_limit_is_refused_with_413_and_leaves_nothing(store: FileStore) -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield PNG
        while True:
            pulled += 1
            yield bytes(64 * 1024)

    with pytest.raises(TooLarge) as caught:
        await store.save(endless(), "image/png", "big.png")
    assert caught.value.status == 413 and caught.value.params == {"limit": 1}
    assert pulled <= 17  # it stopped reading at the limit
    assert files_under(store.root) == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"<!DOCTYPE html><html><script>alert(1)</script></html>", REFUSED_MARKUP),
        (b"\xef\xbb\xbf  <html><body onload=alert(1)>", REFUSED_MARKUP),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', REFUSED_MARKUP),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', REFUSED_MARKUP),
        (b"Hello\nthere <script>alert(1)</script>", REFUSED_MARKUP),
        (b"MZ\x90\x00\x03\x00\x00\x00" + bytes(100), REFUSED_PROGRAM),
        (b"\x7fELF\x02\x01\x01" + bytes(100), REFUSED_PROGRAM),
        (b"#!/bin/sh\nrm -rf /\n", REFUSED_PROGRAM),
        (b"\xca\xfe\xba\xbe" + bytes(100), REFUSED_PROGRAM),
        (b"\x00\x01\x02\x03binary", REFUSED_TYPE),
        (office("readme.txt"), REFUSED_TYPE),  # a plain zip archive
        (office("[Content_Types].xml", "word/document.xml", "word/vbaProject.bin"), REFUSED_MACROS),
    ],
)
async def test_dangerous_or_unknown_content_is_refused_whatever_it_claims(
    store: FileStore, content: bytes, reason: str
) -> None:
    with pytest.raises(Invalid) as caught:
        await store.save(content, "image/png", "innocent.png")
    assert caught.value.status == 422 and caught.value.message == reason and caught.value.field == "file"
    assert files_under(store.root) == []


async def test_markup_is_refused_before_the_rest_of_the_upload_is_read(store: FileStore) -> None:
    pulled = 0

    async def page() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield b"<html>" + b" " * 9000
        while pulled < 100:
            pulled += 1
            yield b" " * 1000

    with pytest.raises(Invalid):
        await store.save(page(), "text/plain", "a.txt")
    assert pulled == 0


@pytest.mark.parametrize(
    ("head", "declared", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg", "image/jpeg"),
        (b"GIF89a\x01\x00", "", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp", "image/webp"),
        (b"%PDF-1.4", "application/pdf", "application/pdf"),
        (b"OggS\x00\x02", "audio/ogg", "audio/ogg"),
        (b"ID3\x04\x00", "audio/mpeg", "audio/mpeg"),
        (b"\xff\xfb\x90\x64", "audio/mpeg", "audio/mpeg"),
        (b"\x00\x00\x00\x20ftypM4A \x00", "audio/x-m4a", "audio/mp4"),
        (b"\x00\x00\x00\x20ftypisom\x00", "video/mp4", "video/mp4"),
        (b"\x00\x00\x00\x20ftypisom\x00", "audio/mp4", "audio/mp4"),
        (b"\x1a\x45\xdf\xa3\x9fB\x86\x81\x01B\x82\x84webm", "video/webm", "video/webm"),
        (b"\x1a\x45\xdf\xa3\x9fB\x86\x81\x01B\x82\x84webm", "audio/webm", "audio/webm"),
        ("Bună ziua, atașez lista.\n".encode(), "text/plain", "text/plain"),
        (b"name;phone\nIon;+37369000000\n", "text/csv", "text/csv"),
    ],
)
def test_the_type_comes_from_the_content(head: bytes, declared: str, expected: str) -> None:
    assert sniff(head, declared) == expected


def test_a_claimed_type_never_overrides_the_content() -> None:
    assert sniff(b"%PDF-1.4", "image/png") == "application/pdf"
    assert sniff(b"plain words", "image/png") == "text/plain"


async def test_word_and_excel_documents_are_recognised_inside_their_zip(store: FileStore) -> None:
    docx = await store.save(office("[Content_Types].xml", "word/document.xml"), "application/zip", "o.docx")
    xlsx = await store.save(office("[Content_Types].xml", "xl/workbook.xml"), None, "rate.xlsx")
    assert (docx.content_type, xlsx.content_type) == (DOCX, XLSX)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ion\\scan.pdf", "scan.pdf"),
        ('a"b<c>\x00\r\nd.pdf', "a_b_c_d.pdf"),
        ("   ", "file.png"),
        ("..", "file.png"),
        (None, "file.png"),
        ("x" * 300 + ".png", "x" * 116 + ".png"),
    ],
)
def test_filenames_are_made_safe(given: str | None, expected: str) -> None:
    assert sanitize_filename(given, "image/png") == expected


@pytest.mark.parametrize(
    "path", ["../secret.key", "/etc/passwd", "ab/../../secret.key", "ab/cd", "xx/" + "a" * 32, "", ".."]
)
async def test_only_paths_the_store_made_can_be_opened(store: FileStore, path: str) -> None:
    with pytest.raises(NotFound):
        store.locate(path)
    with pytest.raises(NotFound):
        await store.open(path)
    assert not await store.exists(path)


# --- attachments on messages ---------------------------------------------------------------------------


def chat(external_id: str, sender: str) -> InboundMessage:
    return InboundMessage(Channel.WEBCHAT, "site", external_id, sender, body="Bună")


async def _viewer(sessions: async_sessionmaker[AsyncSession], person_id: int, role: Role) -> Viewer:
    async with sessions() as db:
        branch = await db.scalar(select(User.branch_id).where(User.id == person_id))
    return Viewer(person_id, role, branch)


async def test_an_attachment_is_sent_and_readable_only_by_those_who_see_the_conversation(
    inbox: Inbox, store: FileStore, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    ana = await _viewer(sessions, (await make_user(Role.AGENT)).id, Role.AGENT)
    elsewhere = await _viewer(sessions, (await make_user(Role.AGENT, branch="Bălți")).id, Role.AGENT)
    got = await inbox.ingest(chat("m-1", "visitor"))
    async with sessions() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id == got.conversation_id)
            .values(branch_id=ana.branch_id, assignee_id=ana.user_id)
        )
    stored = await store.save(PNG, "image/png", "scan.png")
    message = await inbox.attach(ana, got.conversation_id, stored, "Iată contractul")
    assert message.kind == "image" and message.body == "Iată contractul" and message.status == "queued"
    [attachment] = message.attachments
    assert attachment["id"] == stored.id and attachment["stored_path"] == stored.path
    assert attachment["content_type"] == "image/png" and attachment["kind"] == "image"
    assert await inbox.attachment_for(ana, stored.id) == attachment
    assert await inbox.attachment_for(Viewer(0, Role.ADMIN, None), stored.id) == attachment
    assert await inbox.attachment_for(elsewhere, stored.id) is None
    assert await inbox.attachment_for(Viewer(ana.user_id, Role.MARKETER, None), stored.id) is None
    assert await inbox.attachment_for(ana, "nope") is None
    at = max(i for i, c in enumerate(stored.id) if c != "_")  # a "_" there is never the id itself
    wildcard = stored.id[:at] + "_" + stored.id[at + 1 :]
    assert await inbox.attachment_for(ana, wildcard) is None  # LIKE wildcards are literal
    assert await inbox.attachment_for(ana, "%") is None

    with pytest.raises(NotFound):  # a conversation the viewer may not see
        await inbox.attach(elsewhere, got.conversation_id, stored)


async def test_an_attachment_as_a_note_needs_no_caption_and_is_never_delivered(
    inbox: Inbox, store: FileStore, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    agent = Viewer((await make_user(Role.AGENT)).id, Role.AGENT, None)
    got = await inbox.ingest(chat("m-1", "visitor"))
    stored = await store.save(b"%PDF-1.4 ...", "application/pdf", "buletin.pdf")
    note = await inbox.attach(agent, got.conversation_id, stored, note=True)
    assert note.kind == "note" and note.body == "" and note.attachments[0]["kind"] == "file"
    with pytest.raises(Invalid):  # without an attachment a body is still required
        await inbox.send(agent, got.conversation_id, "  ")


async def test_the_delivery_job_hands_the_attachment_to_the_adapter(
    inbox: Inbox, store: FileStore, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    agent = Viewer((await make_user(Role.AGENT)).id, Role.AGENT, None)
    got = await inbox.ingest(chat("m-1", "visitor"))
    stored = await store.save(PNG, "image/png", "scan.png")
    sent: list[OutboundMessage] = []

    async def sender(out: OutboundMessage) -> Sent:
        sent.append(out)
        return Sent("out-1")

    delivery = Delivery(inbox)
    delivery.add_sender(Channel.WEBCHAT, sender)
    registry = JobRegistry()
    delivery.register(registry)
    message = await inbox.attach(agent, got.conversation_id, stored)
    assert await Worker(sessions, registry).run_once() == 1
    [out] = sent
    assert out.kind == "image" and out.body == ""
    [attachment] = out.attachments
    assert (attachment.content_type, attachment.filename, attachment.size, attachment.stored_path) == (
        "image/png",
        "scan.png",
        len(PNG),
        stored.path,
    )
    async with sessions() as db:
        assert (await db.get(Message, message.id)) is not None
