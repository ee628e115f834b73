"""`/scripts/versions/{id}/analytics`: a script version's funnel over its steps — runs that reached each
step, drop-offs there, the median seconds spent, bars proportional to the runs that reached it — with the
version's success and won-deal shares, and `?compare={other version}` side by side with another version
of the same script. The same numbers as JSON on `/api/v1/scripts/versions/{id}/funnel`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from scripts_engine.service import Funnel, StepStats, VersionInfo
from switchboard.errors import N_, Invalid
from webui import forms, keys
from webui.templating import render


def _compare_id(request: web.Request) -> int | None:
    raw = request.query.get("compare", "")
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 10 or not 0 < int(raw) < 2**31:
        raise Invalid(N_("Choose a version to compare with."), field="compare")
    return int(raw)


def share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def stats_json(s: StepStats) -> dict[str, Any]:
    return {
        "step": s.step_id,
        "kind": s.kind,
        "title": s.title,
        "reached": s.reached,
        "drop_offs": s.drop_offs,
        "median_seconds": s.median_seconds,
        "success": s.success,
        "won": s.won,
        "success_share": s.success_share,
        "won_share": s.won_share,
    }


def funnel_json(f: Funnel) -> dict[str, Any]:
    return {
        "version_id": f.version_id,
        "script": f.script_key,
        "version": f.version_number,
        "runs": f.runs,
        "running": f.running,
        "ended": f.ended,
        "left": f.left,
        "success": f.success,
        "won": f.won,
        "success_share": share(f.success, f.runs),
        "won_share": share(f.won, f.runs),
        "steps": [stats_json(s) for s in f.steps],
    }


async def _numbers(request: web.Request) -> tuple[Any, Funnel, Any, list[VersionInfo]]:
    """The version, its funnel, the comparison (or None) and the script's other versions."""
    version_id = forms.path_int(request, "id")
    other = _compare_id(request)
    scripts = request.app[keys.SCRIPTS]
    async with request.app[keys.SESSIONS]() as db:
        view = await scripts.get_version(db, version_id)
        funnel = await scripts.funnel(db, version_id)
        summary = next(s for s in await scripts.list_scripts(db) if s.id == view.script_id)
        siblings = [v for v in summary.versions if v.id != version_id]
        comparison = None
        if other is not None:
            if other not in {v.id for v in siblings}:
                raise Invalid(N_("Compare with another version of the same script."), field="compare")
            comparison = await scripts.compare(db, version_id, other)
    return view, funnel, comparison, siblings


async def analytics_page(request: web.Request) -> web.StreamResponse:
    """`GET /scripts/versions/{id}/analytics[?compare=<version id>]`."""
    view, funnel, comparison, siblings = await _numbers(request)
    top = max((s.reached for s in funnel.steps), default=0)
    if comparison is not None:
        top = max([top, *(s.reached for s in comparison.b.steps)])
    context = {
        "view": view,
        "funnel": funnel,
        "comparison": comparison,
        "siblings": siblings,
        "top": top,
        "share": share,
    }
    return await render("scripts/analytics.html", request, context)


async def funnel_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/scripts/versions/{id}/funnel[?compare=<version id>]`."""
    _, funnel, comparison, _ = await _numbers(request)
    body: dict[str, Any] = {"funnel": funnel_json(funnel)}
    if comparison is not None:
        body["compare"] = funnel_json(comparison.b)
        body["steps"] = [
            {
                "step": c.step_id,
                "a": stats_json(c.a) if c.a else None,
                "b": stats_json(c.b) if c.b else None,
            }
            for c in comparison.steps
        ]
    return web.json_response(body)
