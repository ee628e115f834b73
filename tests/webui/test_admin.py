"""Administration pages: users (with the audit trail of every change), dead jobs and the audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard import jobs
from switchboard.accounts_model import User
from switchboard.app import build_app
from switchboard.audit_model import AuditEntry
from switchboard.jobs_model import Job
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.conftest import MakeUser, login, page_csrf, second_browser


async def _entries(sessions: async_sessionmaker[AsyncSession], **where: str) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id)
    for key, value in where.items():
        query = query.where(getattr(AuditEntry, key) == value)
    async with sessions() as db:
        return list(await db.scalars(query))


async def _as_admin(client: TestClient, make_user: MakeUser) -> str:
    admin = await make_user(Role.ADMIN, username="boss")
    await login(client, admin.username)
    return await page_csrf(client, "/admin/users")


async def test_admin_creates_a_user_who_can_then_log_in(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    csrf = await _as_admin(client, make_user)
    form = {
        "_csrf": csrf,
        "username": "Ion.Popescu",
        "full_name": "Ion Popescu",
        "role": "agent",
        "branch": "Bălți",
        "password": "a-strong-password",
    }
    response = await client.post("/admin/users", data=form, allow_redirects=False)
    assert response.status == 302
    page = await client.get("/admin/users")
    assert "ion.popescu" in await page.text() and "Bălți" in await page.text()
    [created] = await _entries(sessions, module="users", action="create", username="boss")
    assert created.username == "boss" and created.changes is not None
    assert created.changes["role"] == [None, "agent"] and "password" not in str(created.changes)
    other = await second_browser(client)
    try:
        assert (await login(other, "ion.popescu", "a-strong-password")).status == 302
    finally:
        await other.session.close()


async def test_a_bad_user_form_is_shown_again_with_the_reason(
    client: TestClient, make_user: MakeUser
) -> None:
    csrf = await _as_admin(client, make_user)
    for form, message in (
        ({"username": "x", "role": "agent", "password": "a-strong-password"}, "A username has"),
        ({"username": "valid.name", "role": "agent", "password": "short"}, "at least 10 characters"),
        ({"username": "valid.name", "role": "pilot", "password": "a-strong-password"}, "Unknown role"),
        ({"username": "boss", "role": "agent", "password": "a-strong-password"}, "is taken"),
    ):
        response = await client.post("/admin/users", data={"_csrf": csrf, **form})
        assert response.status in (409, 422)
        text = await response.text()
        assert message in text
        assert "a-strong-password" not in text  # a password is never echoed back


async def test_editing_a_user_records_a_field_diff_and_reading_is_audited(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    csrf = await _as_admin(client, make_user)
    agent = await make_user(Role.AGENT, username="elena")
    assert (await client.get(f"/admin/users/{agent.id}")).status == 200
    assert len(await _entries(sessions, action="read", record_id=str(agent.id))) == 1
    async with sessions() as db:
        branch_id = (await db.get(User, agent.id)).branch_id  # type: ignore[union-attr]
    form = {
        "_csrf": csrf,
        "full_name": "Elena Rusu",
        "role": "supervisor",
        "active": "on",
        "branch_id": str(branch_id),
    }
    response = await client.post(f"/admin/users/{agent.id}", data=form, allow_redirects=False)
    assert response.status == 302
    [update] = await _entries(sessions, action="update", record_id=str(agent.id))
    assert update.changes == {"full_name": ["Elena", "Elena Rusu"], "role": ["agent", "supervisor"]}


async def test_an_admin_cannot_demote_or_deactivate_themself(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    csrf = await _as_admin(client, make_user)
    async with sessions() as db:
        me = (await db.scalars(select(User).where(User.username == "boss"))).one()
    response = await client.post(
        f"/admin/users/{me.id}", data={"_csrf": csrf, "role": "agent", "active": "on"}
    )
    assert response.status == 422
    assert "cannot deactivate yourself" in await response.text()


async def test_a_dead_job_is_listed_and_retried_from_the_page(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    csrf = await _as_admin(client, make_user)
    async with sessions() as db, db.begin():
        job = await jobs.enqueue(db, "send.sms", {"message_id": 7}, max_attempts=1)
        job.dead, job.attempts, job.last_error = True, 1, "ProviderError: 503 from provider"
    page = await client.get("/admin/jobs")
    text = await page.text()
    assert "send.sms" in text and "503 from provider" in text
    response = await client.post(f"/admin/jobs/{job.id}/retry", data={"_csrf": csrf}, allow_redirects=False)
    assert response.status == 302
    async with sessions() as db:
        again = await db.get(Job, job.id)
        assert again is not None and not again.dead and again.attempts == 0
    [entry] = await _entries(sessions, module="jobs", action="retry")
    assert entry.record_id == str(job.id)
    missing = await client.post("/admin/jobs/424242/retry", data={"_csrf": csrf}, allow_redirects=False)
    assert missing.status == 404


async def test_the_audit_page_filters_by_action_user_and_date(
    client: TestClient, make_user: MakeUser
) -> None:
    await _as_admin(client, make_user)
    agent = await make_user(Role.AGENT, username="victor")
    other = await second_browser(client)
    try:
        await login(other, agent.username, "wrong password!")
    finally:
        await other.session.close()
    page = await client.get("/admin/audit", params={"action": "login_failed"})
    text = await page.text()
    assert "victor" in text and "boss" not in text.split('id="audit-table"')[1]
    page = await client.get("/admin/audit", params={"user": "boss", "action": "login"})
    assert "1 entry" in await page.text()
    page = await client.get("/admin/audit", params={"since": "2001-01-01", "until": "2001-01-02"})
    assert "No entries match" in await page.text()
    page = await client.get("/admin/audit", params={"since": "not-a-date"})
    assert page.status == 200 and "YYYY-MM-DD" in await page.text()


async def test_the_audit_api_returns_the_same_entries_as_json(
    client: TestClient, make_user: MakeUser
) -> None:
    await _as_admin(client, make_user)
    response = await client.get("/api/v1/audit", params={"action": "login"})
    body = await response.json()
    assert body["total"] == 1 and body["entries"][0]["user"] == "boss"
    bad = await client.get("/api/v1/audit", params={"until": "31/12/2026"})
    assert bad.status == 422 and "YYYY-MM-DD" in (await bad.json())["error"]["reason"]


async def test_the_language_choice_is_remembered_for_the_user(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    person = await make_user(Role.AGENT, username="olga")
    await login(client, person.username)
    csrf = await page_csrf(client)
    response = await client.post(
        "/language", data={"_csrf": csrf, "locale": "ru", "next": "/"}, allow_redirects=False
    )
    assert response.status == 302
    async with sessions() as db:
        user = await db.get(User, person.id)
        assert user is not None and user.locale == "ru"
    # A new browser: after logging in, the page speaks the user's language.
    fresh = await second_browser(client)
    try:
        await login(fresh, person.username)
        html = await (await fresh.get("/")).text()
        assert '<html lang="ru">' in html and "Выйти" in html
    finally:
        await fresh.session.close()
    bad = await client.post("/language", data={"_csrf": csrf, "locale": "xx"})
    assert bad.status == 400


async def test_the_browser_language_is_used_until_the_user_picks_one(client: TestClient) -> None:
    html = await (await client.get("/login", headers={"Accept-Language": "ro-MD,ro;q=0.9"})).text()
    assert '<html lang="ro">' in html and "Autentificare" in html
    html = await (await client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.8"})).text()
    assert '<html lang="en">' in html and "Log in" in html


async def test_romanian_is_the_default_when_the_browser_names_no_language_we_speak(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings
) -> None:
    client = await aiohttp_client(build_app(settings.model_copy(update={"default_locale": "ro"})))
    html = await (await client.get("/login", headers={"Accept-Language": "de-DE"})).text()
    assert '<html lang="ro">' in html and "Autentificare" in html


async def test_the_jobs_api_lists_dead_jobs_and_retries_one(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    csrf = await _as_admin(client, make_user)
    async with sessions() as db, db.begin():
        job = await jobs.enqueue(db, "send.viber", {"message_id": 9}, max_attempts=1)
        job.dead, job.attempts, job.last_error = True, 1, "ViberError: 400 receiver not subscribed"
    body = await (await client.get("/api/v1/jobs", params={"state": "dead"})).json()
    assert body["counts"]["dead"] == 1 and body["jobs"][0]["last_error"].startswith("ViberError")
    bad = await client.get("/api/v1/jobs", params={"state": "everything"})
    assert bad.status == 400 and "state must be" in (await bad.json())["error"]["reason"]
    # A browser session calling the API must send its CSRF token in the header.
    refused = await client.post(f"/api/v1/jobs/{job.id}/retry")
    assert refused.status == 403
    done = await client.post(f"/api/v1/jobs/{job.id}/retry", headers={"X-CSRF-Token": csrf})
    assert done.status == 200 and (await done.json()) == {"id": job.id, "queued": True}
