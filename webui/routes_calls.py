"""Routes of the call desk: the call list and its CSV export (supervisors, admins), recordings (checked per
call by `webui.views.calls.may_listen`), click-to-call and live monitoring."""

from __future__ import annotations

from switchboard.permissions import Action
from webui.routes_spec import RouteSpec
from webui.views import calls

_ONE = {"id": "999999"}

CALL_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/calls", calls.calls_page, "calls", Action.CALLS_VIEW),
    RouteSpec("GET", "/calls.csv", calls.calls_csv, "calls_csv", Action.CALLS_VIEW),
    RouteSpec(
        "GET",
        "/api/v1/calls/{id}/recording",
        calls.recording,
        "api_call_recording",
        Action.CALLS_RECORDING,
        sample=_ONE,
    ),
    RouteSpec(
        "POST", "/api/v1/calls/originate", calls.originate_api, "api_call_originate", Action.CALLS_DIAL
    ),
    RouteSpec(
        "POST",
        "/api/v1/calls/{id}/monitor",
        calls.monitor_api,
        "api_call_monitor",
        Action.CALLS_MONITOR,
        sample=_ONE,
    ),
)
