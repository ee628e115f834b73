"""`crm_core.tasks`: a task is made once per source key (even by racing transactions), refuses bad input
with a readable reason, moves open → done / cancelled → open again, a returned call closes the customer's
callbacks, and "my tasks" come overdue first, then by due time, those without one last."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import tasks
from crm_core.merge import merge_contacts
from crm_core.models import Contact, Lead
from crm_core.tasks import TaskConflict, TaskError, TaskNotFound, TaskView
from crm_core.tasks_model import Task
from inbox.models import Conversation
from switchboard.accounts_model import Branch, User
from switchboard.audit import SYSTEM
from switchboard.db import utcnow
from switchboard.permissions import Role

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class World:
    north: int  # branches
    south: int
    ana: int  # agents of the north branch
    ion: int
    vera: int  # an agent of the south branch
    contact: int
    other_contact: int
    lead: int
    conversation: int


@pytest.fixture
async def world(sessions: Sessions) -> World:
    async with sessions() as db, db.begin():
        north, south = Branch(name="North"), Branch(name="South")
        db.add_all([north, south])
        await db.flush()
        people = [
            User(username=name, role="agent", branch_id=branch.id, password_hash="-")
            for name, branch in (("ana", north), ("ion", north), ("vera", south))
        ]
        maria = Contact(first_name="Maria", last_name="Rusu", phone="+37369000001", branch_id=south.id)
        other = Contact(first_name="Petru", phone="+37369000002")
        db.add_all([*people, maria, other])
        await db.flush()
        lead = Lead(contact_id=maria.id, source_channel="phone")
        conversation = Conversation(contact_id=maria.id, branch_id=north.id)
        db.add_all([lead, conversation])
        await db.flush()
        ana, ion, vera = (p.id for p in people)
        return World(north.id, south.id, ana, ion, vera, maria.id, other.id, lead.id, conversation.id)


async def _create(sessions: Sessions, **fields: object) -> TaskView:
    values: dict[str, object] = {"title": "Call back", "kind": "callback"} | fields
    async with sessions() as db, db.begin():
        return await tasks.create_task(db, **values)  # type: ignore[arg-type]


async def _count(sessions: Sessions) -> int:
    async with sessions() as db:
        return int(await db.scalar(select(func.count(Task.id))) or 0)


async def test_a_task_keeps_its_links_and_takes_its_assignees_branch(
    sessions: Sessions, world: World
) -> None:
    due = dt.datetime(2030, 1, 31, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    task = await _create(
        sessions,
        title="  Call   Maria back  ",
        assignee_id=world.ana,
        due_at=due,
        lead_id=world.lead,  # brings its contact
        conversation_id=world.conversation,
        note="Asked about a 5-year loan",
        created_by_id=world.ion,
    )
    assert (task.title, task.kind, task.status) == ("Call Maria back", "callback", "open")
    assert (task.assignee_id, task.assignee_name, task.branch_id) == (world.ana, "ana", world.north)
    assert (task.contact_id, task.contact_name, task.lead_id) == (world.contact, "Maria Rusu", world.lead)
    assert task.conversation_id == world.conversation and task.created_by_id == world.ion
    assert task.due_at == dt.datetime(2030, 1, 31, 9, 0, tzinfo=dt.UTC) and task.due_at.tzinfo == dt.UTC
    assert (task.done_at, task.outcome, task.overdue) == (None, None, False)
    async with sessions() as db:
        assert await tasks.get_task(db, task.id) == task
        assert await tasks.get_task(db, task.id + 1000) is None
    # Nobody assigned: the queue of the contact's branch.
    queued = await _create(sessions, contact_id=world.contact)
    assert (queued.assignee_id, queued.assignee_name, queued.branch_id) == (None, None, world.south)


async def test_the_same_source_key_makes_the_task_once(sessions: Sessions, world: World) -> None:
    first = await _create(sessions, source_key="missed-call:1700000000.42", assignee_id=world.ana)
    again = await _create(
        sessions, source_key="missed-call:1700000000.42", title="Other", assignee_id=world.ion
    )
    assert again == first
    async with sessions() as db, db.begin():
        await tasks.complete_task(db, first.id, by_user_id=world.ana)
    replayed = await _create(sessions, source_key="missed-call:1700000000.42")
    assert (replayed.id, replayed.status) == (first.id, "done")  # a replay never revives or duplicates it
    assert await _count(sessions) == 1


async def test_racing_transactions_with_one_source_key_make_one_task(
    sessions: Sessions, world: World
) -> None:
    async def one(n: int) -> int:
        async with sessions() as db, db.begin():
            task = await tasks.create_task(
                db, title=f"Racer {n}", kind="callback", source_key="off-hours:77", assignee_id=world.ana
            )
            await asyncio.sleep(0.02)  # keep the transaction open while the others insert
            return task.id

    ids = await asyncio.gather(*(one(n) for n in range(5)))
    assert len(set(ids)) == 1
    assert await _count(sessions) == 1


@pytest.mark.parametrize(
    ("fields", "field", "readable"),
    [
        ({"title": "   "}, "title", "Give the task a title."),
        ({"title": "x" * 201}, "title", "At most 200 characters."),
        ({"kind": "lunch"}, "kind", "Unknown kind of task."),
        ({"due_at": dt.datetime(2030, 1, 31, 9, 0)}, "due_at", "Give the due time with its time zone."),
        ({"assignee_id": 999_999}, "assignee_id", "No such person."),
        ({"conversation_id": 999_999}, "conversation_id", "No such conversation."),
        ({"assignee_id": True}, "assignee_id", "Not a valid reference."),
        ({"source_key": "k" * 121}, "source_key", "At most 120 characters."),
    ],
)
async def test_bad_input_is_refused_with_a_readable_reason(
    sessions: Sessions, world: World, fields: dict[str, object], field: str, readable: str
) -> None:
    with pytest.raises(ValueError) as caught:
        await _create(sessions, **fields)
    assert isinstance(caught.value, TaskError)
    assert (caught.value.field, str(caught.value), caught.value.status) == (field, readable, 422)
    assert await _count(sessions) == 0


async def test_a_lead_of_another_contact_is_refused(sessions: Sessions, world: World) -> None:
    with pytest.raises(TaskError, match="another contact") as caught:
        await _create(sessions, contact_id=world.other_contact, lead_id=world.lead)
    assert caught.value.field == "lead_id"


async def test_done_cancelled_and_reopened(sessions: Sessions, world: World) -> None:
    task = await _create(sessions, assignee_id=world.ana)
    async with sessions() as db, db.begin():
        done = await tasks.complete_task(db, task.id, by_user_id=world.ana, outcome=" Will sign on Monday ")
        assert (done.status, done.done_by_id, done.outcome) == ("done", world.ana, "Will sign on Monday")
        assert done.done_at is not None and done.updated_at >= task.updated_at
        # A second click changes nothing; cancelling a done task needs a reopen first.
        assert await tasks.complete_task(db, task.id, by_user_id=world.ion) == done
    async with sessions() as db, db.begin():
        with pytest.raises(TaskConflict):
            await tasks.cancel_task(db, task.id, by_user_id=world.ana)
    async with sessions() as db, db.begin():
        reopened = await tasks.reopen(db, task.id)
        assert (reopened.status, reopened.done_at, reopened.done_by_id, reopened.outcome) == (
            "open",
            None,
            None,
            None,
        )
        cancelled = await tasks.cancel_task(db, task.id, by_user_id=None, outcome="customer went elsewhere")
        assert (cancelled.status, cancelled.done_by_id) == ("cancelled", None)
    async with sessions() as db, db.begin():
        with pytest.raises(TaskConflict):
            await tasks.complete_task(db, task.id, by_user_id=world.ana)
        with pytest.raises(TaskConflict):
            await tasks.reassign(db, task.id, world.ion)
    async with sessions() as db, db.begin():
        with pytest.raises(TaskNotFound):
            await tasks.complete_task(db, task.id + 1000, by_user_id=world.ana)


async def test_reassigning_moves_the_task_to_the_assignees_branch_and_none_to_the_queue(
    sessions: Sessions, world: World
) -> None:
    task = await _create(sessions, assignee_id=world.ana)
    async with sessions() as db, db.begin():
        moved = await tasks.reassign(db, task.id, world.vera)
        assert (moved.assignee_id, moved.branch_id) == (world.vera, world.south)
        queued = await tasks.reassign(db, task.id, None)
        assert (queued.assignee_id, queued.branch_id) == (None, world.south)


async def test_returning_the_call_closes_the_customers_open_callbacks(
    sessions: Sessions, world: World
) -> None:
    first = await _create(sessions, contact_id=world.contact, assignee_id=world.ana)
    second = await _create(sessions, contact_id=world.contact)
    follow_up = await _create(sessions, contact_id=world.contact, kind="follow_up")
    someone_else = await _create(sessions, contact_id=world.other_contact)
    async with sessions() as db, db.begin():
        closed = await tasks.close_open_tasks(
            db, contact_id=world.contact, kind="callback", by_user_id=world.ion, outcome="Called back"
        )
        assert closed == [first.id, second.id]
        view = await tasks.get_task(db, first.id)
        assert view is not None and (view.status, view.done_by_id, view.outcome) == (
            "done",
            world.ion,
            "Called back",
        )
    async with sessions() as db, db.begin():
        assert (
            await tasks.close_open_tasks(db, contact_id=world.contact, kind="callback", outcome="again") == []
        )
        for untouched in (follow_up, someone_else):
            view = await tasks.get_task(db, untouched.id)
            assert view is not None and view.status == "open"


async def test_my_tasks_come_overdue_first_then_by_due_time_and_undated_last(
    sessions: Sessions, world: World
) -> None:
    now = utcnow()
    hour = dt.timedelta(hours=1)
    undated = await _create(sessions, title="undated", assignee_id=world.ana)
    later = await _create(sessions, title="tomorrow", assignee_id=world.ana, due_at=now + 24 * hour)
    late = await _create(sessions, title="late", assignee_id=world.ana, due_at=now - hour)
    later_undated = await _create(sessions, title="undated 2", assignee_id=world.ana)
    very_late = await _create(sessions, title="very late", assignee_id=world.ana, due_at=now - 5 * hour)
    queue = await _create(sessions, title="queue", branch_id=world.north, due_at=now + hour)
    anywhere = await _create(sessions, title="no branch")
    await _create(sessions, title="ion's", assignee_id=world.ion)
    await _create(sessions, title="south queue", branch_id=world.south)
    closed = await _create(sessions, title="closed", assignee_id=world.ana)
    async with sessions() as db, db.begin():
        await tasks.complete_task(db, closed.id, by_user_id=world.ana)
    async with sessions() as db:
        mine = await tasks.tasks_for(db, assignee_id=world.ana)
        with_queue = await tasks.tasks_for(
            db, assignee_id=world.ana, include_unassigned_branch_id=world.north
        )
        every_queue = await tasks.tasks_for(db, assignee_id=None, all_unassigned=True)
        done = await tasks.tasks_for(db, assignee_id=world.ana, status="done")
        everything = await tasks.tasks_for(db, assignee_id=world.ana, status=None)
        with pytest.raises(TaskError):
            await tasks.tasks_for(db, assignee_id=world.ana, status="snoozed")
    assert [t.id for t in mine] == [very_late.id, late.id, later.id, undated.id, later_undated.id]
    assert [t.overdue for t in mine] == [True, True, False, False, False]
    assert [t.title for t in with_queue] == [
        "very late",
        "late",
        "queue",
        "tomorrow",
        "undated",
        "undated 2",
        "no branch",
    ]
    assert {t.title for t in every_queue} == {"queue", "no branch", "south queue"}
    assert [t.id for t in done] == [closed.id]
    assert len(everything) == 6
    assert queue.id in {t.id for t in with_queue} and anywhere.id in {t.id for t in with_queue}


def _task(assignee_id: int | None, branch_id: int | None) -> TaskView:
    now = utcnow()
    return TaskView(
        1, "t", "callback", "open", assignee_id, None, branch_id, None, None, None, None, None, "", None,
        None, now, now, None, None, None, False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("role", "task", "allowed"),
    [
        (Role.AGENT, _task(7, 1), True),  # their own
        (Role.AGENT, _task(8, 1), False),  # a colleague's
        (Role.AGENT, _task(None, 1), True),  # their branch's queue
        (Role.AGENT, _task(None, None), True),  # the queue of no branch
        (Role.AGENT, _task(None, 2), False),  # another branch's queue
        (Role.SUPERVISOR, _task(8, 1), True),  # their branch
        (Role.SUPERVISOR, _task(8, 2), False),
        (Role.SUPERVISOR, _task(8, None), False),
        (Role.ADMIN, _task(8, 2), True),
        (Role.MARKETER, _task(None, 1), False),
    ],
)
def test_who_may_act_on_a_task(role: Role, task: TaskView, allowed: bool) -> None:
    assert tasks.may_act(role, 7, 1, task) is allowed
    # Without a branch there is no queue, only one's own tasks.
    assert tasks.may_act(role, 7, None, replace(task, assignee_id=7)) is (role is not Role.MARKETER)


async def test_merging_contacts_keeps_their_tasks(sessions: Sessions, world: World) -> None:
    task = await _create(sessions, contact_id=world.other_contact, assignee_id=world.ana)
    async with sessions() as db, db.begin():
        await merge_contacts(db, SYSTEM, world.contact, world.other_contact)
    async with sessions() as db:
        view = await tasks.get_task(db, task.id)
    assert view is not None and view.contact_id == world.contact
