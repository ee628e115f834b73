"""The permission matrix, checked on every route for every role. Cases come from the route table itself,
so a new route is covered (or fails) without anyone writing a test for it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard import accounts
from switchboard.audit import SYSTEM
from switchboard.permissions import MATRIX, Action, Role, can
from tests.conftest import MakeUser, login, page_csrf
from webui.routes import ROUTES, STATIC_ROUTE
from webui.routes_spec import PUBLIC, UNSAFE_METHODS, RouteSpec


def _path(spec: RouteSpec) -> str:
    return spec.path.format(**spec.sample)


def _ordered() -> list[RouteSpec]:
    # Logging out ends the session the other cases need, so it goes last.
    return sorted(ROUTES, key=lambda s: s.name == "logout")


def test_every_action_has_a_rule_and_every_rule_names_real_roles() -> None:
    assert set(MATRIX) == set(Action)
    assert all(roles <= set(Role) for roles in MATRIX.values())


def test_every_registered_route_is_in_the_route_table(app: web.Application) -> None:
    declared = {spec.name for spec in ROUTES} | {STATIC_ROUTE}
    registered = {route.name for route in app.router.routes()}
    assert registered <= declared, f"routes without a permission rule: {registered - declared}"


def test_every_path_parameter_has_a_sample() -> None:
    for spec in ROUTES:
        spec.path.format(**spec.sample)  # KeyError names the missing sample


async def _request(client: TestClient, spec: RouteSpec, *, token: str | None, csrf: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = {"_csrf": csrf} if csrf and spec.method in UNSAFE_METHODS else None
    response = await client.request(
        spec.method, _path(spec), headers=headers, data=data, allow_redirects=False
    )
    return response.status


@pytest.mark.parametrize("role", list(Role))
async def test_each_route_allows_exactly_the_roles_the_matrix_names(
    role: Role,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    app: web.Application,
    make_user: MakeUser,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    person = await make_user(role)
    async with sessions() as db, db.begin():
        _, token = await accounts.create_api_token(db, SYSTEM, person.id, "matrix test")
    client = await aiohttp_client(app)
    assert (await login(client, person.username)).status == 302
    csrf = await page_csrf(client)
    wrong: list[str] = []
    for spec in _ordered():
        allowed = spec.access == PUBLIC or can(role, spec.access)
        status = await _request(client, spec, token=token if spec.is_api else None, csrf=csrf)
        if allowed and status in (401, 403):
            wrong.append(f"{spec.method} {spec.path}: {role} should be allowed, got {status}")
        if not allowed and status != 403:
            wrong.append(f"{spec.method} {spec.path}: {role} should be denied, got {status}")
    assert wrong == []


async def test_anonymous_callers_reach_only_public_routes(client: TestClient) -> None:
    csrf = await page_csrf(client, "/login")
    wrong: list[str] = []
    for spec in ROUTES:
        status = await _request(client, spec, token=None, csrf=csrf)
        anonymous_answer = 401 if spec.is_api else 302
        ok = status not in (401, 403) if spec.access == PUBLIC else status == anonymous_answer
        if not ok:
            wrong.append(f"{spec.method} {spec.path}: anonymous got {status}")
    assert wrong == []


async def test_a_route_added_without_a_rule_is_refused(
    settings: object,
    make_user: MakeUser,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    app: web.Application,
) -> None:
    async def secret(request: web.Request) -> web.Response:
        return web.Response(text="should never be seen")

    app.router.add_get("/undeclared", secret, name="undeclared")
    person = await make_user(Role.ADMIN)
    client = await aiohttp_client(app)
    await login(client, person.username)
    response = await client.get("/undeclared")
    assert response.status == 403
    assert "should never be seen" not in await response.text()


async def test_api_errors_are_json_with_a_reason(client: TestClient) -> None:
    response = await client.get("/api/v1/me")
    assert response.status == 401
    body = await response.json()
    assert body["error"]["status"] == 401 and body["error"]["reason"]
    response = await client.get("/api/v1/me", headers={"Authorization": "Bearer sb_not-a-real-token"})
    assert response.status == 401


async def test_html_errors_are_friendly_pages(client: TestClient) -> None:
    response = await client.get("/no/such/page")
    assert response.status == 404
    assert response.content_type == "text/html"
    assert "does not exist" in await response.text()
