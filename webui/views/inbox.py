"""The agent workspace: the inbox page and its JSON API. The page is a shell; `static/js/inbox.js` fills
it from the API and the live feed, so pages, API and feed share one set of rules (`inbox.service`)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from channels.model import Channel
from crm_core import field_visibility
from inbox import labels as label_rules
from switchboard import accounts, audit
from switchboard.accounts import CurrentUser
from switchboard.accounts_model import User
from switchboard.audit import AuditAction, Category
from switchboard.errors import N_, Invalid, NotFound
from switchboard.permissions import Action, Role, can
from webui import forms, keys
from webui.security import client_ip, current_user, viewer_of
from webui.templating import render
from webui.views import reply_options

SCOPES = ("all", "mine", "unassigned")
STATUSES = ("open", "pending", "snoozed", "resolved", "any")  # "open" also lists pending and snoozed
MAX_JSON_BODY = 64 * 1024


def _default(value: object) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=_default))


# --- pages ---------------------------------------------------------------------------------------------


async def inbox_page(request: web.Request) -> web.StreamResponse:
    return await _page(request, None)


async def conversation_page(request: web.Request) -> web.StreamResponse:
    """A link to one conversation (from a notification, a colleague): 404 unless the viewer may see it."""
    conversation_id = forms.path_int(request, "id")
    await request.app[keys.INBOX].thread(viewer_of(request), conversation_id, mark_read=False)
    return await _page(request, conversation_id)


async def _page(request: web.Request, open_id: int | None) -> web.StreamResponse:
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db:
        people = _assignable(await accounts.list_users(db), user)
    context = {
        "inbox_config": {
            "user_id": user.id,
            "role": user.role.value,
            "open_id": open_id,
            "people": people,
            "can_pin": can(user.role, Action.ROUTING_MANAGE),
            "channels": [c.value for c in Channel],
        }
    }
    return await render("inbox.html", request, context)


def _assignable(users: list[User], user: CurrentUser) -> list[dict[str, Any]]:
    """Whom this user may hand a conversation to (see `_check_assignee`), for the assign menu and for
    naming the authors of replies."""
    return [
        {"id": u.id, "name": u.full_name or u.username}
        for u in users
        if _may_assign_to(user, u.id, u.role, u.branch_id, u.active)
    ]


def _may_assign_to(user: CurrentUser, target_id: int, role: str, branch_id: int | None, active: bool) -> bool:
    """Agents take or release their own work; supervisors dispatch within their branch; admins anywhere.
    Only active people who can open the inbox can be given a conversation."""
    if not active or not can(role, Action.INBOX_VIEW):
        return False
    if user.role is Role.ADMIN:
        return True
    if user.role is Role.SUPERVISOR:
        return branch_id == user.branch_id
    return target_id == user.id


# --- JSON API ------------------------------------------------------------------------------------------


async def conversations_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/conversations?scope=mine|unassigned|all&status=open|…|any&channel=telegram`."""
    query = request.query
    scope = query.get("scope", "all")
    if scope not in SCOPES:
        raise Invalid(N_("Unknown filter."), field="scope")
    status = query.get("status", "open")
    if status not in STATUSES:
        raise Invalid(N_("Unknown status."), field="status")
    channel = query.get("channel", "")
    if channel and channel not in {c.value for c in Channel}:
        raise Invalid(N_("Unknown channel."), field="channel")
    label = query.get("label", "").strip()
    if label:
        label = label_rules.normalise(label, "label")
    inbox, viewer = request.app[keys.INBOX], viewer_of(request)
    items = await inbox.conversations(
        viewer,
        scope=scope,
        status=None if status == "any" else status,
        channel=channel or None,
        label=label or None,
    )
    await _hide_contact_fields(request, [item["contact"] for item in items])
    return _json({"conversations": items, "unread": await inbox.unread_counts(viewer)})


async def _hide_contact_fields(request: web.Request, cards: list[dict[str, Any]]) -> None:
    """The customer's fields hidden from the reader's role (`crm_core.field_visibility`) leave the inbox's
    answers too; a hidden phone takes the channel addresses with it (on SMS and WhatsApp they are one)."""
    async with request.app[keys.SESSIONS]() as db:
        hidden = await field_visibility.hidden(db, "contact", current_user(request).role)
    if not hidden:
        return
    for card in cards:
        redacted = field_visibility.redact(card, hidden)
        if "phone" in hidden:
            for identity in redacted.get("identities") or []:
                identity["external_id"] = ""
            if card.get("phone") and redacted.get("name") == card["phone"]:  # a customer known by number
                redacted["name"] = f"#{card['id']}"
        card.clear()
        card.update(redacted)


async def thread_api(request: web.Request) -> web.StreamResponse:
    """One conversation with every message of its customer, across channels; opening it marks it read."""
    conversation_id = forms.path_int(request, "id")
    thread = await request.app[keys.INBOX].thread(viewer_of(request), conversation_id)
    if thread.get("contact"):
        await _hide_contact_fields(request, [thread["contact"]])
    return _json(thread)


async def message_create_api(request: web.Request) -> web.StreamResponse:
    """`{"body": "…", "note": false}`: a reply (sent on the customer's last channel unless `channel` /
    `account_id` pick another of their identities) or a private note."""
    conversation_id = forms.path_int(request, "id")
    data = await _json_object(request)
    inbox = request.app[keys.INBOX]
    viewer = viewer_of(request)
    channel, account_id = _string(data, "channel"), _string(data, "account_id")
    template = None
    if data.get("template") is not None:
        target_channel, target_account, _, _ = await inbox.reply_window(
            viewer, conversation_id, channel, account_id
        )
        template, text = await reply_options.resolve_template(
            request, target_channel, target_account, data["template"]
        )
        body = text or _string(data, "body") or ""
    else:
        body = _required_string(data, "body")
    message = await inbox.send(
        viewer,
        conversation_id,
        body,
        note=_boolean(data, "note"),
        channel=channel,
        account_id=account_id,
        template=template,
    )
    return _json({"message": message.as_json()}, status=201)


async def status_api(request: web.Request) -> web.StreamResponse:
    """`{"status": "resolved"}` or `{"status": "snoozed", "snooze_until": "2030-01-31T09:00:00Z"}`."""
    conversation_id = forms.path_int(request, "id")
    data = await _json_object(request)
    status = _required_string(data, "status")
    snooze_until = _moment(data, "snooze_until")
    await request.app[keys.INBOX].set_status(
        viewer_of(request), conversation_id, status, snooze_until=snooze_until
    )
    return _json({"conversation": {"id": conversation_id, "status": status}})


async def assign_api(request: web.Request) -> web.StreamResponse:
    """`{"assignee_id": 7}` or `{"assignee_id": null}` to put it back in the branch's queue."""
    conversation_id = forms.path_int(request, "id")
    data = await _json_object(request)
    if "assignee_id" not in data:
        raise Invalid(N_("This field is required."), field="assignee_id")
    assignee_id = data["assignee_id"]
    if assignee_id is not None and (
        isinstance(assignee_id, bool) or not isinstance(assignee_id, int) or not 0 < assignee_id < 2**31
    ):
        raise Invalid(N_("Choose a person or nobody."), field="assignee_id")
    user = current_user(request)
    if assignee_id is not None:
        await _check_assignee(request, user, assignee_id)
    await request.app[keys.INBOX].assign(viewer_of(request), conversation_id, assignee_id)
    return _json({"conversation": {"id": conversation_id, "assignee_id": assignee_id}})


async def pin_api(request: web.Request) -> web.StreamResponse:
    """`{"agent_id": 7}` pins the conversation to that agent (it waits for them alone), `{"agent_id": null}`
    unpins it; supervisors and admins."""
    conversation_id = forms.path_int(request, "id")
    data = await _json_object(request)
    agent_id = data.get("agent_id")
    if agent_id is not None and (
        isinstance(agent_id, bool) or not isinstance(agent_id, int) or not 0 < agent_id < 2**31
    ):
        raise Invalid(N_("Choose a person or nobody."), field="agent_id")
    user = current_user(request)
    if agent_id is not None:
        await _check_assignee(request, user, agent_id)
    holder = await request.app[keys.INBOX].pin(viewer_of(request), conversation_id, agent_id)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        await audit.record(
            db,
            user.actor(client_ip(request)),
            category=Category.RECORD,
            module="inbox",
            action=AuditAction.UPDATE,
            record_type="conversation",
            record_id=conversation_id,
            changes={"pinned_agent_id": [None, agent_id]},
        )
    conversation = {"id": conversation_id, "pinned_agent_id": agent_id, "assignee_id": holder}
    return _json({"conversation": conversation})


async def _check_assignee(request: web.Request, user: CurrentUser, assignee_id: int) -> None:
    async with request.app[keys.SESSIONS]() as db:
        try:
            target: User | None = await accounts.get_user(db, assignee_id)
        except NotFound:
            target = None
    if target is None or not _may_assign_to(user, target.id, target.role, target.branch_id, target.active):
        raise Invalid(N_("You cannot give this conversation to that person."), field="assignee_id")


# --- reading JSON bodies -------------------------------------------------------------------------------


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object. Unparseable input is the client's bug (400); well-formed JSON with the
    wrong shape in a field is the caller's data (422, naming the field)."""
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_JSON_BODY, actual_size=request.content_length)
    raw = await request.read()
    if len(raw) > MAX_JSON_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_JSON_BODY, actual_size=len(raw))
    try:
        data = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise web.HTTPBadRequest(reason=f"The body is not valid JSON: {_one_line(exc)}") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(reason="The body must be a JSON object")
    return data


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]


def _string(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    return None if value is None else _required_string(data, name)


def _required_string(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        raise Invalid(N_("This field is required."), field=name)
    if not isinstance(value, str):
        raise Invalid(N_("This field must be text."), field=name)
    return value


def _boolean(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise Invalid(N_("This field must be true or false."), field=name)
    return value


def _moment(data: Mapping[str, Any], name: str) -> dt.datetime | None:
    """An ISO 8601 time with its zone: a bare local time means something else in every agent's browser."""
    value = _string(data, name)
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(N_("Give a date and time such as 2030-01-31T09:00:00Z."), field=name) from exc
    if moment.tzinfo is None:
        raise Invalid(N_("Give a date and time such as 2030-01-31T09:00:00Z."), field=name)
    return moment.astimezone(dt.UTC)
