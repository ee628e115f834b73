"""Custom-field values on every write path of the UI and the API: the contact, company, lead and deal
forms show the admin's fields, store what they send typed (money as an exact decimal, choices as codes,
several choices as a list, a box as a boolean), refuse a bad or missing required value naming the field
and give the form back as it was sent; the JSON API takes `custom` with the same checks, keeps values it
does not mention, and refuses fields hidden from the caller."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient
from multidict import MultiDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import custom_fields, field_visibility, funnel
from crm_core.contacts_model import Company
from crm_core.models import Contact, Lead
from switchboard.accounts_model import User
from switchboard.audit import SYSTEM
from switchboard.permissions import Role
from tests.conftest import MakeUser, Person, login, page_csrf

Sessions = async_sessionmaker[AsyncSession]


async def _define(sessions: Sessions, entity: str, *fields: dict[str, Any]) -> None:
    async with sessions() as db, db.begin():
        for data in fields:
            await custom_fields.create_definition(db, SYSTEM, entity, custom_fields.parse_definition(data))


INCOME = {"key": "income", "label": "Venit lunar", "kind": "money", "required": True}
GOAL = {"key": "goal", "label": "Scop", "kind": "choice", "options": "auto = Automobil\nipoteca = Ipotecă"}
DOCS = {"key": "docs", "label": "Acte", "kind": "multi_choice", "options": "buletin\nadeverinta = Adeverință"}
VIP = {"key": "vip", "label": "VIP", "kind": "boolean"}


async def _signed_in(client: TestClient, person: Person) -> str:
    assert (await login(client, person.username)).status == 302
    return await page_csrf(client, "/profile")


async def _json(client: TestClient, csrf: str, method: str, path: str, body: Any) -> tuple[int, Any]:
    response = await client.request(
        method,
        path,
        data=json.dumps(body),
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    )
    return response.status, await response.json()


async def test_the_contact_form_stores_typed_values_and_refuses_a_missing_required_one(
    client: TestClient, make_user: MakeUser, sessions: Sessions
) -> None:
    await _define(sessions, "contact", INCOME, GOAL, DOCS, VIP)
    agent = await make_user(Role.AGENT)
    csrf = await _signed_in(client, agent)
    page = await (await client.get("/contacts/new")).text()
    for key in ("income", "goal", "docs", "vip"):
        assert f'data-custom="{key}"' in page

    form = MultiDict(
        [("_csrf", csrf), ("first_name", "Ion"), ("phone_0", "069123456"), ("custom.goal", "ipoteca")]
    )
    missing = await client.post("/contacts/new", data=form)
    assert missing.status == 422
    shown = await missing.text()
    assert "This field is required." in shown and 'value="ipoteca" selected' in shown  # given back as sent

    form.add("custom.income", "1 250,50")
    form.add("custom.docs", "buletin")
    form.add("custom.docs", "adeverinta")
    form.add("custom.vip", "1")
    saved = await client.post("/contacts/new", data=form, allow_redirects=False)
    assert saved.status == 302, await saved.text()
    async with sessions() as db:
        contact = (await db.scalars(select(Contact))).one()
    assert contact.custom == {
        "income": "1250.50",
        "goal": "ipoteca",
        "docs": ["buletin", "adeverinta"],
        "vip": True,
    }
    page = await (await client.get(f"/contacts/{contact.id}")).text()
    assert 'value="1250.50"' in page and 'value="adeverinta" checked' in page

    # The box unticked and a choice cleared on the next save: the form sends every field.
    again = MultiDict(
        [("_csrf", csrf), ("first_name", "Ion"), ("phone_0", "+37369123456"), ("custom.income", "900")]
    )
    assert (await client.post(f"/contacts/{contact.id}", data=again, allow_redirects=False)).status == 302
    async with sessions() as db:
        contact = await db.get(Contact, contact.id)  # type: ignore[assignment]
    assert contact is not None and contact.custom == {"income": "900.00", "vip": False}


async def test_the_contacts_api_checks_custom_values_and_keeps_those_it_does_not_mention(
    client: TestClient, make_user: MakeUser, sessions: Sessions
) -> None:
    await _define(sessions, "contact", INCOME, GOAL)
    agent = await make_user(Role.AGENT)
    csrf = await _signed_in(client, agent)
    for custom, field in (
        ({"income": "100", "goal": "yacht"}, "custom.goal"),
        ({"income": "-5"}, "custom.income"),
        ({"income": "100", "colour": "red"}, "custom.colour"),
        ({}, "custom.income"),
        ("income=100", "custom"),
    ):
        status, body = await _json(
            client, csrf, "POST", "/api/v1/contacts", {"first_name": "Ana", "custom": custom}
        )
        assert status == 422 and body["error"]["field"] == field, (custom, body)
    status, body = await _json(
        client,
        csrf,
        "POST",
        "/api/v1/contacts",
        {"first_name": "Ana", "custom": {"income": 2500, "goal": "Automobil"}},
    )
    assert status == 201 and body["contact"]["custom"] == {"income": "2500.00", "goal": "auto"}
    contact_id = body["contact"]["id"]
    status, body = await _json(
        client,
        csrf,
        "POST",
        f"/api/v1/contacts/{contact_id}/profile",
        {"first_name": "Ana", "last_name": "Rusu"},
    )
    assert status == 200 and body["contact"]["custom"] == {"income": "2500.00", "goal": "auto"}


async def test_a_custom_field_hidden_from_agents_is_neither_shown_nor_settable(
    client: TestClient, make_user: MakeUser, sessions: Sessions
) -> None:
    await _define(sessions, "contact", {**INCOME, "required": False}, GOAL)
    async with sessions() as db, db.begin():
        await field_visibility.set_hidden(db, SYSTEM, "contact", Role.AGENT, ["custom.income"])
        contact = Contact(first_name="Ana", custom={"income": "3000.00", "goal": "auto"})
        db.add(contact)
        await db.flush()
        contact_id = contact.id
    agent = await make_user(Role.ADMIN)  # sees every contact; the hiding is checked for an agent below
    csrf = await _signed_in(client, agent)
    page = await (await client.get(f"/contacts/{contact_id}")).text()
    assert 'data-custom="income"' in page
    await client.post("/logout", data={"_csrf": csrf})
    agent = await make_user(Role.AGENT)
    csrf = await _signed_in(client, agent)
    page = await (await client.get(f"/contacts/{contact_id}")).text()
    assert 'data-custom="income"' not in page and 'data-custom="goal"' in page
    status, body = await _json(
        client,
        csrf,
        "POST",
        f"/api/v1/contacts/{contact_id}/profile",
        {"first_name": "Ana", "custom": {"income": "1"}},
    )
    assert status == 422 and body["error"]["field"] == "custom.income"
    # The form saves the visible field; the hidden value stays.
    form = MultiDict([("_csrf", csrf), ("first_name", "Ana"), ("custom.goal", "ipoteca")])
    assert (await client.post(f"/contacts/{contact_id}", data=form, allow_redirects=False)).status == 302
    async with sessions() as db:
        stored = await db.get(Contact, contact_id)
    assert stored is not None and stored.custom == {"income": "3000.00", "goal": "ipoteca"}


async def _lead(sessions: Sessions, person: Person) -> int:
    async with sessions() as db, db.begin():
        user = await db.get(User, person.id)
        assert user is not None
        contact = Contact(first_name="Maria", branch_id=user.branch_id)
        db.add(contact)
        await db.flush()
        lead = Lead(contact_id=contact.id, source_channel="webchat")
        db.add(lead)
        await db.flush()
        return lead.id


async def test_leads_and_deals_take_custom_values_from_their_forms_and_the_api(
    client: TestClient, make_user: MakeUser, sessions: Sessions
) -> None:
    await _define(sessions, "lead", {"key": "employer", "label": "Angajator", "kind": "text"}, VIP)
    await _define(sessions, "deal", {"key": "signed_on", "label": "Semnat la", "kind": "date"})
    agent = await make_user(Role.AGENT)
    csrf = await _signed_in(client, agent)
    lead_id = await _lead(sessions, agent)
    assert 'data-custom="employer"' in await (await client.get(f"/leads/{lead_id}")).text()
    form = MultiDict(
        [("_csrf", csrf), ("status", "new"), ("custom.employer", " Moldcell "), ("custom.vip", "on")]
    )
    assert (await client.post(f"/leads/{lead_id}", data=form, allow_redirects=False)).status == 302
    status, body = await _json(
        client, csrf, "PATCH", f"/api/v1/leads/{lead_id}", {"custom": {"vip": "maybe"}}
    )
    assert status == 422 and body["error"]["field"] == "custom.vip"
    status, body = await _json(client, csrf, "PATCH", f"/api/v1/leads/{lead_id}", {"custom": {"vip": "nu"}})
    assert status == 200 and body["lead"]["custom"] == {"employer": "Moldcell", "vip": False}

    async with sessions() as db, db.begin():
        deal = await funnel.convert_lead(db, lead_id, by_user_id=agent.id)
    form = MultiDict(
        [("_csrf", csrf), ("amount", "50000"), ("currency", "MDL"), ("custom.signed_on", "31.12.2026")]
    )
    assert (await client.post(f"/deals/{deal.id}", data=form, allow_redirects=False)).status == 302
    status, body = await _json(
        client, csrf, "PATCH", f"/api/v1/deals/{deal.id}", {"custom": {"signed_on": "soon"}}
    )
    assert status == 422 and body["error"]["field"] == "custom.signed_on"
    async with sessions() as db:
        stored = await funnel.get_deal(db, deal.id)
    assert stored is not None and stored.custom == {"signed_on": "2026-12-31"}


async def test_the_company_form_stores_its_custom_values(
    client: TestClient, make_user: MakeUser, sessions: Sessions
) -> None:
    await _define(
        sessions, "company", {"key": "employees", "label": "Angajați", "kind": "number", "required": True}
    )
    supervisor = await make_user(Role.SUPERVISOR)
    csrf = await _signed_in(client, supervisor)
    form = {"_csrf": csrf, "name": "Agro SRL", "size": "", "custom.employees": "many"}
    refused = await client.post("/contacts/companies/new", data=form)
    assert refused.status == 422 and "Enter a number." in await refused.text()
    form["custom.employees"] = "42"
    assert (await client.post("/contacts/companies/new", data=form, allow_redirects=False)).status == 302
    async with sessions() as db:
        company = (await db.scalars(select(Company))).one()
    assert company.custom == {"employees": 42}
