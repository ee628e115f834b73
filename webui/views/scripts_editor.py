"""Sales-script authoring pages for admins and supervisors (SCRIPTS_VIEW): `/scripts` lists every script
with its versions, makes a new one and imports YAML (an upload or pasted text); `/scripts/versions/{id}`
is the editor of a draft — the script's name, description and "applies to" pickers, the list of steps
with their kind's fields and outgoing edges, the validation problems beside the step they name and the
graph preview — or, for a published or archived version, the same read-only. Publish, archive, "new
draft from this version" and a whole-draft YAML text area post back here.

Everything goes through `scripts_engine.service`, which validates, freezes published versions and audits."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from aiohttp import web

from channels.model import Channel
from crm_core import classifiers
from scripts_engine.service import (
    Catalog,
    Problem,
    ScriptDraft,
    ScriptProblems,
    VersionState,
    VersionView,
)
from switchboard.errors import N_, Conflict, DomainError, Invalid, TooLarge
from webui import forms, i18n, keys
from webui.errors import log_refusal
from webui.security import client_ip, current_user
from webui.templating import render
from webui.views import scripts_form
from webui.views.scripts_graph import layout

log = logging.getLogger(__name__)

MAX_YAML_TEXT = 256 * 1024
OUTCOME_COLOURS = {"success": "green", "refusal": "red", "callback": "orange"}


def problem_message(problem: Problem) -> str:
    return i18n.translate_error(problem.message, problem.params)


def problems_json(problems: list[Problem]) -> list[dict[str, Any]]:
    """Problems for the API, each with its message in the reader's language."""
    return [p.as_json() | {"message": problem_message(p)} for p in problems]


def _choices(known: list[tuple[str, str]], current: list[str]) -> list[tuple[str, str]]:
    """A picker's (value, label) list: what the hub knows, plus values the script holds that it does not."""
    values = {v for v, _ in known}
    return known + [(v, v) for v in current if v not in values]


async def _pickers(request: web.Request, catalog: Catalog, data: dict[str, Any]) -> dict[str, Any]:
    locale = i18n.current_locale()
    applies = data.get("applies", {})
    async with request.app[keys.SESSIONS]() as db:
        products = await classifiers.labels(db, "product", locale)
        segments = await classifiers.list_kind(db, "segment")
        summaries = await request.app[keys.SCRIPTS].list_scripts(db)
    product_field = catalog.field("lead", "product")
    product_codes = list(product_field.options) if product_field else list(products)
    known = {
        "channels": [(c.value, c.value) for c in Channel],
        "segments": [(s.code, s.label(locale)) for s in segments],
        "products": [(code, products.get(code, code)) for code in product_codes],
        "deal_stages": [(s, s) for s in sorted(catalog.stages)],
        "languages": [(code, name) for code, name in i18n.LANGUAGE_NAMES.items()],
    }
    fields = {entity: sorted(specs) for entity, specs in catalog.fields.items()}
    readable = sorted(
        f"{entity}.{name}"
        for entity in ("contact", "lead", "deal")
        for name in set(catalog.fields.get(entity, {})) | set(catalog.readable.get(entity, ()))
    )
    return {
        "applies_choices": {name: _choices(known[name], applies.get(name, [])) for name in known},
        "capture_fields": fields,
        "condition_fields": readable,
        "task_kinds": sorted(catalog.task_kinds),
        "templates": sorted(catalog.templates),
        "stages": sorted(catalog.stages),
        "script_keys": sorted(s.key for s in summaries if s.key != data.get("key")),
    }


def _grouped(problems: list[Problem]) -> dict[str | None, list[tuple[str, str | None, str]]]:
    out: dict[str | None, list[tuple[str, str | None, str]]] = defaultdict(list)
    for p in problems:
        out[p.step_id].append((p.code, p.field, problem_message(p)))
    return dict(out)


async def editor_page(
    request: web.Request,
    version_id: int,
    *,
    data: dict[str, Any] | None = None,
    error: DomainError | None = None,
    problems: list[Problem] | None = None,
) -> web.Response:
    """The editor (a draft) or the version read-only. `data`: a posted form the model refused, shown
    as it was typed; `problems`: those a refused publish found."""
    scripts = request.app[keys.SCRIPTS]
    async with request.app[keys.SESSIONS]() as db:
        view = await scripts.get_version(db, version_id)
        catalog = await scripts.catalog(db)
        summaries = await scripts.list_scripts(db)
        shown: ScriptDraft | None = view.draft if data is None else None
        if problems is None:
            problems = await scripts.check(db, shown) if shown is not None else []
    script = next((s for s in summaries if s.id == view.script_id), None)
    data = data if data is not None else view.draft.as_data()
    grouped = _grouped(problems)
    graph = layout(shown or view.draft, {p.step_id for p in problems if p.step_id})
    context = {
        "view": view,
        "script": script,
        "data": data,
        "readonly": view.state is not VersionState.DRAFT,
        "problems": grouped,
        "problem_count": len(problems),
        "graph": graph,
        "outcome_colours": OUTCOME_COLOURS,
        "kinds": scripts_form.KINDS,
        "actions": scripts_form.ACTIONS,
        "answer_types": ("text", "number", "money", "date", "phone", "choice"),
        "outcomes": ("success", "refusal", "callback"),
        "entities": ("contact", "lead", "deal"),
        "ops": ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "empty", "not_empty"),
        "step_edges": scripts_form.step_edges,
        "show_literal": scripts_form.show_literal,
        "to_json": scripts_form.condition_json,
        "yaml_text": await _yaml(request, view),
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
    }
    context |= await _pickers(request, catalog, data)
    status = error.status if error else 200
    return await render("scripts/editor.html", request, context, status=status)


async def _yaml(request: web.Request, view: VersionView) -> str:
    async with request.app[keys.SESSIONS]() as db:
        return await request.app[keys.SCRIPTS].export_yaml(db, view.id)


# --- the list -----------------------------------------------------------------------------------------------


async def _list(
    request: web.Request, error: DomainError | None = None, form: dict[str, str] | None = None
) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        summaries = await request.app[keys.SCRIPTS].list_scripts(db)
    context = {
        "scripts": summaries,
        "form": form or {},
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
    }
    return await render("scripts/list.html", request, context, status=error.status if error else 200)


async def scripts_page(request: web.Request) -> web.StreamResponse:
    """`GET /scripts`."""
    return await _list(request)


async def script_create_form(request: web.Request) -> web.StreamResponse:
    """`POST /scripts` (key, name): a new script with an empty draft, opened in the editor."""
    form = await forms.posted(request)
    try:
        key = forms.text(form, "key", max_len=60, required=True)
        name = forms.text(form, "name", max_len=200, required=True)
        draft = scripts_form.validated({"key": key, "name": name})
        scripts = request.app[keys.SCRIPTS]
        async with request.app[keys.SESSIONS]() as db, db.begin():
            if any(s.key == key for s in await scripts.list_scripts(db)):
                raise Conflict(N_("A script with the key %(key)s exists already."), field="key", key=key)
            view = await scripts.save_draft(db, current_user(request).actor(client_ip(request)), draft)
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _list(request, exc, form)
    raise web.HTTPFound(f"/scripts/versions/{view.id}")


async def script_import_form(request: web.Request) -> web.StreamResponse:
    """`POST /scripts/import` (multipart `file`, or `text` pasted): the file's script saved as its
    script's draft; a broken or hostile file is refused with the reason on the list page."""
    form = await request.post()
    upload = form.get("file")
    text: str | bytes = ""
    if isinstance(upload, web.FileField):
        text = upload.file.read(MAX_YAML_TEXT + 1)
    pasted = form.get("text")
    if not text and isinstance(pasted, str):
        text = pasted
    try:
        if not text or (isinstance(text, str) and not text.strip()):
            raise Invalid(N_("Choose a YAML file or paste the script."), field="file")
        async with request.app[keys.SESSIONS]() as db, db.begin():
            view = await request.app[keys.SCRIPTS].import_yaml(
                db, current_user(request).actor(client_ip(request)), text
            )
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _list(request, exc, {"text": pasted if isinstance(pasted, str) else ""})
    await forms.flash(request, i18n.gettext("Imported as draft version %(n)s.", n=view.number))
    raise web.HTTPFound(f"/scripts/versions/{view.id}")


# --- the editor --------------------------------------------------------------------------------------------


async def version_page(request: web.Request) -> web.StreamResponse:
    """`GET /scripts/versions/{id}`."""
    return await editor_page(request, forms.path_int(request, "id"))


def _refuse_unless_draft(view: VersionView) -> None:
    if view.state is not VersionState.DRAFT:
        raise Conflict(
            N_("This version is %(state)s and cannot be changed: make a new draft from it."),
            state=view.state.value,
        )


async def save_version(request: web.Request, version_id: int, draft: ScriptDraft) -> VersionView:
    scripts = request.app[keys.SCRIPTS]
    async with request.app[keys.SESSIONS]() as db, db.begin():
        view = await scripts.get_version(db, version_id)
        _refuse_unless_draft(view)
        if draft.key != view.key:
            raise Invalid(N_("A draft keeps its script's key (%(key)s)."), field="key", key=view.key)
        return await scripts.save_draft(db, current_user(request).actor(client_ip(request)), draft)


async def version_save_form(request: web.Request) -> web.StreamResponse:
    """`POST /scripts/versions/{id}`: the whole editor form; `op` add / remove-i / up-i / down-i / save."""
    version_id = forms.path_int(request, "id")
    async with request.app[keys.SESSIONS]() as db:
        view = await request.app[keys.SCRIPTS].get_version(db, version_id)
    _refuse_unless_draft(view)
    form = await request.post()
    op = form.get("op")
    op = op if isinstance(op, str) else "save"
    kind = form.get("add-kind")
    data: dict[str, Any] = {}
    try:
        data = scripts_form.read(form, view.key)
        scripts_form.apply(data, op, kind if isinstance(kind, str) else "say")
        saved = await save_version(request, version_id, scripts_form.validated(data))
    except Conflict:
        raise
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await editor_page(request, version_id, data=data or None, error=exc)
    await forms.flash(request, i18n.gettext("Draft saved."))
    anchor = f"#step-{data['steps'][-1]['id']}" if op == "add" and data["steps"] else ""
    raise web.HTTPFound(f"/scripts/versions/{saved.id}{anchor}")


async def version_yaml_form(request: web.Request) -> web.StreamResponse:
    """`POST /scripts/versions/{id}/yaml` (`yaml`): the draft replaced by the text area's YAML."""
    version_id = forms.path_int(request, "id")
    form = await forms.posted(request)
    text = form.get("yaml", "")
    if len(text) > MAX_YAML_TEXT:
        raise TooLarge(N_("A script file may be at most %(n)s KiB."), field="yaml", n=MAX_YAML_TEXT // 1024)
    try:
        saved = await save_version_yaml(request, version_id, text)
    except Conflict:
        raise
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await editor_page(request, version_id, error=exc)
    await forms.flash(request, i18n.gettext("Draft saved."))
    raise web.HTTPFound(f"/scripts/versions/{saved.id}")


async def save_version_yaml(request: web.Request, version_id: int, text: str) -> VersionView:
    """The service's import, kept only when the text is this draft's script (else rolled back)."""
    if not text.strip():
        raise Invalid(N_("Choose a YAML file or paste the script."), field="yaml")
    scripts = request.app[keys.SCRIPTS]
    async with request.app[keys.SESSIONS]() as db, db.begin():
        view = await scripts.get_version(db, version_id)
        _refuse_unless_draft(view)
        saved = await scripts.import_yaml(db, current_user(request).actor(client_ip(request)), text)
        if saved.key != view.key:
            raise Invalid(N_("A draft keeps its script's key (%(key)s)."), field="key", key=view.key)
        return saved


async def version_publish_form(request: web.Request) -> web.StreamResponse:
    """`POST /scripts/versions/{id}/publish`: refused with the problems listed when the draft has any."""
    version_id = forms.path_int(request, "id")
    try:
        async with request.app[keys.SESSIONS]() as db, db.begin():
            view = await request.app[keys.SCRIPTS].publish(
                db, current_user(request).actor(client_ip(request)), version_id
            )
    except ScriptProblems as exc:
        log_refusal(request, exc.status, f"publish: {len(exc.problems)} problems")
        return await editor_page(request, version_id, error=exc, problems=exc.problems)
    await forms.flash(request, i18n.gettext("Version %(n)s published.", n=view.number))
    raise web.HTTPFound(f"/scripts/versions/{view.id}")


async def version_archive_form(request: web.Request) -> web.StreamResponse:
    """`POST /scripts/versions/{id}/archive`: out of use; runs on it go on."""
    version_id = forms.path_int(request, "id")
    async with request.app[keys.SESSIONS]() as db, db.begin():
        view = await request.app[keys.SCRIPTS].archive(
            db, current_user(request).actor(client_ip(request)), version_id
        )
    await forms.flash(request, i18n.gettext("Version %(n)s archived.", n=view.number))
    raise web.HTTPFound(f"/scripts/versions/{view.id}")


async def new_draft_from(request: web.Request, version_id: int) -> VersionView:
    """A draft copied from this version (number n+1); refused while the script has an open draft, which
    the copy would overwrite."""
    scripts = request.app[keys.SCRIPTS]
    async with request.app[keys.SESSIONS]() as db, db.begin():
        view = await scripts.get_version(db, version_id)
        summary = next(s for s in await scripts.list_scripts(db) if s.id == view.script_id)
        if summary.draft is not None:
            raise Conflict(
                N_("The script already has a draft (version %(n)s): edit or archive it first."),
                n=summary.draft.number,
            )
        return await scripts.save_draft(db, current_user(request).actor(client_ip(request)), view.draft)


async def version_new_draft_form(request: web.Request) -> web.StreamResponse:
    """`POST /scripts/versions/{id}/new-draft`."""
    view = await new_draft_from(request, forms.path_int(request, "id"))
    await forms.flash(request, i18n.gettext("Draft version %(n)s made; edit it here.", n=view.number))
    raise web.HTTPFound(f"/scripts/versions/{view.id}")
