"""Administration pages: users, the jobs queue (dead jobs with retry) and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from switchboard import accounts, audit, jobs
from switchboard.errors import DomainError
from switchboard.permissions import Role
from webui import forms, i18n, keys
from webui.security import client_ip, current_user
from webui.templating import render

PAGE = 50


async def users_page(
    request: web.Request, *, error: DomainError | None = None, values: Any = None
) -> web.Response:
    async with request.app[keys.SESSIONS]() as db:
        users = await accounts.list_users(db)
        branches = await accounts.list_branches(db)
    context = {
        "users": users,
        "branches": branches,
        "roles": list(Role),
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
        "values": values or {},
    }
    return await render("admin/users.html", request, context, status=error.status if error else 200)


async def users_list(request: web.Request) -> web.StreamResponse:
    return await users_page(request)


async def user_create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    actor = current_user(request).actor(client_ip(request))
    try:
        async with request.app[keys.SESSIONS]() as db, db.begin():
            user = await accounts.create_user(
                db,
                actor,
                username=forms.text(form, "username", max_len=64, required=True),
                password=forms.text(form, "password", max_len=accounts.MAX_PASSWORD, required=True),
                role=forms.text(form, "role", max_len=20, required=True),
                full_name=forms.text(form, "full_name", max_len=200),
                email=forms.text(form, "email", max_len=254) or None,
                branch=forms.text(form, "branch", max_len=120) or None,
            )
    except DomainError as exc:
        values = {k: v for k, v in form.items() if k != "password" and isinstance(v, str)}
        return await users_page(request, error=exc, values=values)
    await forms.flash(request, i18n.gettext("User %(username)s created.", username=user.username))
    raise web.HTTPFound("/admin/users")


async def user_detail(request: web.Request, *, error: DomainError | None = None) -> web.Response:
    user_id = forms.path_int(request, "id")
    actor = current_user(request).actor(client_ip(request))
    async with request.app[keys.SESSIONS]() as db, db.begin():
        user = await accounts.get_user(db, user_id)
        branches = await accounts.list_branches(db)
        if error is None:
            await audit.record_change(
                db,
                actor,
                module="users",
                action=audit.AuditAction.READ,
                record_type="user",
                record_id=user.id,
            )
        history, _ = await audit.search(
            db, audit.AuditFilter(record_type="user", record_id=str(user.id)), limit=20
        )
    context = {
        "subject": user,
        "branches": branches,
        "roles": list(Role),
        "history": history,
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
    }
    return await render("admin/user.html", request, context, status=error.status if error else 200)


async def user_detail_view(request: web.Request) -> web.StreamResponse:
    return await user_detail(request)


async def user_update(request: web.Request) -> web.StreamResponse:
    user_id = forms.path_int(request, "id")
    form = await request.post()
    actor = current_user(request).actor(client_ip(request))
    try:
        fields: dict[str, Any] = {
            "full_name": forms.text(form, "full_name", max_len=200),
            "email": forms.text(form, "email", max_len=254) or None,
            "role": forms.text(form, "role", max_len=20, required=True),
            "branch_id": forms.integer(form, "branch_id", minimum=1),
            "active": form.get("active") == "on",
        }
        password = forms.text(form, "password", max_len=accounts.MAX_PASSWORD) or None
        async with request.app[keys.SESSIONS]() as db, db.begin():
            await accounts.update_user(db, actor, user_id, password=password, **fields)
    except DomainError as exc:
        return await user_detail(request, error=exc)
    await forms.flash(request, i18n.gettext("Changes saved."))
    raise web.HTTPFound(f"/admin/users/{user_id}")


async def jobs_page(request: web.Request) -> web.StreamResponse:
    show_dead = request.query.get("state", "dead") == "dead"
    async with request.app[keys.SESSIONS]() as db:
        counts = await jobs.job_counts(db)
        rows = await jobs.list_jobs(db, dead=show_dead, limit=PAGE)
    context = {"counts": counts, "rows": rows, "show_dead": show_dead}
    return await render("admin/jobs.html", request, context)


async def settle_dead_job(request: web.Request, *, retry: bool) -> int:
    """Retry or discard the dead job named in the path, audited; 404 if there is no such dead job."""
    job_id = forms.path_int(request, "id")
    actor = current_user(request).actor(client_ip(request))
    async with request.app[keys.SESSIONS]() as db, db.begin():
        done = await (jobs.retry_dead(db, job_id) if retry else jobs.discard_dead(db, job_id))
        if done:
            await audit.record(
                db,
                actor,
                category=audit.Category.ADMIN,
                module="jobs",
                action=audit.AuditAction.RETRY if retry else audit.AuditAction.DELETE,
                record_type="job",
                record_id=job_id,
            )
    if not done:
        raise web.HTTPNotFound(reason="no such dead job")
    if retry:
        request.app[keys.WORKER].wake()
    return job_id


async def _job_action(request: web.Request, *, retry: bool) -> web.StreamResponse:
    await settle_dead_job(request, retry=retry)
    await forms.flash(request, i18n.gettext("Job queued again.") if retry else i18n.gettext("Job discarded."))
    raise web.HTTPFound("/admin/jobs")


async def job_retry(request: web.Request) -> web.StreamResponse:
    return await _job_action(request, retry=True)


async def job_discard(request: web.Request) -> web.StreamResponse:
    return await _job_action(request, retry=False)


def audit_filter_from(query: Any) -> audit.AuditFilter:
    since, until = forms.date(query, "since"), forms.date(query, "until")
    return audit.AuditFilter(
        username=forms.text(query, "user", max_len=64) or None,
        category=forms.text(query, "category", max_len=20) or None,
        module=forms.text(query, "module", max_len=40) or None,
        action=forms.text(query, "action", max_len=30) or None,
        record_type=forms.text(query, "record_type", max_len=60) or None,
        record_id=forms.text(query, "record_id", max_len=64) or None,
        since=dt.datetime.combine(since, dt.time(), dt.UTC) if since else None,
        until=dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC) if until else None,
    )


async def audit_page(request: web.Request) -> web.StreamResponse:
    page = forms.integer(request.query, "page", minimum=1, maximum=100000) or 1
    error = None
    try:
        f = audit_filter_from(request.query)
    except DomainError as exc:
        error, f = i18n.translate_error(exc.message, exc.params), audit.AuditFilter()
    async with request.app[keys.SESSIONS]() as db:
        rows, total = await audit.search(db, f, limit=PAGE, offset=(page - 1) * PAGE)
        choices = await audit.distinct_values(db)
    context = {
        "rows": rows,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE)),
        "q": dict(request.query),
        "choices": choices,
        "categories": list(audit.Category),
        "error": error,
    }
    return await render("admin/audit.html", request, context)
