"""`/admin/scoring` and the scoring API through the app: only admins manage rules (agents and supervisors
403); bad rule input is a 422 naming the field (API) or a message in the page (form); a saved rule queues
the rescore; the retrain button learns from the closed deals; the lead page and the lead's JSON show the
breakdown beside the learned score, or how much history is still missing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import classifiers, funnel, scoring, scoring_rules
from crm_core.models import Contact, Lead
from crm_core.scoring_model import ScoringRule
from switchboard import accounts
from switchboard.audit import SYSTEM
from switchboard.jobs_model import Job
from switchboard.permissions import Role
from tests.conftest import MakeUser, Person, login, page_csrf

Sessions = async_sessionmaker[AsyncSession]


async def _headers(sessions: Sessions, person: Person) -> dict[str, str]:
    async with sessions() as db, db.begin():
        _, token = await accounts.create_api_token(db, SYSTEM, person.id, "scoring test")
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


async def _call(
    client: TestClient, headers: dict[str, str], method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body)
    response = await client.request(method, path, data=data, headers=headers)
    return response.status, await response.json()


@pytest.fixture
async def lead_id(sessions: Sessions) -> int:
    async with sessions() as db, db.begin():
        await db.execute(delete(ScoringRule))
        await classifiers.seed_defaults(db)
        contact = Contact(first_name="Maria", last_name="Rusu", phone="+37369000001")
        db.add(contact)
        await db.flush()
        lead = Lead(contact_id=contact.id, source_channel="webchat", product="mortgage")
        db.add(lead)
        await db.flush()
        return lead.id


@pytest.mark.parametrize("role", [Role.AGENT, Role.SUPERVISOR, Role.MARKETER])
async def test_only_admins_manage_scoring(
    client: TestClient, make_user: MakeUser, sessions: Sessions, role: Role
) -> None:
    person = await make_user(role)
    headers = await _headers(sessions, person)
    assert (await login(client, person.username)).status == 302
    assert (await client.get("/admin/scoring")).status == 403
    status, _ = await _call(
        client,
        headers,
        "POST",
        "/api/v1/scoring/rules",
        {"name": "x", "kind": "replies", "min": 1, "points": 5},
    )
    assert status == 403
    assert (await _call(client, headers, "POST", "/api/v1/scoring/retrain"))[0] == 403


async def test_an_admin_adds_edits_and_deactivates_rules_through_the_api(
    client: TestClient, make_user: MakeUser, sessions: Sessions, lead_id: int
) -> None:
    headers = await _headers(sessions, await make_user(Role.ADMIN))
    status, answer = await _call(
        client,
        headers,
        "POST",
        "/api/v1/scoring/rules",
        {"name": "Mortgage", "kind": "product", "values": ["mortgage"], "points": 30},
    )
    assert status == 201 and answer["rule"]["params"] == {"values": ["mortgage"]}
    rule_id = answer["rule"]["id"]
    async with sessions() as db:
        assert await db.scalar(select(func.count(Job.id)).where(Job.kind == scoring.RESCORE_JOB)) == 1
    assert await scoring.rescore_all(sessions) == 1
    status, answer = await _call(client, headers, "GET", f"/api/v1/leads/{lead_id}")
    assert status == 200 and answer["lead"]["score"] == 30
    assert answer["lead"]["scoring"]["breakdown"] == [{"rule_id": rule_id, "name": "Mortgage", "points": 30}]
    assert answer["lead"]["scoring"]["learned"]["ready"] is False
    status, answer = await _call(
        client, headers, "PATCH", f"/api/v1/scoring/rules/{rule_id}", {"points": -15}
    )
    assert status == 200 and (answer["rule"]["points"], answer["rule"]["name"]) == (-15, "Mortgage")
    status, answer = await _call(
        client, headers, "PATCH", f"/api/v1/scoring/rules/{rule_id}", {"active": False}
    )
    assert status == 200 and answer["rule"]["active"] is False
    status, answer = await _call(client, headers, "GET", "/api/v1/scoring/rules")
    assert [r["id"] for r in answer["rules"]] == [rule_id]
    assert (await _call(client, headers, "PATCH", "/api/v1/scoring/rules/999999", {"points": 5}))[0] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "product", "values": ["mortgage"], "points": 5}, "name"),
        ({"name": "r", "kind": "product", "values": ["yacht"], "points": 5}, "values"),
        ({"name": "r", "kind": "amount", "min": "9", "max": "1", "points": 5}, "max"),
        ({"name": "r", "kind": "replies", "min": 1, "points": 500}, "points"),
        ({"name": "r", "kind": "replies", "min": 1, "points": True}, "points"),
        ({"name": "r", "kind": "product", "values": {"a": 1}, "points": 5}, "values"),
    ],
)
async def test_bad_rules_are_a_422_naming_the_field(
    client: TestClient, make_user: MakeUser, sessions: Sessions, body: dict[str, Any], field: str
) -> None:
    async with sessions() as db, db.begin():
        await classifiers.seed_defaults(db)
    headers = await _headers(sessions, await make_user(Role.ADMIN))
    status, answer = await _call(client, headers, "POST", "/api/v1/scoring/rules", body)
    assert status == 422 and answer["error"]["field"] == field
    status, answer = await _call(client, headers, "PATCH", "/api/v1/scoring/model", {"min_closed": 0})
    assert status == 422 and answer["error"]["field"] == "min_closed"


async def test_the_admin_page_adds_a_rule_and_shows_form_errors(
    client: TestClient, make_user: MakeUser, sessions: Sessions, lead_id: int
) -> None:
    admin = await make_user(Role.ADMIN)
    assert (await login(client, admin.username)).status == 302
    csrf = await page_csrf(client, "/admin/scoring")
    bad = await client.post(
        "/admin/scoring/rules",
        data={"_csrf": csrf, "name": "Big", "kind": "amount", "min": "lots", "points": "10", "active": "1"},
    )
    html = await bad.text()
    assert bad.status == 422 and 'id="scoring-error"' in html and 'value="lots"' in html
    made = await client.post(
        "/admin/scoring/rules",
        data={
            "_csrf": csrf,
            "name": "Big",
            "kind": "amount",
            "min": "100000",
            "currency": "MDL",
            "points": "10",
            "active": "1",
        },
        allow_redirects=False,
    )
    assert made.status == 302
    async with sessions() as db:
        (rule,) = await scoring_rules.list_rules(db)
    assert (rule.kind, rule.params, rule.points, rule.active) == (
        "amount",
        {"min": "100000.00", "max": None, "currency": "MDL"},
        10,
        True,
    )
    page = await client.get(f"/admin/scoring?edit={rule.id}")
    html = await page.text()
    assert (
        page.status == 200
        and f'action="/admin/scoring/rules/{rule.id}"' in html
        and 'value="100000.00"' in html
    )
    off = await client.post(
        f"/admin/scoring/rules/{rule.id}/active", data={"_csrf": csrf, "active": "0"}, allow_redirects=False
    )
    assert off.status == 302
    async with sessions() as db:
        assert (await scoring_rules.get_rule(db, rule.id)).active is False  # type: ignore[union-attr]
    assert (await client.get("/admin/scoring?edit=999999")).status == 404


async def _close(sessions: Sessions, n: int, outcome: str, product: str) -> None:
    for _ in range(n):
        async with sessions() as db, db.begin():
            contact = Contact(first_name="Ion")
            db.add(contact)
            await db.flush()
            lead = Lead(contact_id=contact.id, source_channel="webchat", product=product)
            db.add(lead)
            await db.flush()
            deal = await funnel.convert_lead(db, lead.id, by_user_id=None, actor=SYSTEM)
            if outcome == "won":
                await funnel.win(db, SYSTEM, deal.id)
            else:
                await funnel.lose(db, SYSTEM, deal.id, "bank_refused")


async def test_the_lead_page_shows_the_breakdown_and_the_learned_score_once_there_is_history(
    client: TestClient, make_user: MakeUser, sessions: Sessions, lead_id: int
) -> None:
    async with sessions() as db, db.begin():
        await scoring_rules.create_rule(
            db,
            SYSTEM,
            scoring_rules.parse_rule(
                {"name": "Phone known", "kind": "completeness", "item": "phone", "points": 20}
            ),
        )
        await scoring.recompute(db, lead_id)
    agent = await make_user(Role.AGENT)
    assert (await login(client, agent.username)).status == 302
    html = await (await client.get(f"/leads/{lead_id}")).text()
    assert 'id="lead-score-card"' in html and "Phone known" in html and "+20" in html
    assert 'id="lead-learned-waiting"' in html and "0 of 30" in html
    await _close(sessions, 4, "won", "mortgage")
    await _close(sessions, 4, "lost", "consumer")
    async with sessions() as db, db.begin():
        await db.execute(delete(Job))
    admin = await make_user(Role.ADMIN)
    headers = await _headers(sessions, admin)
    status, answer = await _call(
        client, headers, "PATCH", "/api/v1/scoring/model", {"min_closed": 8, "min_won": 3, "min_lost": 3}
    )
    assert status == 200 and answer["model"]["ready"] is True and answer["model"]["learned"]["closed"] == 8
    html = await (await client.get(f"/leads/{lead_id}")).text()
    assert 'id="lead-learned-percent"' in html and 'data-feature="product"' in html
    status, answer = await _call(client, headers, "GET", f"/api/v1/leads/{lead_id}/score")
    learned = answer["score"]["learned"]
    assert status == 200 and learned["ready"] and learned["percent"] > 50
    assert answer["score"]["breakdown"][0]["points"] == 20 == answer["score"]["score"]
    status, answer = await _call(client, headers, "POST", "/api/v1/scoring/retrain")
    assert status == 200 and answer["model"]["learned"] == {"closed": 8, "won": 4, "lost": 4}
    assert answer["model"]["history"] == {"won": 4, "lost": 4} and answer["model"]["retrained_at"]


async def test_the_admin_page_retrains_and_saves_thresholds(
    client: TestClient, make_user: MakeUser, sessions: Sessions, lead_id: int
) -> None:
    await _close(sessions, 2, "won", "mortgage")
    admin = await make_user(Role.ADMIN)
    assert (await login(client, admin.username)).status == 302
    page = await client.get("/admin/scoring")
    html = await page.text()
    assert page.status == 200 and "Retrain from history (2 closed deals)" in html
    csrf = await page_csrf(client, "/admin/scoring")
    assert (
        await client.post("/admin/scoring/retrain", data={"_csrf": csrf}, allow_redirects=False)
    ).status == 302
    bad = await client.post(
        "/admin/scoring/model", data={"_csrf": csrf, "min_closed": "0", "min_won": "1", "min_lost": "1"}
    )
    assert bad.status == 422 and 'id="scoring-error"' in await bad.text()
    ok = await client.post(
        "/admin/scoring/model",
        data={"_csrf": csrf, "min_closed": "2", "min_won": "1", "min_lost": "1"},
        allow_redirects=False,
    )
    assert ok.status == 302
    html = await (await client.get("/admin/scoring")).text()
    assert 'id="scoring-learned">2 (2 / 0)' in html


async def test_an_agent_of_another_branch_cannot_read_a_leads_score(
    client: TestClient, make_user: MakeUser, sessions: Sessions
) -> None:
    ana = await make_user(Role.AGENT, "ana")
    vera = await make_user(Role.AGENT, "vera", branch="Bălți")
    async with sessions() as db, db.begin():
        branch_id = (await accounts.get_or_create_branch(db, "Chișinău")).id
        contact = Contact(first_name="Maria", branch_id=branch_id)
        db.add(contact)
        await db.flush()
        lead = Lead(contact_id=contact.id, source_channel="sms")
        db.add(lead)
        await db.flush()
    assert (await _call(client, await _headers(sessions, ana), "GET", f"/api/v1/leads/{lead.id}/score"))[
        0
    ] == 200
    assert (await _call(client, await _headers(sessions, vera), "GET", f"/api/v1/leads/{lead.id}/score"))[
        0
    ] == 403
