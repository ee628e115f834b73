"""The sales-script side panel's API in the inbox: the conversation's running script (or the published
scripts that fit it, best first), starting one, answering the current step, going back a step and leaving.

Everything is keyed by the conversation, which the caller must be able to see (`inbox.service`); a run is
always the conversation's active one. While the agent is on a call with the customer (the call screen's
"Open conversation" lands here), suggestions are for the phone and a run started then is the call's too.
An answer names the step it answers so that a second click on a step already passed is refused instead of
moving the run twice (`scripts_engine`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from inbox.calls import live_call_id
from scripts_engine.service import StepView
from switchboard.errors import N_, Conflict, Invalid, NotFound
from webui import forms, keys
from webui.security import client_ip, current_user, viewer_of
from webui.views.inbox import _json_object

MAX_REASON = 500


async def _conversation(request: web.Request) -> int:
    conversation_id = forms.path_int(request, "id")
    await request.app[keys.INBOX].thread(viewer_of(request), conversation_id, mark_read=False)
    return conversation_id


def _step_id(data: dict[str, Any]) -> str:
    step_id = data.get("step_id")
    if not isinstance(step_id, str) or not 0 < len(step_id) <= 100:
        raise Invalid(N_("Name the step this answers."), field="step_id")
    return step_id


async def _active(request: web.Request, conversation_id: int) -> StepView:
    async with request.app[keys.SESSIONS]() as db:
        run = await request.app[keys.SCRIPTS].active_run(db, conversation_id=conversation_id)
    if run is None:
        raise NotFound(N_("No script is running in this conversation."))
    return run


async def script_state_api(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/conversations/{id}/script`: `run` (the current step) or null, and `suggestions`."""
    conversation_id = await _conversation(request)
    scripts = request.app[keys.SCRIPTS]
    async with request.app[keys.SESSIONS]() as db:
        run = await scripts.active_run(db, conversation_id=conversation_id)
        call_id = await live_call_id(db, conversation_id, current_user(request).id)
        suggestions = await scripts.suggest_for(db, conversation_id=conversation_id, call_id=call_id)
    return web.json_response(
        {
            "run": run.as_json() if run is not None else None,
            "call_id": call_id,
            "suggestions": [
                {"version_id": s.version_id, "name": s.name, "version": s.version_number, "key": s.key}
                for s in suggestions
            ],
        }
    )


async def script_start_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/conversations/{id}/script {"version_id": N}`: start a published script here."""
    conversation_id = await _conversation(request)
    data = await _json_object(request)
    version_id = data.get("version_id")
    if not isinstance(version_id, int) or isinstance(version_id, bool) or not 0 < version_id < 2**31:
        raise Invalid(N_("Choose a script."), field="version_id")
    scripts = request.app[keys.SCRIPTS]
    actor = current_user(request).actor(client_ip(request))
    async with request.app[keys.SESSIONS]() as db, db.begin():
        if await scripts.active_run(db, conversation_id=conversation_id) is not None:
            raise Conflict(N_("A script is already running here: leave it first."))
        call_id = await live_call_id(db, conversation_id, current_user(request).id)
        view = await scripts.start(db, actor, version_id, conversation_id=conversation_id, call_id=call_id)
    return web.json_response({"run": view.as_json()}, status=201)


async def _move(request: web.Request, how: str) -> web.StreamResponse:
    conversation_id = await _conversation(request)
    data = await _json_object(request)
    run = await _active(request, conversation_id)
    scripts = request.app[keys.SCRIPTS]
    actor = current_user(request).actor(client_ip(request))
    async with request.app[keys.SESSIONS]() as db, db.begin():
        if how == "answer":
            view = await scripts.answer(db, actor, run.run_id, _step_id(data), data.get("answer"))
        elif how == "back":
            view = await scripts.back(db, actor, run.run_id, _step_id(data))
        else:
            reason = data.get("reason", "")
            if not isinstance(reason, str) or len(reason) > MAX_REASON:
                raise Invalid(N_("At most %(n)s characters."), field="reason", n=MAX_REASON)
            view = await scripts.leave(db, actor, run.run_id, reason.strip())
    return web.json_response({"run": view.as_json()})


async def script_answer_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/conversations/{id}/script/answer {"step_id", "answer"}`: the customer's answer (an
    option's value, or the typed text / number / date) to the current step; `say` steps take none."""
    return await _move(request, "answer")


async def script_back_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/conversations/{id}/script/back {"step_id"}`: one step back."""
    return await _move(request, "back")


async def script_leave_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/conversations/{id}/script/leave {"reason"}`: stop following the script."""
    return await _move(request, "leave")
