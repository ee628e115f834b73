"""The contacts room: the list, the contact page (profile form + timeline), the duplicates page and its
merge screen, companies, and the contacts API. Who sees which contact: `crm_core.profile.visible_contacts`
(admins all, others their branch's, their own and the not yet assigned).

Saving a contact that is, or looks like, another stops with the matches ("This looks like …") and saves
only when the user confirms (`confirm_duplicate=1` in a form, `"confirm_duplicate": true` in the API, which
otherwise answers 409 with the matches)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import custom_fields, duplicates, field_visibility, list_views, profile
from crm_core import timeline as crm_timeline
from crm_core.contacts import DuplicatesFound
from crm_core.contacts_model import Company, DuplicateCandidate
from inbox import timeline as inbox_timeline
from switchboard.accounts import CurrentUser
from switchboard.accounts_model import Branch, User
from switchboard.errors import N_, DomainError, Invalid, NotFound
from switchboard.permissions import Action, Role, can
from webui import forms, i18n, keys
from webui.errors import log_refusal
from webui.security import client_ip, current_user
from webui.templating import render
from webui.views import lists
from webui.views.field_visibility import form_keys

log = logging.getLogger(__name__)

MAX_JSON_BODY = 32 * 1024
FORM_PHONES = 4
FORM_EMAILS = 3
FORM_LINKS = 3
TIMELINE_PAGE = 20
MAX_TIMELINE_PAGES = 20


def _visible(user: CurrentUser) -> Any:
    return profile.visible_contacts(user.role, user.branch_id, user.id)


def _may_edit(user: CurrentUser) -> bool:
    return can(user.role, Action.CONTACTS_EDIT)


async def _visible_contact(db: AsyncSession, user: CurrentUser, contact_id: int) -> profile.Profile:
    """The contact's profile, or "not found" when it is missing or hidden (the same answer)."""
    if not await profile.can_see(db, _visible(user), contact_id):
        raise NotFound(N_("No such contact."))
    found = await profile.profile_of(db, contact_id)
    if found is None:
        raise NotFound(N_("No such contact."))
    return found


def _check_assignment(user: CurrentUser, p: profile.ProfileInput, current_branch: int | None = None) -> None:
    """Non-admins keep contacts in their own branch (or leave the branch empty)."""
    if user.role is Role.ADMIN:
        return
    if p.branch_id not in (None, user.branch_id, current_branch):
        raise Invalid(N_("Choose one from the list."), field="branch_id")


async def _check_links_visible(db: AsyncSession, user: CurrentUser, p: profile.ProfileInput) -> None:
    for related_id, _ in p.relations:
        if not await profile.can_see(db, _visible(user), related_id):
            raise Invalid(N_("No such contact."), field="relations")
    if p.owner_id is not None:
        owner = await db.get(User, p.owner_id)
        if owner is None or (user.role is not Role.ADMIN and owner.branch_id != user.branch_id):
            raise Invalid(N_("Choose one from the list."), field="owner_id")


# --- hidden fields ------------------------------------------------------------------------------------------

# The profile's keys in the form and the API body that each hideable field covers.
_PROFILE_KEYS = {
    "name": ("first_name", "last_name"),
    "first_name": ("first_name",),
    "last_name": ("last_name",),
    "phone": ("phones",),
    "email": ("emails",),
    "idnp": ("idnp",),
    "birth_date": ("birth_date",),
    "address": ("address",),
    "branch": ("branch_id",),
    "owner": ("owner_id",),
    "tags": ("tags",),
}


async def _hidden(db: AsyncSession, user: CurrentUser) -> frozenset[str]:
    """The contact fields the caller's role may not see (`crm_core.field_visibility`); none for admins."""
    return await field_visibility.hidden(db, "contact", user.role)


def _profile_keys(hidden: frozenset[str]) -> set[str]:
    return {key for name in hidden for key in _PROFILE_KEYS.get(name, ())}


def _keep_hidden_form(
    flat: dict[str, str], stored: profile.Profile, hidden: frozenset[str]
) -> dict[str, str]:
    """A form without the inputs of hidden fields keeps their stored values (a save replaces the whole
    profile: what the caller cannot see must not be wiped by it)."""
    keys = _profile_keys(hidden)
    if not keys:
        return flat
    stored_values = _values_of(stored)
    out = dict(flat)
    for name, value in stored_values.items():
        base = name.rsplit("_", 1)[0] if name[-1:].isdigit() else name
        group = {"phone": "phones", "phone_label": "phones", "email": "emails"}.get(base, base)
        if group in keys and isinstance(value, str):
            out[name] = value
    for i in range(FORM_PHONES):  # a stored list shorter than the form: the extra inputs stay empty
        if "phones" in keys and f"phone_{i}" not in stored_values:
            out.pop(f"phone_{i}", None)
            out.pop(f"phone_label_{i}", None)
    for i in range(FORM_EMAILS):
        if "emails" in keys and f"email_{i}" not in stored_values:
            out.pop(f"email_{i}", None)
    return out


def _keep_hidden_body(
    body: dict[str, Any], stored: profile.Profile, hidden: frozenset[str]
) -> dict[str, Any]:
    """An API body may not set what the caller cannot see; those keys keep their stored values."""
    keys = _profile_keys(hidden)
    refused = sorted(k for k in form_keys(hidden) | keys if k in body)
    if refused:
        raise Invalid(N_("Unknown field."), field=refused[0])
    forms.refuse_hidden_custom(body.get("custom"), hidden)
    current = stored.as_json()
    return {**body, **{k: current[k] for k in keys if k in current}}


def _contact_json(found: profile.Profile, hidden: frozenset[str]) -> dict[str, Any]:
    return field_visibility.redact(found.as_json(), hidden)


# --- the form -----------------------------------------------------------------------------------------------


def _form_data(form: Mapping[str, Any], consents: list[str]) -> dict[str, Any]:
    """A form's flat fields as the shape `profile.parse_profile` reads (the API's JSON shape)."""

    def value(name: str) -> str:
        raw = form.get(name, "")
        return raw if isinstance(raw, str) else ""

    return {
        "first_name": value("first_name"),
        "last_name": value("last_name"),
        "phones": [
            {"number": value(f"phone_{i}"), "label": value(f"phone_label_{i}")}
            for i in range(FORM_PHONES)
            if value(f"phone_{i}").strip()
        ],
        "emails": [value(f"email_{i}") for i in range(FORM_EMAILS) if value(f"email_{i}").strip()],
        "idnp": value("idnp"),
        "birth_date": value("birth_date"),
        "address": value("address"),
        "branch_id": value("branch_id"),
        "owner_id": value("owner_id"),
        "tags": value("tags"),
        "consents": consents,
        "companies": [
            {"company_id": value(f"company_{i}"), "role": value(f"company_role_{i}")}
            for i in range(FORM_LINKS)
            if value(f"company_{i}")
        ],
        "relations": [
            {"contact_id": value(f"related_{i}").lstrip("#"), "kind": value(f"relation_kind_{i}")}
            for i in range(FORM_LINKS)
            if value(f"related_{i}").strip()
        ],
    }


def _values_of(p: profile.Profile) -> dict[str, Any]:
    """A stored profile as the form's flat fields."""
    c = p.contact
    values: dict[str, Any] = {
        "first_name": c.first_name,
        "last_name": c.last_name,
        "idnp": c.idnp or "",
        "birth_date": c.birth_date.isoformat() if c.birth_date else "",
        "address": c.address,
        "branch_id": str(c.branch_id or ""),
        "owner_id": str(c.owner_id or ""),
        "tags": ", ".join(c.tags or []),
        "consents": [k for k, v in (c.consents or {}).items() if v],
        "custom": dict(c.custom or {}),
    }
    for i, phone in enumerate(p.phones[:FORM_PHONES]):
        values[f"phone_{i}"], values[f"phone_label_{i}"] = phone.e164, phone.label
    for i, email in enumerate(p.emails[:FORM_EMAILS]):
        values[f"email_{i}"] = email
    for i, company in enumerate(p.companies[:FORM_LINKS]):
        values[f"company_{i}"], values[f"company_role_{i}"] = str(company.id), company.role
    for i, relation in enumerate(p.relations[:FORM_LINKS]):
        values[f"related_{i}"], values[f"relation_kind_{i}"] = str(relation.id), relation.role
    return values


async def _choices(db: AsyncSession, user: CurrentUser) -> dict[str, Any]:
    branches = list(await db.scalars(select(Branch).where(Branch.active.is_(True)).order_by(Branch.name)))
    people = select(User).where(
        User.active.is_(True), User.role.in_([Role.AGENT.value, Role.SUPERVISOR.value])
    )
    if user.role is not Role.ADMIN:
        branches = [b for b in branches if b.id == user.branch_id]
        people = people.where(User.branch_id == user.branch_id)
    companies = await profile.list_companies(db, profile.visible_companies(user.role, user.branch_id))
    return {
        "branches": branches,
        "owners": list(await db.scalars(people.order_by(User.full_name, User.username))),
        "companies": companies,
        "consent_channels": profile.CONSENT_CHANNELS,
        "relation_kinds": profile.RELATION_KINDS,
        "form_phones": FORM_PHONES,
        "form_emails": FORM_EMAILS,
        "form_links": FORM_LINKS,
    }


async def _timeline(
    db: AsyncSession, contact_id: int, page: int, hidden: frozenset[str] = frozenset()
) -> tuple[list[dict[str, Any]], bool]:
    """Messages, calls, tasks and field changes in one feed, newest first: each source gives its newest
    `page * size + 1`, merged, and the page is cut from the merge (`more`: there is a next page). Changes
    of fields hidden from the reader are left out of the change entries."""
    want = page * TIMELINE_PAGE + 1
    items: list[dict[str, Any]] = [
        {"source": "inbox", **vars(e)}
        for e in await inbox_timeline.contact_entries(db, contact_id, limit=want)
    ]
    unseen = form_keys(hidden) | _profile_keys(hidden)
    for e in await crm_timeline.contact_entries(db, contact_id, limit=want):
        entry = {"source": "crm", **vars(e)}
        if unseen and isinstance(entry.get("changes"), dict):
            entry["changes"] = {k: v for k, v in entry["changes"].items() if k not in unseen}
            if e.kind == "change" and not entry["changes"]:
                continue
        items.append(entry)
    items.sort(key=lambda e: (e["at"], e["ref_id"]), reverse=True)
    start = (page - 1) * TIMELINE_PAGE
    return items[start : start + TIMELINE_PAGE], len(items) > start + TIMELINE_PAGE


async def _contact_page(
    request: web.Request,
    contact_id: int | None,
    *,
    values: Mapping[str, Any] | None = None,
    error: DomainError | None = None,
    matches: list[duplicates.DuplicateMatch] | None = None,
    status: int = 200,
) -> web.Response:
    user = current_user(request)
    page = forms.integer(request.query, "page", minimum=1, maximum=MAX_TIMELINE_PAGES) or 1
    async with request.app[keys.SESSIONS]() as db:
        stored = await _visible_contact(db, user, contact_id) if contact_id is not None else None
        choices = await _choices(db, user)
        hidden = await _hidden(db, user)
        feed, more = await _timeline(db, contact_id, page, hidden) if contact_id is not None else ([], False)
        custom_defs = await forms.custom_defs(db, "contact", hidden)
    context = {
        "custom_defs": custom_defs,
        **choices,
        "contact": stored,
        "values": values if values is not None else (_values_of(stored) if stored else {}),
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
        "matches": matches or [],
        "feed": feed,
        "feed_page": page,
        "feed_more": more,
        "may_edit": _may_edit(user),
        "hidden": form_keys(hidden) | _profile_keys(hidden),
        "title": _title(stored.contact, hidden) if stored else None,
    }
    return await render("contacts/contact.html", request, context, status=status)


def _title(contact: Any, hidden: frozenset[str]) -> str:
    return field_visibility.contact_label_of(contact, hidden)


async def contact_new_page(request: web.Request) -> web.StreamResponse:
    return await _contact_page(request, None)


async def contact_page(request: web.Request) -> web.StreamResponse:
    """`GET /contacts/{id}?page=`: the profile form and the timeline."""
    return await _contact_page(request, forms.path_int(request, "id"))


async def _save_form(request: web.Request, contact_id: int | None) -> web.StreamResponse:
    user = current_user(request)
    form = await request.post()
    flat = {k: v for k, v in form.items() if isinstance(v, str)}
    consents = [v for v in form.getall("consent", []) if isinstance(v, str)]
    confirm = flat.get("confirm_duplicate") == "1"
    region = request.app[keys.SETTINGS].default_region
    actor = user.actor(client_ip(request))
    async with request.app[keys.SESSIONS]() as db:
        custom = custom_fields.form_values(
            form, await forms.custom_defs(db, "contact", await _hidden(db, user))
        )
    values = {**flat, "consents": consents, "custom": custom}
    try:
        data = profile.parse_profile({**_form_data(flat, consents), "custom": custom}, region)
        async with request.app[keys.SESSIONS]() as db, db.begin():
            if contact_id is None:
                _check_assignment(user, data)
                await _check_links_visible(db, user, data)
                contact_id = await profile.create_contact(db, actor, data, confirm_duplicate=confirm)
                message = i18n.gettext("Contact added.")
            else:
                stored = await _visible_contact(db, user, contact_id)
                hidden = await _hidden(db, user)
                if hidden:
                    flat = _keep_hidden_form(flat, stored, hidden)
                    data = profile.parse_profile({**_form_data(flat, consents), "custom": custom}, region)
                _check_assignment(user, data, stored.contact.branch_id)
                await _check_links_visible(db, user, data)
                await profile.save_contact(db, actor, contact_id, data, confirm_duplicate=confirm)
                message = i18n.gettext("Contact saved.")
    except DuplicatesFound as exc:
        log_refusal(request, 409, f"duplicates: {[m.contact_id for m in exc.matches]}")
        return await _contact_page(request, contact_id, values=values, matches=exc.matches, status=409)
    except NotFound:
        raise
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _contact_page(request, contact_id, values=values, error=exc, status=exc.status)
    await forms.flash(request, message)
    raise web.HTTPFound(f"/contacts/{contact_id}")


async def contact_create_form(request: web.Request) -> web.StreamResponse:
    """`POST /contacts/new`."""
    return await _save_form(request, None)


async def contact_save_form(request: web.Request) -> web.StreamResponse:
    """`POST /contacts/{id}`."""
    return await _save_form(request, forms.path_int(request, "id"))


# --- duplicates and the merge screen ------------------------------------------------------------------------


async def duplicates_page(request: web.Request) -> web.StreamResponse:
    """`GET /contacts/duplicates`: likely pairs noticed on ingest, imports and confirmed saves."""
    user = current_user(request)
    page = forms.integer(request.query, "page", minimum=1, maximum=1000) or 1
    async with request.app[keys.SESSIONS]() as db:
        pairs = await duplicates.open_pairs(db, visible=_visible(user), limit=51, offset=(page - 1) * 50)
        hidden = await _hidden(db, user)
    context = {
        "pairs": pairs[:50],
        "page": page,
        "more": len(pairs) > 50,
        "may_edit": _may_edit(user),
        "hidden": hidden,
        "label": lambda contact: _title(contact, hidden),
    }
    return await render("contacts/duplicates.html", request, context)


async def duplicate_dismiss_form(request: web.Request) -> web.StreamResponse:
    """`POST /contacts/duplicates/{id}/dismiss`: "not the same person"."""
    user = current_user(request)
    pair_id = forms.path_int(request, "id")
    async with request.app[keys.SESSIONS]() as db, db.begin():
        pair = await db.get(DuplicateCandidate, pair_id)
        seen = pair is not None and all(
            [await profile.can_see(db, _visible(user), i) for i in (pair.contact_id, pair.other_id)]
        )
        if not seen or not await duplicates.dismiss_pair(db, pair_id):
            raise NotFound(N_("No such pair."))
    await forms.flash(request, i18n.gettext("Marked as different people."))
    raise web.HTTPFound("/contacts/duplicates")


# --- companies ----------------------------------------------------------------------------------------------


async def _company_page(
    request: web.Request,
    company_id: int | None,
    *,
    values: Mapping[str, Any] | None = None,
    error: DomainError | None = None,
) -> web.Response:
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db:
        company = await _visible_company(db, user, company_id) if company_id is not None else None
        members = await profile.company_members(db, company_id) if company_id is not None else []
        branches = list(await db.scalars(select(Branch).where(Branch.active.is_(True)).order_by(Branch.name)))
        custom_defs = await forms.custom_defs(db, "company", await _company_hidden(db, user))
    if user.role is not Role.ADMIN:
        branches = [b for b in branches if b.id == user.branch_id]
    stored = (
        {
            "name": company.name,
            "fiscal_code": company.fiscal_code or "",
            "industry": company.industry,
            "size": company.size,
            "address": company.address,
            "branch_id": str(company.branch_id or ""),
            "custom": dict(company.custom or {}),
        }
        if company
        else {}
    )
    context = {
        "custom_defs": custom_defs,
        "company": company,
        "members": members,
        "branches": branches,
        "sizes": profile.COMPANY_SIZES,
        "values": values if values is not None else stored,
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
        "may_edit": _may_edit(user),
    }
    return await render("contacts/company.html", request, context, status=error.status if error else 200)


async def _company_hidden(db: AsyncSession, user: CurrentUser) -> frozenset[str]:
    return await field_visibility.hidden(db, "company", user.role)


async def _visible_company(db: AsyncSession, user: CurrentUser, company_id: int) -> Company:
    company = await db.scalar(
        select(Company).where(Company.id == company_id, profile.visible_companies(user.role, user.branch_id))
    )
    if company is None:
        raise NotFound(N_("No such company."))
    return company


async def company_new_page(request: web.Request) -> web.StreamResponse:
    return await _company_page(request, None)


async def company_page(request: web.Request) -> web.StreamResponse:
    return await _company_page(request, forms.path_int(request, "id"))


async def _save_company(request: web.Request, company_id: int | None) -> web.StreamResponse:
    user = current_user(request)
    form = await request.post()
    flat: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    async with request.app[keys.SESSIONS]() as db:
        defs = await forms.custom_defs(db, "company", await _company_hidden(db, user))
    flat["custom"] = custom_fields.form_values(form, defs)
    try:
        data = profile.parse_company(flat)
        if user.role is not Role.ADMIN and data.branch_id not in (None, user.branch_id):
            raise Invalid(N_("Choose one from the list."), field="branch_id")
        async with request.app[keys.SESSIONS]() as db, db.begin():
            if company_id is not None:
                await _visible_company(db, user, company_id)
            company_id = await profile.save_company(db, user.actor(client_ip(request)), data, company_id)
    except NotFound:
        raise
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _company_page(request, company_id, values=flat, error=exc)
    await forms.flash(request, i18n.gettext("Company saved."))
    raise web.HTTPFound(f"/contacts/companies/{company_id}")


async def company_create_form(request: web.Request) -> web.StreamResponse:
    return await _save_company(request, None)


async def company_save_form(request: web.Request) -> web.StreamResponse:
    return await _save_company(request, forms.path_int(request, "id"))


# --- the API ------------------------------------------------------------------------------------------------


async def _json_object(request: web.Request, max_size: int = MAX_JSON_BODY) -> dict[str, Any]:
    raw = await request.content.read(max_size + 1)
    if len(raw) > max_size:
        raise web.HTTPRequestEntityTooLarge(max_size=max_size, actual_size=len(raw))
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(reason="The body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(reason="The body must be a JSON object")
    return data


def duplicates_response(request: web.Request, exc: DuplicatesFound) -> web.Response:
    """409 with the matches, for any API write that found duplicates."""
    log_refusal(request, 409, f"duplicates: {[m.contact_id for m in exc.matches]}")
    reason = i18n.translate_error(exc.message, exc.params)
    return web.json_response(
        {
            "error": {
                "status": 409,
                "reason": reason,
                "field": "duplicates",
                "duplicates": [m.as_json() for m in exc.matches],
            }
        },
        status=409,
    )


API_COLUMNS = ("name", "phone", "email", "idnp")


def _api_cell(name: str, value: Any) -> Any:
    """As the API always answered: the name as text, a missing phone, e-mail or IDNP as null."""
    return value if name == "name" else value or None


async def contacts_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/contacts?q=&page=`: the contacts list's rows with the search box (the lists' query,
    `webui.views.lists`; any filter: `/api/v1/lists/contacts`). Hidden fields are left out."""
    user = current_user(request)
    query = forms.text(request.query, "q", max_len=100)
    page = forms.integer(request.query, "page", minimum=1, maximum=100000) or 1
    async with request.app[keys.SESSIONS]() as db:
        catalog = await lists.catalog_for(db, user, "contact")
        columns = [name for name in API_COLUMNS if catalog.get(name) is not None] or ["id"]
        listing = await list_views.page(
            db,
            catalog,
            list_views.parse_query(catalog, [], columns),
            lists.scope_of(user),
            number=page,
            extra=lists.search_clause("contact", query, request.app[keys.SETTINGS]),
        )
    return web.json_response(
        {
            "contacts": [
                {"id": row.id, **{k: _api_cell(k, row.cells.get(k)) for k in columns}} for row in listing.rows
            ],
            "total": listing.total,
            "page": listing.page,
            "pages": listing.pages,
        }
    )


async def contact_get_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/contacts/{id}/profile`."""
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db:
        found = await _visible_contact(db, user, forms.path_int(request, "id"))
        hidden = await _hidden(db, user)
    return web.json_response({"contact": _contact_json(found, hidden)})


async def contact_create_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/contacts` with the profile (`first_name`, `last_name`, `phones`, `emails`, `idnp`,
    `birth_date`, `address`, `branch_id`, `owner_id`, `tags`, `consents`, `companies`, `relations`) and
    `confirm_duplicate`. 201 with the contact; 409 with `duplicates` unless confirmed; 422 names the field."""
    user = current_user(request)
    body = await _json_object(request)
    confirm = body.get("confirm_duplicate") is True
    data = profile.parse_profile(body, request.app[keys.SETTINGS].default_region)
    _check_assignment(user, data)
    try:
        async with request.app[keys.SESSIONS]() as db, db.begin():
            await _check_links_visible(db, user, data)
            contact_id = await profile.create_contact(
                db, user.actor(client_ip(request)), data, confirm_duplicate=confirm
            )
            found = await profile.profile_of(db, contact_id)
            hidden = await _hidden(db, user)
    except DuplicatesFound as exc:
        return duplicates_response(request, exc)
    assert found is not None
    return web.json_response({"contact": _contact_json(found, hidden)}, status=201)


async def contact_profile_update_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/contacts/{id}/profile`: replace the whole profile (the body of `POST /api/v1/contacts`);
    409 with `duplicates` unless `confirm_duplicate`; 404 for a contact the caller cannot see."""
    user = current_user(request)
    contact_id = forms.path_int(request, "id")
    body = await _json_object(request)
    confirm = body.get("confirm_duplicate") is True
    try:
        async with request.app[keys.SESSIONS]() as db, db.begin():
            stored = await _visible_contact(db, user, contact_id)
            hidden = await _hidden(db, user)
            body = _keep_hidden_body(body, stored, hidden) if hidden else body
            data = profile.parse_profile(body, request.app[keys.SETTINGS].default_region)
            _check_assignment(user, data, stored.contact.branch_id)
            await _check_links_visible(db, user, data)
            await profile.save_contact(
                db, user.actor(client_ip(request)), contact_id, data, confirm_duplicate=confirm
            )
            found = await profile.profile_of(db, contact_id)
    except DuplicatesFound as exc:
        return duplicates_response(request, exc)
    assert found is not None
    return web.json_response({"contact": _contact_json(found, hidden)})
