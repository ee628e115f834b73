"""The "My tasks" page: the signed-in person's open tasks and their branch's queue, with Done / Take /
Cancel, as a page (plain forms that redirect back) and as JSON under `/api/v1/tasks`.

Who may act on which task is `crm_core.tasks.may_act` (agents: their own and their branch's queue;
supervisors: their branch; admins: all), checked on the locked row in the transaction that changes it,
which also writes the audit entry.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import tasks
from crm_core.models import Lead
from crm_core.tasks import TaskConflict, TaskForbidden, TaskInvalid, TaskKind, TaskNotFound, TaskView
from inbox.models import Conversation
from inbox.service import visible_to
from switchboard import audit
from switchboard.accounts import CurrentUser
from switchboard.accounts_model import User
from switchboard.audit import AuditAction
from switchboard.errors import N_, DomainError
from switchboard.permissions import Action, Role, can
from webui import forms, i18n, keys
from webui.errors import log_refusal
from webui.security import client_ip, current_user, viewer_of
from webui.templating import render
from webui.views.inbox import _json_object

log = logging.getLogger(__name__)

STATUS_FILTERS = ("open", "done", "cancelled", "any")
ACTIONS = ("done", "cancel", "take", "reopen")
# What the audit log keeps of a task: enough to see who closed or moved it and why.
AUDITED = ("title", "kind", "status", "assignee_id", "branch_id", "due_at", "outcome")


# --- reading input -----------------------------------------------------------------------------------------


def _status_filter(value: str) -> str | None:
    if value not in STATUS_FILTERS:
        raise TaskInvalid(N_("Unknown task status."), field="status")
    return None if value == "any" else value


def _string(data: Mapping[str, Any], name: str, default: str = "") -> str:
    value = data.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise TaskInvalid(N_("This field must be text."), field=name)
    return value


def _due_from_json(data: Mapping[str, Any]) -> dt.datetime | None:
    """ISO 8601 with its zone: a bare local time means something else in every agent's browser."""
    value = _string(data, "due_at").strip()
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise TaskInvalid(N_("Give a date and time such as 2030-01-31T09:00:00Z."), field="due_at")
    return moment


def _due_from_form(data: Mapping[str, Any]) -> dt.datetime | None:
    """The form's `datetime-local` value read in the browser's time zone (`tz`, filled in by the page's
    script; UTC without it)."""
    value = _string(data, "due_at").strip()
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise TaskInvalid(N_("Give a date and time such as 2030-01-31T09:00:00Z."), field="due_at") from None
    if moment.tzinfo is not None:
        return moment
    zone_name = _string(data, "tz").strip() or "UTC"
    try:
        zone: dt.tzinfo = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return moment.replace(tzinfo=zone)


# --- who may see and do what --------------------------------------------------------------------------------


def _check(user: CurrentUser, task: TaskView) -> None:
    tasks.check_may_act(user.role, user.id, user.branch_id, task)


def _may_hold_tasks(role: str, active: bool) -> bool:
    return active and can(role, Action.TASKS_VIEW)


def _may_give_to(user: CurrentUser, target: User) -> bool:
    """Agents make tasks for themselves (or their queue); supervisors for people of their branch;
    admins for anyone who can hold tasks."""
    if not _may_hold_tasks(target.role, target.active):
        return False
    if target.id == user.id or user.role is Role.ADMIN:
        return True
    return user.role is Role.SUPERVISOR and user.branch_id is not None and target.branch_id == user.branch_id


def _may_list(user: CurrentUser, target: User) -> bool:
    if target.id == user.id or user.role is Role.ADMIN:
        return True
    return user.role is Role.SUPERVISOR and user.branch_id is not None and target.branch_id == user.branch_id


async def _people(db: AsyncSession, user: CurrentUser) -> list[User]:
    """Whose tasks this person may list and whom they may give a task to (themselves first)."""
    if user.role is Role.AGENT:
        return []
    people = await db.scalars(
        select(User).where(User.active.is_(True)).order_by(User.full_name, User.username)
    )
    return [p for p in people if p.id != user.id and _may_give_to(user, p)]


async def _target(db: AsyncSession, user: CurrentUser, value: str) -> int | None:
    """`assignee` of a list: "" (the caller with the queue), "me", "unassigned" (the queue only) or a
    person's id. Returns the person whose tasks to list (None: nobody's, the queue only)."""
    if value in ("", "me"):
        return user.id
    if value == "unassigned":
        return None
    person_id = forms.reference({"assignee": value}, "assignee", error=TaskInvalid)
    assert person_id is not None
    if person_id == user.id:
        return user.id
    if user.role is Role.AGENT:
        raise TaskForbidden(N_("You may see only your own tasks and your branch's queue."), field="assignee")
    target = await db.get(User, person_id)
    if target is None:
        raise TaskInvalid(N_("No such person."), field="assignee")
    if not _may_list(user, target):
        raise TaskForbidden(N_("This person is not in your branch."), field="assignee")
    return target.id


async def _listing(
    db: AsyncSession, user: CurrentUser, assignee: str, status: str | None
) -> tuple[int | None, list[TaskView], list[TaskView]]:
    """(whose, their tasks, the queue): the queue is the caller's branch's (every branch's for admins),
    listed unless the filter names one person."""
    target = await _target(db, user, assignee)
    own = await tasks.tasks_for(db, assignee_id=target, status=status) if target is not None else []
    queue: list[TaskView] = []
    if assignee in ("", "unassigned"):
        queue = await tasks.tasks_for(
            db,
            assignee_id=None,
            include_unassigned_branch_id=user.branch_id,
            all_unassigned=user.role is Role.ADMIN,
            status=status,
        )
    return target, own, queue


def task_json(task: TaskView, user: CurrentUser) -> dict[str, Any]:
    return {**task.as_json(), "can_act": tasks.may_act(user.role, user.id, user.branch_id, task)}


# --- changing a task ------------------------------------------------------------------------------------


def _snapshot(task: TaskView) -> dict[str, Any]:
    return {name: getattr(task, name) for name in AUDITED}


async def _act(request: web.Request, task_id: int, action: str, outcome: str | None) -> TaskView:
    """Done / cancel / take / reopen on the locked row, checked against the caller, audited together."""
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        task = await tasks.get_task(db, task_id, lock=True)
        if task is None:
            raise TaskNotFound(N_("No such task."))
        _check(user, task)
        if action == "done":
            after = await tasks.complete_task(db, task_id, by_user_id=user.id, outcome=outcome)
        elif action == "cancel":
            after = await tasks.cancel_task(db, task_id, by_user_id=user.id, outcome=outcome)
        elif action == "reopen":
            after = await tasks.reopen(db, task_id)
        else:
            if task.assignee_id not in (None, user.id):
                raise TaskConflict(N_("Someone else already has this task."), field="assignee_id")
            after = await tasks.reassign(db, task_id, user.id)
        changes = audit.diff(_snapshot(task), _snapshot(after))
        if changes:
            await audit.record_change(
                db,
                user.actor(client_ip(request)),
                module="tasks",
                action=AuditAction.UPDATE,
                record_type="task",
                record_id=task_id,
                changes=changes,
                detail=action,
            )
    return after


async def _create(request: web.Request, data: Mapping[str, Any], due_at: dt.datetime | None) -> TaskView:
    """A task the caller makes by hand (a follow-up from the inbox): for themselves unless they name
    someone they may give it to, or for the queue with `assignee_id` null; linked only to conversations
    and customers they can see."""
    user = current_user(request)
    title = _string(data, "title")
    kind = _string(data, "kind", TaskKind.FOLLOW_UP.value) or TaskKind.FOLLOW_UP.value
    note = _string(data, "note")
    assignee_id: int | None = user.id
    if "assignee_id" in data:
        assignee_id = forms.reference(data, "assignee_id", error=TaskInvalid)
    conversation_id = forms.reference(data, "conversation_id", error=TaskInvalid)
    contact_id = forms.reference(data, "contact_id", error=TaskInvalid)
    lead_id = forms.reference(data, "lead_id", error=TaskInvalid)
    branch_id = None
    async with request.app[keys.SESSIONS]() as db, db.begin():
        if assignee_id is not None and assignee_id != user.id:
            target = await db.get(User, assignee_id)
            if target is None:
                raise TaskInvalid(N_("No such person."), field="assignee_id")
            if not _may_give_to(user, target):
                raise TaskForbidden(N_("You cannot give a task to that person."), field="assignee_id")
        if conversation_id is not None:
            found = (
                await db.execute(
                    select(Conversation.contact_id, Conversation.branch_id).where(
                        Conversation.id == conversation_id, visible_to(viewer_of(request))
                    )
                )
            ).first()
            if found is None:
                raise TaskInvalid(N_("No such conversation."), field="conversation_id")
            if contact_id is not None and contact_id != found.contact_id:
                raise TaskInvalid(N_("This conversation is with another contact."), field="contact_id")
            contact_id, branch_id = found.contact_id, found.branch_id
        if contact_id is None and lead_id is not None:
            contact_id = await db.scalar(select(Lead.contact_id).where(Lead.id == lead_id))
            if contact_id is None:
                raise TaskInvalid(N_("No such lead."), field="lead_id")
        if (
            contact_id is not None
            and conversation_id is None
            and not await request.app[keys.INBOX].can_see_contact(viewer_of(request), contact_id)
        ):
            raise TaskInvalid(N_("No such contact."), field="contact_id")
        if assignee_id is None and branch_id is None:
            branch_id = user.branch_id  # the caller's own queue
        task = await tasks.create_task(
            db,
            title=title,
            kind=kind,
            assignee_id=assignee_id,
            branch_id=branch_id if assignee_id is None else None,
            due_at=due_at,
            contact_id=contact_id,
            lead_id=lead_id,
            conversation_id=conversation_id,
            note=note,
            created_by_id=user.id,
        )
        await audit.record_change(
            db,
            user.actor(client_ip(request)),
            module="tasks",
            action=AuditAction.CREATE,
            record_type="task",
            record_id=task.id,
            changes=audit.diff({}, _snapshot(task)),
        )
    return task


# --- the page and its forms -------------------------------------------------------------------------------


async def _page(
    request: web.Request, *, error: DomainError | None = None, values: Any = None
) -> web.Response:
    user = current_user(request)
    query = request.query
    status = _status_filter(query.get("status", "open"))
    assignee = query.get("assignee", "")
    async with request.app[keys.SESSIONS]() as db:
        target, own, queue = await _listing(db, user, assignee, status)
        people = await _people(db, user)
    names = {p.id: p.full_name or p.username for p in people}
    context = {
        "own": own,
        "queue": queue,
        "may": {t.id: tasks.may_act(user.role, user.id, user.branch_id, t) for t in [*own, *queue]},
        "people": people,
        "target": target,
        "target_name": None if target in (None, user.id) else names.get(target, f"#{target}"),
        "assignee": assignee,
        "status": query.get("status", "open"),
        "statuses": STATUS_FILTERS,
        "kinds": [k.value for k in TaskKind],
        "show_queue": assignee in ("", "unassigned"),
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
        "values": values or {},
        "here": request.path_qs,
    }
    return await render("tasks.html", request, context, status=error.status if error else 200)


async def tasks_page(request: web.Request) -> web.StreamResponse:
    """`GET /tasks?assignee=&status=`: mine and my branch's queue; supervisors and admins pick a person."""
    return await _page(request)


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _back(form: Mapping[str, str]) -> str:
    target = forms.safe_next(form.get("next"), "/tasks")
    return target if target.startswith("/tasks") else "/tasks"


async def task_create_form(request: web.Request) -> web.StreamResponse:
    """`POST /tasks` from the page's form: `assignee_id` "" is the caller, "queue" the branch's queue."""
    form = await _form(request)
    data: dict[str, Any] = dict(form)
    if form.get("assignee_id") in (None, ""):
        data.pop("assignee_id", None)
    elif form["assignee_id"] == "queue":
        data["assignee_id"] = None
    try:
        task = await _create(request, data, _due_from_form(data))
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _page(request, error=exc, values=form)
    await forms.flash(request, i18n.gettext("Task “%(title)s” added.", title=task.title))
    raise web.HTTPFound(_back(form))


async def _action_form(request: web.Request, action: str) -> web.StreamResponse:
    task_id = forms.path_int(request, "id")
    form = await _form(request)
    outcome = _string(form, "outcome").strip() or None
    try:
        task = await _act(request, task_id, action, outcome)
    except (TaskForbidden, TaskNotFound):
        raise  # the error page says it
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _page(request, error=exc)
    messages = {
        "done": N_("Task “%(title)s” is done."),
        "cancel": N_("Task “%(title)s” was cancelled."),
        "take": N_("Task “%(title)s” is yours now."),
        "reopen": N_("Task “%(title)s” is open again."),
    }
    await forms.flash(request, i18n.gettext(messages[action], title=task.title))
    raise web.HTTPFound(_back(form))


async def task_done_form(request: web.Request) -> web.StreamResponse:
    return await _action_form(request, "done")


async def task_cancel_form(request: web.Request) -> web.StreamResponse:
    return await _action_form(request, "cancel")


async def task_take_form(request: web.Request) -> web.StreamResponse:
    return await _action_form(request, "take")


async def task_reopen_form(request: web.Request) -> web.StreamResponse:
    return await _action_form(request, "reopen")


# --- JSON API ---------------------------------------------------------------------------------------------


async def tasks_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/tasks?status=open|done|cancelled|any&assignee=me|unassigned|<id>`; without
    `assignee`: the caller's tasks and their branch's queue (every unassigned task for admins)."""
    user = current_user(request)
    status = _status_filter(request.query.get("status", "open"))
    assignee = request.query.get("assignee", "")
    async with request.app[keys.SESSIONS]() as db:
        _, own, queue = await _listing(db, user, assignee, status)
    return web.json_response({"tasks": [task_json(t, user) for t in [*own, *queue]]})


async def task_create_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/tasks {"title", "kind", "due_at": "2030-01-31T09:00:00Z", "assignee_id",
    "conversation_id", "contact_id", "lead_id", "note"}`: `assignee_id` absent is the caller, null the
    queue."""
    data = await _json_object(request)
    task = await _create(request, data, _due_from_json(data))
    return web.json_response({"task": task_json(task, current_user(request))}, status=201)


async def _optional_json(request: web.Request) -> dict[str, Any]:
    """The action endpoints take an optional body (`{"outcome": "…"}`, sent as application/json; any
    other body, such as a form, is ignored)."""
    if not request.can_read_body or request.content_type != "application/json":
        return {}
    return await _json_object(request)


async def _action_api(request: web.Request, action: str) -> web.StreamResponse:
    task_id = forms.path_int(request, "id")
    data = await _optional_json(request)
    outcome = _string(data, "outcome").strip() or None
    task = await _act(request, task_id, action, outcome)
    return web.json_response({"task": task_json(task, current_user(request))})


async def task_done_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/tasks/{id}/done {"outcome": "…"}` (the body is optional)."""
    return await _action_api(request, "done")


async def task_cancel_api(request: web.Request) -> web.StreamResponse:
    return await _action_api(request, "cancel")


async def task_take_api(request: web.Request) -> web.StreamResponse:
    """An unassigned task of the caller's queue becomes theirs (409 when someone was quicker)."""
    return await _action_api(request, "take")


async def task_reopen_api(request: web.Request) -> web.StreamResponse:
    return await _action_api(request, "reopen")
