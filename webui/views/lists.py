"""The list pages of contacts (`/contacts`), companies (`/contacts/companies`), leads (`/leads`) and deals
(`/deals`): a filter over any field, chosen columns, sort by a header click, pages and saved views; the
same through `GET /api/v1/lists/{contacts|companies|leads|deals}` and `/api/v1/views`.

The state lives in the URL — `?filters=<JSON list of {field, op, value}>&columns=a,b&sort=-name&q=` — so a
filtered list is a link one can share; `?view=<id>` opens a saved view, no parameter at all the user's
default view (`?all=1`: none). Filters are checked by `crm_core.list_views` against the caller's catalog:
the fields their role may see (`crm_core.field_visibility`); a bad one is 400 naming the field. The rows
are always cut by the caller's visibility rule. Exports: `webui.views.list_export`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from crm_core import field_visibility, list_fields, list_views, profile
from crm_core.contacts_model import Company
from crm_core.list_fields import Catalog
from crm_core.list_views import ListQuery, View
from crm_core.search import Scope
from switchboard.accounts import CurrentUser
from switchboard.errors import N_, DomainError, Invalid, NotFound
from switchboard.permissions import Action, Role, can
from switchboard.settings import Settings
from webui import forms, i18n, keys
from webui.errors import log_refusal
from webui.security import client_ip, current_user
from webui.templating import render
from webui.views.inbox import _json_object

MAX_FILTERS_PARAM = 20_000  # characters of `filters=`


@dataclass(frozen=True)
class ListKind:
    entity: str  # contact, company, lead, deal
    slug: str  # in URLs: /api/v1/lists/<slug>
    page: str  # the list page's path
    title: str  # msgid
    action: Action  # who may open the list (which rows: the visibility rule)
    link: str  # a row's page, with {id}
    search: str = ""  # the search box's placeholder (msgid); empty: no search box


KINDS: dict[str, ListKind] = {
    k.entity: k
    for k in (
        ListKind(
            "contact",
            "contacts",
            "/contacts",
            N_("Contacts"),
            Action.CONTACTS_VIEW,
            "/contacts/{id}",
            N_("Name, phone, e-mail or IDNP"),
        ),
        ListKind(
            "company",
            "companies",
            "/contacts/companies",
            N_("Companies"),
            Action.CONTACTS_VIEW,
            "/contacts/companies/{id}",
            N_("Name or fiscal code"),
        ),
        ListKind("lead", "leads", "/leads", N_("Leads"), Action.DEALS_VIEW, "/leads/{id}"),
        ListKind("deal", "deals", "/deals", N_("Deals"), Action.DEALS_VIEW, "/deals/{id}"),
    )
}
BY_SLUG = {k.slug: k for k in KINDS.values()}


class BadQuery(DomainError):
    """A list request's filters, columns or sort that do not fit the caller's catalog: the client's
    request is wrong (400), naming the field."""

    status = 400


def scope_of(user: CurrentUser) -> Scope:
    return Scope(user.id, user.role, user.branch_id)


def kind_for(entity: str, user: CurrentUser) -> ListKind:
    """The list, when the caller's role may open it (a saved view of leads is no way into leads)."""
    kind = KINDS.get(entity) or BY_SLUG.get(entity)
    if kind is None:
        raise Invalid(N_("Unknown kind of record."), field="entity")
    if not can(user.role, kind.action):
        raise web.HTTPForbidden()
    return kind


def kind_of_path(request: web.Request, user: CurrentUser) -> ListKind:
    kind = BY_SLUG.get(request.match_info.get("entity", ""))
    if kind is None:
        raise web.HTTPNotFound()
    return kind_for(kind.entity, user)


async def catalog_for(db: AsyncSession, user: CurrentUser, entity: str) -> Catalog:
    """The fields the caller's role may see, in the caller's language."""
    hidden = await field_visibility.hidden(db, entity, user.role)
    return await list_fields.catalog(db, entity, hidden=hidden, locale=i18n.current_locale())


def cell_text(catalog: Catalog, name: str, value: Any) -> str:
    """A cell as a person reads it (core choices in the caller's language)."""
    return list_views.value_text(value, i18n.gettext, catalog.get(name))


def label_of(catalog: Catalog, name: str) -> str:
    field = catalog.get(name)
    if field is None:
        return name
    return i18n.gettext(field.label) if field.translate else field.label


def json_value(value: Any) -> Any:
    """A plain cell for the JSON API: numbers stay numbers, money exact text, dates ISO."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):  # datetimes too
        return value.isoformat()
    return str(value)


# --- reading a request ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """What one list request asks for: the query, the saved view it came from, the search box."""

    query: ListQuery
    view: View | None
    q: str
    explicit: bool  # the query came from the URL (not from a saved or default view)


def _parse(catalog: Catalog, data: Mapping[str, Any]) -> ListQuery:
    try:
        raw = list_views.loads_filters(forms.text(data, "filters", max_len=MAX_FILTERS_PARAM))
        return list_views.parse_query(
            catalog, raw, forms.text(data, "columns", max_len=4000), forms.text(data, "sort", max_len=80)
        )
    except Invalid as exc:
        raise BadQuery(exc.message, field=exc.field, **exc.params) from None


async def read_request(
    db: AsyncSession, user: CurrentUser, catalog: Catalog, data: Mapping[str, Any]
) -> Asked:
    """The query from `filters` / `columns` / `sort`, else from `view=<id>`, else the user's default view
    (unless `all`). A saved view is read leniently: conditions on fields hidden since are dropped."""
    scope = scope_of(user)
    q = forms.text(data, "q", max_len=100) if KINDS[catalog.entity].search else ""
    view: View | None = None
    view_id = forms.integer(data, "view", minimum=1)
    if view_id is not None:
        view = await list_views.get_view(db, scope, view_id)
        if view.entity != catalog.entity:
            raise NotFound(N_("No such view."))
    explicit = any(name in data for name in ("filters", "columns", "sort"))
    if view is None and not explicit and not q and "all" not in data:
        view = await list_views.default_view(db, scope, catalog.entity)
    if explicit:
        query = _parse(catalog, data)
    elif view is not None:
        query = view.query(catalog)
    else:
        query = list_views.parse_query(catalog, [])
    return Asked(query, view, q, explicit)


def _company_search(q: str) -> ColumnElement[bool]:
    """The companies list's search box, as it always was: a word of the name or the fiscal code's start."""
    words = q.strip().lower()
    return or_(
        func.lower(Company.name).contains(words, autoescape=True),
        Company.fiscal_code.startswith(words, autoescape=True),
    )


def search_clause(entity: str, q: str, settings: Settings) -> ColumnElement[bool] | None:
    """The search box beside the filters (contacts: `crm_core.profile.contact_search`)."""
    if not q:
        return None
    if entity == "contact":
        return profile.contact_search(q, settings.default_region)
    if entity == "company":
        return _company_search(q)
    return None


def query_params(asked: Asked, **more: Any) -> dict[str, str]:
    """The URL parameters that reproduce the list (for paging, sorting and export links)."""
    query = asked.query
    out: dict[str, str] = {}
    if asked.explicit or asked.view is None:
        out["filters"] = json.dumps(query.filters_json(), ensure_ascii=False, separators=(",", ":"))
        out["columns"] = ",".join(query.columns)
        if query.sort:
            out["sort"] = query.sort
    else:
        out["view"] = str(asked.view.id)
    if asked.q:
        out["q"] = asked.q
    out.update({k: str(v) for k, v in more.items() if v is not None})
    return out


def _explicit(asked: Asked, **change: Any) -> str:
    """The list's own state with a change (a sort), as explicit parameters."""
    query = asked.query
    out = {
        "filters": json.dumps(query.filters_json(), ensure_ascii=False, separators=(",", ":")),
        "columns": ",".join(query.columns),
        "sort": change.get("sort", query.sort),
    }
    if asked.q:
        out["q"] = asked.q
    return urlencode({k: v for k, v in out.items() if v})


def _next_sort(current: str, name: str) -> str:
    """A header click: sort by it ascending, then descending."""
    return f"-{name}" if current == name else name


# --- the page ----------------------------------------------------------------------------------------------


async def _list_page(request: web.Request, entity: str) -> web.StreamResponse:
    user = current_user(request)
    kind = kind_for(entity, user)
    settings = request.app[keys.SETTINGS]
    number = forms.integer(request.query, "page", minimum=1, maximum=100000) or 1
    error: DomainError | None = None
    async with request.app[keys.SESSIONS]() as db:
        catalog = await catalog_for(db, user, entity)
        try:
            asked = await read_request(db, user, catalog, request.query)
        except BadQuery as exc:  # a hand-edited or stale link: the list without it, and why
            log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
            error = exc
            asked = Asked(list_views.parse_query(catalog, []), None, "", True)
        listing = await list_views.page(
            db,
            catalog,
            asked.query,
            scope_of(user),
            number=number,
            extra=search_clause(entity, asked.q, settings),
        )
        views = await list_views.list_views(db, scope_of(user), entity)
    params = query_params(asked)
    columns = [
        {
            "name": name,
            "label": label_of(catalog, name),
            "sort": "asc" if asked.query.sort == name else "desc" if asked.query.sort == f"-{name}" else "",
            "href": "?" + _explicit(asked, sort=_next_sort(asked.query.sort, name)),
        }
        for name in asked.query.columns
    ]
    rows = [
        {
            "id": row.id,
            "link": kind.link.format(id=row.id),
            "cells": [cell_text(catalog, name, row.cells.get(name, "")) for name in asked.query.columns],
        }
        for row in listing.rows
    ]
    export_max = settings.export_max_rows
    context = {
        "kind": kind,
        "title": i18n.gettext(kind.title),
        "columns": columns,
        "rows": rows,
        "listing": listing,
        "q": asked.q,
        "view": asked.view.as_json(user.id) if asked.view else None,
        "views": [v.as_json(user.id) for v in views],
        "state": {
            "entity": entity,
            "slug": kind.slug,
            "filters": asked.query.filters_json(),
            "columns": list(asked.query.columns),
            "sort": asked.query.sort,
            "q": asked.q,
            "view": asked.view.id if asked.view else None,
            "fields": [f.as_json(i18n.gettext) for f in catalog.fields],
            "default_columns": list(catalog.default_columns),
        },
        "conditions": [_condition_text(catalog, c) for c in asked.query.conditions],
        "operator_labels": {op: i18n.gettext(label) for op, label in OPERATOR_LABELS.items()},
        "page_href": lambda n: "?" + urlencode(query_params(asked, page=n)),
        "export_query": urlencode(query_params(asked)),
        "params": params,
        "may_share": user.role in list_views.SHARERS,
        "may_delete": may_change(asked.view, user) if asked.view else False,
        "may_export": can(user.role, Action.LISTS_EXPORT),
        "may_edit": can(user.role, Action.CONTACTS_EDIT),
        "export_max": export_max,
        "export_over": listing.total > export_max,
        "error": i18n.translate_error(error.message, error.params) if error else None,
    }
    return await render("lists/list.html", request, context, status=error.status if error else 200)


OPERATOR_LABELS = {
    "eq": N_("is"),
    "ne": N_("is not"),
    "contains": N_("contains"),
    "starts": N_("starts with"),
    "in": N_("is one of"),
    "gt": N_("after / more than"),
    "gte": N_("from"),
    "lt": N_("before / less than"),
    "lte": N_("up to"),
    "between": N_("between"),
    "empty": N_("is empty"),
    "not_empty": N_("is not empty"),
}


def _condition_text(catalog: Catalog, c: list_views.Condition) -> dict[str, Any]:
    """A condition as the filter bar shows it: field, operator and value in words."""
    field = catalog.get(c.field)

    def shown(value: Any) -> str:
        if field is not None and field.options:
            label = field.option_label(value)
            return i18n.gettext(label) if field.translate else label
        if isinstance(value, bool):
            return i18n.gettext("yes") if value else i18n.gettext("no")
        if isinstance(value, Decimal) and (field is None or field.kind is not list_fields.Kind.MONEY):
            return f"{value.normalize():f}"  # a count or a score, not an amount: 5000, not 5000.00
        return list_fields.as_text(value)

    value = c.value
    if isinstance(value, tuple):
        text = (" - " if c.op == "between" else ", ").join(shown(v) for v in value)
    else:
        text = "" if value is None else shown(value)
    return {
        "field": c.field,
        "label": label_of(catalog, c.field),
        "op": i18n.gettext(OPERATOR_LABELS.get(c.op, c.op)),
        "value": text,
    }


async def contacts_page(request: web.Request) -> web.StreamResponse:
    """`GET /contacts?q=&filters=&columns=&sort=&view=&page=`: the contacts the caller may see."""
    return await _list_page(request, "contact")


async def companies_page(request: web.Request) -> web.StreamResponse:
    """`GET /contacts/companies?q=&filters=…`."""
    return await _list_page(request, "company")


async def leads_page(request: web.Request) -> web.StreamResponse:
    """`GET /leads?filters=…`."""
    return await _list_page(request, "lead")


async def deals_page(request: web.Request) -> web.StreamResponse:
    """`GET /deals?filters=…`."""
    return await _list_page(request, "deal")


# --- the JSON API -------------------------------------------------------------------------------------------


async def list_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/lists/{contacts|companies|leads|deals}?filters=&columns=&sort=&q=&view=&page=&page_size=`:
    one page of rows (`id` and the chosen columns, plain values), the total and the fields one may use."""
    user = current_user(request)
    kind = kind_of_path(request, user)
    try:
        number = forms.integer(request.query, "page", minimum=1, maximum=100000) or 1
        size = forms.integer(request.query, "page_size", minimum=1, maximum=list_views.MAX_PAGE_SIZE)
    except Invalid as exc:
        raise BadQuery(exc.message, field=exc.field, **exc.params) from None
    async with request.app[keys.SESSIONS]() as db:
        catalog = await catalog_for(db, user, kind.entity)
        asked = await read_request(db, user, catalog, request.query)
        listing = await list_views.page(
            db,
            catalog,
            asked.query,
            scope_of(user),
            number=number,
            page_size=size or list_views.PAGE_SIZE,
            extra=search_clause(kind.entity, asked.q, request.app[keys.SETTINGS]),
        )
    return web.json_response(
        {
            "entity": kind.entity,
            "view": asked.view.id if asked.view else None,
            "filters": asked.query.filters_json(),
            "columns": list(asked.query.columns),
            "sort": asked.query.sort,
            "rows": [
                {"id": row.id, **{k: json_value(v) for k, v in row.cells.items()}} for row in listing.rows
            ],
            "total": listing.total,
            "page": listing.page,
            "pages": listing.pages,
            "fields": [f.as_json(i18n.gettext) for f in catalog.fields],
        }
    )


# --- saved views --------------------------------------------------------------------------------------------


def _checked_view(catalog: Catalog, scope: Scope, data: Mapping[str, Any]) -> list_views.ViewInput:
    """A view's body: its query is a request like the list's (400 naming the field), its name and sharing
    are the caller's data (422)."""
    try:
        list_views.parse_query(catalog, data.get("filters"), data.get("columns"), data.get("sort"))
    except Invalid as exc:
        raise BadQuery(exc.message, field=exc.field, **exc.params) from None
    return list_views.parse_view(catalog, scope, data)


async def views_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/views?entity=contact`: the caller's views of a list and the shared ones."""
    user = current_user(request)
    kind = kind_for(forms.text(request.query, "entity", max_len=20), user)
    async with request.app[keys.SESSIONS]() as db:
        views = await list_views.list_views(db, scope_of(user), kind.entity)
    return web.json_response({"views": [v.as_json(user.id) for v in views]})


async def view_create_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/views {"entity", "name", "filters", "columns", "sort", "shared", "default"}`: 201.
    Sharing with everyone is for supervisors and admins."""
    user = current_user(request)
    data = await _json_object(request)
    entity = data.get("entity")
    kind = kind_for(entity if isinstance(entity, str) else "", user)
    scope = scope_of(user)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        catalog = await catalog_for(db, user, kind.entity)
        view = await list_views.create_view(
            db, user.actor(client_ip(request)), scope, kind.entity, _checked_view(catalog, scope, data)
        )
        if data.get("default") is True:
            await list_views.set_default(db, scope, kind.entity, view.id)
            view = await list_views.get_view(db, scope, view.id)
    return web.json_response({"view": view.as_json(user.id)}, status=201)


def may_change(view: View, user: CurrentUser) -> bool:
    """The owner changes and deletes a view; an admin also any shared one (`list_views` checks it too)."""
    return view.owner_id == user.id or (view.shared and user.role is Role.ADMIN)


async def _usable_view(db: AsyncSession, user: CurrentUser, view_id: int) -> View:
    view = await list_views.get_view(db, scope_of(user), view_id)
    kind_for(view.entity, user)
    return view


async def view_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/views/{id}`: one of the caller's views or a shared one."""
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db:
        view = await _usable_view(db, user, forms.path_int(request, "id"))
    return web.json_response({"view": view.as_json(user.id)})


async def view_update_api(request: web.Request) -> web.StreamResponse:
    """`PATCH /api/v1/views/{id}` with what changes (name, filters, columns, sort, shared): the owner's,
    or an admin's for a shared view."""
    user = current_user(request)
    data = await _json_object(request)
    scope = scope_of(user)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        current = await _usable_view(db, user, forms.path_int(request, "id"))
        if not may_change(current, user):  # before reading the body: someone else's view is not found
            raise NotFound(N_("No such view."))
        catalog = await catalog_for(db, user, current.entity)
        keep = {k: v for k, v in current.as_json(user.id).items() if k in _VIEW_KEYS}
        view = await list_views.update_view(
            db,
            user.actor(client_ip(request)),
            scope,
            current.id,
            _checked_view(catalog, scope, keep | {k: v for k, v in data.items() if k in _VIEW_KEYS}),
        )
    return web.json_response({"view": view.as_json(user.id)})


_VIEW_KEYS = ("name", "filters", "columns", "sort", "shared")


async def view_delete_api(request: web.Request) -> web.StreamResponse:
    """`DELETE /api/v1/views/{id}`: the owner's own (an admin: any shared one too)."""
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        view = await _usable_view(db, user, forms.path_int(request, "id"))
        await list_views.delete_view(db, user.actor(client_ip(request)), scope_of(user), view.id)
    return web.json_response({"deleted": view.id})


async def view_default_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/views/{id}/default {"default": true|false}`: open the list with it (or not)."""
    user = current_user(request)
    data = await _json_object(request)
    wanted = data.get("default", True)
    if not isinstance(wanted, bool):
        raise Invalid(N_("Choose yes or no."), field="default")
    scope = scope_of(user)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        view = await _usable_view(db, user, forms.path_int(request, "id"))
        if wanted or view.is_default:  # clearing another view's place as the default: nothing to do
            await list_views.set_default(db, scope, view.entity, view.id if wanted else None)
            view = await list_views.get_view(db, scope, view.id)
    return web.json_response({"view": view.as_json(user.id)})
