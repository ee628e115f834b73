"""Routes of the sales-script side panel in the inbox: INBOX_VIEW, and the conversation must be one the
caller sees (checked in `webui.views.script_runs`)."""

from __future__ import annotations

from switchboard.permissions import Action
from webui.routes_spec import RouteSpec
from webui.views import script_runs as v

_ONE = {"id": "999999"}
_INBOX = Action.INBOX_VIEW
_PATH = "/api/v1/conversations/{id}/script"

SCRIPT_RUN_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", _PATH, v.script_state_api, "api_conversation_script", _INBOX, sample=_ONE),
    RouteSpec("POST", _PATH, v.script_start_api, "api_conversation_script_start", _INBOX, sample=_ONE),
    RouteSpec("POST", f"{_PATH}/answer", v.script_answer_api, "api_script_answer", _INBOX, sample=_ONE),
    RouteSpec("POST", f"{_PATH}/back", v.script_back_api, "api_script_back", _INBOX, sample=_ONE),
    RouteSpec("POST", f"{_PATH}/leave", v.script_leave_api, "api_script_leave", _INBOX, sample=_ONE),
)
