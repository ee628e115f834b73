"""Provider webhooks: `POST /webhooks/<channel>/<account id>` (and `GET` for Meta's verification handshake).

Errors are JSON. The body is read once, within a size limit; the adapter verifies those bytes (401 / 403,
nothing stored), parses them (400 with a reason, never 500), and each event is stored before the provider
gets its 200, so an answer the provider never sees only makes it deliver again — and a redelivery is
stored once.
"""

from __future__ import annotations

import logging

from aiohttp import web

from channels.base import BadPayload, ChannelAdapter, WebhookRejected, WebhookReply, WebhookRequest
from channels.model import Channel
from webui import keys

log = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 1024 * 1024


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"ok": False, "error": reason}, status=status)


def _reply(reply: WebhookReply) -> web.Response:
    return web.Response(status=reply.status, text=reply.body, content_type=reply.content_type)


def called_url(request: web.Request) -> str:
    """The address as the provider called it: behind a proxy the hub sees its own scheme and host, while
    the provider signed the public one (`Settings.public_url`)."""
    public = request.app[keys.SETTINGS].public_url
    if public:
        return public.rstrip("/") + request.path_qs
    return str(request.url)


async def _adapter(request: web.Request) -> ChannelAdapter | web.Response:
    try:
        channel = Channel(request.match_info["channel"])
    except ValueError:
        return _error(404, "no such channel")
    adapter = await request.app[keys.CHANNEL_ADAPTERS].get(channel, request.match_info["account_id"])
    if adapter is None:
        return _error(404, f"no active {channel.value} account here")
    return adapter


async def _read(request: web.Request) -> WebhookRequest | web.Response:
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
        return _error(413, "the body is too large")
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body.extend(chunk)
        if len(body) > MAX_WEBHOOK_BYTES:
            return _error(413, "the body is too large")
    return WebhookRequest(request.method, called_url(request), request.headers, request.query, bytes(body))


async def receive(request: web.Request) -> web.StreamResponse:
    adapter = await _adapter(request)
    if isinstance(adapter, web.Response):
        return adapter
    hook = await _read(request)
    if isinstance(hook, web.Response):
        return hook
    channel = adapter.channel.value
    try:
        adapter.verify(hook)
    except WebhookRejected as exc:
        log.warning("%s webhook for account %s rejected: %s", channel, adapter.account_id, exc.reason)
        return _error(exc.status, exc.reason)
    try:
        events = adapter.parse(hook)
    except BadPayload as exc:
        log.warning("%s webhook for account %s: bad payload: %s", channel, adapter.account_id, exc)
        return _error(400, str(exc))
    for event in events:
        await request.app[keys.INBOX].receive(event)
    return _reply(adapter.reply)


async def handshake(request: web.Request) -> web.StreamResponse:
    adapter = await _adapter(request)
    if isinstance(adapter, web.Response):
        return adapter
    hook = WebhookRequest(request.method, called_url(request), request.headers, request.query)
    try:
        return _reply(adapter.handshake(hook))
    except WebhookRejected as exc:
        log.warning("%s webhook handshake rejected: %s", adapter.channel.value, exc.reason)
        return _error(exc.status, exc.reason)
