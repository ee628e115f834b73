"""Lead, deal and classifier pages and their JSON API through the app: pages render for the people who
may see them; an agent of another branch gets 403; bad input is a 4xx with a JSON reason naming the
field; score and owner are locked (and disabled in the form) for agents; converting through the API
makes one deal; only admins edit classifiers."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import classifiers
from crm_core.models import Contact, Lead
from switchboard import accounts
from switchboard.accounts_model import User
from switchboard.audit import SYSTEM
from switchboard.permissions import Role
from tests.conftest import PASSWORD, MakeUser, Person, login, page_csrf

Sessions = async_sessionmaker[AsyncSession]
_HASH: list[str] = []


@pytest.fixture
def make_user(sessions: Sessions) -> MakeUser:
    """People without hashing a password for each (one hash of the shared test password)."""

    async def make(
        role: Role | str = Role.AGENT, username: str | None = None, branch: str = "Chișinău"
    ) -> Person:
        role = Role(role)
        if not _HASH:
            _HASH.append(await accounts.hash_password(PASSWORD))
        name = username or f"{role.value}{uuid.uuid4().hex[:6]}"
        async with sessions() as db, db.begin():
            branch_id = (await accounts.get_or_create_branch(db, branch)).id
            user = User(
                username=name,
                role=role.value,
                full_name=name.title(),
                branch_id=branch_id,
                password_hash=_HASH[0],
            )
            db.add(user)
            await db.flush()
        return Person(user.id, user.username, role)

    return make


@dataclass(frozen=True)
class Office:
    ana: Person  # an agent of Chișinău
    sam: Person  # the supervisor of Chișinău
    vera: Person  # an agent of Bălți
    root: Person  # an admin
    branch: int
    lead: int


@pytest.fixture
async def office(make_user: MakeUser, sessions: Sessions) -> Office:
    ana, sam = await make_user(Role.AGENT, "ana"), await make_user(Role.SUPERVISOR, "sam")
    vera = await make_user(Role.AGENT, "vera", branch="Bălți")
    root = await make_user(Role.ADMIN, "root")
    async with sessions() as db, db.begin():
        await classifiers.seed_defaults(db)
        branch = (await db.get(User, ana.id)).branch_id  # type: ignore[union-attr]
        assert branch is not None
        contact = Contact(first_name="Maria", last_name="Rusu", branch_id=branch)
        db.add(contact)
        await db.flush()
        lead = Lead(
            contact_id=contact.id,
            source_channel="webchat",
            utm_source="facebook",
            page_url="https://credit.md/ipoteca",
        )
        db.add(lead)
        await db.flush()
        return Office(ana, sam, vera, root, branch, lead.id)


async def _headers(sessions: Sessions, person: Person) -> dict[str, str]:
    async with sessions() as db, db.begin():
        _, token = await accounts.create_api_token(db, SYSTEM, person.id, "leads test")
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


async def _call(
    client: TestClient, headers: dict[str, str], method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, str) else json.dumps(body))
    response = await client.request(method, path, data=data, headers=headers)
    return response.status, await response.json()


async def test_the_lead_page_shows_the_request_and_the_read_only_source(
    client: TestClient, office: Office
) -> None:
    assert (await login(client, "ana")).status == 302
    page = await client.get(f"/leads/{office.lead}")
    html = await page.text()
    assert page.status == 200
    assert "Maria Rusu" in html and "https://credit.md/ipoteca" in html and 'id="lead-convert"' in html
    assert 'name="utm_source"' not in html  # the source is shown, not editable
    assert 'id="lead-score" name="score" type="number" min="0" max="100" value="0" disabled' in html
    assert 'id="lead-owner" name="owner_id" disabled' in html


async def test_the_form_saves_and_a_bad_value_rerenders_with_the_reason(
    client: TestClient, office: Office
) -> None:
    assert (await login(client, "ana")).status == 302
    csrf = await page_csrf(client, f"/leads/{office.lead}")
    form = {
        "_csrf": csrf,
        "status": "in_work",
        "product": "mortgage",
        "amount": "350000",
        "currency": "EUR",
        "term_months": "120",
        "junk_reason": "",
        "branch_id": "",
        "campaign": "",
    }
    saved = await client.post(f"/leads/{office.lead}", data=form, allow_redirects=False)
    assert saved.status == 302 and saved.headers["Location"] == f"/leads/{office.lead}"
    bad = await client.post(f"/leads/{office.lead}", data={**form, "term_months": "400"})
    assert bad.status == 422 and "Enter a number from 1 to 360." in await bad.text()
    status, body = await _call(client, {}, "GET", f"/api/v1/leads/{office.lead}")
    assert status == 200
    lead = body["lead"]
    assert (lead["status"], lead["product"], lead["amount"], lead["currency"], lead["term_months"]) == (
        "in_work",
        "mortgage",
        "350000.00",
        "EUR",
        120,
    )
    assert lead["locked"] == ["owner_id", "score"]


async def test_the_api_answers_bad_input_with_a_json_reason_and_field(
    client: TestClient, sessions: Sessions, office: Office
) -> None:
    headers = await _headers(sessions, office.sam)
    path = f"/api/v1/leads/{office.lead}"
    cases = [
        ({"amount": 0}, 422, "amount"),
        ({"product": "yacht"}, 422, "product"),
        ({"status": "junk"}, 422, "junk_reason"),
        ({"status": "converted"}, 409, "status"),
        ({"utm_source": "x"}, 422, "utm_source"),
        ({"owner_id": office.root.id}, 422, "owner_id"),  # an admin is not an expert
    ]
    for body, expected, field in cases:
        status, answer = await _call(client, headers, "PATCH", path, body)
        assert (status, answer["error"]["field"]) == (expected, field), body
        assert answer["error"]["reason"]
    status, answer = await _call(client, headers, "PATCH", path, "not json")
    assert status == 400 and "JSON" in answer["error"]["reason"]
    status, answer = await _call(client, headers, "PATCH", path, {"score": 80, "owner_id": office.ana.id})
    assert status == 200 and (answer["lead"]["score"], answer["lead"]["owner_id"]) == (80, office.ana.id)
    assert answer["lead"]["locked"] == []


async def test_a_supervisor_gives_leads_only_to_people_of_their_branch(
    client: TestClient, sessions: Sessions, office: Office
) -> None:
    headers = await _headers(sessions, office.sam)
    status, answer = await _call(
        client, headers, "PATCH", f"/api/v1/leads/{office.lead}", {"owner_id": office.vera.id}
    )
    assert status == 403 and answer["error"]["field"] == "owner_id"
    admin = await _headers(sessions, office.root)
    status, answer = await _call(
        client, admin, "PATCH", f"/api/v1/leads/{office.lead}", {"owner_id": office.vera.id}
    )
    assert status == 200 and answer["lead"]["owner_id"] == office.vera.id
    assert (await login(client, "sam")).status == 302
    html = await (await client.get(f"/leads/{office.lead}")).text()
    assert f'<option value="{office.vera.id}" selected>Vera</option>' in html  # shown, not silently cleared


async def test_agents_cannot_change_score_or_owner(
    client: TestClient, sessions: Sessions, office: Office
) -> None:
    headers = await _headers(sessions, office.ana)
    status, answer = await _call(client, headers, "PATCH", f"/api/v1/leads/{office.lead}", {"score": 99})
    assert status == 403 and answer["error"]["field"] == "score"


async def test_an_agent_of_another_branch_is_refused_everywhere(
    client: TestClient, sessions: Sessions, office: Office
) -> None:
    headers = await _headers(sessions, office.vera)
    for method, path, body in [
        ("GET", f"/api/v1/leads/{office.lead}", None),
        ("PATCH", f"/api/v1/leads/{office.lead}", {"amount": 5}),
        ("POST", f"/api/v1/leads/{office.lead}/convert", None),
    ]:
        status, answer = await _call(client, headers, method, path, body)
        assert status == 403, (method, path)
        assert answer["error"]["reason"]
    assert (await login(client, "vera")).status == 302
    assert (await client.get(f"/leads/{office.lead}")).status == 403
    status, _ = await _call(client, headers, "GET", "/api/v1/leads/999999")
    assert status == 404


async def test_convert_through_the_api_makes_one_deal_and_the_deal_page_works(
    client: TestClient, sessions: Sessions, office: Office
) -> None:
    headers = await _headers(sessions, office.ana)
    await _call(
        client, headers, "PATCH", f"/api/v1/leads/{office.lead}", {"product": "consumer", "amount": "20000"}
    )
    first, made = await _call(client, headers, "POST", f"/api/v1/leads/{office.lead}/convert")
    second, again = await _call(client, headers, "POST", f"/api/v1/leads/{office.lead}/convert")
    assert (first, second) == (201, 200) and made["deal"]["id"] == again["deal"]["id"]
    deal = made["deal"]
    assert (deal["stage_name"], deal["probability"], deal["amount"], deal["owner_id"]) == (
        "New application",
        10,
        "20000.00",
        office.ana.id,
    )
    path = f"/api/v1/deals/{deal['id']}"
    status, answer = await _call(client, headers, "PATCH", path, {"owner_id": office.sam.id})
    assert status == 403 and answer["error"]["field"] == "owner_id"
    status, answer = await _call(client, headers, "PATCH", path, {"stage_id": "x"})
    assert status == 422 and answer["error"]["field"] == "stage_id"
    status, answer = await _call(client, headers, "POST", f"{path}/lose", {"lost_reason": "nope"})
    assert status == 422 and answer["error"]["field"] == "lost_reason"
    status, answer = await _call(client, headers, "POST", f"{path}/lose", {"lost_reason": "too_expensive"})
    assert status == 200 and answer["deal"]["status"] == "lost"
    status, answer = await _call(client, headers, "POST", f"{path}/win")
    assert status == 200 and (answer["deal"]["status"], answer["deal"]["probability"]) == ("won", 100)
    assert (await login(client, "ana")).status == 302
    page = await client.get(f"/deals/{deal['id']}")
    html = await page.text()
    assert page.status == 200 and 'id="deal-owner" name="owner_id" disabled' in html and "Won" in html
    assert (await login(client, "vera")).status == 302
    assert (await client.get(f"/deals/{deal['id']}")).status == 403


async def test_the_lead_form_convert_button_leads_to_the_deal_page(
    client: TestClient, office: Office
) -> None:
    assert (await login(client, "sam")).status == 302
    csrf = await page_csrf(client, f"/leads/{office.lead}")
    response = await client.post(f"/leads/{office.lead}/convert", data={"_csrf": csrf}, allow_redirects=False)
    assert response.status == 302 and response.headers["Location"].startswith("/deals/")
    deal_page = await client.get(response.headers["Location"])
    assert deal_page.status == 200 and 'id="deal-owner" name="owner_id" >' in await deal_page.text()
    lead_page = await client.get(f"/leads/{office.lead}")
    assert 'id="lead-deal"' in await lead_page.text()


async def test_only_admins_edit_classifiers_and_everyone_reads_them(
    client: TestClient, sessions: Sessions, office: Office
) -> None:
    admin, agent = await _headers(sessions, office.root), await _headers(sessions, office.ana)
    status, answer = await _call(
        client,
        admin,
        "POST",
        "/api/v1/classifiers",
        {"kind": "product", "code": "leasing", "label_en": "Leasing", "label_ro": "Leasing"},
    )
    assert status == 201
    entry = answer["entry"]
    status, answer = await _call(
        client,
        admin,
        "POST",
        "/api/v1/classifiers",
        {"kind": "product", "code": "leasing", "label_en": "Again"},
    )
    assert status == 409 and answer["error"]["field"] == "code"
    status, answer = await _call(
        client, admin, "PATCH", f"/api/v1/classifiers/{entry['id']}", {"code": "other"}
    )
    assert status == 422
    status, answer = await _call(
        client, admin, "PATCH", f"/api/v1/classifiers/{entry['id']}", {"active": False}
    )
    assert status == 200 and answer["entry"]["active"] is False and answer["entry"]["label_ro"] == "Leasing"
    status, answer = await _call(client, agent, "GET", "/api/v1/classifiers?kind=product")
    assert status == 200 and "leasing" not in [e["code"] for e in answer["entries"]]
    assert "consumer" in [e["code"] for e in answer["entries"]]
    status, _ = await _call(
        client, agent, "POST", "/api/v1/classifiers", {"kind": "product", "code": "x", "label_en": "X"}
    )
    assert status == 403
    status, answer = await _call(client, agent, "GET", "/api/v1/classifiers?kind=planet")
    assert status == 422 and answer["error"]["field"] == "kind"


async def test_the_classifiers_page_lists_the_tree_and_adds_entries(
    client: TestClient, office: Office
) -> None:
    assert (await login(client, "root")).status == 302
    page = await client.get("/admin/classifiers?kind=region")
    html = await page.text()
    assert page.status == 200 and "Durlești" in html and "ti-corner-down-right" in html
    csrf = await page_csrf(client, "/admin/classifiers?kind=segment")
    added = await client.post(
        "/admin/classifiers",
        data={"_csrf": csrf, "kind": "segment", "code": "farmers", "label_en": "Farmers"},
        allow_redirects=False,
    )
    assert added.status == 302 and added.headers["Location"] == "/admin/classifiers?kind=segment"
    bad = await client.post(
        "/admin/classifiers", data={"_csrf": csrf, "kind": "segment", "code": "Bad Code", "label_en": "X"}
    )
    assert bad.status == 422 and "Use lowercase latin letters" in await bad.text()
    assert "Farmers" in await (await client.get("/admin/classifiers?kind=segment")).text()
    assert (await login(client, "sam")).status == 302
    assert (await client.get("/admin/classifiers")).status == 403
