"""Routes of the inbox's tools: canned replies, labels, transfers and notifications."""

from __future__ import annotations

from switchboard.permissions import Action
from webui.routes_spec import RouteSpec
from webui.views import inbox_tools as tools

_ONE = {"id": "999999"}
_INBOX = Action.INBOX_VIEW
_CANNED = Action.CANNED_MANAGE

INBOX_TOOLS_ROUTES: tuple[RouteSpec, ...] = (
    # canned replies: the management page (admins and supervisors) and the reply box's look-up
    RouteSpec("GET", "/inbox/canned", tools.canned_page, "inbox_canned", _CANNED),
    RouteSpec("POST", "/inbox/canned", tools.canned_create, "inbox_canned_create", _CANNED),
    RouteSpec("POST", "/inbox/canned/{id}", tools.canned_update, "inbox_canned_update", _CANNED, sample=_ONE),
    RouteSpec(
        "POST",
        "/inbox/canned/{id}/delete",
        tools.canned_delete,
        "inbox_canned_delete",
        _CANNED,
        sample=_ONE,
    ),
    RouteSpec("GET", "/api/v1/canned", tools.canned_api, "api_canned", _INBOX),
    RouteSpec("POST", "/api/v1/canned", tools.canned_create_api, "api_canned_create", _CANNED),
    # labels and transfers
    RouteSpec(
        "POST",
        "/api/v1/conversations/{id}/labels",
        tools.labels_api,
        "api_conversation_labels",
        _INBOX,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/api/v1/conversations/{id}/transfer",
        tools.transfer_api,
        "api_conversation_transfer",
        _INBOX,
        sample=_ONE,
    ),
    RouteSpec("GET", "/api/v1/transfer-targets", tools.transfer_targets_api, "api_transfer_targets", _INBOX),
    # the notification bell
    RouteSpec("GET", "/api/v1/notifications", tools.notifications_api, "api_notifications", _INBOX),
    RouteSpec(
        "POST", "/api/v1/notifications/read", tools.notifications_read_api, "api_notifications_read", _INBOX
    ),
)
