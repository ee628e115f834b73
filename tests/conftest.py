"""Shared fixtures: one database per test run (SQLite file or a fresh PostgreSQL database), migrated once,
emptied after every test; settings pointing at it; the app and logged-in clients.

The backend comes from `SWITCHBOARD_TEST_BACKEND` (`sqlite`, the default, or `postgres`). Tests marked
`postgres` or `redis` need `SWITCHBOARD_TEST_PG_URL` / `SWITCHBOARD_TEST_REDIS_URL` and fail, never skip,
when the server is missing.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy import delete
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from channels import webchat
from channels.webchat import WidgetConfig
from switchboard import accounts, migrate
from switchboard.app import build_app
from switchboard.audit import SYSTEM
from switchboard.db import create_engine, create_sessionmaker
from switchboard.models import metadata
from switchboard.permissions import Role
from switchboard.settings import Settings

BACKEND = os.environ.get("SWITCHBOARD_TEST_BACKEND", "sqlite")
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


def require_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: this test needs that server and must not be skipped")
    return value


def pg_admin_url() -> str:
    return require_env("SWITCHBOARD_TEST_PG_URL")


def redis_url() -> str:
    return require_env("SWITCHBOARD_TEST_REDIS_URL")


async def create_pg_database(admin_url: str) -> str:
    """A new empty database on the test server; returns its SQLAlchemy URL."""
    url = make_url(admin_url)
    name = f"sbtest_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"cannot connect to PostgreSQL at {url.render_as_string()}: {exc}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)


async def drop_pg_database(db_url: str) -> None:
    url = make_url(db_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("switchboard")


@pytest.fixture(scope="session")
async def db_url(tmp_root: Path) -> AsyncIterator[str]:
    if BACKEND == "postgres":
        url = await create_pg_database(pg_admin_url())
        yield url
        await drop_pg_database(url)
    elif BACKEND == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_root / 'test.db'}"
    else:
        pytest.fail(f"unknown SWITCHBOARD_TEST_BACKEND={BACKEND!r}")


@pytest.fixture(scope="session")
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    await migrate.upgrade(db_url)
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on the migrated test database; every table is emptied after the test."""
    yield create_sessionmaker(engine)
    async with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(delete(table))


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        data_dir=tmp_path / "var",
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        bus="memory",
        default_locale="en",
        auto_migrate=False,
        run_worker=False,
        jobs_poll_seconds=0.05,
        routing=False,  # the router's own tests (and the routed-inbox tests) switch it on
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings built inside tests must not pick up a developer's own SWITCHBOARD_* variables."""
    for key in list(os.environ):
        if key.startswith("SWITCHBOARD_") and not key.startswith("SWITCHBOARD_TEST_"):
            monkeypatch.delenv(key)
    yield


# --- the web app and its users -------------------------------------------------------------------------


PASSWORD = "correct horse battery"
_CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')


@dataclass
class Person:
    id: int
    username: str
    role: Role
    password: str = PASSWORD


MakeUser = Callable[..., Awaitable[Person]]


@pytest.fixture
def make_user(sessions: async_sessionmaker[AsyncSession]) -> MakeUser:
    async def make(
        role: Role | str = Role.AGENT, username: str | None = None, branch: str = "Chișinău"
    ) -> Person:
        role = Role(role)
        name = username or f"{role.value}{uuid.uuid4().hex[:6]}"
        async with sessions() as db, db.begin():
            user = await accounts.create_user(
                db, SYSTEM, username=name, password=PASSWORD, role=role, full_name=name.title(), branch=branch
            )
        return Person(user.id, user.username, role)

    return make


@pytest.fixture
async def app(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> web.Application:
    return build_app(settings)


@pytest.fixture
async def client(aiohttp_client: Callable[..., Awaitable[TestClient]], app: web.Application) -> TestClient:
    return await aiohttp_client(app)


def csrf_from(html: str) -> str:
    match = _CSRF_RE.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


async def login(client: TestClient, username: str, password: str = PASSWORD) -> web.StreamResponse:
    page = await client.get("/login")
    token = csrf_from(await page.text())
    return await client.post(
        "/login", data={"username": username, "password": password, "_csrf": token}, allow_redirects=False
    )


async def page_csrf(client: TestClient, path: str = "/profile") -> str:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return csrf_from(await response.text())


async def second_browser(client: TestClient) -> TestClient:
    """Another browser (its own cookies) on the same running server; close it with `.session.close()`."""
    other: TestClient = TestClient(client.server)
    await other.start_server()
    return other


# --- the real browser ----------------------------------------------------------------------------------


CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium, shared by every browser test (pages get their own contexts)."""
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once per session, before any loop work
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def browser_login(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    """Log in through the login form, as a person does, and wait for the home page."""
    await page.goto(f"{base}/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("#login-submit")
    await page.wait_for_url(f"{base}/")


async def open_in_inbox(page: Page, base: str, conversation_id: int) -> None:
    """Open a conversation in the inbox and wait until its side panels have settled (the script panel
    has this conversation's answer), so a click in the customer's card lands where the test aimed."""
    await page.goto(f"{base}/inbox/{conversation_id}")
    await page.wait_for_selector(f'#script-panel[data-conversation="{conversation_id}"]')
    await page.wait_for_selector("#contact-panel #contact-name")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Hub:
    url: str
    app: web.Application


@pytest.fixture
async def served_hub(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Hub]:
    """The hub served on a real port with its jobs worker, as `switchboard demo` serves it; `app` lets a
    test act as a channel (`app[keys.INBOX].ingest(...)`)."""
    app = build_app(settings.model_copy(update={"run_worker": True}))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield Hub(f"http://127.0.0.1:{port}", app)
    await runner.cleanup()


@pytest.fixture
async def live_hub(served_hub: Hub) -> str:
    """The served hub's address, for tests that only need a browser on it."""
    return served_hub.url


@dataclass
class Shop:
    origin: str
    widget: WidgetConfig


@pytest.fixture
async def shop(served_hub: Hub, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Shop]:
    """A customer's website on another origin (localhost, another port) that embeds the hub's widget with
    one script tag, as a credit consultancy's site would."""
    port = free_port()
    origin = f"http://localhost:{port}"
    async with sessions() as db, db.begin():
        widget = await webchat.create_widget(
            db,
            name="Shop",
            allowed_origins=[origin],
            colour="#d6336c",
            language="en",
            greeting="Hi there!",
            prechat=True,
        )

    async def page(request: web.Request) -> web.Response:
        html = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Credit shop</title></head>"
            "<body style='font-family:sans-serif;background:#eef2f7'><h1>Fast loans</h1>"
            "<p>Our offer: 9% a year.</p>"
            f"<script src='{served_hub.url}/widget.js' data-key='{widget.public_key}' async></script>"
            "</body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "localhost", port).start()
    yield Shop(origin, widget)
    await runner.cleanup()
