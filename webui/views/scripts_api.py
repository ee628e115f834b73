"""The JSON API of sales-script authoring, mirroring the editor (SCRIPTS_VIEW): list, read, save a draft,
check it, publish (422 with the problems when refused), archive, make a new draft from a version, export
and import YAML. Bodies carry the script in the model's JSON shape (`{"script": {...}}`), exactly what
`GET` returns and what the YAML files hold."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from scripts_engine.service import ScriptDraft, ScriptProblems
from switchboard.errors import N_, Invalid, TooLarge
from webui import forms, i18n, keys
from webui.errors import error_response, log_refusal
from webui.security import client_ip, current_user
from webui.views import scripts_form
from webui.views.files import download
from webui.views.scripts_editor import (
    MAX_YAML_TEXT,
    new_draft_from,
    problems_json,
    save_version,
    save_version_yaml,
)

MAX_BODY = 512 * 1024


async def _body(request: web.Request) -> bytes:
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise TooLarge(N_("The request is too large."), field="script")
    return raw


async def _draft(request: web.Request, *, required: bool = True) -> ScriptDraft | None:
    raw = await _body(request)
    if not raw.strip() and not required:
        return None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise Invalid(N_("The body is not valid JSON."), field="script") from None
    if not isinstance(body, dict) or not isinstance(body.get("script"), dict):
        raise Invalid(N_('Send the script as {"script": {…}}.'), field="script")
    return scripts_form.validated(body["script"])


async def scripts_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/scripts`: every script with its versions, newest first."""
    async with request.app[keys.SESSIONS]() as db:
        summaries = await request.app[keys.SCRIPTS].list_scripts(db)
    return web.json_response(
        {
            "scripts": [
                {
                    "id": s.id,
                    "key": s.key,
                    "name": s.name,
                    "versions": [
                        {
                            "id": v.id,
                            "number": v.number,
                            "state": v.state.value,
                            "created_at": v.created_at.isoformat(),
                            "published_at": v.published_at.isoformat() if v.published_at else None,
                        }
                        for v in s.versions
                    ],
                }
                for s in summaries
            ]
        }
    )


async def script_create_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/scripts {"script": {...}}`: saved as its script's draft (the script made if new)."""
    draft = await _draft(request)
    assert draft is not None
    scripts = request.app[keys.SCRIPTS]
    async with request.app[keys.SESSIONS]() as db, db.begin():
        view = await scripts.save_draft(db, current_user(request).actor(client_ip(request)), draft)
        problems = await scripts.check(db, view.draft)
    return web.json_response(view.as_json() | {"problems": problems_json(problems)}, status=201)


async def version_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/scripts/versions/{id}`: the version, its script and its problems."""
    scripts = request.app[keys.SCRIPTS]
    async with request.app[keys.SESSIONS]() as db:
        view = await scripts.get_version(db, forms.path_int(request, "id"))
        problems = await scripts.check(db, view.draft)
    return web.json_response(view.as_json() | {"problems": problems_json(problems)})


async def version_save_api(request: web.Request) -> web.StreamResponse:
    """`PUT /api/v1/scripts/versions/{id} {"script": {...}}`: the draft replaced (409 unless a draft)."""
    version_id = forms.path_int(request, "id")
    draft = await _draft(request)
    assert draft is not None
    view = await save_version(request, version_id, draft)
    async with request.app[keys.SESSIONS]() as db:
        problems = await request.app[keys.SCRIPTS].check(db, view.draft)
    return web.json_response(view.as_json() | {"problems": problems_json(problems)})


async def version_check_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/scripts/versions/{id}/check [{"script": {...}}]`: the problems of the posted script
    (not saved), or of the version as stored when the body is empty."""
    version_id = forms.path_int(request, "id")
    draft = await _draft(request, required=False)
    scripts = request.app[keys.SCRIPTS]
    async with request.app[keys.SESSIONS]() as db:
        view = await scripts.get_version(db, version_id)
        problems = await scripts.check(db, draft or view.draft)
    return web.json_response({"problems": problems_json(problems)})


async def version_publish_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/scripts/versions/{id}/publish`: 200 with the published version, or 422 with the
    problems that refuse it."""
    version_id = forms.path_int(request, "id")
    try:
        async with request.app[keys.SESSIONS]() as db, db.begin():
            view = await request.app[keys.SCRIPTS].publish(
                db, current_user(request).actor(client_ip(request)), version_id
            )
    except ScriptProblems as exc:
        log_refusal(request, exc.status, f"publish: {len(exc.problems)} problems")
        reason = i18n.translate_error(exc.message, exc.params)
        return await error_response(request, exc.status, reason, problems=problems_json(exc.problems))
    return web.json_response(view.as_json())


async def version_archive_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/scripts/versions/{id}/archive`."""
    async with request.app[keys.SESSIONS]() as db, db.begin():
        view = await request.app[keys.SCRIPTS].archive(
            db, current_user(request).actor(client_ip(request)), forms.path_int(request, "id")
        )
    return web.json_response(view.as_json())


async def version_new_draft_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/scripts/versions/{id}/drafts`: a new draft copied from this version (201)."""
    view = await new_draft_from(request, forms.path_int(request, "id"))
    return web.json_response(view.as_json(), status=201)


async def version_yaml(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/scripts/versions/{id}/yaml`: the version as a YAML file to download."""
    version_id = forms.path_int(request, "id")
    scripts = request.app[keys.SCRIPTS]
    async with request.app[keys.SESSIONS]() as db:
        view = await scripts.get_version(db, version_id)
        text = await scripts.export_yaml(db, version_id)
    return download(text, "text/yaml", f"{view.key}-v{view.number}.yaml")


async def version_yaml_put_api(request: web.Request) -> web.StreamResponse:
    """`PUT /api/v1/scripts/versions/{id}/yaml` (the YAML as the body): the draft replaced by it."""
    raw = await _body(request)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(N_("The script file must be UTF-8 text."), field="file") from None
    view = await save_version_yaml(request, forms.path_int(request, "id"), text)
    return web.json_response(view.as_json())


async def import_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/scripts/import` (the YAML as the body): saved as its script's draft (201), with its
    problems; a broken or hostile file is refused with the reason."""
    raw = await request.content.read(MAX_YAML_TEXT + 1)
    if not raw.strip():
        raise Invalid(N_("Choose a YAML file or paste the script."), field="file")
    scripts = request.app[keys.SCRIPTS]
    async with request.app[keys.SESSIONS]() as db, db.begin():
        view = await scripts.import_yaml(db, current_user(request).actor(client_ip(request)), raw)
        problems = await scripts.check(db, view.draft)
    body: dict[str, Any] = view.as_json() | {"problems": problems_json(problems)}
    return web.json_response(body, status=201)
