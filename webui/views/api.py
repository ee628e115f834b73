"""REST API v1: JSON in and out, Bearer tokens or the browser session, the same permission matrix."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from switchboard import audit, jobs
from switchboard.jobs_model import Job
from switchboard.permissions import allowed_actions
from webui import forms, keys
from webui.security import current_user
from webui.views.admin import PAGE, audit_filter_from, settle_dead_job


async def me(request: web.Request) -> web.StreamResponse:
    user = current_user(request)
    return web.json_response(
        {
            "id": user.id,
            "username": user.username,
            "full_name": user.full_name,
            "role": user.role,
            "branch": user.branch_name,
            "locale": user.locale,
            "permissions": [str(a) for a in allowed_actions(user.role)],
        }
    )


def _job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "run_at": job.run_at.isoformat(),
        "dead": job.dead,
        "last_error": job.last_error,
    }


async def jobs_list(request: web.Request) -> web.StreamResponse:
    state = request.query.get("state", "dead")
    if state not in ("dead", "pending"):
        raise web.HTTPBadRequest(reason="state must be 'dead' or 'pending'")
    async with request.app[keys.SESSIONS]() as db:
        rows = await jobs.list_jobs(db, dead=state == "dead", limit=PAGE)
        counts = await jobs.job_counts(db)
    return web.json_response({"counts": counts, "jobs": [_job_json(j) for j in rows]})


async def job_retry(request: web.Request) -> web.StreamResponse:
    job_id = await settle_dead_job(request, retry=True)
    return web.json_response({"id": job_id, "queued": True})


async def audit_list(request: web.Request) -> web.StreamResponse:
    f = audit_filter_from(request.query)
    offset = forms.integer(request.query, "offset", minimum=0, maximum=10**7) or 0
    async with request.app[keys.SESSIONS]() as db:
        rows, total = await audit.search(db, f, limit=PAGE, offset=offset)
    return web.json_response(
        {
            "total": total,
            "entries": [
                {
                    "id": r.id,
                    "at": r.at.isoformat(),
                    "user": r.username,
                    "category": r.category,
                    "module": r.module,
                    "action": r.action,
                    "record_type": r.record_type,
                    "record_id": r.record_id,
                    "changes": r.changes,
                    "ip": r.ip,
                    "detail": r.detail,
                }
                for r in rows
            ],
        }
    )
