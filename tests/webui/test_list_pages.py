"""The list pages and their API: filters on core and custom fields of contacts, companies, leads and deals,
the caller's visibility always applied (a crafted filter never reaches another branch), hostile queries
refused with 400 naming the field, the search box beside the filters, and saved views — round trip,
sharing rules, the default view a list opens with."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import MakeUser
from tests.webui._lists import Office, Sessions, cond, list_ids, list_query, make_office, sign_in, write


@pytest.fixture
async def office(sessions: Sessions, make_user: MakeUser) -> Office:
    return await make_office(sessions, make_user)


def _cases(
    o: Office,
) -> list[tuple[str, str, list[dict[str, Any]], list[dict[str, Any]], list[int], list[int]]]:
    """(slug, page, core filter, custom filter, ids the core one finds, ids the custom one finds)"""
    return [
        (
            "contacts",
            "/contacts",
            [cond("last_name", "starts", "Ru")],
            [cond("custom.income", "gte", 5000)],
            [o.contacts["ana"]],
            [o.contacts["bogdan"], o.contacts["dan"], o.contacts["ion"]],
        ),
        (
            "companies",
            "/contacts/companies",
            [cond("name", "contains", "agro")],
            [cond("custom.sector", "eq", "it")],
            [o.companies["beta"]],
            [o.companies["gamma"], o.companies["acme"]],
        ),
        (
            "leads",
            "/leads",
            [cond("amount", "between", ["1000", "6000"])],
            [cond("custom.urgent", "eq", True)],
            [o.leads["ion"]],
            [o.leads["bogdan"], o.leads["ion"]],
        ),
        (
            "deals",
            "/deals",
            [cond("contact_name", "contains", "popescu")],
            [cond("custom.risk", "in", ["high"])],
            [o.deals["ion"]],
            [o.deals["bogdan"]],
        ),
    ]


async def test_each_list_filters_by_a_core_and_a_custom_field_through_the_api_and_the_page(
    client: TestClient, office: Office
) -> None:
    await sign_in(client, office.admin)
    for slug, page, core, custom, core_ids, custom_ids in _cases(office):
        assert await list_ids(client, slug, core) == core_ids, slug
        assert sorted(await list_ids(client, slug, custom)) == sorted(custom_ids), slug
        html = await (await client.get(f"{page}?{list_query(custom)}")).text()
        shown = {int(part.split('"', 1)[0]) for part in html.split('<tr data-id="')[1:]}
        assert shown == set(custom_ids), slug
        assert 'class="badge bg-blue-lt list-condition"' in html
    body = await (
        await client.get(f"/api/v1/lists/contacts?{list_query([], columns='name,custom.income')}")
    ).json()
    row = next(r for r in body["rows"] if r["id"] == office.contacts["ion"])
    assert row == {"id": office.contacts["ion"], "name": "Ion Popescu", "custom.income": 5000}
    assert {"name": "custom.income", "label": "Income", "kind": "number"}.items() <= next(
        f for f in body["fields"] if f["name"] == "custom.income"
    ).items()


async def test_an_agent_never_sees_another_branch_even_with_a_crafted_filter(
    client: TestClient, office: Office
) -> None:
    await sign_in(client, office.agent)
    crafted = [cond("branch", "eq", str(office.there))]
    for slug in ("contacts", "companies", "leads", "deals"):
        assert await list_ids(client, slug, crafted) == [], slug
    assert office.contacts["bogdan"] not in await list_ids(client, "contacts", [])
    html = await (await client.get(f"/contacts?{list_query([cond('first_name', 'eq', 'Bogdan')])}")).text()
    assert "Ursu" not in html and 'id="list-empty"' in html
    assert await list_ids(client, "deals", []) == [office.deals["ion"]]
    await sign_in(client, office.other_agent)
    assert await list_ids(client, "contacts", [cond("custom.income", "gt", 0)]) == [office.contacts["bogdan"]]


async def test_a_marketer_opens_the_contacts_list_but_not_the_leads(
    client: TestClient, office: Office
) -> None:
    await sign_in(client, office.marketer)
    assert (await client.get("/api/v1/lists/contacts")).status == 200
    assert (await client.get("/api/v1/lists/leads")).status == 403
    assert (await client.get("/leads")).status == 403


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("filters=not json", "filters"),
        ("filters=" + json.dumps({"field": "name"}), "filters"),
        ("filters=" + json.dumps([cond("nope", "eq", "x")]), "filters"),
        ("filters=" + json.dumps([cond("first_name", "gt", "x")]), "first_name"),
        ("filters=" + json.dumps([cond("custom.income", "eq", "lots")]), "custom.income"),
        ("filters=" + json.dumps([cond("birth_date", "eq", {"$gt": ""})]), "birth_date"),
        ("filters=" + json.dumps([cond("first_name", "eq", "x")] * 21), "filters"),
        ("columns=name,secret", "columns"),
        ("sort=-secret", "sort"),
        ("page_size=100000", "page_size"),
    ],
)
async def test_hostile_list_queries_are_400_naming_the_field(
    client: TestClient, office: Office, query: str, field: str
) -> None:
    await sign_in(client, office.supervisor)
    response = await client.get(f"/api/v1/lists/contacts?{query}")
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["field"] == field and error["reason"]


async def test_a_bad_link_shows_the_unfiltered_list_with_the_reason(
    client: TestClient, office: Office
) -> None:
    await sign_in(client, office.admin)
    response = await client.get(f"/contacts?{list_query([cond('nope', 'eq', 'x')])}")
    assert response.status == 400
    html = await response.text()
    assert 'id="list-error"' in html and "Unknown field: nope." in html and "Bogdan" in html


async def test_the_search_box_works_beside_the_filters_and_the_pages_keep_the_state(
    client: TestClient, office: Office
) -> None:
    await sign_in(client, office.admin)
    assert await list_ids(client, "contacts", [], q="Popescu") == [office.contacts["ion"]]
    assert await list_ids(client, "contacts", [cond("custom.income", "lt", 1000)], q="Popescu") == []
    html = await (await client.get("/contacts?q=Ana")).text()
    assert "Rusu" in html and "Popescu" not in html and 'value="Ana"' in html
    companies = await (await client.get("/contacts/companies?q=acme")).text()
    assert "Acme SRL" in companies and "Beta Agro" not in companies
    sorted_ids = await list_ids(client, "contacts", [], sort="first_name", columns="first_name")
    assert sorted_ids[:2] == [office.contacts["dan"], office.contacts["ana"]]  # "=HYPERLINK…" sorts first
    page = await (await client.get(f"/contacts?{list_query([], sort='name', columns='name,phone')}")).text()
    assert 'data-column="phone"' in page and 'data-column="email"' not in page
    assert "sort=-name" in page  # the header's next click


async def test_saved_views_round_trip_with_the_sharing_rules(client: TestClient, office: Office) -> None:
    csrf = await sign_in(client, office.agent)
    view = {
        "entity": "contact",
        "name": "Rich",
        "filters": [cond("custom.income", "gte", 1000)],
        "columns": ["name", "custom.income"],
        "sort": "-custom.income",
    }
    status, refused = await write(client, csrf, "POST", "/api/v1/views", {**view, "shared": True})
    assert status == 422 and refused["error"]["field"] == "shared"
    status, bad = await write(
        client, csrf, "POST", "/api/v1/views", {**view, "filters": [cond("x", "eq", 1)]}
    )
    assert status == 400 and bad["error"]["field"] == "filters"
    status, created = await write(client, csrf, "POST", "/api/v1/views", view)
    assert status == 201, created
    mine = created["view"]
    assert (mine["name"], mine["shared"], mine["mine"], mine["columns"]) == (
        "Rich",
        False,
        True,
        view["columns"],
    )
    body = await (await client.get(f"/api/v1/lists/contacts?view={mine['id']}")).json()
    assert [r["id"] for r in body["rows"]] == [office.contacts["dan"], office.contacts["ion"]]
    assert body["rows"][0] == {
        "id": office.contacts["dan"],
        "name": '=HYPERLINK("x") Dan',
        "custom.income": 7000,
    }
    status, renamed = await write(client, csrf, "PATCH", f"/api/v1/views/{mine['id']}", {"name": "Rich ones"})
    assert (
        status == 200
        and renamed["view"]["name"] == "Rich ones"
        and renamed["view"]["filters"]
        == [
            cond("custom.income", "gte", "1000")  # numbers are kept exact, as text
        ]
    )

    csrf = await sign_in(client, office.supervisor)
    assert (await client.get(f"/api/v1/views/{mine['id']}")).status == 404  # someone else's, not shared
    status, shared = await write(
        client, csrf, "POST", "/api/v1/views", {**view, "name": "Team", "shared": True, "filters": []}
    )
    assert status == 201 and shared["view"]["shared"] is True

    csrf = await sign_in(client, office.agent)
    listed = (await (await client.get("/api/v1/views?entity=contact")).json())["views"]
    assert {v["name"]: v["mine"] for v in listed} == {"Rich ones": True, "Team": False}
    status, _ = await write(client, csrf, "DELETE", f"/api/v1/views/{shared['view']['id']}", {})
    assert status == 404
    status, _ = await write(
        client, csrf, "PATCH", f"/api/v1/views/{shared['view']['id']}", {"name": "Mine now"}
    )
    assert status == 404
    status, deleted = await write(client, csrf, "DELETE", f"/api/v1/views/{mine['id']}", {})
    assert status == 200 and deleted == {"deleted": mine["id"]}
    assert [
        v["name"] for v in (await (await client.get("/api/v1/views?entity=contacts")).json())["views"]
    ] == ["Team"]


async def test_the_default_view_opens_the_list_until_the_user_asks_for_all(
    client: TestClient, office: Office
) -> None:
    csrf = await sign_in(client, office.agent)
    status, created = await write(
        client,
        csrf,
        "POST",
        "/api/v1/views",
        {"entity": "lead", "name": "Urgent", "filters": [cond("custom.urgent", "eq", True)], "default": True},
    )
    assert status == 201 and created["view"]["is_default"] is True
    html = await (await client.get("/leads")).text()
    shown = [int(part.split('"', 1)[0]) for part in html.split('<tr data-id="')[1:]]
    assert shown == [office.leads["ion"]]  # urgent and of the agent's branch
    assert 'id="list-view-undefault"' in html and f'value="{created["view"]["id"]}" selected' in html
    everything = await (await client.get("/leads?all=1")).text()
    assert f'<tr data-id="{office.leads["ana"]}"' in everything
    view_id = created["view"]["id"]
    status, cleared = await write(
        client, csrf, "POST", f"/api/v1/views/{view_id}/default", {"default": False}
    )
    assert status == 200 and cleared["view"]["is_default"] is False
    assert f'<tr data-id="{office.leads["ana"]}"' in await (await client.get("/leads")).text()
    status, _ = await write(client, csrf, "POST", f"/api/v1/views/{view_id}/default", {"default": "yes"})
    assert status == 422
