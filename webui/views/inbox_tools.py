"""The inbox's tools: canned replies (management page and the reply box's `/shortcut` look-up), labels,
transfers and the notification bell. Rules live in the inbox room (`inbox.canned`, `inbox.labels`,
`inbox.transfer`, `inbox.notifications`); these handlers only read input and shape answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from sqlalchemy import select

from crm_core.models import Contact
from inbox import canned, labels, notifications, transfer
from inbox.models import Conversation
from inbox.service import visible_to
from switchboard import accounts
from switchboard.accounts_model import Branch, User
from switchboard.errors import N_, DomainError, Invalid, NotFound
from switchboard.permissions import Action, Role, can
from webui import forms, i18n, keys
from webui.security import client_ip, current_user, viewer_of
from webui.templating import render
from webui.views.inbox import _json, _json_object

MAX_ID = 2**31


def _id_or_none(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_ID:
        raise Invalid(N_("Enter a whole number."), field=name)
    return value


# --- canned replies: the management page ---------------------------------------------------------------


async def _canned_page(
    request: web.Request, *, error: DomainError | None = None, values: Mapping[str, str] | None = None
) -> web.Response:
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db:
        replies = await canned.manageable(db, user.role, user.branch_id)
        branches = await accounts.list_branches(db)
    if user.role is not Role.ADMIN:
        branches = [b for b in branches if b.id == user.branch_id]
    names = {b.id: b.name for b in branches}
    context = {
        "replies": replies,
        "branches": branches,
        "branch_names": names,
        "may_share": user.role is Role.ADMIN,
        "placeholders": canned.PLACEHOLDERS,
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
        "values": dict(values or {}),
    }
    return await render("inbox_canned.html", request, context, status=error.status if error else 200)


async def canned_page(request: web.Request) -> web.StreamResponse:
    return await _canned_page(request)


def _canned_input(form: Mapping[str, Any]) -> canned.CannedInput:
    return canned.CannedInput(
        shortcut=forms.text(form, "shortcut", max_len=40, required=True),
        title=forms.text(form, "title", max_len=canned.MAX_TITLE, required=True),
        body=forms.text(form, "body", max_len=canned.MAX_BODY, required=True),
        language=forms.text(form, "language", max_len=5) or None,
        branch_id=forms.integer(form, "branch_id", minimum=1),
    )


def _form_values(form: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str) and not k.startswith("_")}


async def canned_create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    user = current_user(request)
    try:
        data = _canned_input(form)
        async with request.app[keys.SESSIONS]() as db, db.begin():
            reply = await canned.create(db, user.actor(client_ip(request)), user.role, user.branch_id, data)
    except DomainError as exc:
        return await _canned_page(request, error=exc, values=_form_values(form))
    await forms.flash(request, i18n.gettext("Canned reply /%(shortcut)s saved.", shortcut=reply.shortcut))
    raise web.HTTPFound("/inbox/canned")


async def canned_update(request: web.Request) -> web.StreamResponse:
    reply_id = forms.path_int(request, "id")
    form = await request.post()
    user = current_user(request)
    try:
        data = _canned_input(form)
        async with request.app[keys.SESSIONS]() as db, db.begin():
            reply = await canned.update(
                db, user.actor(client_ip(request)), user.role, user.branch_id, reply_id, data
            )
    except NotFound:
        raise
    except DomainError as exc:
        return await _canned_page(request, error=exc, values={"edit_id": str(reply_id)})
    await forms.flash(request, i18n.gettext("Canned reply /%(shortcut)s saved.", shortcut=reply.shortcut))
    raise web.HTTPFound("/inbox/canned")


async def canned_delete(request: web.Request) -> web.StreamResponse:
    reply_id = forms.path_int(request, "id")
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        await canned.delete(db, user.actor(client_ip(request)), user.role, user.branch_id, reply_id)
    await forms.flash(request, i18n.gettext("Canned reply deleted."))
    raise web.HTTPFound("/inbox/canned")


# --- canned replies: the API ---------------------------------------------------------------------------


async def canned_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/canned?q=<shortcut prefix>&conversation_id=<id>`: the replies the caller may use,
    their placeholders filled for that conversation's customer (`body`), the raw text in `template`."""
    query = request.query
    prefix = query.get("q", "").strip().lower().lstrip("/")
    if prefix and not canned.SHORTCUT_RE.fullmatch(prefix):
        raise Invalid(N_("Use 1 to 30 lowercase letters, digits, - or _ for the shortcut."), field="q")
    raw_id = query.get("conversation_id", "")
    conversation_id = None
    if raw_id:
        if not raw_id.isdigit() or not 0 < int(raw_id) < MAX_ID:
            raise Invalid(N_("Enter a whole number."), field="conversation_id")
        conversation_id = int(raw_id)
    user, viewer = current_user(request), viewer_of(request)
    async with request.app[keys.SESSIONS]() as db:
        contact = None
        if conversation_id is not None:
            contact = await db.scalar(
                select(Contact)
                .join(Conversation, Conversation.contact_id == Contact.id)
                .where(Conversation.id == conversation_id, visible_to(viewer))
            )
            if contact is None:
                raise NotFound(N_("No such conversation."))
        replies = await canned.for_branch(db, user.branch_id, prefix=prefix)
    return _json(
        {
            "replies": [
                {**canned.as_json(r), "template": r.body, "body": canned.render(r, contact, user)}
                for r in replies
            ]
        }
    )


async def canned_create_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/canned {"shortcut", "title", "body", "language"?, "branch_id"?}`."""
    data = await _json_object(request)
    user = current_user(request)
    fields: dict[str, str] = {}
    for name in ("shortcut", "title", "body", "language"):
        value = data.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise Invalid(N_("This field must be text."), field=name)
        fields[name] = value
    payload = canned.CannedInput(
        shortcut=fields["shortcut"],
        title=fields["title"],
        body=fields["body"],
        language=fields["language"] or None,
        branch_id=_id_or_none(data, "branch_id"),
    )
    async with request.app[keys.SESSIONS]() as db, db.begin():
        reply = await canned.create(db, user.actor(client_ip(request)), user.role, user.branch_id, payload)
        answer = canned.as_json(reply)
    return _json({"reply": answer}, status=201)


# --- labels and transfers ------------------------------------------------------------------------------


async def labels_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/conversations/{id}/labels {"add": ["credit"], "remove": ["new"]}`."""
    conversation_id = forms.path_int(request, "id")
    data = await _json_object(request)
    add = labels.normalise_all(data.get("add"), "add")
    remove = labels.normalise_all(data.get("remove"), "remove")
    if not add and not remove:
        raise Invalid(N_("Give a list of labels."), field="add")
    now = await labels.change_labels(
        request.app[keys.INBOX], viewer_of(request), conversation_id, add=add, remove=remove
    )
    return _json({"conversation": {"id": conversation_id, "labels": now}})


async def transfer_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/conversations/{id}/transfer {"assignee_id": 7}` or `{"branch_id": 2}`."""
    conversation_id = forms.path_int(request, "id")
    data = await _json_object(request)
    assignee_id = _id_or_none(data, "assignee_id")
    branch_id = _id_or_none(data, "branch_id")
    user = current_user(request)
    done = await transfer.transfer(
        request.app[keys.INBOX],
        viewer_of(request),
        user.actor(client_ip(request)),
        conversation_id,
        assignee_id=assignee_id,
        branch_id=branch_id,
    )
    return _json(
        {
            "conversation": {
                "id": done.conversation_id,
                "assignee_id": done.assignee_id,
                "branch_id": done.branch_id,
            }
        }
    )


async def transfer_targets_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/transfer-targets`: the people (active, with the inbox) and branches one may transfer
    a conversation to."""
    async with request.app[keys.SESSIONS]() as db:
        users = list(
            await db.scalars(select(User).where(User.active.is_(True)).order_by(User.full_name, User.id))
        )
        branches = list(await db.scalars(select(Branch).where(Branch.active.is_(True)).order_by(Branch.name)))
    return _json(
        {
            "people": [
                {"id": u.id, "name": u.full_name or u.username, "branch_id": u.branch_id}
                for u in users
                if can(u.role, Action.INBOX_VIEW)
            ],
            "branches": [{"id": b.id, "name": b.name} for b in branches],
        }
    )


# --- notifications -------------------------------------------------------------------------------------


async def notifications_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/notifications`: the caller's latest notifications and the unread count."""
    async with request.app[keys.SESSIONS]() as db:
        data = await notifications.recent(db, current_user(request).id)
    return _json(data)


async def notifications_read_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/notifications/read {"ids": [1, 2]}`, or `{}` for all of them."""
    data = await _json_object(request)
    raw = data.get("ids")
    ids: list[int] | None = None
    if raw is not None:
        if not isinstance(raw, list) or len(raw) > 500:
            raise Invalid(N_("Give a list of notification ids."), field="ids")
        for value in raw:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_ID:
                raise Invalid(N_("Give a list of notification ids."), field="ids")
        ids = list(raw)
    user_id = current_user(request).id
    async with request.app[keys.SESSIONS]() as db, db.begin():
        changed = await notifications.mark_read(db, user_id, ids)
        unread = (await notifications.recent(db, user_id, limit=0))["unread"]
    return _json({"marked": changed, "unread": unread})
