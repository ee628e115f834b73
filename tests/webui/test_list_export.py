"""Exports of a filtered list: exactly the rows and columns the list shows the caller (read back with the
csv module and openpyxl), a BOM for Excel, the formula guard, the row cap with its message, an audit entry
for every export, and the roles that may not export."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Awaitable, Callable

import openpyxl
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from switchboard.app import build_app
from switchboard.audit_model import AuditEntry
from switchboard.settings import Settings
from tests.conftest import MakeUser
from tests.webui._lists import Office, Sessions, cond, list_query, make_office, sign_in

FILTER = [cond("custom.income", "gte", 100)]
COLUMNS = "name,phone,custom.income,branch"


@pytest.fixture
async def office(sessions: Sessions, make_user: MakeUser) -> Office:
    return await make_office(sessions, make_user)


async def _rows_of_the_list(client: TestClient, slug: str, query: str) -> list[dict[str, object]]:
    body = await (await client.get(f"/api/v1/lists/{slug}?{query}")).json()
    return list(body["rows"])


async def test_the_csv_holds_exactly_the_filtered_visible_rows_and_columns(
    client: TestClient, office: Office
) -> None:
    await sign_in(client, office.supervisor)
    query = list_query(FILTER, columns=COLUMNS, sort="-custom.income")
    response = await client.get(f"/api/v1/lists/contacts/export.csv?{query}")
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="contacts-')
    raw = await response.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0] == ["Name", "Phone", "Income", "Branch"]
    assert table[1:] == [
        ['\'=HYPERLINK("x") Dan', "", "7000", "Chișinău"],
        ["Ion Popescu", "'+37369000001", "5000", "Chișinău"],
        ["Ana Rusu", "'+37369000002", "100", "Chișinău"],
    ]  # Bogdan of Bălți is not the supervisor's, whatever the filter
    listed = await _rows_of_the_list(client, "contacts", query)
    assert [r["name"] for r in listed] == ['=HYPERLINK("x") Dan', "Ion Popescu", "Ana Rusu"]


async def test_the_xlsx_types_its_cells_and_writes_formula_like_text_as_text(
    client: TestClient, office: Office
) -> None:
    await sign_in(client, office.admin)
    query = list_query(FILTER, columns=COLUMNS + ",created_at", sort="-custom.income")
    response = await client.get(f"/api/v1/lists/contacts/export.xlsx?{query}")
    assert response.status == 200, await response.text()
    assert (
        response.headers["Content-Type"]
        == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    book = openpyxl.load_workbook(io.BytesIO(await response.read()))
    sheet = book.active
    assert sheet is not None and sheet.title == "Contacts"
    rows = list(sheet.iter_rows())
    assert [c.value for c in rows[0]] == ["Name", "Phone", "Income", "Branch", "Created"]
    assert [r[0].value for r in rows[1:]] == ["Bogdan Ursu", '=HYPERLINK("x") Dan', "Ion Popescu", "Ana Rusu"]
    dan = rows[2]
    assert dan[0].data_type == "s"  # a string cell, never a formula
    assert [dan[2].value, dan[3].value] == [7000, "Chișinău"]
    assert isinstance(dan[4].value, dt.datetime)
    assert rows[3][1].value == "+37369000001" and rows[3][1].data_type == "s"
    urgent = list_query([cond("custom.urgent", "eq", True)], columns="id,amount,custom.urgent,status")
    leads = await client.get(f"/api/v1/lists/leads/export.xlsx?{urgent}")
    sheet = openpyxl.load_workbook(io.BytesIO(await leads.read())).active
    assert sheet is not None
    values = [[c.value for c in r] for r in sheet.iter_rows(min_row=2)]
    assert values == [
        [office.leads["bogdan"], 7000, "✓", "Converted"],
        [office.leads["ion"], 5000, "✓", "Converted"],
    ]


async def test_every_export_is_audited_with_its_filter_and_row_count(
    client: TestClient, office: Office, sessions: Sessions
) -> None:
    await sign_in(client, office.supervisor)
    query = list_query(FILTER, columns="name", q="Popescu")
    assert (await client.get(f"/api/v1/lists/contacts/export.csv?{query}")).status == 200
    async with sessions() as db:
        entry = (await db.scalars(select(AuditEntry).where(AuditEntry.record_type == "list_export"))).one()
    assert (entry.username, entry.record_id, entry.category) == ("sup", "contact", "report")
    assert entry.changes is not None
    assert entry.changes["rows"] == [None, 1] and entry.changes["format"] == [None, "csv"]
    assert entry.changes["filters"] == [None, [{"field": "custom.income", "op": "gte", "value": "100"}]]
    assert entry.changes["q"] == [None, "Popescu"] and entry.changes["columns"] == [None, ["name"]]


async def test_agents_may_not_export_and_a_marketer_only_what_they_may_open(
    client: TestClient, office: Office
) -> None:
    await sign_in(client, office.agent)
    assert (await client.get("/api/v1/lists/contacts/export.csv")).status == 403
    assert (await client.get("/api/v1/lists/deals/export.xlsx")).status == 403
    assert 'id="list-export-csv"' not in await (await client.get("/contacts")).text()
    await sign_in(client, office.marketer)
    assert (await client.get("/api/v1/lists/contacts/export.csv")).status == 200
    assert (await client.get("/api/v1/lists/leads/export.csv")).status == 403
    bad = await client.get(f"/api/v1/lists/contacts/export.csv?{list_query([cond('nope', 'eq', 1)])}")
    assert bad.status == 400 and (await bad.json())["error"]["field"] == "filters"


async def test_an_export_over_the_cap_is_refused_with_the_count(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    settings: Settings,
    office: Office,
    sessions: Sessions,
) -> None:
    client = await aiohttp_client(build_app(settings.model_copy(update={"export_max_rows": 2})))
    await sign_in(client, office.admin)
    response = await client.get("/api/v1/lists/contacts/export.csv")
    assert response.status == 413
    assert (await response.json())["error"]["reason"] == (
        "4 rows match; an export holds at most 2. Narrow the filter and export again."
    )
    page = await (await client.get("/contacts")).text()
    assert 'id="list-export-over"' in page and "4 rows match; an export holds at most 2." in page
    narrow = list_query([cond("first_name", "in", ["Ion", "Ana"])])
    assert (await client.get(f"/api/v1/lists/contacts/export.xlsx?{narrow}")).status == 200
    async with sessions() as db:
        rows = [
            e.changes["rows"][1]
            for e in await db.scalars(select(AuditEntry).where(AuditEntry.record_type == "list_export"))
            if e.changes
        ]
    assert rows == [2]  # the refused one left nothing
