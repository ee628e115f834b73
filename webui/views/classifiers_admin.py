"""`/admin/classifiers`: the vocabularies every form picks from, one list per kind shown as a tree, with
add / edit / deactivate for admins; and the JSON API `/api/v1/classifiers` (reading for every signed-in
person, since every form needs it; writing for admins)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from crm_core import classifiers
from crm_core.classifiers import ClassifierView
from switchboard.errors import N_, DomainError, Invalid, NotFound
from webui import forms, i18n, keys
from webui.errors import log_refusal
from webui.security import client_ip, current_user
from webui.templating import render
from webui.views.inbox import _json_object

log = logging.getLogger(__name__)


def _kind(value: str | None) -> str:
    return classifiers.check_kind(value or classifiers.KINDS[0])


def _optional_int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 11:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise Invalid(N_("Enter a whole number."), field=name)
    return value


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(N_("This field must be text."), field=name)
    return value


async def _create(request: web.Request, data: Mapping[str, Any]) -> ClassifierView:
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        return await classifiers.create(
            db,
            user.actor(client_ip(request)),
            kind=_kind(_text(data, "kind")),
            code=_text(data, "code"),
            label_en=_text(data, "label_en"),
            label_ro=_text(data, "label_ro"),
            label_ru=_text(data, "label_ru"),
            parent_id=_optional_int(data, "parent_id"),
            position=_optional_int(data, "position"),
        )


async def _update(request: web.Request, classifier_id: int, data: Mapping[str, Any]) -> ClassifierView:
    """Fields left out keep their value (the API sends only what changes)."""
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        current = await classifiers.get(db, classifier_id)
        if current is None:
            raise NotFound(N_("No such entry."))
        merged = {**current.as_json(), **data}
        return await classifiers.update(
            db,
            user.actor(client_ip(request)),
            classifier_id,
            label_en=_text(merged, "label_en"),
            label_ro=_text(merged, "label_ro"),
            label_ru=_text(merged, "label_ru"),
            parent_id=_optional_int(merged, "parent_id"),
            position=_optional_int(merged, "position"),
            active=forms.flag(merged, "active", current.active),
        )


# --- the page ---------------------------------------------------------------------------------------------


async def _page(
    request: web.Request,
    kind: str,
    *,
    error: DomainError | None = None,
    values: Mapping[str, str] | None = None,
) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        entries = await classifiers.list_kind(db, kind, include_inactive=True)
    context = {
        "kind": kind,
        "kinds": classifiers.KINDS,
        "entries": entries,
        "parents": [e for e in entries if e.active and e.depth < classifiers.MAX_DEPTH - 1],
        "locale": i18n.current_locale(),
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
        "values": values or {},
    }
    return await render("admin/classifiers.html", request, context, status=error.status if error else 200)


async def classifiers_page(request: web.Request) -> web.StreamResponse:
    """`GET /admin/classifiers?kind=product`."""
    return await _page(request, _kind(request.query.get("kind")))


async def classifier_create_form(request: web.Request) -> web.StreamResponse:
    form = await forms.posted(request)
    kind = _kind(form.get("kind"))
    try:
        made = await _create(request, form)
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _page(request, kind, error=exc, values=form)
    await forms.flash(request, i18n.gettext("“%(label)s” added.", label=made.label(i18n.current_locale())))
    raise web.HTTPFound(f"/admin/classifiers?kind={kind}")


async def classifier_update_form(request: web.Request) -> web.StreamResponse:
    """`POST /admin/classifiers/{id}`: the row's form; `active` is a checkbox (absent: inactive)."""
    classifier_id = forms.path_int(request, "id")
    form = await forms.posted(request)
    form.setdefault("active", "0")
    try:
        saved = await _update(request, classifier_id, form)
    except NotFound:
        raise
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        async with request.app[keys.SESSIONS]() as db:
            current = await classifiers.get(db, classifier_id)
        return await _page(request, current.kind if current else classifiers.KINDS[0], error=exc)
    await forms.flash(request, i18n.gettext("“%(label)s” saved.", label=saved.label(i18n.current_locale())))
    raise web.HTTPFound(f"/admin/classifiers?kind={saved.kind}")


# --- JSON API ---------------------------------------------------------------------------------------------


async def classifiers_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/classifiers?kind=product[&all=1]`: the list as a flattened tree (`depth`, `parent_id`)
    with `label` in the caller's language; inactive entries only with `all=1`."""
    kind = _kind(request.query.get("kind"))
    locale = i18n.current_locale()
    async with request.app[keys.SESSIONS]() as db:
        entries = await classifiers.list_kind(db, kind, include_inactive=request.query.get("all") == "1")
    return web.json_response(
        {"kind": kind, "entries": [{**e.as_json(), "label": e.label(locale)} for e in entries]}
    )


async def classifier_create_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/classifiers {"kind", "code", "label_en", "label_ro", "label_ru", "parent_id",
    "position"}`."""
    made = await _create(request, await _json_object(request))
    return web.json_response({"entry": made.as_json()}, status=201)


async def classifier_update_api(request: web.Request) -> web.StreamResponse:
    """`PATCH /api/v1/classifiers/{id} {"label_en", "label_ro", "label_ru", "parent_id", "position",
    "active"}`: only the fields given change; the code never does."""
    classifier_id = forms.path_int(request, "id")
    data = await _json_object(request)
    if "code" in data or "kind" in data:
        raise Invalid(
            N_("The code and list of an entry cannot change."), field="code" if "code" in data else "kind"
        )
    saved = await _update(request, classifier_id, data)
    return web.json_response({"entry": saved.as_json()})
