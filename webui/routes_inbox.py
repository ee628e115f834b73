"""Routes of the agent workspace (inbox pages, its JSON API and the live feed). Everything here needs
INBOX_VIEW; which conversations a caller sees inside is decided by `inbox.service.visible_to`."""

from __future__ import annotations

from switchboard.permissions import Action
from webui.live import live_feed
from webui.routes_spec import PUBLIC, RouteSpec
from webui.views import files, inbox, reply_options

_ONE = {"id": "999999"}

INBOX_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/inbox", inbox.inbox_page, "inbox", Action.INBOX_VIEW),
    RouteSpec(
        "GET", "/inbox/{id}", inbox.conversation_page, "inbox_conversation", Action.INBOX_VIEW, sample=_ONE
    ),
    RouteSpec("GET", "/live", live_feed, "live", Action.INBOX_VIEW),
    RouteSpec(
        "GET", "/api/v1/conversations", inbox.conversations_api, "api_conversations", Action.INBOX_VIEW
    ),
    RouteSpec(
        "GET",
        "/api/v1/conversations/{id}",
        inbox.thread_api,
        "api_conversation",
        Action.INBOX_VIEW,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/api/v1/conversations/{id}/messages",
        inbox.message_create_api,
        "api_conversation_message",
        Action.INBOX_VIEW,
        sample=_ONE,
    ),
    RouteSpec(
        "GET",
        "/api/v1/conversations/{id}/reply-options",
        reply_options.reply_options_api,
        "api_conversation_reply_options",
        Action.INBOX_VIEW,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/api/v1/messages/{id}/retry",
        reply_options.message_retry_api,
        "api_message_retry",
        Action.INBOX_VIEW,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/api/v1/sms/segments",
        reply_options.sms_segments_api,
        "api_sms_segments",
        Action.INBOX_VIEW,
    ),
    RouteSpec(
        "POST",
        "/api/v1/conversations/{id}/pin",
        inbox.pin_api,
        "api_conversation_pin",
        Action.ROUTING_MANAGE,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/api/v1/conversations/{id}/status",
        inbox.status_api,
        "api_conversation_status",
        Action.INBOX_VIEW,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/api/v1/conversations/{id}/assign",
        inbox.assign_api,
        "api_conversation_assign",
        Action.INBOX_VIEW,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/api/v1/conversations/{id}/attachments",
        files.upload_api,
        "api_conversation_attachments",
        Action.INBOX_VIEW,
        sample=_ONE,
    ),
    RouteSpec(
        "GET", "/files/{file_id}", files.file_get, "file", Action.INBOX_VIEW, sample={"file_id": "nope"}
    ),
    RouteSpec(
        "GET",
        "/media/{token}/{filename}",
        files.media_link,
        "media_link",
        PUBLIC,
        uses_session=False,
        sample={"token": "nope.nope", "filename": "a.jpg"},
    ),
)
