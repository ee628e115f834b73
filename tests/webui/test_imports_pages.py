"""The import wizard on the web: who may import where, who sees which import, hostile uploads answered
with a reason, the progress answer and the refused rows' CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from aiohttp import FormData, web
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.models import Contact
from switchboard import accounts
from switchboard.accounts_model import User
from switchboard.permissions import Role
from tests.conftest import MakeUser, Person, login, page_csrf, second_browser
from webui import keys


async def _signed_in(client: TestClient, person: Person) -> str:
    assert (await login(client, person.username)).status == 302
    return await page_csrf(client, "/contacts/import")


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


async def _upload(
    client: TestClient, csrf: str, data: bytes, name: str = "people.csv", kind: str = "contacts"
) -> Any:
    form = FormData()
    form.add_field("kind", kind)
    form.add_field("file", io.BytesIO(data), filename=name, content_type="application/octet-stream")
    return await client.post("/api/v1/imports", data=form, headers={"X-CSRF-Token": csrf})


async def _drive(
    client: TestClient, app: web.Application, csrf: str, import_id: int, mapping: list[str]
) -> dict[str, Any]:
    headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    answer = await client.put(
        f"/api/v1/imports/{import_id}/mapping",
        data=json.dumps({"mapping": mapping, "policy": "skip"}),
        headers=headers,
    )
    assert answer.status == 200, await answer.text()
    for step in ("dry-run", "run"):
        answer = await client.post(f"/api/v1/imports/{import_id}/{step}", headers={"X-CSRF-Token": csrf})
        assert answer.status == 202, await answer.text()
        assert await app[keys.WORKER].run_once() == 1
    answer = await client.get(f"/api/v1/imports/{import_id}")
    assert answer.status == 200
    return (await answer.json())["import"]  # type: ignore[no-any-return]


async def test_a_supervisor_imports_into_their_own_branch_and_a_row_naming_another_is_refused(
    client: TestClient, app: web.Application, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as db, db.begin():
        await accounts.get_or_create_branch(db, "Bălți")
    agent = await make_user(Role.SUPERVISOR)
    csrf = await _signed_in(client, agent)
    data = _csv([["Nume", "Telefon", "Filiala"], ["Rusu", "069111111", ""], ["Ceban", "069222222", "Bălți"]])
    response = await _upload(client, csrf, data)
    assert response.status == 201, await response.text()
    created = (await response.json())["import"]
    assert created["columns"] == ["Nume", "Telefon", "Filiala"] and created["mapping"] == [
        "last_name",
        "phone",
        "branch",
    ]
    state = await _drive(client, app, csrf, created["id"], created["mapping"])
    assert state["status"] == "done" and state["counts"]["created"] == 1 and state["counts"]["refused"] == 1
    assert state["percent"] == 100 and state["done"] == 2 == state["total"]
    assert state["issues"] == [
        {
            "row": 3,
            "outcome": "refused",
            "column": "Filiala",
            "value": "Bălți",
            "reason": "You may import only into your own branch.",
        }
    ]
    async with sessions() as db:
        contact = (await db.scalars(select(Contact))).one()
        me = await db.get(User, agent.id)
    assert contact.phone == "+37369111111"
    assert me is not None and contact.branch_id is not None and contact.branch_id == me.branch_id


async def test_an_import_is_seen_by_its_owner_their_branch_supervisors_and_admins_only(
    client: TestClient, make_user: MakeUser
) -> None:
    owner = await make_user(Role.SUPERVISOR)
    csrf = await _signed_in(client, owner)
    response = await _upload(client, csrf, _csv([["Phone"], ["069111111"]]))
    import_id = (await response.json())["import"]["id"]
    cases = (
        (Role.SUPERVISOR, "Bălți", 404),
        (Role.SUPERVISOR, "Chișinău", 200),
        (Role.ADMIN, "Chișinău", 200),
        (Role.AGENT, "Chișinău", 403),  # agents do not import in bulk
    )
    for role, branch, status in cases:
        other_person = await make_user(role, branch=branch)
        other = await second_browser(client)
        try:
            assert (await login(other, other_person.username)).status == 302
            assert (await other.get(f"/api/v1/imports/{import_id}")).status == status, role
            assert (await other.get(f"/contacts/import/{import_id}")).status == status, role
            assert (await other.get(f"/api/v1/imports/{import_id}/errors.csv")).status == status, role
        finally:
            await other.session.close()
    marketer = await make_user(Role.MARKETER)
    other = await second_browser(client)
    try:
        await login(other, marketer.username)
        assert (await other.get("/contacts/import")).status == 403
    finally:
        await other.session.close()


async def test_hostile_uploads_are_refused_with_a_json_reason(
    client: TestClient, app: web.Application, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    csrf = await _signed_in(client, admin)
    cases = [
        (b"\x00\x01\x02\xff\xfe binary", "x.csv", 422, "not UTF-8"),
        (b"abc\x00def\n1\n", "x.csv", 422, "binary"),
        (b"PK\x03\x04 not really a zip", "x.xlsx", 422, "XLSX"),
        (b"\xd0\xcf\x11\xe0 old excel", "x.xls", 422, ".xls"),
        (b"", "x.csv", 422, "empty"),
        (b"name\n" + b"y" * 20_000 + b"\n", "x.csv", 422, "longer than"),
        (b"a,b\n", "x.csv", 422, "no rows"),
    ]
    for data, name, status, words in cases:
        response = await _upload(client, csrf, data, name)
        assert response.status == status, (name, await response.text())
        body = await response.json()
        assert words in body["error"]["reason"], body
    big = b"phone\n" + b"069111111\n" * (app[keys.SETTINGS].import_max_bytes // 10 + 10)
    response = await _upload(client, csrf, big)
    assert response.status == 413 and "larger than" in (await response.json())["error"]["reason"]
    response = await client.post(
        "/api/v1/imports", data=b"{}", headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    )
    assert response.status == 422
    response = await _upload(client, csrf, _csv([["Phone"], ["069"]]), kind="deals")
    assert response.status == 422


async def test_the_refused_rows_csv_has_a_bom_the_error_column_and_defused_formulas(
    client: TestClient, app: web.Application, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    csrf = await _signed_in(client, admin)
    data = _csv(
        [
            ["Name", "Phone", "Note"],
            ["=HYPERLINK(1)", "069111111", "@x"],
            ["Ana", "069222222", "-1"],
            ["Vera", "12", "+x"],
        ]
    )
    response = await _upload(client, csrf, data)
    created = (await response.json())["import"]
    state = await _drive(client, app, csrf, created["id"], ["full_name", "phone", ""])
    assert state["counts"] == {"created": 1, "updated": 0, "skipped": 0, "refused": 2, "flagged": 0}
    answer = await client.get(f"/api/v1/imports/{created['id']}/errors.csv")
    assert answer.status == 200 and answer.content_type == "text/csv"
    raw = await answer.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["Name", "Phone", "Note", "error"]
    assert rows[1][:3] == ["'=HYPERLINK(1)", "069111111", "'@x"] and "formula" in rows[1][3]
    assert rows[2][:3] == ["Vera", "12", "'+x"] and rows[2][3] == "Phone: Not a phone number: 12."
    assert len(rows) == 3


async def test_the_pages_walk_through_upload_mapping_dry_run_and_run(
    client: TestClient, app: web.Application, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    supervisor = await make_user(Role.SUPERVISOR)
    csrf = await _signed_in(client, supervisor)
    listing = await client.get("/contacts")
    assert 'href="/contacts/import"' in await listing.text()
    response = await _upload(client, csrf, _csv([["Prenume", "Telefon"], ["Ion", "069111111"]]))
    import_id = (await response.json())["import"]["id"]
    page = await client.get(f"/contacts/import/{import_id}")
    text = await page.text()
    assert page.status == 200 and 'name="col_0"' in text and 'value="first_name" selected' in text
    answer = await client.post(
        f"/contacts/import/{import_id}/mapping",
        data={"_csrf": csrf, "col_0": "first_name", "col_1": "phone", "policy": "update"},
        allow_redirects=False,
    )
    assert answer.status == 302
    assert await app[keys.WORKER].run_once() == 1
    page = await client.get(f"/contacts/import/{import_id}")
    assert 'id="import-run"' in await page.text()
    answer = await client.post(
        f"/contacts/import/{import_id}/run", data={"_csrf": csrf}, allow_redirects=False
    )
    assert answer.status == 302
    assert await app[keys.WORKER].run_once() == 1
    page = await client.get("/contacts/import")
    assert page.status == 200 and f'data-import="{import_id}"' in await page.text()
    async with sessions() as db:
        assert (await db.scalars(select(Contact.first_name))).all() == ["Ion"]
    bad = await client.post(
        f"/contacts/import/{import_id}/mapping", data={"_csrf": csrf, "col_0": "first_name", "col_1": "phone"}
    )
    assert bad.status == 409  # finished: a new import is a new upload


async def test_a_supervisor_cannot_set_a_mapping_that_names_no_field(
    client: TestClient, make_user: MakeUser
) -> None:
    supervisor = await make_user(Role.SUPERVISOR)
    csrf = await _signed_in(client, supervisor)
    response = await _upload(client, csrf, _csv([["Phone"], ["069111111"]]))
    import_id = (await response.json())["import"]["id"]
    answer = await client.put(
        f"/api/v1/imports/{import_id}/mapping",
        data=json.dumps({"mapping": [""], "policy": "skip"}),
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    )
    assert answer.status == 422 and (await answer.json())["error"]["field"] == "mapping"
    answer = await client.post(f"/api/v1/imports/{import_id}/run", headers={"X-CSRF-Token": csrf})
    assert answer.status == 409  # no dry run yet
