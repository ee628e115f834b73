"""Attachments over HTTP: `POST /api/v1/conversations/{id}/attachments` and `GET /files/{file_id}`, with
the file store's limits and who may read a file checked through the running app."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from channels.model import Channel, InboundMessage
from inbox.models import Conversation, Message
from switchboard import accounts
from switchboard.accounts_model import User
from switchboard.audit import SYSTEM
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.conftest import MakeUser, Person, login, page_csrf, second_browser
from webui import keys

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(300)
LIMIT_MB = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_upload_mb": LIMIT_MB})


@dataclass
class Agent:
    person: Person
    client: TestClient
    csrf: str

    async def upload(
        self,
        conversation_id: int,
        content: bytes,
        *,
        filename: str = "scan.png",
        content_type: str = "image/png",
        body: str | None = None,
        note: bool = False,
        csrf: bool = True,
    ) -> tuple[int, Any]:
        form = aiohttp.FormData()
        if body is not None:
            form.add_field("body", body)
        if note:
            form.add_field("note", "true")
        form.add_field("file", io.BytesIO(content), filename=filename, content_type=content_type)
        response = await self.client.post(
            f"/api/v1/conversations/{conversation_id}/attachments",
            data=form,
            headers={"X-CSRF-Token": self.csrf} if csrf else {},
        )
        return response.status, await response.json()


@pytest.fixture
async def sign_in(client: TestClient, make_user: MakeUser) -> AsyncIterator[Callable[..., Any]]:
    opened: list[TestClient] = []

    async def sign_in(role: Role, branch: str = "Chișinău") -> Agent:
        person = await make_user(role, branch=branch)
        browser = client if not opened else await second_browser(client)
        opened.append(browser)
        assert (await login(browser, person.username)).status == 302
        return Agent(person, browser, await page_csrf(browser, "/inbox"))

    yield sign_in
    for browser in opened[1:]:
        await browser.session.close()


@dataclass
class Scene:
    ana: Agent  # agent in Chișinău, the conversation is hers
    bob: Agent  # agent in Bălți: may not see it
    conversation_id: int
    app: web.Application


@pytest.fixture
async def scene(
    sign_in: Callable[..., Any], app: web.Application, sessions: async_sessionmaker[AsyncSession]
) -> Scene:
    ana, bob = await sign_in(Role.AGENT), await sign_in(Role.AGENT, branch="Bălți")
    got = await app[keys.INBOX].ingest(
        InboundMessage(Channel.WEBCHAT, "site", "m-1", "visitor", body="Bună ziua")
    )
    async with sessions() as db, db.begin():
        branch = await db.scalar(select(User.branch_id).where(User.id == ana.person.id))
        await db.execute(
            update(Conversation)
            .where(Conversation.id == got.conversation_id)
            .values(branch_id=branch, assignee_id=ana.person.id)
        )
    return Scene(ana, bob, got.conversation_id, app)


def stored_files(app: web.Application) -> list[Path]:
    root = app[keys.SETTINGS].files_root
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def office(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<xml/>")
    return buffer.getvalue()


async def test_a_picture_becomes_a_message_and_is_served_to_its_agent(scene: Scene) -> None:
    status, data = await scene.ana.upload(
        scene.conversation_id, PNG, body="Contractul", filename="scan ă.png"
    )
    assert status == 201, data
    message = data["message"]
    assert message["kind"] == "image" and message["body"] == "Contractul"
    [attachment] = message["attachments"]
    assert attachment["content_type"] == "image/png" and attachment["filename"] == "scan ă.png"
    assert attachment["size"] == len(PNG)
    response = await scene.ana.client.get(f"/files/{attachment['id']}")
    assert response.status == 200
    assert await response.read() == PNG
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "private"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("inline;") and "filename*=UTF-8''scan%20%C4%83.png" in disposition
    status, thread = await _get_json(scene.ana.client, f"/api/v1/conversations/{scene.conversation_id}")
    assert thread["messages"][-1]["attachments"][0]["id"] == attachment["id"]


async def test_an_agent_of_another_branch_gets_404_for_the_file_and_the_upload(scene: Scene) -> None:
    _, data = await scene.ana.upload(scene.conversation_id, PNG)
    file_id = data["message"]["attachments"][0]["id"]
    before = stored_files(scene.app)
    response = await scene.bob.client.get(f"/files/{file_id}")
    assert response.status == 404
    assert PNG not in await response.read()
    missing = await scene.bob.client.get("/files/" + "A" * 32)
    assert missing.status == 404  # the same answer as for a file that does not exist
    status, _ = await scene.bob.upload(scene.conversation_id, PNG)
    assert status == 404
    assert stored_files(scene.app) == before  # the refused upload left no file behind


async def test_anonymous_callers_are_sent_to_login_or_refused(scene: Scene, client: TestClient) -> None:
    _, data = await scene.ana.upload(scene.conversation_id, PNG)
    file_id = data["message"]["attachments"][0]["id"]
    async with aiohttp.ClientSession() as anonymous:
        base = str(client.make_url(""))
        async with anonymous.get(f"{base}/files/{file_id}", allow_redirects=False) as response:
            assert response.status == 302 and response.headers["Location"].startswith("/login")
        form = aiohttp.FormData()
        form.add_field("file", PNG, filename="a.png", content_type="image/png")
        async with anonymous.post(
            f"{base}/api/v1/conversations/{scene.conversation_id}/attachments", data=form
        ) as response:
            assert response.status == 401


async def test_an_upload_over_the_limit_is_refused_with_413_and_a_reason(scene: Scene) -> None:
    status, data = await scene.ana.upload(scene.conversation_id, PNG + bytes(LIMIT_MB * 1024 * 1024))
    assert status == 413
    assert data["error"]["reason"] == f"The file is larger than {LIMIT_MB} MB."
    assert stored_files(scene.app) == []


async def test_an_upload_larger_than_the_apps_body_limit_but_within_the_stores_is_accepted(
    scene: Scene,
) -> None:
    content = PNG + bytes(int(2.5 * 1024 * 1024))  # the app refuses ordinary bodies over 2 MiB
    status, data = await scene.ana.upload(scene.conversation_id, content)
    assert status == 201, data
    assert data["message"]["attachments"][0]["size"] == len(content)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"<html><body><script>alert(document.cookie)</script></body></html>", "Web pages"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "SVG"),
        (b"MZ\x90\x00" + bytes(500), "Programs"),
    ],
)
async def test_markup_and_programs_are_refused_even_when_declared_as_pictures(
    scene: Scene, content: bytes, words: str
) -> None:
    status, data = await scene.ana.upload(scene.conversation_id, content, content_type="image/png")
    assert status == 422
    assert words in data["error"]["reason"] and data["error"]["field"] == "file"
    assert stored_files(scene.app) == []


@pytest.mark.parametrize(
    ("content", "filename", "content_type", "disposition"),
    [
        (b"%PDF-1.4\n...", "oferta.pdf", "application/pdf", "inline"),
        (b"linia 1\nlinia 2\n", "notes.txt", "text/plain; charset=utf-8", "attachment"),
        (
            office("[Content_Types].xml", "word/document.xml"),
            "cerere.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "attachment",
        ),
    ],
)
async def test_documents_are_served_with_their_type_inline_or_as_downloads(
    scene: Scene, content: bytes, filename: str, content_type: str, disposition: str
) -> None:
    status, data = await scene.ana.upload(
        scene.conversation_id, content, filename=filename, content_type="application/octet-stream"
    )
    assert status == 201, data
    assert data["message"]["kind"] == "file"
    response = await scene.ana.client.get(f"/files/{data['message']['attachments'][0]['id']}")
    assert response.status == 200 and await response.read() == content
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Content-Disposition"].startswith(f'{disposition}; filename="{filename}"')


@pytest.mark.parametrize(
    "path",
    [
        "/files/..%2F..%2Fsecret.key",
        "/files/..%2fsecret.key",
        "/files/%2e%2e",
        "/files/%2e%2e%2fsecret.key",
        "/files/.incoming",
        "/files/..%5Csecret.key",
        "/files/%00",
    ],
)
async def test_path_traversal_finds_nothing(scene: Scene, path: str) -> None:
    (scene.app[keys.SETTINGS].data_dir).mkdir(parents=True, exist_ok=True)
    response = await scene.ana.client.get(URL(path, encoded=True), allow_redirects=False)
    assert response.status == 404
    assert b"secret" not in await response.read()


async def test_the_stored_path_or_an_unattached_file_is_not_served(scene: Scene) -> None:
    _, data = await scene.ana.upload(scene.conversation_id, PNG)
    attachment = data["message"]["attachments"][0]
    response = await scene.ana.client.get(f"/files/{attachment['stored_path']}")
    assert response.status == 404
    loose = await scene.app[keys.FILES].save(PNG, "image/png", "loose.png")  # in the store, in no message
    assert (await scene.ana.client.get(f"/files/{loose.id}")).status == 404


async def test_an_upload_needs_a_file_multipart_and_the_csrf_token(
    scene: Scene, sessions: async_sessionmaker[AsyncSession]
) -> None:
    path = f"/api/v1/conversations/{scene.conversation_id}/attachments"
    response = await scene.ana.client.post(path, json={"body": "x"}, headers={"X-CSRF-Token": scene.ana.csrf})
    assert response.status == 422
    form = aiohttp.FormData()
    form.add_field("body", "no file")
    form.add_field("file", b"", filename="", content_type="application/octet-stream")
    response = await scene.ana.client.post(path, data=form, headers={"X-CSRF-Token": scene.ana.csrf})
    assert response.status == 422
    status, _ = await scene.ana.upload(scene.conversation_id, PNG, csrf=False)
    assert status == 403
    async with sessions() as db:
        assert await db.scalar(select(Message.id).where(Message.kind != "text")) is None


async def test_an_api_token_may_upload_a_note_without_csrf(
    scene: Scene, client: TestClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as db, db.begin():
        _, token = await accounts.create_api_token(db, SYSTEM, scene.ana.person.id, "files test")
    form = aiohttp.FormData()
    form.add_field("note", "true")
    form.add_field("file", b"%PDF-1.4", filename="act.pdf", content_type="application/pdf")
    async with (
        aiohttp.ClientSession() as api,
        api.post(
            str(client.make_url(f"/api/v1/conversations/{scene.conversation_id}/attachments")),
            data=form,
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        assert response.status == 201
        message = (await response.json())["message"]
    assert message["kind"] == "note" and message["attachments"][0]["content_type"] == "application/pdf"


async def _get_json(client: TestClient, path: str) -> tuple[int, Any]:
    response = await client.get(path)
    return response.status, await response.json()
