"""The routing desk's phone endpoint field: an admin sets what the phone system dials for an agent's calls
(checked, one per agent, audited); a supervisor sees it but may not change it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard.app import build_app
from switchboard.audit_model import AuditEntry
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.conftest import MakeUser, login, page_csrf
from webui import keys


@pytest.fixture
async def routed_app(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> web.Application:
    return build_app(settings.model_copy(update={"routing": True}))


@pytest.fixture
async def routed_client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], routed_app: web.Application
) -> TestClient:
    return await aiohttp_client(routed_app)


async def test_an_admin_sets_an_agents_phone_endpoint_with_validation_and_audit(
    routed_client: TestClient,
    routed_app: web.Application,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
) -> None:
    ana, bob = await make_user(Role.AGENT), await make_user(Role.AGENT)
    admin = await make_user(Role.ADMIN)
    await login(routed_client, admin.username)
    headers = {"X-CSRF-Token": await page_csrf(routed_client, "/routing")}
    url = f"/api/v1/routing/agents/{ana.id}"

    saved = await routed_client.post(url, json={"phone_endpoint": " PJSIP/1001 "}, headers=headers)
    assert saved.status == 200 and (await saved.json())["agent"]["phone_endpoint"] == "PJSIP/1001"
    assert await routed_app[keys.ROUTER].endpoint(ana.id) == "PJSIP/1001"
    page = await (await routed_client.get("/routing")).text()
    assert 'value="PJSIP/1001"' in page and "agent-endpoint" in page

    for bad in ("PJSIP/1001,30,tT", "PJSIP/1001&PJSIP/1002", "1001", '"PJSIP/1"', 7):
        refused = await routed_client.post(url, json={"phone_endpoint": bad}, headers=headers)
        body = await refused.json()
        assert refused.status == 422 and body["error"]["field"] == "phone_endpoint", bad
    taken = await routed_client.post(
        f"/api/v1/routing/agents/{bob.id}", json={"phone_endpoint": "PJSIP/1001"}, headers=headers
    )
    assert taken.status == 409 and (await taken.json())["error"]["field"] == "phone_endpoint"
    assert await routed_app[keys.ROUTER].endpoint(bob.id) is None

    cleared = await routed_client.post(url, json={"phone_endpoint": None}, headers=headers)
    assert cleared.status == 200 and (await cleared.json())["agent"]["phone_endpoint"] is None
    async with sessions() as db:
        entries = list(
            await db.scalars(
                select(AuditEntry).where(AuditEntry.record_type == "agent").order_by(AuditEntry.id)
            )
        )
    assert [e.changes for e in entries] == [
        {"phone_endpoint": [None, "PJSIP/1001"]},
        {"phone_endpoint": ["PJSIP/1001", None]},
    ]
    assert all(e.user_id == admin.id for e in entries)


async def test_a_supervisor_sees_endpoints_but_may_not_change_them(
    routed_client: TestClient, routed_app: web.Application, make_user: MakeUser
) -> None:
    ana = await make_user(Role.AGENT)
    await routed_app[keys.ROUTER].set_endpoint(ana.id, "PJSIP/1001")
    boss = await make_user(Role.SUPERVISOR)
    await login(routed_client, boss.username)
    page = await (await routed_client.get("/routing")).text()
    assert (
        "PJSIP/1001" in page
        and "agent-endpoint-text" in page
        and 'class="form-control form-control-sm agent-endpoint"' not in page
    )
    headers = {"X-CSRF-Token": await page_csrf(routed_client, "/routing")}
    refused = await routed_client.post(
        f"/api/v1/routing/agents/{ana.id}",
        json={"phone_endpoint": "PJSIP/6666", "capacity": 3},
        headers=headers,
    )
    assert refused.status == 403
    assert await routed_app[keys.ROUTER].endpoint(ana.id) == "PJSIP/1001"
    view = await routed_app[keys.ROUTER].agent(ana.id)
    assert view is not None and view.capacity != 3  # nothing of the refused change was applied
