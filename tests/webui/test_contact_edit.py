"""The contact quick edit of the inbox: `POST /api/v1/contacts/{id}` stores a normalised phone, audits the
change, refuses bad input with a reason and hides customers the caller cannot see."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.models import Contact
from inbox.models import Conversation
from switchboard.audit_model import AuditEntry
from switchboard.permissions import Role
from tests.conftest import MakeUser, Person, login, page_csrf, second_browser

EDIT = {"first_name": " Ion ", "last_name": "Popescu", "phone": "069 123 456", "email": "Ion@Example.MD"}


async def _customer(sessions: async_sessionmaker[AsyncSession], assignee: int | None = None) -> int:
    async with sessions() as db, db.begin():
        contact = Contact(first_name="Visitor", last_name="", phone=None)
        db.add(contact)
        await db.flush()
        db.add(Conversation(contact_id=contact.id, assignee_id=assignee, last_inbound_channel="webchat"))
        return contact.id


async def _post(client: TestClient, csrf: str, contact_id: int, body: dict[str, Any]) -> tuple[int, Any]:
    response = await client.post(
        f"/api/v1/contacts/{contact_id}",
        data=json.dumps(body),
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    )
    return response.status, await response.json()


async def _signed_in(client: TestClient, person: Person) -> str:
    assert (await login(client, person.username)).status == 302
    return await page_csrf(client, "/profile")


async def test_an_agent_corrects_the_customer_and_the_change_is_audited(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    agent = await make_user(Role.AGENT)
    csrf = await _signed_in(client, agent)
    contact_id = await _customer(sessions)
    status, data = await _post(client, csrf, contact_id, EDIT)
    assert status == 200, data
    card = data["contact"]
    assert (card["first_name"], card["last_name"], card["name"]) == ("Ion", "Popescu", "Ion Popescu")
    assert (card["phone"], card["email"]) == ("+37369123456", "Ion@example.md")
    async with sessions() as db:
        stored = await db.get(Contact, contact_id)
        [entry] = list(await db.scalars(select(AuditEntry).where(AuditEntry.module == "contacts")))
    assert stored is not None and stored.phone == "+37369123456"
    assert (entry.action, entry.record_type, entry.record_id) == ("update", "contact", str(contact_id))
    assert entry.username == agent.username
    assert entry.changes == {
        "email": [None, "Ion@example.md"],
        "first_name": ["Visitor", "Ion"],
        "last_name": ["", "Popescu"],
        "phone": [None, "+37369123456"],
    }
    # Saving the same values again changes nothing and writes no audit row; empty clears.
    assert (await _post(client, csrf, contact_id, EDIT))[0] == 200
    status, data = await _post(client, csrf, contact_id, {**EDIT, "phone": "", "email": None})
    assert status == 200 and data["contact"]["phone"] is None and data["contact"]["email"] is None
    async with sessions() as db:
        entries = list(await db.scalars(select(AuditEntry).where(AuditEntry.module == "contacts")))
    assert len(entries) == 2 and entries[1].changes == {
        "email": ["Ion@example.md", None],
        "phone": ["+37369123456", None],
    }


async def test_bad_input_is_refused_with_the_field_and_a_reason(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    csrf = await _signed_in(client, await make_user(Role.AGENT))
    contact_id = await _customer(sessions)
    for change, field, reason in (
        ({"phone": "12"}, "phone", "Not a phone number: 12."),
        ({"phone": "call me maybe"}, "phone", "Not a phone number"),
        ({"email": "ion@"}, "email", "Enter an e-mail address"),
        ({"first_name": "x" * 101}, "first_name", "At most 100 characters."),
        ({"last_name": 7}, "last_name", "This field must be text."),
    ):
        status, data = await _post(client, csrf, contact_id, {**EDIT, **change})
        assert status == 422, change
        assert data["error"]["field"] == field and reason in data["error"]["reason"]
    body = dict(EDIT)
    del body["email"]
    status, data = await _post(client, csrf, contact_id, body)
    assert status == 422 and data["error"]["field"] == "email"
    async with sessions() as db:
        stored = await db.get(Contact, contact_id)
    assert stored is not None and stored.first_name == "Visitor" and stored.phone is None


async def test_a_customer_the_caller_cannot_see_is_not_found(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    owner = await make_user(Role.AGENT)
    other, marketer, admin = (
        await make_user(Role.AGENT),
        await make_user(Role.MARKETER),
        await make_user(Role.ADMIN),
    )
    contact_id = await _customer(sessions, assignee=owner.id)
    for person in (other, marketer):
        browser = await second_browser(client)
        try:
            csrf = await _signed_in(browser, person)
            status, data = await _post(browser, csrf, contact_id, EDIT)
            assert status == 404, (person.role, data)
        finally:
            await browser.session.close()
    csrf = await _signed_in(client, admin)
    assert (await _post(client, csrf, contact_id, EDIT))[0] == 200
    assert (await _post(client, csrf, 424242, EDIT))[0] == 404
    async with sessions() as db:
        stored = await db.get(Contact, contact_id)
    assert stored is not None and stored.first_name == "Ion"
