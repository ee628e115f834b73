"""`/admin/custom-fields` and `/api/v1/custom-fields`: an admin adds a field of each kind from the page or
the API, relabels, reorders and deactivates it, and cannot change its key or kind; bad definitions come
back with the field named; only admins define fields, everyone signed in reads them (forms need them)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import custom_fields
from switchboard.audit_model import AuditEntry
from switchboard.permissions import Role
from tests.conftest import MakeUser, login, page_csrf


async def _admin(client: TestClient, make_user: MakeUser) -> str:
    admin = await make_user(Role.ADMIN)
    assert (await login(client, admin.username)).status == 302
    return await page_csrf(client, "/admin/custom-fields")


async def _api(client: TestClient, csrf: str, method: str, path: str, body: Any) -> tuple[int, Any]:
    response = await client.request(
        method,
        path,
        data=body if isinstance(body, str) else json.dumps(body),
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    )
    return response.status, await response.json()


async def test_an_admin_adds_edits_and_deactivates_a_field_from_the_page(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    csrf = await _admin(client, make_user)
    added = await client.post(
        "/admin/custom-fields",
        data={
            "_csrf": csrf,
            "entity": "lead",
            "key": "goal",
            "label": "Scopul creditului",
            "kind": "choice",
            "options": "auto = Automobil\nipoteca = Ipotecă\n",
            "position": "5",
            "required": "1",
        },
        allow_redirects=False,
    )
    assert added.status == 302 and added.headers["Location"] == "/admin/custom-fields?entity=lead"
    page = await (await client.get("/admin/custom-fields?entity=lead")).text()
    assert 'data-key="goal"' in page and "ipoteca = Ipotecă" in page
    async with sessions() as db:
        [goal] = await custom_fields.definitions(db, "lead")
    assert (goal.kind, goal.required, goal.position) == ("choice", True, 5)
    assert [(o.code, o.label) for o in goal.options] == [("auto", "Automobil"), ("ipoteca", "Ipotecă")]

    # The row's form: a new label and option, the checkboxes left unticked (not required, inactive).
    saved = await client.post(
        f"/admin/custom-fields/{goal.id}",
        data={
            "_csrf": csrf,
            "key": "goal",
            "kind": "choice",
            "label": "Scop",
            "options": "auto = Automobil\nipoteca = Ipotecă\nstudii = Studii",
            "position": "1",
        },
        allow_redirects=False,
    )
    assert saved.status == 302
    async with sessions() as db:
        assert await custom_fields.definitions(db, "lead") == []  # out of the forms
        [goal] = await custom_fields.definitions(db, "lead", include_inactive=True)
        entries = list(await db.scalars(select(AuditEntry).where(AuditEntry.record_type == "custom_field")))
    assert (goal.label, goal.required, goal.active, len(goal.options)) == ("Scop", False, False, 3)
    assert [e.action for e in entries] == ["create", "update"]

    refused = await client.post(
        "/admin/custom-fields",
        data={"_csrf": csrf, "entity": "lead", "key": "Bad Key", "label": "x", "kind": "text"},
    )
    assert refused.status == 422
    assert "lower-case letter" in await refused.text()


async def test_the_api_defines_fields_and_refuses_bad_ones_naming_the_field(
    client: TestClient, make_user: MakeUser
) -> None:
    csrf = await _admin(client, make_user)
    status, body = await _api(
        client,
        csrf,
        "POST",
        "/api/v1/custom-fields",
        {"entity": "contact", "key": "income", "label": "Venit lunar", "kind": "money", "required": True},
    )
    assert status == 201 and body["field"]["kind"] == "money" and body["field"]["required"] is True
    field_id = body["field"]["id"]
    for bad, field in (
        ({"entity": "planet", "key": "x", "label": "x", "kind": "text"}, "entity"),
        ({"entity": "contact", "key": "income", "label": "Again", "kind": "text"}, "key"),
        ({"entity": "contact", "key": "goal", "label": "Goal", "kind": "choice"}, "options"),
        ({"entity": "contact", "key": "n", "label": "N", "kind": "colour"}, "kind"),
        ({"entity": "contact", "key": "p", "label": "P", "kind": "text", "position": "first"}, "position"),
    ):
        status, body = await _api(client, csrf, "POST", "/api/v1/custom-fields", bad)
        assert status in (409, 422) and body["error"]["field"] == field, (bad, body)
    status, body = await _api(client, csrf, "PATCH", f"/api/v1/custom-fields/{field_id}", {"kind": "text"})
    assert status == 422 and body["error"]["field"] == "kind"
    status, body = await _api(client, csrf, "PATCH", f"/api/v1/custom-fields/{field_id}", {"position": 3})
    assert status == 200 and body["field"]["position"] == 3 and body["field"]["label"] == "Venit lunar"
    status, _ = await _api(client, csrf, "PATCH", "/api/v1/custom-fields/999999", {"position": 3})
    assert status == 404
    status, _ = await _api(client, csrf, "POST", "/api/v1/custom-fields", "[not json")
    assert status == 400


async def test_only_admins_define_fields_and_everyone_reads_them(
    client: TestClient, make_user: MakeUser
) -> None:
    csrf = await _admin(client, make_user)
    status, _ = await _api(
        client,
        csrf,
        "POST",
        "/api/v1/custom-fields",
        {"entity": "deal", "key": "bank", "label": "Banca", "kind": "text"},
    )
    assert status == 201
    await client.post("/logout", data={"_csrf": csrf})
    agent = await make_user(Role.AGENT)
    assert (await login(client, agent.username)).status == 302
    agent_csrf = await page_csrf(client, "/profile")
    listed = await (await client.get("/api/v1/custom-fields?entity=deal")).json()
    assert [f["key"] for f in listed["fields"]] == ["bank"]
    status, _ = await _api(
        client,
        agent_csrf,
        "POST",
        "/api/v1/custom-fields",
        {"entity": "deal", "key": "x", "label": "X", "kind": "text"},
    )
    assert status == 403
    assert (await client.get("/admin/custom-fields")).status == 403
