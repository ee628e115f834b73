"""The inbox's sales-script panel over HTTP: a published script that fits the chat is suggested, the agent
starts it, says the greeting, answers a question with a button and a typed amount, and the amount lands in
the customer's lead as a decimal; a second click on a step already passed is refused, back and leave
work, and someone who cannot see the conversation cannot see or move its script."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import Channel, InboundMessage
from crm_core.models import Lead
from inbox.calls_model import Call
from inbox.models import Conversation
from switchboard.accounts_model import User
from switchboard.audit import SYSTEM
from switchboard.db import utcnow
from switchboard.permissions import Role
from tests.conftest import MakeUser, login, page_csrf, second_browser
from webui import keys

SCRIPT = """
key: quick_credit
name: Credit rapid
applies: {channels: [telegram]}
start: hello
steps:
  - {id: hello, kind: say, title: Salut, text: 'Bună ziua, {{ contact.first_name }}!', next: need}
  - id: need
    kind: ask
    title: Nevoia
    text: Pentru ce aveți nevoie de bani?
    answer:
      type: choice
      options:
        - {value: car, label: Automobil, next: amount}
        - {value: other, label: Altceva, next: bye}
  - {id: amount, kind: ask, title: Suma, text: 'Ce sumă?', answer: {type: money}, next: keep}
  - {id: keep, kind: capture, entity: lead, field: amount, answer: amount, next: done}
  - {id: done, kind: end, outcome: success}
  - {id: bye, kind: end, outcome: refusal, reason: not_interested}
"""


async def _published(app: web.Application) -> int:
    scripts = app[keys.SCRIPTS]
    async with app[keys.SESSIONS]() as db, db.begin():
        draft = await scripts.import_yaml(db, SYSTEM, SCRIPT)
        published = await scripts.publish(db, SYSTEM, draft.id)
    return published.id


async def _post(client: TestClient, csrf: str, path: str, body: Any) -> tuple[int, Any]:
    response = await client.post(
        path, data=json.dumps(body), headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    )
    return response.status, await response.json()


async def _chat_opened_by(
    client: TestClient, app: web.Application, username: str, sender_id: str, body: str
) -> tuple[int, str, str]:
    """A Telegram chat from `sender_id`, the user logged in: its conversation, CSRF token, panel path."""
    stored = await app[keys.INBOX].ingest(
        InboundMessage(
            channel=Channel.TELEGRAM,
            account_id="acc",
            external_id=f"t-{sender_id}",
            sender_id=sender_id,
            sender_name="Ion",
            body=body,
        )
    )
    assert (await login(client, username)).status == 302
    csrf = await page_csrf(client, "/profile")
    return stored.conversation_id, csrf, f"/api/v1/conversations/{stored.conversation_id}/script"


async def test_an_agent_walks_a_chat_through_a_script_and_the_amount_fills_the_lead(
    client: TestClient, app: web.Application, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    version_id = await _published(app)
    agent = await make_user(Role.AGENT)
    conversation_id, csrf, path = await _chat_opened_by(client, app, agent.username, "42", "Salut")

    state = await (await client.get(path)).json()
    assert state["run"] is None and [s["version_id"] for s in state["suggestions"]] == [version_id]
    status, body = await _post(client, csrf, path, {"version_id": version_id})
    assert status == 201, body
    run = body["run"]
    assert (run["step_id"], run["kind"], run["text"]) == ("hello", "say", "Bună ziua, Ion!")
    status, _ = await _post(client, csrf, path, {"version_id": version_id})
    assert status == 409  # one script at a time per conversation

    status, body = await _post(client, csrf, f"{path}/answer", {"step_id": "hello", "answer": None})
    assert status == 200 and body["run"]["step_id"] == "need"
    assert [o["value"] for o in body["run"]["options"]] == ["car", "other"]
    status, body = await _post(client, csrf, f"{path}/answer", {"step_id": "need", "answer": "car"})
    assert status == 200 and body["run"]["step_id"] == "amount"
    status, body = await _post(client, csrf, f"{path}/answer", {"step_id": "need", "answer": "car"})
    assert status == 409  # a second click on the step already passed moves nothing
    status, body = await _post(client, csrf, f"{path}/back", {"step_id": "amount"})
    assert status == 200 and body["run"]["step_id"] == "need"
    await _post(client, csrf, f"{path}/answer", {"step_id": "need", "answer": "car"})
    status, body = await _post(client, csrf, f"{path}/answer", {"step_id": "amount", "answer": "many"})
    assert status == 422
    status, body = await _post(client, csrf, f"{path}/answer", {"step_id": "amount", "answer": "75 000"})
    assert status == 200 and body["run"]["status"] == "ended" and body["run"]["outcome"] == "success"
    async with sessions() as db:
        lead = (await db.scalars(select(Lead))).one()
    assert lead.amount == Decimal("75000.00")
    assert (await (await client.get(path)).json())["run"] is None  # ended: the panel suggests again

    # The conversation is the agent's, in their branch: someone of another branch cannot see it, hence
    # not its script either.
    async with sessions() as db, db.begin():
        me = await db.get(User, agent.id)
        assert me is not None
        await db.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(assignee_id=agent.id, branch_id=me.branch_id)
        )
    other = await make_user(Role.AGENT, branch="Bălți")
    browser = await second_browser(client)
    try:
        assert (await login(browser, other.username)).status == 302
        other_csrf = await page_csrf(browser, "/profile")
        assert (await browser.get(path)).status == 404
        status, _ = await _post(browser, other_csrf, path, {"version_id": version_id})
        assert status == 404
    finally:
        await browser.session.close()


async def test_leaving_a_script_ends_its_run_and_bad_bodies_are_refused(
    client: TestClient, app: web.Application, make_user: MakeUser
) -> None:
    version_id = await _published(app)
    admin = await make_user(Role.ADMIN)
    _, csrf, path = await _chat_opened_by(client, app, admin.username, "43", "Bună")
    for body in ({"version_id": "one"}, {"version_id": True}, {}):
        status, _ = await _post(client, csrf, path, body)
        assert status == 422
    status, _ = await _post(client, csrf, f"{path}/answer", {"step_id": "hello"})
    assert status == 404  # nothing running
    await _post(client, csrf, path, {"version_id": version_id})
    status, body = await _post(client, csrf, f"{path}/answer", {"answer": None})
    assert status == 422 and body["error"]["field"] == "step_id"
    status, body = await _post(client, csrf, f"{path}/leave", {"reason": "clientul a închis"})
    assert status == 200 and body["run"]["status"] == "left"
    assert (await (await client.get(path)).json())["run"] is None


PHONE_SCRIPT = """
key: phone_first
name: Primul apel
applies: {channels: [phone]}
start: hello
steps:
  - {id: hello, kind: say, text: 'Alo, bună ziua!', next: done}
  - {id: done, kind: end, outcome: success}
"""


async def test_on_a_call_the_panel_suggests_the_phone_script_and_links_the_run_to_the_call(
    client: TestClient, app: web.Application, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The call screen's "Open conversation": while the agent is on a live call with the customer, the
    panel offers the scripts for the phone (not the chat's) and the run it starts belongs to the call."""
    chat_script = await _published(app)
    async with app[keys.SESSIONS]() as db, db.begin():
        draft = await app[keys.SCRIPTS].import_yaml(db, SYSTEM, PHONE_SCRIPT)
        phone_script = (await app[keys.SCRIPTS].publish(db, SYSTEM, draft.id)).id
    agent = await make_user(Role.AGENT)
    conversation_id, csrf, path = await _chat_opened_by(client, app, agent.username, "44", "Salut")
    state = await (await client.get(path)).json()
    assert state["call_id"] is None and [s["version_id"] for s in state["suggestions"]] == [chat_script]

    async with sessions() as db, db.begin():
        call = Call(
            linkedid="1733300000.1",
            direction="in",
            customer_number="+37369000044",
            agent_id=agent.id,
            conversation_id=conversation_id,
            started_at=utcnow(),
            answered_at=utcnow(),
        )
        db.add(call)
        await db.flush()
        call_id = call.id
    state = await (await client.get(path)).json()
    assert state["call_id"] == call_id and [s["version_id"] for s in state["suggestions"]] == [phone_script]
    status, body = await _post(client, csrf, path, {"version_id": phone_script})
    assert status == 201 and body["run"]["call_id"] == call_id and body["run"]["text"] == "Alo, bună ziua!"

    async with sessions() as db, db.begin():  # the call ends: the chat's scripts again
        await db.execute(update(Call).where(Call.id == call_id).values(ended=True, ended_at=utcnow()))
    await _post(client, csrf, f"{path}/leave", {"reason": ""})
    state = await (await client.get(path)).json()
    assert state["call_id"] is None and [s["version_id"] for s in state["suggestions"]] == [chat_script]
