"""Provider webhooks: `POST /webhooks/<channel>/<account id>`.

Every answer is JSON. The adapter verifies the request (401 / 403, nothing stored), parses the body (400
with a reason, never 500) and each event is stored before the provider gets its 200, so an answer the
provider never sees only makes it deliver again — and a redelivery is stored once.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from channels.base import BadPayload, WebhookRejected
from channels.model import Channel, DeliveryUpdate
from webui import keys

log = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 1024 * 1024


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"ok": False, "error": reason}, status=status)


async def _receive(request: web.Request, channel: Channel) -> web.Response:
    adapter = await request.app[keys.CHANNEL_ADAPTERS].get(channel, request.match_info["account_id"])
    if adapter is None:
        return _error(404, f"no active {channel.value} account here")
    try:
        adapter.verify(request)
    except WebhookRejected as exc:
        log.warning("%s webhook for account %s rejected: %s", channel.value, adapter.account_id, exc.reason)
        return _error(exc.status, exc.reason)
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
        return _error(413, "the body is too large")
    try:
        payload = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return _error(400, "the body is not valid JSON")
    try:
        events = adapter.parse(payload)
    except BadPayload as exc:
        return _error(400, str(exc))
    inbox = request.app[keys.INBOX]
    for event in events:
        if isinstance(event, DeliveryUpdate):
            await inbox.update_delivery(event)
        else:
            await inbox.ingest(event)
    return web.json_response({"ok": True})


async def telegram(request: web.Request) -> web.StreamResponse:
    return await _receive(request, Channel.TELEGRAM)
