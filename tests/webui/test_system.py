"""Health, metrics, API tokens and the Redis bus inside the app."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from switchboard.app import build_app
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.conftest import MakeUser, login, page_csrf, redis_url


async def test_healthz_reports_database_and_bus_without_a_cookie(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok", "bus": "ok"}
    assert "Set-Cookie" not in response.headers


async def test_healthz_says_degraded_when_the_database_is_gone(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings
) -> None:
    broken = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://nobody:pw@127.0.0.1:1/none", "auto_migrate": False}
    )
    client = await aiohttp_client(build_app(broken))
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["database"] == "unavailable"


async def test_metrics_count_requests_by_route_name(client: TestClient) -> None:
    await client.get("/login")
    await client.get("/users/qqzz-not-a-route")
    text = await (await client.get("/metrics")).text()
    assert re.search(
        r'switchboard_http_requests_total\{method="GET",route="login_page",status="200"\} \d', text
    )
    assert 'route="unmatched"' in text and "qqzz" not in text
    assert "switchboard_jobs_total" in text or "switchboard_job_seconds" in text


async def test_metrics_can_require_a_token(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings
) -> None:
    client = await aiohttp_client(
        build_app(settings.model_copy(update={"metrics_token": SecretStr("scrape-me-please")}))
    )
    assert (await client.get("/metrics")).status == 401
    ok = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"})
    assert ok.status == 200


async def test_an_api_token_is_shown_once_works_and_stops_working_when_revoked(
    client: TestClient, make_user: MakeUser
) -> None:
    person = await make_user(Role.SUPERVISOR)
    await login(client, person.username)
    csrf = await page_csrf(client)
    page = await client.post(
        "/profile/tokens", data={"_csrf": csrf, "name": "reporting script", "days": "30"}
    )
    html = await page.text()
    token = re.search(r"(sb_[A-Za-z0-9_\-]{40,})", html)
    assert token, "the new token is shown"
    assert page.headers["Cache-Control"] == "no-store"
    listing = await (await client.get("/profile")).text()
    assert token.group(1) not in listing and "reporting script" in listing  # never shown again

    api = TestClient(client.server)
    await api.start_server()
    try:
        me = await api.get("/api/v1/me", headers={"Authorization": f"Bearer {token.group(1)}"})
        body = await me.json()
        assert me.status == 200 and body["username"] == person.username and body["role"] == "supervisor"
        assert "Set-Cookie" not in me.headers
        token_id = re.search(r'action="/profile/tokens/(\d+)/revoke"', listing)
        assert token_id
        await client.post(f"/profile/tokens/{token_id.group(1)}/revoke", data={"_csrf": csrf})
        again = await api.get("/api/v1/me", headers={"Authorization": f"Bearer {token.group(1)}"})
        assert again.status == 401
    finally:
        await api.session.close()


async def test_a_token_cannot_be_used_to_reach_html_pages(client: TestClient, make_user: MakeUser) -> None:
    person = await make_user(Role.ADMIN)
    await login(client, person.username)
    csrf = await page_csrf(client)
    html = await (await client.post("/profile/tokens", data={"_csrf": csrf, "name": "x"})).text()
    token = re.search(r"(sb_[A-Za-z0-9_\-]{40,})", html)
    assert token
    api = TestClient(client.server)
    await api.start_server()
    try:
        page = await api.get(
            "/admin/users", headers={"Authorization": f"Bearer {token.group(1)}"}, allow_redirects=False
        )
        assert page.status == 302  # pages need a browser session; tokens are for /api only
    finally:
        await api.session.close()


@pytest.mark.redis
async def test_the_app_runs_on_the_redis_bus(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings
) -> None:
    client = await aiohttp_client(
        build_app(settings.model_copy(update={"bus": "redis", "redis_url": redis_url()}))
    )
    response = await client.get("/healthz")
    assert (await response.json())["bus"] == "ok"
