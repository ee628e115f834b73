"""The "My tasks" page and API through the app: an agent sees their own tasks and their branch's queue
(never a colleague's), takes and closes them with plain forms or the JSON API, every change audited;
acting on someone else's task is 403, bad input a 4xx with a JSON reason; supervisors see their branch's
people, admins everyone."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import tasks
from crm_core.models import Contact
from crm_core.tasks import TaskView
from inbox.models import Conversation
from switchboard import accounts
from switchboard.accounts_model import User
from switchboard.audit import SYSTEM
from switchboard.audit_model import AuditEntry
from switchboard.db import utcnow
from switchboard.permissions import Role
from tests.conftest import PASSWORD, MakeUser, Person, login, page_csrf

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class Team:
    ana: Person  # agents of Chișinău
    ion: Person
    vera: Person  # an agent of Bălți
    branch: int  # Chișinău
    other_branch: int
    contact: int
    conversation: int


_HASH: list[str] = []


@pytest.fixture
def make_user(sessions: Sessions) -> MakeUser:
    """`tests.conftest.make_user` without hashing a password for every person (a quarter of a second
    each): one hash of the shared test password, computed once."""

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


@pytest.fixture
async def team(make_user: MakeUser, sessions: Sessions) -> Team:
    ana, ion = await make_user(Role.AGENT, "ana"), await make_user(Role.AGENT, "ion")
    vera = await make_user(Role.AGENT, "vera", branch="Bălți")
    async with sessions() as db, db.begin():
        branch = (await db.get(User, ana.id)).branch_id  # type: ignore[union-attr]
        other = (await db.get(User, vera.id)).branch_id  # type: ignore[union-attr]
        contact = Contact(first_name="Maria", last_name="Rusu")
        db.add(contact)
        await db.flush()
        conversation = Conversation(contact_id=contact.id, assignee_id=ana.id, branch_id=branch)
        db.add(conversation)
        await db.flush()
        assert branch is not None and other is not None
        return Team(ana, ion, vera, branch, other, contact.id, conversation.id)


async def _task(sessions: Sessions, title: str, **fields: Any) -> TaskView:
    async with sessions() as db, db.begin():
        return await tasks.create_task(db, title=title, kind=fields.pop("kind", "callback"), **fields)


async def _token(sessions: Sessions, person: Person) -> dict[str, str]:
    async with sessions() as db, db.begin():
        _, token = await accounts.create_api_token(db, SYSTEM, person.id, "tasks test")
    return {"Authorization": f"Bearer {token}"}


async def _api(
    client: TestClient, headers: dict[str, str], path: str, body: Any = None, *, raw: str | None = None
) -> tuple[int, Any]:
    if body is None and raw is None:
        response = await client.get(path, headers=headers)
    else:
        data = raw if raw is not None else json.dumps(body)
        response = await client.post(path, data=data, headers={**headers, "Content-Type": "application/json"})
    return response.status, await response.json()


async def _stored(sessions: Sessions, task_id: int) -> TaskView:
    async with sessions() as db:
        view = await tasks.get_task(db, task_id)
    assert view is not None
    return view


async def test_an_agent_sees_their_tasks_and_their_branchs_queue_but_not_a_colleagues(
    client: TestClient, sessions: Sessions, team: Team
) -> None:
    now = utcnow()
    await _task(
        sessions,
        "Call Maria back",
        assignee_id=team.ana.id,
        due_at=now - dt.timedelta(hours=2),
        contact_id=team.contact,
        conversation_id=team.conversation,
    )
    await _task(
        sessions,
        "Send the offer",
        kind="follow_up",
        assignee_id=team.ana.id,
        due_at=now + dt.timedelta(days=1),
    )
    await _task(sessions, "Ion's own callback", assignee_id=team.ion.id)
    await _task(sessions, "Night chat of Chișinău", branch_id=team.branch)
    await _task(sessions, "Night chat of Bălți", branch_id=team.other_branch)
    assert (await login(client, "ana")).status == 302
    response = await client.get("/tasks")
    assert response.status == 200
    html = await response.text()
    assert 'data-nav="/tasks"' in html
    mine, _, queue = html.partition('id="tasks-queue"')
    assert "Call Maria back" in mine and "Send the offer" in mine
    assert mine.index("Call Maria back") < mine.index("Send the offer")  # overdue first
    overdue_row = mine[mine.rindex("<tr", 0, mine.index("Call Maria back")) : mine.index("Send the offer")]
    assert "task-is-overdue" in overdue_row and "Overdue" in overdue_row
    assert f'href="/inbox/{team.conversation}"' in overdue_row and "Maria Rusu" in overdue_row
    assert "task-take" not in mine  # one's own tasks are taken already
    assert "Night chat of Chișinău" in queue and "task-take" in queue
    assert "Ion's own callback" not in html and "Night chat of Bălți" not in html
    # An agent cannot look at a colleague's list.
    assert (await client.get(f"/tasks?assignee={team.ion.id}")).status == 403


async def test_an_agent_takes_a_queue_task_and_closes_it_with_plain_forms(
    client: TestClient, sessions: Sessions, team: Team
) -> None:
    queued = await _task(sessions, "Night chat", branch_id=team.branch, conversation_id=team.conversation)
    await login(client, "ana")
    csrf = await page_csrf(client, "/tasks")
    form = {"_csrf": csrf, "next": "/tasks?status=open"}
    response = await client.post(f"/tasks/{queued.id}/take", data=form, allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (302, "/tasks?status=open")
    assert (await _stored(sessions, queued.id)).assignee_id == team.ana.id
    page = await (await client.get("/tasks")).text()
    assert "is yours now" in page
    response = await client.post(f"/tasks/{queued.id}/done", data=form, allow_redirects=False)
    assert response.status == 302
    done = await _stored(sessions, queued.id)
    assert (done.status, done.done_by_id) == ("done", team.ana.id)
    async with sessions() as db:
        entries = list(
            await db.scalars(select(AuditEntry).where(AuditEntry.module == "tasks").order_by(AuditEntry.id))
        )
    assert [(e.detail, e.record_id, e.username) for e in entries] == [
        ("take", str(queued.id), "ana"),
        ("done", str(queued.id), "ana"),
    ]
    assert entries[0].changes == {"assignee_id": [None, team.ana.id]}
    assert entries[1].changes is not None and entries[1].changes["status"] == ["open", "done"]
    # Another agent cannot undo it: a readable 403 page.
    await login(client, "ion")
    csrf = await page_csrf(client, "/tasks")
    response = await client.post(f"/tasks/{queued.id}/reopen", data={"_csrf": csrf})
    assert response.status == 403 and "You may not change this task." in await response.text()


async def test_the_new_task_form_reads_the_due_time_in_the_browsers_zone_and_shows_errors(
    client: TestClient, sessions: Sessions, team: Team
) -> None:
    await login(client, "ana")
    csrf = await page_csrf(client, "/tasks")
    form = {"_csrf": csrf, "title": "Visit the office", "kind": "meeting", "due_at": "2030-01-31T09:00"}
    response = await client.post("/tasks", data={**form, "tz": "Europe/Chisinau"}, allow_redirects=False)
    assert response.status == 302
    async with sessions() as db:
        [task] = await tasks.tasks_for(db, assignee_id=team.ana.id)
    assert (task.title, task.kind, task.created_by_id) == ("Visit the office", "meeting", team.ana.id)
    assert task.due_at == dt.datetime(2030, 1, 31, 7, 0, tzinfo=dt.UTC)  # 09:00 in Chișinău in winter
    response = await client.post("/tasks", data={**form, "title": "  ", "assignee_id": "queue"})
    assert response.status == 422
    page = await response.text()
    assert "Give the task a title." in page and 'value="queue" selected' in page


async def test_the_api_creates_lists_and_closes_tasks(
    client: TestClient, sessions: Sessions, team: Team
) -> None:
    ana = await _token(sessions, team.ana)
    status, data = await _api(
        client,
        ana,
        "/api/v1/tasks",
        {
            "title": "Follow up on the offer",
            "due_at": "2030-01-31T09:00:00+02:00",
            "conversation_id": team.conversation,
        },
    )
    assert status == 201, data
    task = data["task"]
    assert (task["kind"], task["assignee_id"], task["contact_id"], task["branch_id"]) == (
        "follow_up",
        team.ana.id,
        team.contact,
        team.branch,
    )
    assert (task["due_at"], task["contact_name"], task["can_act"]) == (
        "2030-01-31T07:00:00+00:00",
        "Maria Rusu",
        True,
    )
    status, data = await _api(client, ana, "/api/v1/tasks", {"title": "For the queue", "assignee_id": None})
    assert status == 201 and data["task"]["assignee_id"] is None and data["task"]["branch_id"] == team.branch
    queued = data["task"]["id"]
    status, data = await _api(client, ana, "/api/v1/tasks")
    assert status == 200 and [t["title"] for t in data["tasks"]] == [
        "Follow up on the offer",
        "For the queue",
    ]
    status, data = await _api(client, ana, "/api/v1/tasks?assignee=me")
    assert [t["title"] for t in data["tasks"]] == ["Follow up on the offer"]
    status, data = await _api(client, ana, "/api/v1/tasks?assignee=unassigned")
    assert [t["title"] for t in data["tasks"]] == ["For the queue"]
    status, data = await _api(client, ana, f"/api/v1/tasks/{task['id']}/done", {"outcome": "Signed"})
    assert status == 200 and (data["task"]["status"], data["task"]["outcome"]) == ("done", "Signed")
    status, data = await _api(client, ana, "/api/v1/tasks?status=done")
    assert [t["id"] for t in data["tasks"]] == [task["id"]]
    status, data = await _api(client, ana, f"/api/v1/tasks/{task['id']}/reopen", {})
    assert status == 200 and data["task"]["status"] == "open" and data["task"]["outcome"] is None
    status, data = await _api(client, ana, f"/api/v1/tasks/{queued}/take", {})
    assert status == 200 and data["task"]["assignee_id"] == team.ana.id
    status, data = await _api(client, ana, f"/api/v1/tasks/{queued}/cancel", {"outcome": "Duplicate"})
    assert status == 200 and data["task"]["status"] == "cancelled"
    async with sessions() as db:
        actions = list(
            await db.scalars(
                select(AuditEntry.action).where(AuditEntry.module == "tasks").order_by(AuditEntry.id)
            )
        )
    assert actions == ["create", "create", "update", "update", "update", "update"]


async def test_acting_on_someone_elses_task_is_forbidden(
    client: TestClient, make_user: MakeUser, sessions: Sessions, team: Team, caplog: pytest.LogCaptureFixture
) -> None:
    ions = await _task(sessions, "Ion's callback", assignee_id=team.ion.id)
    baltis = await _task(sessions, "Bălți's queue", branch_id=team.other_branch)
    ana = await _token(sessions, team.ana)
    caplog.set_level(logging.INFO, logger="webui.errors")  # every refusal is logged there, once
    for task in (ions, baltis):
        for action in ("done", "cancel", "take", "reopen"):
            status, data = await _api(client, ana, f"/api/v1/tasks/{task.id}/{action}", {})
            assert status == 403, (task.title, action, data)
            assert data["error"]["reason"] == "You may not change this task."
    refusals = [r.getMessage() for r in caplog.records if r.name == "webui.errors"]
    assert len(refusals) == 8 and f"POST /api/v1/tasks/{ions.id}/done refused 403 for ana" in refusals[0]
    status, data = await _api(client, ana, f"/api/v1/tasks?assignee={team.ion.id}")
    assert status == 403 and data["error"]["field"] == "assignee"
    status, data = await _api(client, ana, "/api/v1/tasks", {"title": "For Ion", "assignee_id": team.ion.id})
    assert status == 403 and data["error"]["field"] == "assignee_id"
    assert (await _stored(sessions, ions.id)).status == "open"
    # A supervisor acts in their branch only; an admin anywhere.
    supervisor = await _token(sessions, await make_user(Role.SUPERVISOR, "sofia"))
    status, data = await _api(client, supervisor, f"/api/v1/tasks?assignee={team.ion.id}")
    assert status == 200 and [t["title"] for t in data["tasks"]] == ["Ion's callback"]
    assert (await _api(client, supervisor, f"/api/v1/tasks?assignee={team.vera.id}"))[0] == 403
    assert (await _api(client, supervisor, f"/api/v1/tasks/{baltis.id}/cancel", {}))[0] == 403
    status, data = await _api(
        client, supervisor, "/api/v1/tasks", {"title": "For Ion", "assignee_id": team.ion.id}
    )
    assert status == 201 and data["task"]["assignee_id"] == team.ion.id
    assert (await _api(client, supervisor, f"/api/v1/tasks/{ions.id}/done", {}))[0] == 200
    admin = await _token(sessions, await make_user(Role.ADMIN, "root", branch="HQ"))
    assert (await _api(client, admin, f"/api/v1/tasks/{baltis.id}/cancel", {}))[0] == 200
    status, data = await _api(client, admin, "/api/v1/tasks?assignee=unassigned&status=any")
    assert [t["title"] for t in data["tasks"]] == ["Bălți's queue"]
    marketer = await _token(sessions, await make_user(Role.MARKETER))
    assert (await _api(client, marketer, "/api/v1/tasks"))[0] == 403


async def test_bad_input_gets_a_4xx_with_a_json_reason(
    client: TestClient, make_user: MakeUser, sessions: Sessions, team: Team
) -> None:
    ana = await _token(sessions, team.ana)
    hidden = await _task(sessions, "Vera's", assignee_id=team.vera.id)
    async with sessions() as db, db.begin():
        other = Contact(first_name="Someone")
        db.add(other)
        await db.flush()
        db.add(Conversation(contact_id=other.id, assignee_id=team.vera.id, branch_id=team.other_branch))
        await db.flush()
        not_visible = (
            await db.scalars(select(Conversation.id).where(Conversation.contact_id == other.id))
        ).one()
    status, data = await _api(client, ana, "/api/v1/tasks", raw="{not json")
    assert status == 400 and "not valid JSON" in data["error"]["reason"]
    assert (await _api(client, ana, "/api/v1/tasks", raw="[1]"))[0] == 400
    for body, field, reason in (
        ({}, "title", "Give the task a title."),
        ({"title": "x", "kind": "lunch"}, "kind", "Unknown kind of task."),
        ({"title": "x", "due_at": "2030-01-31T09:00"}, "due_at", "2030-01-31T09:00:00Z"),
        ({"title": "x", "due_at": "tomorrow"}, "due_at", "2030-01-31T09:00:00Z"),
        ({"title": 5}, "title", "This field must be text."),
        ({"title": "x", "assignee_id": "ana"}, "assignee_id", "Not a valid reference."),
        ({"title": "x", "assignee_id": 999_999}, "assignee_id", "No such person."),
        ({"title": "x", "conversation_id": not_visible}, "conversation_id", "No such conversation."),
        ({"title": "x", "contact_id": other.id}, "contact_id", "No such contact."),
    ):
        status, data = await _api(client, ana, "/api/v1/tasks", body)
        assert status == 422, (body, data)
        assert data["error"]["field"] == field and reason in data["error"]["reason"], data
    for query, field in (("status=snoozed", "status"), ("assignee=everyone", "assignee")):
        status, data = await _api(client, ana, f"/api/v1/tasks?{query}")
        assert status == 422 and data["error"]["field"] == field
    assert (await _api(client, ana, "/api/v1/tasks/999999/done", {}))[0] == 404
    # Someone else was quicker: an admin cannot "take" Vera's task from her.
    admin = await _token(sessions, await make_user(Role.ADMIN))
    status, data = await _api(client, admin, f"/api/v1/tasks/{hidden.id}/take", {})
    assert status == 409 and data["error"]["reason"] == "Someone else already has this task."


async def test_a_supervisor_picks_an_agent_on_the_page(
    client: TestClient, make_user: MakeUser, sessions: Sessions, team: Team
) -> None:
    await make_user(Role.SUPERVISOR, "sofia")
    await _task(sessions, "Ion's callback", assignee_id=team.ion.id)
    await login(client, "sofia")
    html = await (await client.get("/tasks")).text()
    assert f'<option value="{team.ion.id}"' in html and f'<option value="{team.vera.id}"' not in html
    response = await client.get(f"/tasks?assignee={team.ion.id}")
    html = await response.text()
    assert response.status == 200 and "Tasks of Ion" in html and "Ion&#39;s callback" in html
    assert "task-done" in html  # a supervisor may close their branch's tasks
    assert (await client.get(f"/tasks?assignee={team.vera.id}")).status == 403
