"""Fields hidden by role: the admin's grid, and what it hides from an agent — list columns, filters (refused
as unknown), exports, the contact, lead and deal pages and their JSON — while saves keep the hidden values
and admins (and roles it does not name) still see everything."""

from __future__ import annotations

import csv
import io
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from channels.model import Channel, InboundMessage
from crm_core import field_visibility
from crm_core.models import Contact
from switchboard.audit import SYSTEM
from switchboard.audit_model import AuditEntry
from switchboard.permissions import Role
from tests.conftest import MakeUser, login, page_csrf, second_browser
from tests.webui._lists import Office, Sessions, cond, list_query, make_office, sign_in, write
from webui import keys

IDNP = "2002001234563"


@pytest.fixture
async def office(sessions: Sessions, make_user: MakeUser, client: TestClient) -> Office:
    """The office with the admin's setting saved through the page: agents may not see a contact's IDNP and
    income, a lead's score and amount, a deal's amount."""
    office = await make_office(sessions, make_user)
    csrf = await sign_in(client, office.admin)
    for entity, names in (
        ("contact", ["idnp", "custom.income"]),
        ("lead", ["score", "amount"]),
        ("deal", ["amount"]),
    ):
        form = [("_csrf", csrf), ("entity", entity), *(("hide.agent", n) for n in names)]
        response = await client.post("/admin/field-visibility", data=form, allow_redirects=False)
        assert (
            response.status == 302
            and response.headers["Location"] == f"/admin/field-visibility#fields-{entity}"
        )
    return office


async def test_the_admin_grid_shows_and_audits_the_setting(
    client: TestClient, office: Office, sessions: Sessions
) -> None:
    html = await (await client.get("/admin/field-visibility")).text()
    assert 'name="hide.agent" value="idnp"' in html
    checked = [
        part.split('"', 1)[0]
        for part in html.split('name="hide.agent" value="')[1:]
        if "checked" in part.split(">", 1)[0]
    ]
    assert sorted(checked) == ["amount", "amount", "custom.income", "idnp", "score"]
    assert 'name="hide.supervisor" value="custom.risk"' in html  # custom fields are in the grid too
    async with sessions() as db:
        entries = list(await db.scalars(select(AuditEntry).where(AuditEntry.record_type == "hidden_fields")))
    assert {e.record_id for e in entries} == {"contact:agent", "lead:agent", "deal:agent"}
    assert next(e for e in entries if e.record_id == "contact:agent").changes == {
        "hidden": [[], ["custom.income", "idnp"]]
    }


async def test_hidden_fields_leave_an_agents_list_filters_and_api(client: TestClient, office: Office) -> None:
    await sign_in(client, office.agent)
    body = await (await client.get("/api/v1/lists/contacts")).json()
    names = {f["name"] for f in body["fields"]}
    assert "idnp" not in names and "custom.income" not in names and "phone" in names
    assert "idnp" not in body["columns"] and all("idnp" not in row for row in body["rows"])
    for query, field in (
        (list_query([cond("idnp", "not_empty")]), "filters"),
        (list_query([cond("custom.income", "gt", 1)]), "filters"),
        (list_query([], columns="name,idnp"), "columns"),
        (list_query([], sort="custom.income"), "sort"),
    ):
        response = await client.get(f"/api/v1/lists/contacts?{query}")
        assert response.status == 400 and (await response.json())["error"]["field"] == field
    page = await (await client.get("/contacts")).text()
    assert IDNP not in page and '"custom.income"' not in page
    leads = await (await client.get("/api/v1/lists/leads")).json()
    assert {"score", "amount"}.isdisjoint(f["name"] for f in leads["fields"])


async def test_a_saved_view_on_a_field_hidden_since_stops_using_it(
    client: TestClient, office: Office, sessions: Sessions
) -> None:
    csrf = await sign_in(client, office.supervisor)
    status, created = await write(
        client,
        csrf,
        "POST",
        "/api/v1/views",
        {
            "entity": "contact",
            "name": "IDNP known",
            "shared": True,
            "filters": [cond("idnp", "not_empty")],
            "columns": ["name", "idnp"],
        },
    )
    assert status == 201
    await sign_in(client, office.agent)
    body = await (await client.get(f"/api/v1/lists/contacts?view={created['view']['id']}")).json()
    assert body["filters"] == [] and body["columns"] == ["name"]  # dropped, never applied or shown
    assert len(body["rows"]) == 3


async def test_an_export_leaves_out_what_the_role_may_not_see(client: TestClient, office: Office) -> None:
    await sign_in(client, office.marketer)  # marketers export; the setting does not hide anything from them
    header = (
        (await (await client.get("/api/v1/lists/contacts/export.csv")).text())
        .lstrip("\ufeff")
        .splitlines()[0]
    )
    assert "IDNP" in header
    await sign_in(client, office.admin)
    csrf = await page_csrf(client, "/profile")
    form = [("_csrf", csrf), ("entity", "contact"), ("hide.marketer", "idnp"), ("hide.marketer", "phone")]
    assert (await client.post("/admin/field-visibility", data=form, allow_redirects=False)).status == 302
    await sign_in(client, office.marketer)
    text = (await (await client.get("/api/v1/lists/contacts/export.csv?columns=")).text()).lstrip("\ufeff")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["Name", "E-mail", "Tags"]
    assert all(IDNP not in cell and "+3736900000" not in cell for row in table for cell in row)
    refused = await client.get(f"/api/v1/lists/contacts/export.xlsx?{list_query([], columns='name,idnp')}")
    assert refused.status == 400 and (await refused.json())["error"]["field"] == "columns"


async def test_the_contact_page_and_api_hide_the_field_and_saves_keep_it(
    client: TestClient, office: Office, sessions: Sessions
) -> None:
    ion = office.contacts["ion"]
    csrf = await sign_in(client, office.agent)
    html = await (await client.get(f"/contacts/{ion}")).text()
    assert 'id="idnp"' not in html and IDNP not in html and 'id="phone_0"' in html
    profile = (await (await client.get(f"/api/v1/contacts/{ion}/profile")).json())["contact"]
    assert "idnp" not in profile and profile["first_name"] == "Ion"
    status, refused = await write(
        client, csrf, "POST", f"/api/v1/contacts/{ion}/profile", {**profile, "idnp": ""}
    )
    assert status == 422 and refused["error"]["field"] == "idnp"
    body = {k: v for k, v in profile.items() if k in ("first_name", "last_name", "phones", "emails", "tags")}
    status, saved = await write(
        client, csrf, "POST", f"/api/v1/contacts/{ion}/profile", {**body, "last_name": "Pop"}
    )
    assert status == 200 and "idnp" not in saved["contact"] and saved["contact"]["last_name"] == "Pop"
    form = {"_csrf": csrf, "first_name": "Ion", "last_name": "Popa", "phone_0": "+37369000001"}
    assert (await client.post(f"/contacts/{ion}", data=form, allow_redirects=False)).status == 302
    async with sessions() as db:
        contact = await db.get(Contact, ion)
    assert contact is not None and (contact.last_name, contact.idnp) == ("Popa", IDNP)  # kept, not wiped
    await sign_in(client, office.admin)
    assert IDNP in await (await client.get(f"/contacts/{ion}")).text()
    assert (await (await client.get(f"/api/v1/contacts/{ion}/profile")).json())["contact"]["idnp"] == IDNP


async def test_the_lead_and_deal_pages_and_api_hide_the_fields_with_the_score_breakdown(
    client: TestClient, office: Office
) -> None:
    lead, deal = office.leads["ion"], office.deals["ion"]
    csrf = await sign_in(client, office.agent)
    html = await (await client.get(f"/leads/{lead}")).text()
    assert (
        'id="lead-score"' not in html
        and 'id="lead-score-card"' not in html
        and 'id="lead-amount"' not in html
    )
    assert 'id="lead-product"' in html
    body = (await (await client.get(f"/api/v1/leads/{lead}")).json())["lead"]
    assert {"score", "amount", "scoring"}.isdisjoint(body) and body["source_channel"] == "telegram"
    status, refused = await write(client, csrf, "PATCH", f"/api/v1/leads/{lead}", {"amount": "1"})
    assert status == 422 and refused["error"]["field"] == "amount"
    status, saved = await write(client, csrf, "PATCH", f"/api/v1/leads/{lead}", {"campaign": "spring"})
    assert status == 200 and saved["lead"]["campaign"] == "spring" and "amount" not in saved["lead"]
    deal_html = await (await client.get(f"/deals/{deal}")).text()
    assert 'id="deal-amount"' not in deal_html and 'id="deal-stage"' in deal_html
    deal_json = (await (await client.get(f"/api/v1/deals/{deal}")).json())["deal"]
    assert "amount" not in deal_json and deal_json["stage_id"]
    await sign_in(client, office.admin)
    admin_html = await (await client.get(f"/leads/{lead}")).text()
    assert 'id="lead-score-card"' in admin_html and 'id="lead-amount"' in admin_html
    admin_json = (await (await client.get(f"/api/v1/leads/{lead}")).json())["lead"]
    assert admin_json["amount"] == "5000.00" and "scoring" in admin_json
    assert json.loads(json.dumps(admin_json))["score"] is not None


async def test_the_inbox_leaves_out_a_customers_phone_hidden_from_agents(
    client: TestClient, make_user: MakeUser, sessions: Sessions, app: web.Application
) -> None:
    """The inbox's conversation list and thread answer without the phone (and the channel addresses,
    which on SMS and WhatsApp are the phone) when agents may not see it; an admin still sees it."""
    async with sessions() as db, db.begin():
        await field_visibility.set_hidden(db, SYSTEM, "contact", Role.AGENT, ["phone"])
    stored = await app[keys.INBOX].ingest(
        InboundMessage(
            channel=Channel.SMS,
            account_id="acc",
            external_id="sms-1",
            sender_id="+37369123456",
            sender_phone="+37369123456",
            body="Bună ziua",
        )
    )
    for role, sees in ((Role.ADMIN, True), (Role.AGENT, False)):
        person = await make_user(role)
        browser = client if role is Role.ADMIN else await second_browser(client)
        try:
            assert (await login(browser, person.username)).status == 302
            listed = await (await browser.get("/api/v1/conversations?scope=all")).json()
            thread = await (await browser.get(f"/api/v1/conversations/{stored.conversation_id}")).json()
            text = json.dumps([listed, thread])
            assert ("+37369123456" in text) is sees, (role, text)
            assert ("phone" in thread["contact"]) is sees and thread["messages"]
        finally:
            if browser is not client:
                await browser.session.close()


async def test_search_hits_leave_out_what_the_role_may_not_see(client: TestClient, office: Office) -> None:
    """The header's search shows an agent the contact without its IDNP and the deal without its amount,
    and an admin both."""
    for person, sees in ((office.agent, False), (office.admin, True)):
        await sign_in(client, person)
        contacts = (await (await client.get("/api/v1/search?q=Popescu&kind=contact")).json())["hits"]
        ion = next(h for h in contacts if h["id"] == office.contacts["ion"])
        assert ion["title"] == "Ion Popescu" and "+37369000001" in ion["snippet"]
        assert (IDNP in ion["snippet"]) is sees
        deals = (await (await client.get("/api/v1/search?q=open&kind=deal")).json())["hits"]
        deal = next(h for h in deals if h["id"] == office.deals["ion"])
        assert deal["title"].endswith("Ion Popescu") and ("5000" in deal["snippet"]) is sees, deal
        # A hidden IDNP neither finds the contact nor, excluded, drops it.
        by_idnp = (await (await client.get(f"/api/v1/search?q={IDNP}&kind=contact")).json())["hits"]
        assert (office.contacts["ion"] in [h["id"] for h in by_idnp]) is sees
        query = f"Popescu -{IDNP}"
        not_idnp = await (await client.get("/api/v1/search", params={"q": query, "kind": "contact"})).json()
        assert (office.contacts["ion"] in [h["id"] for h in not_idnp["hits"]]) is not sees


async def test_a_hidden_name_and_phone_leave_the_contact_page_title_search_and_duplicates(
    client: TestClient, office: Office, sessions: Sessions
) -> None:
    async with sessions() as db, db.begin():
        await field_visibility.set_hidden(db, SYSTEM, "contact", Role.AGENT, ["name", "phone", "idnp"])
        ion, ana = office.contacts["ion"], office.contacts["ana"]
        await db.execute(
            update(Contact).where(Contact.id == ion).values(address="str. Independenței 5, Bălți")
        )
    await sign_in(client, office.agent)
    page = await (await client.get(f"/contacts/{ion}")).text()
    assert "Popescu" not in page.split("</title>")[0] and f"#{ion}" in page.split("</title>")[0]
    hits = (await (await client.get("/api/v1/search?q=Balti&kind=contact")).json())["hits"]
    assert [h["title"] for h in hits if h["id"] == ion] == [f"#{ion}"]
    assert "+37369000001" not in json.dumps(hits)
    for hidden_only in ("Popescu", "000001", "+37369000001", "Balti Popescu"):  # name, phone tail, number
        found = (await (await client.get("/api/v1/search", params={"q": hidden_only})).json())["hits"]
        assert ion not in [h["id"] for h in found if h["kind"] == "contact"], hidden_only
    merge = await (await client.get(f"/contacts/merge?keep={ion}&merge={ana}")).text()
    assert 'data-field="idnp"' not in merge and 'data-field="phone"' not in merge
    assert 'data-field="address"' in merge and "Popescu" not in merge
    assert (await client.get("/contacts/duplicates")).status == 200
    # The merge's record and the list of recent merges name the two contacts without the hidden fields.
    csrf = await sign_in(client, office.agent)
    data = {"_csrf": csrf, "keep": str(ion), "merge": str(ana)}
    done = await client.post("/contacts/merge", data=data, allow_redirects=False)
    assert done.status == 302, await done.text()
    for seen in (done.headers["Location"], "/contacts/merges", "/api/v1/contact-merges"):
        text = await (await client.get(seen)).text()
        assert f"#{ion}" in text and f"#{ana}" in text, seen
        assert not [word for word in ("Popescu", "Rusu", "+37369000001", "+37369000002") if word in text], (
            seen
        )
    await sign_in(client, office.admin)
    assert "Ion Popescu" in await (await client.get("/contacts/merges")).text()
