"""Channel administration: website chat widgets created, edited and re-keyed from the admin pages (with
the embed snippet and an audit trail), and the demo website that embeds the demo widget."""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import webchat
from channels.webchat_model import WebchatWidget
from switchboard.app import build_app
from switchboard.audit import SYSTEM
from switchboard.audit_model import AuditEntry
from switchboard.cli import seed_demo
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.conftest import MakeUser, login, page_csrf

FORM = {
    "name": "Site principal",
    "allowed_origins": "https://Credit.example.md/\n\nhttp://localhost:8080",
    "colour": "#0F6E5A",
    "greeting": "Bună ziua!",
    "language": "ro",
    "position": "left",
    "prechat": "on",
    "branch_id": "",
}


async def _as_admin(client: TestClient, make_user: MakeUser) -> str:
    admin = await make_user(Role.ADMIN, username="boss")
    assert (await login(client, admin.username)).status == 302
    return await page_csrf(client, "/admin/channels")


async def _widgets(sessions: async_sessionmaker[AsyncSession]) -> list[WebchatWidget]:
    async with sessions() as db:
        return list(await db.scalars(select(WebchatWidget).order_by(WebchatWidget.id)))


async def _audit(sessions: async_sessionmaker[AsyncSession], **where: str) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.module == "channels").order_by(AuditEntry.id)
    for key, value in where.items():
        query = query.where(getattr(AuditEntry, key) == value)
    async with sessions() as db:
        return list(await db.scalars(query))


async def test_a_widget_created_from_the_form_is_listed_with_its_embed_snippet(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    csrf = await _as_admin(client, make_user)
    page = await (await client.get("/admin/channels")).text()
    assert "telegram-connect" in page and 'name="_csrf"' in page

    response = await client.post(
        "/admin/channels/widgets", data={"_csrf": csrf, **FORM}, allow_redirects=False
    )
    assert response.status == 302, await response.text()
    [widget] = await _widgets(sessions)
    assert response.headers["Location"] == f"/admin/channels/widgets/{widget.id}"
    assert widget.allowed_origins == ["https://credit.example.md", "http://localhost:8080"]
    assert (widget.colour, widget.position, widget.prechat, widget.active) == ("#0f6e5a", "left", True, True)

    snippet = (
        f'<script src="http://{client.host}:{client.port}/widget.js" data-key="{widget.public_key}" async>'
    )
    for path in ("/admin/channels", f"/admin/channels/widgets/{widget.id}"):
        text = await (await client.get(path)).text()
        assert "Site principal" in text
        assert snippet in html.unescape(text), path
        assert "<script src=" not in text.split("<body>", 1)[1].replace('<script src="/static', "")

    [created] = await _audit(sessions, action="create")
    assert created.username == "boss" and created.record_id == str(widget.id)
    assert created.changes is not None
    assert created.changes["name"] == [None, "Site principal"]
    assert created.changes["allowed_origins"] == [None, "https://credit.example.md http://localhost:8080"]


async def test_a_bad_origin_is_shown_back_with_the_reason(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    csrf = await _as_admin(client, make_user)
    for origins, message in (
        ("https://ok.md\nftp://files.example.md", "Not a website address: ftp://files.example.md"),
        ("https://example.md/contact", "Not a website address: https://example.md/contact"),
        ("<script>x</script>", "Not a website address: &lt;script&gt;x&lt;/script&gt;"),
    ):
        form = {"_csrf": csrf, **FORM, "allowed_origins": origins}
        response = await client.post("/admin/channels/widgets", data=form)
        assert response.status == 422
        text = await response.text()
        assert message in text
        assert "ftp://files.example.md" in text or "example.md" in text  # what was typed is kept
    for form, message in (
        ({"name": ""}, "This field is required."),
        ({"colour": "#1234567"}, "At most 7 characters."),
        ({"colour": "#12345g"}, "Choose a colour such as #206bc4."),
        ({"language": "de"}, "Unknown language."),
        ({"branch_id": "424242"}, "No such branch."),
    ):
        response = await client.post("/admin/channels/widgets", data={"_csrf": csrf, **FORM, **form})
        assert response.status == 422
        assert message in await response.text()
    assert await _widgets(sessions) == []

    response = await client.post(
        "/admin/channels/widgets", data={"_csrf": csrf, **FORM, "allowed_origins": "*"}, allow_redirects=False
    )
    assert response.status == 302
    page = await (await client.get(response.headers["Location"])).text()
    assert 'id="any-origin-warning"' in page


async def test_editing_a_widget_records_a_field_diff(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    csrf = await _as_admin(client, make_user)
    async with sessions() as db, db.begin():
        widget = await webchat.create_widget(db, name="Old", allowed_origins=["https://a.md"], actor=SYSTEM)
    form = {**FORM, "_csrf": csrf, "name": "New", "allowed_origins": "https://a.md\nhttps://b.md"}
    form.pop("prechat")  # unticked: off; "active" unticked too
    response = await client.post(f"/admin/channels/widgets/{widget.id}", data=form, allow_redirects=False)
    assert response.status == 302, await response.text()
    [update] = await _audit(sessions, action="update", record_id=str(widget.id))
    assert update.changes == {
        "active": [True, False],
        "allowed_origins": ["https://a.md", "https://a.md https://b.md"],
        "colour": ["#206bc4", "#0f6e5a"],
        "greeting": ["", "Bună ziua!"],
        "name": ["Old", "New"],
        "position": ["right", "left"],
    }
    async with sessions() as db:
        assert await webchat.find_widget(db, widget.public_key) is None  # inactive: hidden on every site
    page = await (await client.get(f"/admin/channels/widgets/{widget.id}")).text()
    assert "Old → New" in html.unescape(page)

    bad = await client.post(
        f"/admin/channels/widgets/{widget.id}", data={**form, "allowed_origins": "example.md"}
    )
    assert bad.status == 422 and "Not a website address: example.md" in await bad.text()
    missing = await client.post("/admin/channels/widgets/424242", data=form)
    assert missing.status == 404
    assert (await client.get("/admin/channels/widgets/424242")).status == 404


async def test_regenerating_the_key_keeps_the_widget_and_its_visitors(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    csrf = await _as_admin(client, make_user)
    async with sessions() as db, db.begin():
        widget = await webchat.create_widget(db, name="Site", allowed_origins=["https://a.md"])
    path = f"/admin/channels/widgets/{widget.id}/key"
    unconfirmed = await client.post(path, data={"_csrf": csrf})
    assert unconfirmed.status == 422
    assert "Tick the box to confirm" in await unconfirmed.text()

    response = await client.post(path, data={"_csrf": csrf, "confirm": "yes"}, allow_redirects=False)
    assert response.status == 302
    [row] = await _widgets(sessions)
    assert row.id == widget.id and row.public_key != widget.public_key
    async with sessions() as db:
        assert await webchat.find_widget(db, widget.public_key) is None
        again = await webchat.find_widget(db, row.public_key)
    assert again is not None and again.account_id == widget.account_id  # visitors keep their identity
    [entry] = await _audit(sessions, action="update", record_id=str(widget.id))
    assert entry.changes == {"public_key": [f"…{widget.public_key[-4:]}", f"…{row.public_key[-4:]}"]}
    page = await (await client.get(f"/admin/channels/widgets/{widget.id}")).text()
    assert row.public_key in page and widget.public_key not in page
    assert (
        await client.post("/admin/channels/widgets/424242/key", data={"_csrf": csrf, "confirm": "yes"})
    ).status == 404


async def test_the_demo_site_exists_only_in_demo_mode_and_embeds_the_demo_widget(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    client: TestClient,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    assert (await client.get("/demo/site")).status == 404

    demo_settings = settings.model_copy(update={"demo": True})
    for _ in range(2):  # every `switchboard demo` start seeds; the widget is made once
        await seed_demo(demo_settings)
    async with sessions() as db:
        count = await db.scalar(
            select(func.count(WebchatWidget.id)).where(WebchatWidget.name == webchat.DEMO_WIDGET_NAME)
        )
        demo = await webchat.find_widget_named(db, webchat.DEMO_WIDGET_NAME)
    assert count == 1 and demo is not None
    assert demo.allowed_origins == ("http://127.0.0.1:8080", "http://localhost:8080")

    demo_client = await aiohttp_client(build_app(demo_settings))
    response = await demo_client.get("/demo/site")
    assert response.status == 200
    text = await response.text()
    assert 'lang="ro"' in text and "credit" in text.lower()
    tags = re.findall(r'<script src="([^"]+)" data-key="([^"]+)" async></script>', text)
    assert tags == [(f"http://{demo_client.host}:{demo_client.port}/widget.js", demo.public_key)]
    assert "Set-Cookie" not in response.headers  # a customer's page: no hub session
