"""A small office for the list-page tests: two branches, a user of each role, contacts, companies, leads and
deals on both sides, and one custom field on each kind of record."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import custom_fields, funnel
from crm_core.contacts_model import Company
from crm_core.custom_fields import FieldInput, FieldKind, Option
from crm_core.funnel_model import Deal
from crm_core.models import Contact, Lead
from switchboard.accounts_model import User
from switchboard.audit import SYSTEM
from switchboard.permissions import Role
from tests.conftest import MakeUser, Person, login, page_csrf

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class Office:
    admin: Person
    supervisor: Person
    agent: Person
    marketer: Person
    other_agent: Person  # of the other branch
    here: int  # branch ids
    there: int
    contacts: dict[str, int]
    companies: dict[str, int]
    leads: dict[str, int]
    deals: dict[str, int]


async def _branch(sessions: Sessions, person: Person) -> int:
    async with sessions() as db:
        user = await db.get(User, person.id)
        assert user is not None and user.branch_id is not None
        return user.branch_id


async def make_office(sessions: Sessions, make_user: MakeUser) -> Office:
    admin = await make_user(Role.ADMIN, username="boss")
    supervisor = await make_user(Role.SUPERVISOR, username="sup")
    agent = await make_user(Role.AGENT, username="ana")
    marketer = await make_user(Role.MARKETER, username="mara")
    other = await make_user(Role.AGENT, username="bob", branch="Bălți")
    here, there = await _branch(sessions, agent), await _branch(sessions, other)
    async with sessions() as db, db.begin():
        for entity, key, kind, options in (
            ("contact", "income", FieldKind.NUMBER, ()),
            ("company", "sector", FieldKind.CHOICE, (Option("it", "IT"), Option("agro", "Agriculture"))),
            ("lead", "urgent", FieldKind.BOOLEAN, ()),
            ("deal", "risk", FieldKind.CHOICE, (Option("low", "Low"), Option("high", "High"))),
        ):
            label = key.title()
            await custom_fields.create_definition(db, SYSTEM, entity, FieldInput(key, label, kind, options))
        contacts = {
            "ion": Contact(
                first_name="Ion",
                last_name="Popescu",
                phone="+37369000001",
                idnp="2002001234563",
                branch_id=here,
                custom={"income": 5000},
            ),
            "ana": Contact(
                first_name="Ana",
                last_name="Rusu",
                phone="+37369000002",
                branch_id=here,
                custom={"income": 100},
            ),
            "dan": Contact(
                first_name='=HYPERLINK("x")', last_name="Dan", branch_id=here, custom={"income": 7000}
            ),
            "bogdan": Contact(
                first_name="Bogdan", last_name="Ursu", branch_id=there, custom={"income": 9000}
            ),
        }
        companies = {
            "acme": Company(name="Acme SRL", branch_id=here, custom={"sector": "it"}),
            "beta": Company(name="Beta Agro", branch_id=here, custom={"sector": "agro"}),
            "gamma": Company(name="Gamma IT", branch_id=there, custom={"sector": "it"}),
        }
        db.add_all([*contacts.values(), *companies.values()])
        await db.flush()
        leads = {
            "ion": Lead(
                contact_id=contacts["ion"].id,
                source_channel="telegram",
                amount=Decimal("5000"),
                custom={"urgent": True},
            ),
            "ana": Lead(
                contact_id=contacts["ana"].id,
                source_channel="viber",
                amount=Decimal("100"),
                custom={"urgent": False},
            ),
            "bogdan": Lead(
                contact_id=contacts["bogdan"].id,
                source_channel="viber",
                amount=Decimal("7000"),
                custom={"urgent": True},
            ),
        }
        db.add_all(leads.values())
        await db.flush()
        deals = {}
        for name in ("ion", "bogdan"):
            deal = await funnel.convert_lead(db, leads[name].id, by_user_id=admin.id)
            deals[name] = deal.id
    async with sessions() as db, db.begin():
        for name, risk in (("ion", "low"), ("bogdan", "high")):
            row = await db.get(Deal, deals[name])
            assert row is not None
            row.custom = {"risk": risk}
    return Office(
        admin,
        supervisor,
        agent,
        marketer,
        other,
        here,
        there,
        {k: v.id for k, v in contacts.items()},
        {k: v.id for k, v in companies.items()},
        {k: v.id for k, v in leads.items()},
        deals,
    )


async def sign_in(client: TestClient, person: Person) -> str:
    """Log in (after logging out whoever was in) and return a CSRF token for API writes."""
    await client.post("/logout", data={"_csrf": await page_csrf(client, "/login")})
    assert (await login(client, person.username)).status == 302
    return await page_csrf(client, "/profile")


def list_query(filters: list[dict[str, Any]] | None = None, **more: Any) -> str:
    params: dict[str, Any] = {}
    if filters is not None:
        params["filters"] = json.dumps(filters)
    params.update(more)
    return urlencode(params)


async def list_ids(
    client: TestClient, slug: str, filters: list[dict[str, Any]] | None = None, **more: Any
) -> list[int]:
    response = await client.get(f"/api/v1/lists/{slug}?{list_query(filters, **more)}")
    assert response.status == 200, await response.text()
    return [row["id"] for row in (await response.json())["rows"]]


async def write(client: TestClient, csrf: str, method: str, path: str, body: Any) -> tuple[int, Any]:
    response = await client.request(
        method,
        path,
        data=json.dumps(body),
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    )
    return response.status, await response.json()


def cond(field: str, op: str, value: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"field": field, "op": op}
    if value is not None:
        out["value"] = value
    return out
