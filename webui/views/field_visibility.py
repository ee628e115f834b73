"""The admin's field hiding by role (`/admin/field-visibility`): a grid of every field of contacts,
companies, leads and deals (custom ones too) against the roles below admin. What is hidden disappears
from that role's list columns, filters, exports and list API (`webui.views.lists`) and from the record
pages and their JSON (`form_keys` here turns a field name into the names the pages and forms use)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from crm_core import field_visibility, list_fields
from switchboard.errors import N_, Invalid
from webui import forms, i18n, keys
from webui.security import client_ip, current_user
from webui.templating import render
from webui.views.lists import KINDS

# A field's names on the record pages and in their forms and JSON, where they differ from the list's.
_FORM_KEYS: dict[str, tuple[str, ...]] = {
    **field_visibility.JSON_KEYS,
    "name": ("name", "first_name", "last_name"),  # a contact's name is made of both
    "stage": ("stage_id", "stage_name", "probability"),  # the stage carries its probability
}


def form_keys(hidden: Iterable[str]) -> frozenset[str]:
    """The hidden fields and every key they go by on the pages (`branch` → `branch_id`, `branch_name`)."""
    out: set[str] = set()
    for name in hidden:
        out.add(name)
        out.update(_FORM_KEYS.get(name, ()))
    return frozenset(out)


async def _context(request: web.Request) -> dict[str, Any]:
    async with request.app[keys.SESSIONS]() as db:
        setting = await field_visibility.setting(db)
        entities = []
        for entity, kind in KINDS.items():
            core = set(list_fields.core_names(entity))
            fields = [
                {
                    "name": name,
                    "label": i18n.gettext(label) if name in core else label,
                    "custom": name not in core,
                }
                for name, label in await field_visibility.known_fields(db, entity)
            ]
            title = i18n.gettext(kind.title)
            entities.append({"entity": entity, "title": title, "fields": fields, "hidden": setting[entity]})
    return {"entities": entities, "roles": [r.value for r in field_visibility.ROLES]}


async def visibility_page(request: web.Request) -> web.StreamResponse:
    """`GET /admin/field-visibility`: which fields each role may not see (admins see every field)."""
    return await render("admin/field_visibility.html", request, await _context(request))


async def visibility_form(request: web.Request) -> web.StreamResponse:
    """`POST /admin/field-visibility` (`entity`, and `hide.<role>` checkboxes holding field names): the
    whole setting of one kind of record, each role's change audited."""
    user = current_user(request)
    form = await request.post()
    entity = form.get("entity")
    if not isinstance(entity, str) or entity not in KINDS:
        raise Invalid(N_("Unknown kind of record."), field="entity")
    async with request.app[keys.SESSIONS]() as db, db.begin():
        for role in field_visibility.ROLES:
            names = [v for v in form.getall(f"hide.{role.value}", []) if isinstance(v, str)]
            await field_visibility.set_hidden(db, user.actor(client_ip(request)), entity, role, names)
    await forms.flash(request, i18n.gettext("Field visibility saved."))
    raise web.HTTPFound(f"/admin/field-visibility#fields-{entity}")
