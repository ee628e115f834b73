"""Logging in and out, session expiry, CSRF and lockout, each leaving its audit trail."""

from __future__ import annotations

import datetime as dt

from aiohttp.test_utils import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard.accounts_model import User, WebSession
from switchboard.audit_model import AuditEntry
from switchboard.db import utcnow
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.conftest import MakeUser, csrf_from, login, page_csrf


async def _audit(sessions: async_sessionmaker[AsyncSession], action: str) -> list[AuditEntry]:
    async with sessions() as db:
        return list(
            await db.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        )


async def test_login_opens_a_session_and_is_audited(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    person = await make_user(Role.AGENT)
    response = await login(client, person.username)
    assert response.status == 302 and response.headers["Location"] == "/"
    assert (await client.get("/")).status == 200
    [entry] = await _audit(sessions, "login")
    assert entry.user_id == person.id and entry.category == "auth" and entry.ip


async def test_login_returns_to_the_page_asked_for_but_never_off_site(
    client: TestClient, make_user: MakeUser
) -> None:
    person = await make_user(Role.ADMIN)
    page = await client.get("/admin/audit", allow_redirects=False)
    assert page.status == 302 and page.headers["Location"].startswith("/login?next=/admin/audit")
    token = csrf_from(await (await client.get("/login")).text())
    for target, expected in (
        ("/admin/audit", "/admin/audit"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
    ):
        await client.post("/logout", data={"_csrf": token}, allow_redirects=False)
        token = csrf_from(await (await client.get("/login")).text())
        response = await client.post(
            "/login",
            data={"username": person.username, "password": person.password, "_csrf": token, "next": target},
            allow_redirects=False,
        )
        assert response.headers["Location"] == expected
        token = await page_csrf(client)


async def test_wrong_password_is_refused_with_a_message_and_audited(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    person = await make_user(Role.AGENT)
    response = await login(client, person.username, "not the password")
    assert response.status == 401
    assert "Wrong username or password" in await response.text()
    [entry] = await _audit(sessions, "login_failed")
    assert entry.username == person.username and entry.detail == "wrong password"
    assert "not the password" not in str(entry.changes) + str(entry.detail)


async def test_unknown_user_gets_the_same_answer_as_a_wrong_password(client: TestClient) -> None:
    response = await login(client, "nobody-here", "whatever-password")
    assert response.status == 401
    assert "Wrong username or password" in await response.text()


async def test_malformed_login_form_gets_a_clear_message(client: TestClient) -> None:
    token = csrf_from(await (await client.get("/login")).text())
    for data in ({"_csrf": token}, {"_csrf": token, "username": "x" * 500, "password": "p"}):
        response = await client.post("/login", data=data, allow_redirects=False)
        assert response.status in (400, 422)
        assert "Enter your username and password" in await response.text()
    response = await client.post("/login", data=b"\xff\xfe garbage", headers={"Content-Type": "text/plain"})
    assert response.status == 403  # no CSRF token in an unknown body: refused before parsing


async def test_logout_ends_the_server_session_and_is_audited(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    person = await make_user(Role.SUPERVISOR)
    await login(client, person.username)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    token = await page_csrf(client)
    response = await client.post("/logout", data={"_csrf": token}, allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/login"
    assert (await client.get("/", allow_redirects=False)).status == 302
    async with sessions() as db:
        assert (await db.scalars(select(WebSession))).all() == []
    # The old cookie, replayed, no longer opens anything: the session ended on the server.
    client.session.cookie_jar.update_cookies(cookie)
    assert (await client.get("/", allow_redirects=False)).status == 302
    assert len(await _audit(sessions, "logout")) == 1


async def test_an_idle_session_expires_and_the_user_is_told(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    person = await make_user(Role.AGENT)
    assert (await login(client, person.username)).status == 302
    long_ago = utcnow() - dt.timedelta(minutes=settings.session_idle_minutes + 1)
    async with sessions() as db, db.begin():
        await db.execute(update(WebSession).values(last_seen_at=long_ago))
    response = await client.get("/inbox", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"].startswith("/login?expired=1")
    assert "session has expired" in await (await client.get(response.headers["Location"])).text()
    assert len(await _audit(sessions, "session_expired")) == 1


async def test_a_session_past_its_maximum_age_expires_even_when_used(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    person = await make_user(Role.AGENT)
    await login(client, person.username)
    async with sessions() as db, db.begin():
        await db.execute(update(WebSession).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert (await client.get("/api/v1/me")).status == 401


async def test_a_form_without_its_csrf_token_is_refused(client: TestClient, make_user: MakeUser) -> None:
    person = await make_user(Role.ADMIN)
    await login(client, person.username)
    response = await client.post("/logout", allow_redirects=False)
    assert response.status == 403
    response = await client.post(
        "/admin/users", data={"username": "x", "_csrf": "forged"}, allow_redirects=False
    )
    assert response.status == 403
    assert (await client.get("/")).status == 200  # still logged in: nothing happened


async def test_the_login_form_itself_needs_its_csrf_token(client: TestClient, make_user: MakeUser) -> None:
    person = await make_user(Role.AGENT)
    response = await client.post("/login", data={"username": person.username, "password": person.password})
    assert response.status == 403


async def test_repeated_failures_lock_the_account_even_for_the_right_password(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    person = await make_user(Role.AGENT)
    statuses = [
        (await login(client, person.username, f"wrong-{i}")).status
        for i in range(settings.login_max_failures)
    ]
    assert statuses[:-1] == [401] * (settings.login_max_failures - 1) and statuses[-1] == 429
    response = await login(client, person.username)
    assert response.status == 429
    assert "locked" in await response.text()
    async with sessions() as db:
        user = await db.get(User, person.id)
        assert user is not None and user.locked_until is not None and user.locked_until > utcnow()
    failures = await _audit(sessions, "login_failed")
    assert len(failures) == settings.login_max_failures + 1
    assert failures[-1].detail == "account locked"


async def test_lockout_ends_after_its_window(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    person = await make_user(Role.AGENT)
    for i in range(settings.login_max_failures):
        await login(client, person.username, f"wrong-{i}")
    async with sessions() as db, db.begin():
        await db.execute(update(User).values(locked_until=utcnow() - dt.timedelta(seconds=1)))
        from switchboard.accounts_model import LoginFailure

        await db.execute(update(LoginFailure).values(at=utcnow() - dt.timedelta(hours=1)))
    assert (await login(client, person.username)).status == 302


async def test_one_address_guessing_many_accounts_is_throttled(
    client: TestClient, make_user: MakeUser, settings: Settings
) -> None:
    await make_user(Role.AGENT, username="real-user")
    for i in range(settings.login_max_failures * 4):
        await login(client, f"guess{i}", "password123")
    response = await login(client, "real-user")
    assert response.status == 429


async def test_an_inactive_user_cannot_log_in(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    person = await make_user(Role.AGENT)
    async with sessions() as db, db.begin():
        await db.execute(update(User).where(User.id == person.id).values(active=False))
    assert (await login(client, person.username)).status == 401
