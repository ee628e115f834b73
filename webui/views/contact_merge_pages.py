"""The merge screen and its undo: two contacts side by side with a choice per field, what the merge will
move, the merge itself (`inbox.merge.merge_customers`), the page of one merge with its undo button, the
recent merges, and the same as JSON.

Visibility is the contacts room's rule (`crm_core.profile.visible_contacts`), checked here for both
contacts; the merge and its undo then run with the room's authority. Who may undo: supervisors and admins
any merge they can see, others their own (`crm_core.merge_undo.may_undo`), within `merge_undo_days`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import custom_fields, field_visibility, merge_fields, merge_undo, profile
from crm_core.merge_undo import MergeView
from crm_core.models import Contact
from inbox import merge as inbox_merge
from inbox.service import Viewer
from switchboard.accounts import CurrentUser
from switchboard.db import utcnow
from switchboard.errors import N_, Forbidden, Invalid, NotFound
from switchboard.permissions import Role
from webui import forms, i18n, keys
from webui.security import client_ip, current_user
from webui.templating import render

PICK = "pick."  # a field's choice in the merge form: `pick.<field>` = keep | merge
MIN_LISTED = dt.timedelta(days=7)  # the recent merges page looks back at least this far
# The summary's kinds, in the order the screen lists them, with their labels.
MOVES: tuple[tuple[str, str], ...] = (
    ("conversations", N_("conversations")),
    ("messages", N_("messages")),
    ("calls", N_("calls")),
    ("contact_identities", N_("channel addresses")),
    ("leads", N_("leads")),
    ("deals", N_("deals")),
    ("tasks", N_("tasks")),
    ("contact_phones", N_("phones")),
    ("contact_emails", N_("e-mails")),
    ("contact_companies", N_("company links")),
    ("contact_relations", N_("relations")),
)


def _visible(user: CurrentUser) -> Any:
    return profile.visible_contacts(user.role, user.branch_id, user.id)


def _window(request: web.Request) -> dt.timedelta:
    return dt.timedelta(days=request.app[keys.SETTINGS].merge_undo_days)


def _pair(data: Mapping[str, Any]) -> tuple[int, int]:
    keep = forms.integer(data, "keep", minimum=1)
    other = forms.integer(data, "merge", minimum=1)
    if keep is None or other is None:
        raise Invalid(N_("Choose the contact to merge."), field="merge")
    if keep == other:
        raise Invalid(N_("A contact cannot be merged with itself."), field="merge")
    return keep, other


async def _seen(db: AsyncSession, user: CurrentUser, contact_id: int) -> profile.Profile:
    """The contact's profile, or "not found" when it is missing or hidden (the same answer)."""
    found = (
        await profile.profile_of(db, contact_id)
        if await profile.can_see(db, _visible(user), contact_id)
        else None
    )
    if found is None:
        raise NotFound(N_("No such contact."))
    return found


_MERGE_NAMES = {"name": ("first_name", "last_name"), "branch": ("branch_id",), "owner": ("owner_id",)}


def merge_names(hidden: frozenset[str]) -> frozenset[str]:
    """Hidden list fields (`crm_core.field_visibility`) as the merge screen's choice names."""
    return frozenset(n for name in hidden for n in _MERGE_NAMES.get(name, (name,)))


async def merge_page(request: web.Request) -> web.StreamResponse:
    """`GET /contacts/merge?keep=&merge=`: both contacts' values with a choice per field, and what moves."""
    user = current_user(request)
    keep_id, merge_id = _pair(request.query)
    async with request.app[keys.SESSIONS]() as db:
        kept = await _seen(db, user, keep_id)
        merged = await _seen(db, user, merge_id)
        defs = await custom_fields.definitions(db, "contact")
        rows = await merge_fields.compare(db, kept.contact, merged.contact, defs)
        moves = await inbox_merge.what_moves(db, merge_id)
        hidden_fields = await field_visibility.hidden(db, "contact", user.role)
    hidden = merge_names(hidden_fields)
    rows = [r for r in rows if r.name not in hidden]  # hidden fields keep the default choice, unseen
    summary = [(moves[kind], label) for kind, label in MOVES if moves.get(kind)]
    context = {
        "kept": kept,
        "merged": merged,
        "rows": rows,
        "summary": summary,
        "pick": PICK,
        "label": lambda c: field_visibility.contact_label_of(c, hidden_fields),
    }
    return await render("contacts/merge.html", request, context)


def _choices(form: Mapping[str, Any]) -> dict[str, Any]:
    return {name.removeprefix(PICK): side for name, side in form.items() if name.startswith(PICK)}


async def _merge(
    request: web.Request, keep_id: int, merge_id: int, choices: Any
) -> inbox_merge.CustomersMerged:
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db:
        await _seen(db, user, keep_id)
        await _seen(db, user, merge_id)
    viewer = Viewer(user.id, Role.ADMIN, user.branch_id)
    return await inbox_merge.merge_customers(
        request.app[keys.INBOX], viewer, user.actor(client_ip(request)), keep_id, merge_id, choices=choices
    )


async def merge_form(request: web.Request) -> web.StreamResponse:
    """`POST /contacts/merge` (keep, merge, pick.<field>): the merge, then its page (with the undo)."""
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    keep_id, merge_id = _pair(form)
    result = await _merge(request, keep_id, merge_id, _choices(form))
    await forms.flash(request, i18n.gettext("Contacts merged."))
    raise web.HTTPFound(f"/contacts/merges/{result.merged.record_id}")


async def _visible_merge(db: AsyncSession, user: CurrentUser, record_id: int) -> MergeView:
    """A merge whose kept contact the user may see (admins: every merge); else "not found"."""
    hidden = await field_visibility.hidden(db, "contact", user.role)
    view = await merge_undo.get_merge(db, record_id, hidden)
    if view is None:
        raise NotFound(N_("No such merge."))
    if user.role is not Role.ADMIN and not await profile.can_see(db, _visible(user), view.kept_id):
        raise NotFound(N_("No such merge."))
    return view


def _may_undo(user: CurrentUser, view: MergeView, window: dt.timedelta) -> bool:
    return view.undoable(window) and merge_undo.may_undo(user.role, user.id, view.actor_id)


async def merge_detail_page(request: web.Request) -> web.StreamResponse:
    """`GET /contacts/merges/{id}`: who merged whom when, and the undo while it is possible."""
    user = current_user(request)
    window = _window(request)
    async with request.app[keys.SESSIONS]() as db:
        view = await _visible_merge(db, user, forms.path_int(request, "id"))
        kept_exists = await db.get(Contact, view.kept_id) is not None
    context = {
        "m": view,
        "undo_until": view.undo_until(window),
        "may_undo": _may_undo(user, view, window),
        "kept_exists": kept_exists,
    }
    return await render("contacts/merge_detail.html", request, context)


async def _recent(db: AsyncSession, user: CurrentUser, window: dt.timedelta) -> list[MergeView]:
    mine_only = user.role not in (Role.ADMIN, Role.SUPERVISOR)
    return await merge_undo.recent_merges(
        db,
        visible=_visible(user),
        since=utcnow() - max(window, MIN_LISTED),
        merged_by=user.id if mine_only else None,
        limit=100,
        hidden=await field_visibility.hidden(db, "contact", user.role),
    )


async def merges_page(request: web.Request) -> web.StreamResponse:
    """`GET /contacts/merges`: the recent merges the user may see (others: their own), newest first."""
    user = current_user(request)
    window = _window(request)
    async with request.app[keys.SESSIONS]() as db:
        merges = await _recent(db, user, window)
    rows = [(m, _may_undo(user, m, window), m.undo_until(window)) for m in merges]
    return await render("contacts/merges.html", request, {"rows": rows})


async def merges_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/contact-merges`."""
    user = current_user(request)
    window = _window(request)
    async with request.app[keys.SESSIONS]() as db:
        merges = await _recent(db, user, window)
    return web.json_response(
        {"merges": [{**m.as_json(window), "may_undo": _may_undo(user, m, window)} for m in merges]}
    )


async def _undo(request: web.Request) -> merge_undo.UndoResult:
    user = current_user(request)
    window = _window(request)
    record_id = forms.path_int(request, "id")
    async with request.app[keys.SESSIONS]() as db:
        view = await _visible_merge(db, user, record_id)
    if not merge_undo.may_undo(user.role, user.id, view.actor_id):
        raise Forbidden(N_("Only a supervisor or the person who merged may undo this merge."))
    return await inbox_merge.undo_customers_merge(
        request.app[keys.INBOX], user.actor(client_ip(request)), record_id, window=window
    )


async def merge_undo_form(request: web.Request) -> web.StreamResponse:
    """`POST /contacts/merges/{id}/undo`."""
    result = await _undo(request)
    if result.complete:
        await forms.flash(request, i18n.gettext("The merge is undone: the two contacts are apart again."))
    else:
        await forms.flash(
            request,
            i18n.gettext("The merge is undone, but not everything could be put back: see below."),
            "warning",
        )
    raise web.HTTPFound(f"/contacts/merges/{result.record_id}")


async def merge_undo_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/contact-merges/{id}/undo`: the undo's report."""
    return web.json_response({"undo": (await _undo(request)).as_json()})
