"""The contacts room: creating and editing a contact through the page (with the duplicate warning and its
confirmation), the API's 409, the IDNP check, who sees which contacts, and the timeline's order."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.contacts_model import ContactPhone, DuplicateCandidate
from crm_core.models import Contact
from crm_core.tasks_model import Task
from inbox.calls_model import Call
from inbox.models import Conversation, Message
from switchboard.accounts_model import User
from switchboard.permissions import Role
from tests.conftest import MakeUser, Person, login, page_csrf

IDNP = "2002001234563"


async def _signed_in(client: TestClient, person: Person) -> str:
    assert (await login(client, person.username)).status == 302
    return await page_csrf(client, "/contacts/new" if person.role is not Role.MARKETER else "/profile")


async def _api(client: TestClient, csrf: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = await client.post(
        "/api/v1/contacts",
        data=json.dumps(body),
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    )
    return response.status, await response.json()


async def _branch_of(sessions: async_sessionmaker[AsyncSession], person: Person) -> int | None:
    async with sessions() as db:
        return (await db.get(User, person.id)).branch_id  # type: ignore[union-attr]


async def test_a_contact_is_created_from_the_form_with_normalised_phones(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    agent = await make_user(Role.AGENT)
    csrf = await _signed_in(client, agent)
    form = {
        "_csrf": csrf,
        "first_name": "Ion",
        "last_name": "Popescu",
        "phone_0": "069 123 456",
        "phone_1": "+40 721 234 567",
        "email_0": "Ion@Mail.MD",
        "idnp": IDNP,
        "birth_date": "1985-04-23",
        "tags": "vip, mortgage",
        "consent": ["sms", "viber"],
    }
    response = await client.post("/contacts/new", data=form, allow_redirects=False)
    assert response.status == 302, await response.text()
    contact_id = int(response.headers["Location"].rsplit("/", 1)[1])
    async with sessions() as db:
        contact = await db.get(Contact, contact_id)
        phones = list(
            await db.scalars(select(ContactPhone.e164).where(ContactPhone.contact_id == contact_id))
        )
    assert contact is not None
    assert (contact.phone, contact.email, contact.idnp) == ("+37369123456", "Ion@mail.md", IDNP)
    assert contact.birth_date == dt.date(1985, 4, 23) and contact.tags == ["vip", "mortgage"]
    assert contact.consents["sms"] and not contact.consents["email"]
    assert sorted(phones) == ["+37369123456", "+40721234567"]
    page = await (await client.get(f"/contacts/{contact_id}")).text()
    assert "Ion Popescu" in page and 'id="timeline"' in page


async def test_editing_into_a_duplicate_warns_and_saves_only_when_confirmed(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    agent = await make_user(Role.AGENT)
    csrf = await _signed_in(client, agent)
    _, first = await _api(
        client, csrf, {"first_name": "Ștefan", "last_name": "Rusu", "birth_date": "1980-01-02"}
    )
    _, second = await _api(client, csrf, {"first_name": "Maria", "phones": ["079000111"]})
    second_id = second["contact"]["id"]
    form = {
        "_csrf": csrf,
        "first_name": "Stefan",
        "last_name": "Rusu",
        "birth_date": "1980-01-02",
        "phone_0": "079000111",
    }
    warned = await client.post(f"/contacts/{second_id}", data=form, allow_redirects=False)
    assert warned.status == 409
    html = await warned.text()
    assert 'id="duplicate-warning"' in html and f'data-contact="{first["contact"]["id"]}"' in html
    assert f"/contacts/merge?keep={first['contact']['id']}&amp;merge={second_id}" in html
    async with sessions() as db:
        assert (await db.get(Contact, second_id)).first_name == "Maria"  # type: ignore[union-attr]
    saved = await client.post(
        f"/contacts/{second_id}", data={**form, "confirm_duplicate": "1"}, allow_redirects=False
    )
    assert saved.status == 302
    async with sessions() as db:
        assert (await db.get(Contact, second_id)).first_name == "Stefan"  # type: ignore[union-attr]
        pair = (await db.scalars(select(DuplicateCandidate))).one()
    assert {pair.contact_id, pair.other_id} == {first["contact"]["id"], second_id}
    duplicates_page = await (await client.get("/contacts/duplicates")).text()
    assert f'data-pair="{pair.id}"' in duplicates_page


async def test_the_api_answers_409_with_the_matches_unless_confirmed(
    client: TestClient, make_user: MakeUser
) -> None:
    agent = await make_user(Role.AGENT)
    csrf = await _signed_in(client, agent)
    status, first = await _api(client, csrf, {"first_name": "Ion", "phones": ["+373 69 123 456"]})
    assert status == 201, first
    status, refused = await _api(client, csrf, {"first_name": "Ana", "phones": ["069123456"]})
    assert status == 409
    [match] = refused["error"]["duplicates"]
    assert (match["contact_id"], match["kind"], match["reasons"]) == (
        first["contact"]["id"],
        "exact",
        ["phone"],
    )
    status, created = await _api(
        client, csrf, {"first_name": "Ana", "phones": ["069123456"], "confirm_duplicate": True}
    )
    assert status == 201 and created["contact"]["id"] != first["contact"]["id"]


async def test_the_quick_edit_api_answers_409_for_a_duplicate_phone(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_user(Role.ADMIN)
    csrf = await _signed_in(client, admin)
    await _api(client, csrf, {"first_name": "Ion", "phones": ["069123456"]})
    _, other = await _api(client, csrf, {"first_name": "Ana"})
    body = {"first_name": "Ana", "last_name": "", "phone": "069123456", "email": ""}
    headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    url = f"/api/v1/contacts/{other['contact']['id']}"
    refused = await client.post(url, data=json.dumps(body), headers=headers)
    assert refused.status == 409 and (await refused.json())["error"]["duplicates"]
    saved = await client.post(url, data=json.dumps({**body, "confirm_duplicate": True}), headers=headers)
    assert saved.status == 200


async def test_an_invalid_idnp_is_422_naming_the_field(client: TestClient, make_user: MakeUser) -> None:
    agent = await make_user(Role.AGENT)
    csrf = await _signed_in(client, agent)
    status, body = await _api(client, csrf, {"first_name": "Ion", "idnp": "2002001234567"})
    assert status == 422 and body["error"]["field"] == "idnp"
    page = await client.post("/contacts/new", data={"_csrf": csrf, "first_name": "Ion", "idnp": "12345"})
    assert page.status == 422 and 'id="contact-error"' in await page.text()


async def test_agents_see_their_branch_admins_see_all(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    here = await make_user(Role.AGENT, branch="Chișinău")
    there = await make_user(Role.SUPERVISOR, branch="Bălți")
    admin = await make_user(Role.ADMIN, branch="Bălți")
    async with sessions() as db, db.begin():
        ours = Contact(first_name="Ours", branch_id=await _branch_of(sessions, here))
        theirs = Contact(first_name="Theirs", branch_id=await _branch_of(sessions, there))
        db.add_all([ours, theirs])
    csrf = await _signed_in(client, here)
    listing = await (await client.get("/api/v1/contacts")).json()
    assert [c["name"] for c in listing["contacts"]] == ["Ours"]
    assert (await client.get(f"/contacts/{theirs.id}")).status == 404
    assert (await client.get(f"/api/v1/contacts/{theirs.id}/profile")).status == 404
    refused = await client.post(f"/contacts/{theirs.id}", data={"_csrf": csrf, "first_name": "X"})
    assert refused.status == 404
    await client.post("/logout", data={"_csrf": csrf})
    await _signed_in(client, there)
    assert [c["name"] for c in (await (await client.get("/api/v1/contacts")).json())["contacts"]] == [
        "Theirs"
    ]
    await client.post("/logout", data={"_csrf": await page_csrf(client, "/profile")})
    await _signed_in(client, admin)
    names = {c["name"] for c in (await (await client.get("/api/v1/contacts?q=")).json())["contacts"]}
    assert names == {"Ours", "Theirs"}
    searched = await (await client.get("/contacts?q=Theirs")).text()
    assert "Theirs" in searched and "Ours" not in searched


async def test_a_marketer_may_look_but_not_create(client: TestClient, make_user: MakeUser) -> None:
    marketer = await make_user(Role.MARKETER)
    csrf = await _signed_in(client, marketer)
    assert (await client.get("/contacts")).status == 200
    status, _ = await _api(client, csrf, {"first_name": "Ion"})
    assert status == 403


async def test_the_timeline_merges_messages_calls_tasks_and_changes_newest_first(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_user(Role.ADMIN)
    csrf = await _signed_in(client, admin)
    _, created = await _api(client, csrf, {"first_name": "Ion"})  # a "change" entry now
    contact_id = created["contact"]["id"]
    base = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    async with sessions() as db, db.begin():
        conversation = Conversation(contact_id=contact_id)
        db.add(conversation)
        await db.flush()
        db.add(
            Message(
                conversation_id=conversation.id,
                direction="in",
                body="hello",
                created_at=base,
                channel="viber",
            )
        )
        db.add(
            Call(
                linkedid="L1",
                direction="in",
                contact_id=contact_id,
                started_at=base + dt.timedelta(minutes=2),
                result="missed",
            )
        )
        db.add(
            Task(
                title="Call back Ion",
                kind="callback",
                contact_id=contact_id,
                created_at=base + dt.timedelta(minutes=1),
            )
        )
        db.add(
            Message(
                conversation_id=conversation.id,
                direction="out",
                body="note!",
                kind="note",
                created_at=base + dt.timedelta(minutes=3),
            )
        )
    html = await (await client.get(f"/contacts/{contact_id}")).text()
    kinds = [
        part.split('"', 1)[0] for part in html.split('class="list-group-item timeline-item" data-kind="')[1:]
    ]
    assert kinds == ["note", "call", "task", "message", "change"]
    assert html.index("note!") < html.index("Call back Ion") < html.index("hello")


async def test_companies_are_created_with_a_checked_fiscal_code(
    client: TestClient, make_user: MakeUser
) -> None:
    supervisor = await make_user(Role.SUPERVISOR)
    csrf = await _signed_in(client, supervisor)
    bad = await client.post(
        "/contacts/companies/new", data={"_csrf": csrf, "name": "Acme", "fiscal_code": "1008600038412"}
    )
    assert bad.status == 422
    good = await client.post(
        "/contacts/companies/new",
        data={"_csrf": csrf, "name": "Acme SRL", "fiscal_code": "1008600038413"},
        allow_redirects=False,
    )
    assert good.status == 302
    company_id = int(good.headers["Location"].rsplit("/", 1)[1])
    status, body = await _api(
        client, csrf, {"first_name": "Ion", "companies": [{"company_id": company_id, "role": "CEO"}]}
    )
    assert status == 201 and body["contact"]["companies"][0]["name"] == "Acme SRL"
    assert "Ion" in await (await client.get(f"/contacts/companies/{company_id}")).text()


async def test_a_pair_on_the_duplicates_page_is_dismissed_or_merged(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    supervisor = await make_user(Role.SUPERVISOR)
    csrf = await _signed_in(client, supervisor)
    _, a = await _api(client, csrf, {"first_name": "Ion", "last_name": "Rusu", "phones": ["069123456"]})
    _, b = await _api(
        client,
        csrf,
        {"first_name": "Ion", "last_name": "Rușu", "phones": ["+40721123456"], "confirm_duplicate": True},
    )
    _, c = await _api(client, csrf, {"first_name": "Ana", "emails": ["ana@mail.md"]})
    _, d = await _api(
        client, csrf, {"first_name": "Ana B", "emails": ["ANA@mail.md"], "confirm_duplicate": True}
    )
    async with sessions() as db:
        pairs = {(p.contact_id, p.other_id): p.id for p in await db.scalars(select(DuplicateCandidate))}
    ids = [x["contact"]["id"] for x in (a, b, c, d)]
    assert set(pairs) == {(ids[0], ids[1]), (ids[2], ids[3])}
    dismissed = await client.post(
        f"/contacts/duplicates/{pairs[(ids[2], ids[3])]}/dismiss", data={"_csrf": csrf}, allow_redirects=False
    )
    assert dismissed.status == 302
    page = await (await client.get("/contacts/duplicates")).text()
    assert f'data-pair="{pairs[(ids[0], ids[1])]}"' in page
    assert f'data-pair="{pairs[(ids[2], ids[3])]}"' not in page
    screen = await client.get(f"/contacts/merge?keep={ids[0]}&merge={ids[1]}")
    assert screen.status == 200
    merged = await client.post(
        "/contacts/merge",
        data={"_csrf": csrf, "keep": str(ids[0]), "merge": str(ids[1])},
        allow_redirects=False,
    )
    assert merged.status == 302 and merged.headers["Location"].startswith("/contacts/merges/")
    async with sessions() as db:
        assert await db.get(Contact, ids[1]) is None
        phones = set(await db.scalars(select(ContactPhone.e164).where(ContactPhone.contact_id == ids[0])))
    assert phones == {"+37369123456", "+40721123456"}
    assert "Ion Rusu" not in await (await client.get("/contacts/duplicates")).text()


async def test_the_profile_api_replaces_the_profile_and_answers_409_for_a_duplicate(
    client: TestClient, make_user: MakeUser
) -> None:
    agent = await make_user(Role.AGENT)
    csrf = await _signed_in(client, agent)
    _, ion = await _api(client, csrf, {"first_name": "Ion", "idnp": IDNP})
    _, ana = await _api(client, csrf, {"first_name": "Ana", "phones": ["069111222"]})
    url = f"/api/v1/contacts/{ana['contact']['id']}/profile"
    headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    body = {"first_name": "Ana", "phones": ["069111222", "079333444"], "tags": ["vip"], "idnp": IDNP}
    refused = await client.post(url, data=json.dumps(body), headers=headers)
    assert refused.status == 409
    assert [m["reasons"] for m in (await refused.json())["error"]["duplicates"]] == [["idnp"]]
    body.pop("idnp")
    saved = await client.post(
        url,
        data=json.dumps({**body, "relations": [{"contact_id": ion["contact"]["id"], "kind": "spouse"}]}),
        headers=headers,
    )
    assert saved.status == 200, await saved.text()
    contact = (await saved.json())["contact"]
    assert [p["number"] for p in contact["phones"]] == ["+37369111222", "+37379333444"]
    assert contact["tags"] == ["vip"] and contact["relations"][0]["name"] == "Ion"
    other = await (await client.get(f"/api/v1/contacts/{ion['contact']['id']}/profile")).json()
    assert other["contact"]["related_by"] == [
        {"contact_id": ana["contact"]["id"], "name": "Ana", "kind": "spouse"}
    ]
