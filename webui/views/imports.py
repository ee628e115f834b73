"""The import wizard (`/contacts/import`) and its API (`/api/v1/imports`): upload a CSV or XLSX file, map
its columns, choose what a duplicate does, dry-run, run, watch the progress bar, read the report and
download the refused rows. The rules live in `crm_core.imports`; this edge reads the upload (streamed,
never past `Settings.import_max_mb`), checks who may see which import and turns answers into pages or JSON.

Who may import: whoever may create contacts (CONTACTS_EDIT); agents and supervisors only into their own
branch (a row naming another is refused), admins anywhere. An import is seen by its owner, the
supervisors of its branch and admins; anyone else gets 404."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import BodyPartReader, web

from crm_core import imports
from crm_core.imports_model import Import
from switchboard.accounts import CurrentUser
from switchboard.errors import N_, DomainError, Invalid, TooLarge
from webui import forms, i18n, keys
from webui.errors import log_refusal
from webui.security import client_ip, current_user
from webui.templating import render
from webui.views.files import download

log = logging.getLogger(__name__)

MAX_MAPPING_BODY = 64 * 1024
CHUNK = 256 * 1024
REPORT_ROWS = 200


def _viewer(user: CurrentUser) -> imports.Viewer:
    return imports.Viewer(user.id, user.role, user.branch_id)


async def _read_upload(request: web.Request) -> tuple[str, str, bytes]:
    """The multipart body's `kind` and `file` (its name and bytes), read in chunks up to the limit."""
    limit = request.app[keys.SETTINGS].import_max_bytes
    if not request.content_type.startswith("multipart/"):
        raise Invalid(N_("Send the file as multipart/form-data."), field="file")
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError):
        raise Invalid(N_("Send the file as multipart/form-data."), field="file") from None
    kind, filename, data = "contacts", "", b""
    found = False
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "kind":
            kind = (await part.text())[:20].strip() or "contacts"
        elif part.name == "file":
            found = True
            filename = (part.filename or "upload")[-200:]
            chunks: list[bytes] = []
            size = 0
            while chunk := await part.read_chunk(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(N_("The file is larger than %(n)s MB."), field="file", n=limit >> 20)
                chunks.append(chunk)
            data = b"".join(chunks)
    if not found:
        raise Invalid(N_("Choose a CSV or XLSX file."), field="file")
    return kind, filename, data


async def _create(request: web.Request) -> Import:
    user = current_user(request)
    kind, filename, data = await _read_upload(request)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        imp = await imports.create_import(
            db,
            user.actor(client_ip(request)),
            _viewer(user),
            kind=kind,
            filename=filename,
            data=data,
            max_bytes=request.app[keys.SETTINGS].import_max_bytes,
        )
    log.info("imports: %s uploaded import %s (%s rows)", user.username, imp.id, imp.total_rows)
    return imp


async def _start(request: web.Request, import_id: int, phase: str) -> Import:
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        imp = await imports.get_import(db, _viewer(user), import_id, lock=True)
        await imports.start(
            db,
            user.actor(client_ip(request)),
            imp,
            phase,
            max_attempts=request.app[keys.SETTINGS].jobs_max_attempts,
        )
    worker = request.app.get(keys.WORKER)
    if worker is not None:
        worker.wake()
    return imp


async def _set_mapping(request: web.Request, import_id: int, mapping: list[Any], policy: str) -> Import:
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        imp = await imports.get_import(db, _viewer(user), import_id, lock=True)
        return await imports.set_mapping(db, user.actor(client_ip(request)), imp, mapping, policy)


def _issue_json(issue: Any) -> dict[str, Any]:
    return {
        "row": issue.row_number,
        "outcome": issue.outcome,
        "column": issue.column,
        "value": issue.value,
        "reason": i18n.translate_error(issue.reason, issue.params),
    }


async def _answer(request: web.Request, import_id: int, status: int = 200) -> web.Response:
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db:
        imp = await imports.get_import(db, _viewer(user), import_id)
        report = await imports.issues(db, imp)
    body = imports.progress(imp)
    body.update({"columns": imp.columns, "mapping": imp.mapping, "issues": [_issue_json(i) for i in report]})
    return web.json_response({"import": body}, status=status)


# --- the API ------------------------------------------------------------------------------------------


async def import_create_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/imports` (multipart: `file`, `kind` contacts|leads) → 201 with the id, the columns,
    the first rows and the guessed mapping."""
    imp = await _create(request)
    return web.json_response(
        {
            "import": {
                "id": imp.id,
                "kind": imp.kind,
                "status": imp.status,
                "columns": imp.columns,
                "sample": imp.sample,
                "total": imp.total_rows,
                "mapping": imp.mapping,
            }
        },
        status=201,
    )


async def import_get_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/imports/{id}`: status, progress, counts and the first lines of the report."""
    return await _answer(request, forms.path_int(request, "id"))


async def import_mapping_api(request: web.Request) -> web.StreamResponse:
    """`PUT /api/v1/imports/{id}/mapping` `{"mapping": [target or "", …], "policy": skip|update|create}`."""
    raw = await request.content.read(MAX_MAPPING_BODY + 1)
    if len(raw) > MAX_MAPPING_BODY:
        raise TooLarge(N_("The request is too large."), field="mapping")
    try:
        body = json.loads(raw)
    except ValueError:
        raise Invalid(N_("The body is not valid JSON."), field="mapping") from None
    if not isinstance(body, dict):
        raise Invalid(N_("The body is not valid JSON."), field="mapping")
    mapping = body.get("mapping")
    policy = body.get("policy", "skip")
    if not isinstance(mapping, list) or not isinstance(policy, str):
        raise Invalid(N_("Give one target (or none) for each column."), field="mapping")
    import_id = forms.path_int(request, "id")
    await _set_mapping(request, import_id, mapping, policy)
    return await _answer(request, import_id)


async def import_dry_run_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/imports/{id}/dry-run`: 202; poll `GET /api/v1/imports/{id}`."""
    import_id = forms.path_int(request, "id")
    await _start(request, import_id, imports.DRY_RUN)
    return await _answer(request, import_id, status=202)


async def import_run_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/imports/{id}/run` (after a dry run): 202; poll `GET /api/v1/imports/{id}`."""
    import_id = forms.path_int(request, "id")
    await _start(request, import_id, imports.RUN)
    return await _answer(request, import_id, status=202)


async def import_errors_csv(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/imports/{id}/errors.csv`: the refused rows and an "error" column, to fix and re-import."""
    user = current_user(request)
    import_id = forms.path_int(request, "id")
    async with request.app[keys.SESSIONS]() as db:
        imp = await imports.get_import(db, _viewer(user), import_id)
        data = await imports.refused_csv(db, imp, translate=i18n.translate_error)
    return download(data, "text/csv", f"import-{import_id}-refused.csv")


# --- the pages ----------------------------------------------------------------------------------------


async def import_page(request: web.Request) -> web.StreamResponse:
    """`GET /contacts/import`: the upload form and the caller's recent imports."""
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db:
        recent = await imports.list_imports(db, _viewer(user))
    limit = request.app[keys.SETTINGS].import_max_mb
    return await render("contacts/import.html", request, {"recent": recent, "max_mb": limit})


async def import_upload_form(request: web.Request) -> web.StreamResponse:
    """`POST /contacts/import` (multipart, CSRF in the header, sent by the page's script)."""
    try:
        imp = await _create(request)
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        async with request.app[keys.SESSIONS]() as db:
            recent = await imports.list_imports(db, _viewer(current_user(request)))
        context = {
            "recent": recent,
            "max_mb": request.app[keys.SETTINGS].import_max_mb,
            "error": i18n.translate_error(exc.message, exc.params),
        }
        return await render("contacts/import.html", request, context, status=exc.status)
    raise web.HTTPFound(f"/contacts/import/{imp.id}")


async def import_detail_page(request: web.Request, *, error: DomainError | None = None) -> web.Response:
    """`GET /contacts/import/{id}`: the mapping step, the progress bar, the dry run's and the run's report."""
    user = current_user(request)
    import_id = forms.path_int(request, "id")
    async with request.app[keys.SESSIONS]() as db:
        imp = await imports.get_import(db, _viewer(user), import_id)
        choices = await imports.targets(db, imp.kind)
        report = await imports.issues(db, imp, limit=REPORT_ROWS)
    context = {
        "imp": imp,
        "targets": choices,
        "report": [_issue_json(i) for i in report],
        "progress": imports.progress(imp),
        "columns": list(enumerate(imp.columns)),
        "policies": ("skip", "update", "create"),
        "editable": imp.status in imports.EDITABLE,
        "error": i18n.translate_error(error.message, error.params) if error else None,
    }
    return await render(
        "contacts/import_detail.html", request, context, status=error.status if error else 200
    )


async def import_detail(request: web.Request) -> web.StreamResponse:
    return await import_detail_page(request)


async def import_mapping_form(request: web.Request) -> web.StreamResponse:
    """`POST /contacts/import/{id}/mapping`: save the mapping and the policy, then start the dry run."""
    import_id = forms.path_int(request, "id")
    form = await request.post()
    policy = form.get("policy", "skip")
    try:
        async with request.app[keys.SESSIONS]() as db:
            imp = await imports.get_import(db, _viewer(current_user(request)), import_id)
            width = len(imp.columns)
        mapping = [form.get(f"col_{i}", "") for i in range(width)]
        await _set_mapping(request, import_id, mapping, policy if isinstance(policy, str) else "")
        await _start(request, import_id, imports.DRY_RUN)
    except DomainError as exc:
        if exc.status == 404:
            raise
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await import_detail_page(request, error=exc)
    raise web.HTTPFound(f"/contacts/import/{import_id}")


async def import_run_form(request: web.Request) -> web.StreamResponse:
    """`POST /contacts/import/{id}/run`: the real run, after a dry run."""
    import_id = forms.path_int(request, "id")
    try:
        await _start(request, import_id, imports.RUN)
    except DomainError as exc:
        if exc.status == 404:
            raise
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await import_detail_page(request, error=exc)
    await forms.flash(request, i18n.gettext("The import has started."))
    raise web.HTTPFound(f"/contacts/import/{import_id}")
