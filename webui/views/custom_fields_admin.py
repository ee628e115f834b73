"""`/admin/custom-fields`: the fields an admin adds to contacts, companies, leads and deals — one tab per
kind of record, a form to add one (key, label, kind, options, required, position) and each field's row to
relabel, reorder, change its options or rules, or deactivate it; and the JSON API `/api/v1/custom-fields`
(reading for everyone signed in, since every form and import needs the definitions; writing for admins).
The rules themselves live in `crm_core.custom_fields`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from crm_core import custom_fields
from crm_core.custom_fields import FieldDef, FieldKind
from switchboard.errors import N_, DomainError, Invalid, NotFound
from webui import forms, i18n, keys
from webui.errors import log_refusal
from webui.security import client_ip, current_user
from webui.templating import render
from webui.views.inbox import _json_object

# (entity, tab label msgid)
ENTITY_LABELS: tuple[tuple[str, str], ...] = (
    ("contact", N_("Contacts")),
    ("company", N_("Companies")),
    ("lead", N_("Leads")),
    ("deal", N_("Deals")),
)
KIND_LABELS: tuple[tuple[str, str], ...] = (
    (FieldKind.TEXT, N_("Text")),
    (FieldKind.NUMBER, N_("Number")),
    (FieldKind.MONEY, N_("Money")),
    (FieldKind.DATE, N_("Date")),
    (FieldKind.CHOICE, N_("Choice")),
    (FieldKind.MULTI_CHOICE, N_("Several choices")),
    (FieldKind.BOOLEAN, N_("Yes / no")),
)


def _entity(value: str | None) -> str:
    return custom_fields.check_entity(value or custom_fields.ENTITIES[0])


def options_text(field: FieldDef) -> str:
    """The options as the form's text area holds them: one `code = label` per line."""
    return "\n".join(f"{o.code} = {o.label}" for o in field.options)


async def _create(request: web.Request, entity: str, data: Mapping[str, Any]) -> FieldDef:
    parsed = custom_fields.parse_definition(data)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        return await custom_fields.create_definition(
            db, current_user(request).actor(client_ip(request)), entity, parsed
        )


async def _update(request: web.Request, field_id: int, data: Mapping[str, Any]) -> FieldDef:
    """Fields left out keep their value (the API sends only what changes); key and kind never change."""
    async with request.app[keys.SESSIONS]() as db, db.begin():
        current = await custom_fields.get_definition(db, field_id)
        if current is None:
            raise NotFound(N_("No such field."))
        merged = {**current.as_json(), **data}
        parsed = custom_fields.parse_definition(merged)
        return await custom_fields.update_definition(
            db,
            current_user(request).actor(client_ip(request)),
            field_id,
            parsed,
            active=forms.flag(merged, "active", current.active),
        )


# --- the page ---------------------------------------------------------------------------------------------


async def _page(
    request: web.Request,
    entity: str,
    *,
    error: DomainError | None = None,
    values: Mapping[str, str] | None = None,
    failed_id: int | None = None,
) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        fields = await custom_fields.definitions(db, entity, include_inactive=True)
    context = {
        "entity": entity,
        "entities": ENTITY_LABELS,
        "kinds": KIND_LABELS,
        "fields": [(f, options_text(f)) for f in fields],
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
        "failed_id": failed_id,
        "values": values or {},
    }
    return await render("admin/custom_fields.html", request, context, status=error.status if error else 200)


async def custom_fields_page(request: web.Request) -> web.StreamResponse:
    """`GET /admin/custom-fields?entity=contact`."""
    return await _page(request, _entity(request.query.get("entity")))


async def custom_field_create_form(request: web.Request) -> web.StreamResponse:
    form = await forms.posted(request)
    entity = _entity(form.get("entity"))
    try:
        made = await _create(request, entity, form)
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _page(request, entity, error=exc, values=form)
    await forms.flash(request, i18n.gettext("“%(label)s” added.", label=made.label))
    raise web.HTTPFound(f"/admin/custom-fields?entity={entity}")


async def custom_field_update_form(request: web.Request) -> web.StreamResponse:
    """`POST /admin/custom-fields/{id}`: the row's form; `required` and `active` are checkboxes."""
    field_id = forms.path_int(request, "id")
    form = await forms.posted(request)
    form.setdefault("active", "0")
    form.setdefault("required", "0")
    try:
        saved = await _update(request, field_id, form)
    except NotFound:
        raise
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        async with request.app[keys.SESSIONS]() as db:
            current = await custom_fields.get_definition(db, field_id)
        entity = current.entity if current else custom_fields.ENTITIES[0]
        return await _page(request, entity, error=exc, failed_id=field_id)
    await forms.flash(request, i18n.gettext("“%(label)s” saved.", label=saved.label))
    raise web.HTTPFound(f"/admin/custom-fields?entity={saved.entity}")


# --- JSON API ---------------------------------------------------------------------------------------------


async def custom_fields_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/custom-fields?entity=lead[&all=1]`: the definitions in form order; deactivated ones
    only with `all=1`."""
    entity = _entity(request.query.get("entity"))
    async with request.app[keys.SESSIONS]() as db:
        fields = await custom_fields.definitions(db, entity, include_inactive=request.query.get("all") == "1")
    return web.json_response({"entity": entity, "fields": [f.as_json() for f in fields]})


async def custom_field_create_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/custom-fields {"entity", "key", "label", "kind", "options", "required", "position"}`;
    options: a list of `{"code", "label"}` (or of labels)."""
    data = await _json_object(request)
    made = await _create(request, custom_fields.check_entity(str(data.get("entity") or "")), data)
    return web.json_response({"field": made.as_json()}, status=201)


async def custom_field_update_api(request: web.Request) -> web.StreamResponse:
    """`PATCH /api/v1/custom-fields/{id} {"label", "options", "required", "position", "active"}`: only the
    fields given change; the key, kind and entity never do."""
    field_id = forms.path_int(request, "id")
    data = await _json_object(request)
    for fixed in ("key", "kind", "entity"):
        if fixed in data:
            raise Invalid(N_("A field's key and kind cannot change; add a new field instead."), field=fixed)
    saved = await _update(request, field_id, data)
    return web.json_response({"field": saved.as_json()})
