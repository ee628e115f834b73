"""Tasks: what someone has to do about a customer, and by when — call back a missed call, answer a chat
that came in at night, follow up on an offer. The router and telephony make them (idempotently, by
`source_key`); agents see theirs and their branch's queue on "My tasks" and close them.

Functions take the caller's `AsyncSession` and never commit: a task is made or closed in the same
transaction as whatever caused it. Errors are `TaskError`s — `ValueError`s for plain callers, `DomainError`s
(with an HTTP status and a translatable message) for the web edge.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_core.models import Contact, Lead
from crm_core.tasks_model import MAX_SOURCE_KEY, MAX_TITLE, Task
from switchboard.accounts_model import User
from switchboard.db import cast_table, insert_ignoring_duplicates, utcnow
from switchboard.errors import N_, DomainError
from switchboard.permissions import Role

MAX_NOTE = 5000
MAX_OUTCOME = 2000
MAX_LIST = 500


class TaskKind(StrEnum):
    CALLBACK = "callback"  # the customer called and nobody answered
    CALL = "call"
    FOLLOW_UP = "follow_up"
    MEETING = "meeting"
    OTHER = "other"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class TaskError(DomainError, ValueError):
    """Why a task could not be made or changed. `str()` gives the message with its values filled in."""

    def __str__(self) -> str:
        try:
            return self.message % self.params if self.params else self.message
        except (KeyError, ValueError, TypeError):
            return self.message


class TaskInvalid(TaskError):
    status = 422


class TaskNotFound(TaskError):
    status = 404


class TaskConflict(TaskError):
    status = 409


class TaskForbidden(TaskError):
    status = 403


@dataclass(frozen=True)
class TaskView:
    id: int
    title: str
    kind: str
    status: str
    assignee_id: int | None  # None: the queue of `branch_id` (of every branch when that is None too)
    assignee_name: str | None
    branch_id: int | None
    due_at: dt.datetime | None
    contact_id: int | None
    contact_name: str | None
    lead_id: int | None
    conversation_id: int | None
    note: str
    source_key: str | None
    created_by_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    done_at: dt.datetime | None  # when it was closed, done or cancelled
    done_by_id: int | None
    outcome: str | None
    overdue: bool  # open and past its due time when it was read

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, dt.datetime) else value
        return out


# --- the rule of who may act on a task --------------------------------------------------------------------


def may_act(role: Role | str, user_id: int, branch_id: int | None, task: TaskView) -> bool:
    """Admins act on every task; agents and supervisors on their own, on the unassigned tasks of their
    branch or of no branch (the queue they see), and supervisors on every task of their branch. Someone
    without a branch has no queue; other roles have no tasks."""
    try:
        role = Role(role)
    except ValueError:
        return False
    if role not in (Role.ADMIN, Role.SUPERVISOR, Role.AGENT):
        return False
    if role is Role.ADMIN or (task.assignee_id is not None and task.assignee_id == user_id):
        return True
    if branch_id is None:
        return False
    if task.assignee_id is None and task.branch_id in (None, branch_id):
        return True
    return role is Role.SUPERVISOR and task.branch_id == branch_id


def check_may_act(role: Role | str, user_id: int, branch_id: int | None, task: TaskView) -> None:
    if not may_act(role, user_id, branch_id, task):
        raise TaskForbidden(N_("You may not change this task."))


# --- reading ----------------------------------------------------------------------------------------------

_ASSIGNEE = aliased(User)


# populate_existing: a task changed by a Core UPDATE (`close_open_tasks`) reads as it is now.
_SELECT = (
    select(Task, _ASSIGNEE.full_name, _ASSIGNEE.username, Contact)
    .outerjoin(_ASSIGNEE, _ASSIGNEE.id == Task.assignee_id)
    .outerjoin(Contact, Contact.id == Task.contact_id)
    .execution_options(populate_existing=True)
)


def _view(row: Any, now: dt.datetime) -> TaskView:
    task: Task = row[0]
    full_name, username, contact = row[1], row[2], row[3]
    return TaskView(
        id=task.id,
        title=task.title,
        kind=task.kind,
        status=task.status,
        assignee_id=task.assignee_id,
        assignee_name=(full_name or username) if task.assignee_id is not None else None,
        branch_id=task.branch_id,
        due_at=task.due_at,
        contact_id=task.contact_id,
        contact_name=contact.display_name if contact is not None else None,
        lead_id=task.lead_id,
        conversation_id=task.conversation_id,
        note=task.note,
        source_key=task.source_key,
        created_by_id=task.created_by_id,
        created_at=task.created_at,
        updated_at=task.updated_at,
        done_at=task.done_at,
        done_by_id=task.done_by_id,
        outcome=task.outcome,
        overdue=task.status == TaskStatus.OPEN and task.due_at is not None and task.due_at < now,
    )


async def get_task(
    session: AsyncSession, task_id: int, *, lock: bool = False, now: dt.datetime | None = None
) -> TaskView | None:
    """One task, or None. `lock=True` holds its row until the transaction ends (PostgreSQL), so a check
    made on it (who may act, is it still unassigned) still holds when the change is written."""
    if lock:
        found = await session.scalar(select(Task.id).where(Task.id == task_id).with_for_update())
        if found is None:
            return None
    query = _SELECT.where(Task.id == task_id)
    row = (await session.execute(query)).first()
    return _view(row, now or utcnow()) if row is not None else None


async def tasks_for(
    session: AsyncSession,
    *,
    assignee_id: int | None,
    include_unassigned_branch_id: int | None = None,
    all_unassigned: bool = False,
    status: str | None = TaskStatus.OPEN,
    limit: int = 200,
    now: dt.datetime | None = None,
) -> list[TaskView]:
    """`assignee_id`'s tasks (none when it is None), plus the queue: with `include_unassigned_branch_id`
    the unassigned tasks of that branch and of no branch, with `all_unassigned` every unassigned task.
    `status` None lists every status. Open tasks come by due time — so the overdue first, those without
    a due time last — then oldest first; closed ones most recently closed first."""
    if status is not None:
        status = _status(status)
    now = now or utcnow()
    wanted: list[ColumnElement[bool]] = []
    if assignee_id is not None:
        wanted.append(Task.assignee_id == assignee_id)
    if all_unassigned:
        wanted.append(Task.assignee_id.is_(None))
    elif include_unassigned_branch_id is not None:
        wanted.append(
            and_(
                Task.assignee_id.is_(None),
                or_(Task.branch_id.is_(None), Task.branch_id == include_unassigned_branch_id),
            )
        )
    query = _SELECT.where(or_(*wanted) if wanted else false())
    if status is not None:
        query = query.where(Task.status == status)
    if status in (TaskStatus.DONE, TaskStatus.CANCELLED):
        query = query.order_by(Task.done_at.desc(), Task.id.desc())
    else:
        query = query.order_by(
            case((Task.due_at.is_(None), 1), else_=0), Task.due_at, Task.created_at, Task.id
        )
    rows = await session.execute(query.limit(max(1, min(limit, MAX_LIST))))
    return [_view(row, now) for row in rows]


# --- making -----------------------------------------------------------------------------------------------

_TASKS = cast_table(Task)


def _status(value: str) -> TaskStatus:
    try:
        return TaskStatus(value)
    except ValueError:
        raise TaskInvalid(N_("Unknown task status."), field="status") from None


def _kind(value: str) -> TaskKind:
    try:
        return TaskKind(value)
    except ValueError:
        raise TaskInvalid(N_("Unknown kind of task."), field="kind") from None


def _title(value: str) -> str:
    value = " ".join(str(value).split())
    if not value:
        raise TaskInvalid(N_("Give the task a title."), field="title")
    if len(value) > MAX_TITLE:
        raise TaskInvalid(N_("At most %(n)s characters."), field="title", n=MAX_TITLE)
    return value


def _text(value: str | None, name: str, limit: int) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise TaskInvalid(N_("At most %(n)s characters."), field=name, n=limit)
    return value


def _due(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise TaskInvalid(N_("Give the due time with its time zone."), field="due_at")
    return value.astimezone(dt.UTC)


def _id(value: int | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise TaskInvalid(N_("Not a valid reference."), field=name)
    return value


_MISSING = {
    "assignee_id": N_("No such person."),
    "created_by_id": N_("No such person."),
    "branch_id": N_("No such branch."),
    "contact_id": N_("No such contact."),
    "lead_id": N_("No such lead."),
    "conversation_id": N_("No such conversation."),
}


async def _check_exists(session: AsyncSession, values: dict[str, Any]) -> None:
    """A readable error for a reference to nothing, rather than the database's foreign key error; the
    referenced table is read through the foreign key, so this room imports no other room's tables."""
    for name, message in _MISSING.items():
        value = values.get(name)
        if value is None:
            continue
        (fk,) = _TASKS.c[name].foreign_keys
        if await session.scalar(select(fk.column).where(fk.column == value)) is None:
            raise TaskInvalid(message, field=name)


async def _by_key(session: AsyncSession, source_key: str) -> TaskView | None:
    row = (await session.execute(_SELECT.where(Task.source_key == source_key))).first()
    return _view(row, utcnow()) if row is not None else None


async def create_task(
    session: AsyncSession,
    *,
    title: str,
    kind: str,
    assignee_id: int | None = None,
    branch_id: int | None = None,
    due_at: dt.datetime | None = None,
    contact_id: int | None = None,
    lead_id: int | None = None,
    conversation_id: int | None = None,
    note: str = "",
    source_key: str | None = None,
    created_by_id: int | None = None,
) -> TaskView:
    """A new open task. `assignee_id` None puts it in the queue of `branch_id`, which defaults to the
    assignee's branch, else the contact's. A lead given without a contact brings its contact.

    With a `source_key` (`missed-call:<linkedid>`, `off-hours:<conversation id>`) the task is made once:
    a second call with the same key — replayed, or racing in another transaction — returns the task
    that exists, whatever its status now, and changes nothing."""
    source_key = _text(source_key, "source_key", MAX_SOURCE_KEY) or None
    if source_key is not None:
        existing = await _by_key(session, source_key)
        if existing is not None:
            return existing
    values: dict[str, Any] = {
        "title": _title(title),
        "kind": _kind(kind).value,
        "status": TaskStatus.OPEN.value,
        "assignee_id": _id(assignee_id, "assignee_id"),
        "branch_id": _id(branch_id, "branch_id"),
        "due_at": _due(due_at),
        "contact_id": _id(contact_id, "contact_id"),
        "lead_id": _id(lead_id, "lead_id"),
        "conversation_id": _id(conversation_id, "conversation_id"),
        "note": _text(note, "note", MAX_NOTE),
        "source_key": source_key,
        "created_by_id": _id(created_by_id, "created_by_id"),
    }
    await _check_exists(session, values)
    await _fill_links(session, values)
    now = utcnow()
    values.update(created_at=now, updated_at=now)
    # ON CONFLICT DO NOTHING: a racing twin with the same key waits for ours (PostgreSQL) and then
    # inserts nothing, without aborting the caller's transaction or needing a savepoint.
    inserted = await session.execute(insert_ignoring_duplicates(session, _TASKS, "id"), values)
    task_id = inserted.scalar_one_or_none()
    if task_id is None:
        assert source_key is not None  # only the source key is unique
        existing = await _by_key(session, source_key)
        assert existing is not None
        return existing
    view = await get_task(session, task_id)
    assert view is not None
    return view


async def _fill_links(session: AsyncSession, values: dict[str, Any]) -> None:
    if values["lead_id"] is not None:
        lead_contact = await session.scalar(select(Lead.contact_id).where(Lead.id == values["lead_id"]))
        if values["contact_id"] is None:
            values["contact_id"] = lead_contact
        elif lead_contact != values["contact_id"]:
            raise TaskInvalid(N_("This lead belongs to another contact."), field="lead_id")
    if values["branch_id"] is None and values["assignee_id"] is not None:
        values["branch_id"] = await session.scalar(
            select(User.branch_id).where(User.id == values["assignee_id"])
        )
    if values["branch_id"] is None and values["contact_id"] is not None:
        values["branch_id"] = await session.scalar(
            select(Contact.branch_id).where(Contact.id == values["contact_id"])
        )


# --- changing ---------------------------------------------------------------------------------------------


async def _locked(session: AsyncSession, task_id: int) -> Task:
    task = await session.scalar(
        select(Task).where(Task.id == task_id).with_for_update().execution_options(populate_existing=True)
    )
    if task is None:
        raise TaskNotFound(N_("No such task."))
    return task


async def _after(session: AsyncSession, task: Task) -> TaskView:
    await session.flush()
    view = await get_task(session, task.id)
    assert view is not None
    return view


async def _close(
    session: AsyncSession, task_id: int, status: TaskStatus, by_user_id: int | None, outcome: str | None
) -> TaskView:
    outcome = _text(outcome, "outcome", MAX_OUTCOME) or None
    task = await _locked(session, task_id)
    if task.status == status:  # a second click, a replayed event: already so
        return await _after(session, task)
    if task.status != TaskStatus.OPEN:
        if status is TaskStatus.DONE:
            raise TaskConflict(N_("This task was cancelled; reopen it first."), field="status")
        raise TaskConflict(N_("This task is already done; reopen it first."), field="status")
    task.status = status.value
    task.done_at = utcnow()
    task.done_by_id = _id(by_user_id, "by_user_id")
    task.outcome = outcome
    return await _after(session, task)


async def complete_task(
    session: AsyncSession, task_id: int, *, by_user_id: int | None, outcome: str | None = None
) -> TaskView:
    """Mark an open task done (`outcome`: what came of it). Done already: returned unchanged."""
    return await _close(session, task_id, TaskStatus.DONE, by_user_id, outcome)


async def cancel_task(
    session: AsyncSession, task_id: int, *, by_user_id: int | None, outcome: str | None = None
) -> TaskView:
    """Drop an open task (`outcome`: why). Cancelled already: returned unchanged."""
    return await _close(session, task_id, TaskStatus.CANCELLED, by_user_id, outcome)


async def reopen(session: AsyncSession, task_id: int) -> TaskView:
    """A done or cancelled task is open again (its outcome is forgotten); an open one stays as it is."""
    task = await _locked(session, task_id)
    if task.status != TaskStatus.OPEN:
        task.status = TaskStatus.OPEN.value
        task.done_at = None
        task.done_by_id = None
        task.outcome = None
    return await _after(session, task)


async def reassign(session: AsyncSession, task_id: int, assignee_id: int | None) -> TaskView:
    """Give an open task to someone (its branch follows theirs when they have one), or with None put it
    back in its branch's queue."""
    assignee_id = _id(assignee_id, "assignee_id")
    task = await _locked(session, task_id)
    if task.status != TaskStatus.OPEN:
        raise TaskConflict(N_("Only an open task can be given to someone."), field="status")
    if assignee_id is not None:
        branch = (await session.execute(select(User.branch_id).where(User.id == assignee_id))).first()
        if branch is None:
            raise TaskInvalid(N_("No such person."), field="assignee_id")
        if branch.branch_id is not None:
            task.branch_id = branch.branch_id
    task.assignee_id = assignee_id
    return await _after(session, task)


async def assign_by_key(session: AsyncSession, source_key: str, assignee_id: int) -> TaskView | None:
    """The task made for `source_key` (an off-hours chat) goes to the agent who now has its conversation,
    if it still waits, open, in the queue; a task someone took or closed meanwhile is left as it is."""
    found = await _by_key(session, source_key)
    if found is None or found.status != TaskStatus.OPEN or found.assignee_id is not None:
        return found
    return await reassign(session, found.id, assignee_id)


async def close_open_tasks(
    session: AsyncSession,
    *,
    contact_id: int,
    kind: str | Sequence[str],
    by_user_id: int | None = None,
    outcome: str,
) -> list[int]:
    """Mark done every open task of this kind (or kinds) for the contact — returning the customer's call
    closes their callbacks — and return their ids (none: an empty list)."""
    kinds = [_kind(kind).value] if isinstance(kind, str) else [_kind(k).value for k in kind]
    now = utcnow()
    result = await session.execute(
        update(Task)
        .where(Task.contact_id == contact_id, Task.kind.in_(kinds), Task.status == TaskStatus.OPEN.value)
        .values(
            status=TaskStatus.DONE.value,
            done_at=now,
            done_by_id=_id(by_user_id, "by_user_id"),
            outcome=_text(outcome, "outcome", MAX_OUTCOME) or None,
            updated_at=now,
        )
        .returning(Task.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(result.scalars())


async def move_contact_tasks(session: AsyncSession, from_contact_id: int, to_contact_id: int) -> int:
    """Point a merged contact's tasks at the contact it became (`crm_core.merge`); returns how many."""
    result = await session.execute(
        update(Task)
        .where(Task.contact_id == from_contact_id)
        .values(contact_id=to_contact_id, updated_at=utcnow())
        .returning(Task.id)
        .execution_options(synchronize_session=False)
    )
    return len(result.scalars().all())


async def move_conversation_tasks(
    session: AsyncSession,
    from_conversation_id: int,
    to_conversation_id: int,
    ids: Sequence[int] | None = None,
) -> list[int]:
    """Point tasks about a conversation at another one (the inbox joins two customers' threads on a
    merge, and splits them again on its undo; `ids`: only these tasks); returns the ids moved."""
    statement = update(Task).where(Task.conversation_id == from_conversation_id)
    if ids is not None:
        statement = statement.where(Task.id.in_(list(ids)))
    result = await session.execute(
        statement.values(conversation_id=to_conversation_id, updated_at=utcnow())
        .returning(Task.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars().all())
