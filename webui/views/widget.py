"""The website chat widget's endpoints: the script, its settings, messages in (POST or WebSocket) and the
agent's replies out (WebSocket push, polling as the fallback).

They are called from other sites, so they carry no session and no CSRF token: the widget key and the
`Origin` allow-list stand in, and CORS headers go only to allowed origins. Errors are JSON (with the CORS
header when the origin is allowed, so the widget can read the reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from channels import webchat
from channels.webchat import OnlineStatus, RateLimiter, VisitorPost, WebchatError, WidgetConfig
from inbox.service import CustomerMessage
from switchboard.bus import Subscription
from switchboard.errors import DomainError
from webui import keys

log = logging.getLogger(__name__)

SCRIPT = Path(__file__).parent.parent / "static" / "widget.js"
SCRIPT_MAX_AGE = 24 * 3600  # sites embed a fixed URL, so a fix reaches every visitor within a day
PREFLIGHT_MAX_AGE = 600
STATUS_EVERY = 60.0  # seconds between "is anyone there?" updates on an idle socket
SEND_RATE = (10, 10.0)  # messages per visitor: 10 at once, then one a second
READ_RATE = (20, 10.0)  # polls and history reads per visitor
TYPING_RATE = (2, 2.0)  # "typing…" frames per visitor: the widget sends one every 2 s while typing
TYPING_TOPIC = "inbox.typing"


@dataclass
class WebchatState:
    send_limiter: RateLimiter
    read_limiter: RateLimiter
    online: OnlineStatus
    typing_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(*TYPING_RATE))
    sockets: weakref.WeakSet[web.WebSocketResponse] = field(default_factory=weakref.WeakSet)
    # Every visitor request names its widget: remember each for a few seconds instead of asking the
    # database every time. An admin's change (origins, key, active) takes effect within WIDGET_TTL.
    widgets: dict[str, tuple[float, WidgetConfig | None]] = field(default_factory=dict)


WEBCHAT = web.AppKey("webchat", WebchatState)
WIDGET_TTL = 5.0
CleanupContext = Callable[[web.Application], AsyncIterator[None]]
_SET_UP = web.AppKey("webchat_set_up", bool)


def setup_webchat(app: web.Application, *, before: CleanupContext | None = None) -> None:
    """Call from `build_app` after the core cleanup contexts: connects the widget to Delivery (so agents'
    replies reach visitors) and closes visitors' sockets on shutdown. Pass the jobs worker's context as
    `before`, so the sender is in place before the worker can claim a web chat delivery (without it the
    job would fail for want of an adapter). Calling it twice does nothing."""
    if app.get(_SET_UP):
        return
    app[_SET_UP] = True
    contexts = list(app.cleanup_ctx)
    if before is not None and before in contexts:
        app.cleanup_ctx.insert(contexts.index(before), _webchat_ctx)
    else:
        app.cleanup_ctx.append(_webchat_ctx)
    app.on_shutdown.append(_close_sockets)


async def _webchat_ctx(app: web.Application) -> AsyncIterator[None]:
    app[WEBCHAT] = WebchatState(
        send_limiter=RateLimiter(*SEND_RATE),
        read_limiter=RateLimiter(*READ_RATE),
        online=OnlineStatus(app[keys.SESSIONS]),
    )
    app[keys.DELIVERY].add_sender(webchat.CHANNEL, webchat.make_sender(app[keys.BUS]))
    yield


async def _close_sockets(app: web.Application) -> None:
    state = app.get(WEBCHAT)
    if state is None:
        return
    for ws in list(state.sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


# --- helpers ---------------------------------------------------------------------------------------------


def forget_widgets(app: web.Application) -> None:
    """Drop this process's remembered widgets after an admin changed one (others catch up in WIDGET_TTL)."""
    state = app.get(WEBCHAT)
    if state is not None:
        state.widgets.clear()


def _state(request: web.Request) -> WebchatState:
    state = request.app.get(WEBCHAT)
    if state is None:
        raise web.HTTPServiceUnavailable(reason="the web chat is not set up (setup_webchat)")
    return state


async def _widget(request: web.Request) -> WidgetConfig:
    key = request.match_info["key"]
    cache = _state(request).widgets
    now = time.monotonic()
    cached = cache.get(key)
    if cached is not None and now - cached[0] < WIDGET_TTL:
        widget = cached[1]
    else:
        async with request.app[keys.SESSIONS]() as session:
            widget = await webchat.find_widget(session, key)
        if len(cache) > 10_000:  # keys that do not exist must not grow it without bound
            cache.clear()
        cache[key] = (now, widget)
    if widget is None:
        raise web.HTTPNotFound(reason="no such widget")
    return widget


def _cors(origin: str | None) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {"Vary": "Origin"}


def _json(data: dict[str, Any], origin: str | None, status: int = 200) -> web.Response:
    response = web.json_response(data, status=status, headers=_cors(origin))
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(exc: WebchatError, origin: str | None = None, retry_after: float | None = None) -> web.Response:
    """The same shape as every other JSON error (webui/errors.py), plus CORS for an allowed origin."""
    response = _json({"error": {"status": exc.status, "reason": exc.reason}}, origin, exc.status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, round(retry_after + 0.5)))
    return response


class RateLimited(WebchatError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(429, "too many messages; wait a moment")
        self.retry_after = retry_after


def _limit(limiter: RateLimiter, widget: WidgetConfig, visitor_id: str) -> None:
    wait = limiter.take(f"{widget.id}:{visitor_id}")
    if wait:
        raise RateLimited(wait)


def _visitor_json(message: CustomerMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": message.direction,
        "kind": message.kind,
        "body": message.body,
        "created_at": message.created_at.isoformat(),
        "client_id": webchat.client_message_id(message.external_id) if message.direction == "in" else None,
    }


async def _read_json(request: web.Request) -> object:
    if (request.content_length or 0) > webchat.MAX_REQUEST_BYTES:
        raise WebchatError(413, "the request is too large")
    raw = await request.read()
    if len(raw) > webchat.MAX_REQUEST_BYTES:
        raise WebchatError(413, "the request is too large")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebchatError(400, f"malformed JSON: {exc}") from exc


def _after(value: str | None) -> int:
    try:
        after = int(value or "0")
    except ValueError as exc:
        raise WebchatError(422, "after must be a message id") from exc
    if after < 0:
        raise WebchatError(422, "after must be a message id")
    return after


async def _take_message(app: web.Application, widget: WidgetConfig, data: object) -> dict[str, Any]:
    """One visitor message, from a POST or a socket frame: validate, limit, store, echo to the visitor's
    other tabs. Returns the acknowledgement."""
    post: VisitorPost = webchat.parse_visitor_post(data)
    _limit(app[WEBCHAT].send_limiter, widget, post.visitor_id)
    try:
        result = await app[keys.INBOX].ingest(webchat.to_inbound(widget, post))
    except DomainError as exc:
        raise WebchatError(exc.status, exc.message % exc.params if exc.params else exc.message) from exc
    if not result.duplicate:
        echo = {
            "id": result.message_id,
            "direction": "in",
            "kind": "text",
            "body": post.body,
            "created_at": None,
            "client_id": post.message_id,
        }
        try:
            await app[keys.BUS].publish(
                webchat.visitor_topic(widget.account_id, post.visitor_id),
                {"type": "message", "message": echo},
            )
        except Exception:  # the message is stored; the other tabs see it on their next read
            log.warning("could not echo a web chat message to the visitor's other tabs", exc_info=True)
    return {"id": result.message_id, "message_id": post.message_id, "duplicate": result.duplicate}


# --- endpoints -------------------------------------------------------------------------------------------


async def script(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        SCRIPT,
        headers={
            "Content-Type": "text/javascript; charset=utf-8",
            "Cache-Control": f"public, max-age={SCRIPT_MAX_AGE}",
        },
    )


async def preflight(request: web.Request) -> web.StreamResponse:
    widget = await _widget(request)
    try:
        origin = webchat.check_origin(widget, request.headers.get("Origin"))
    except WebchatError as exc:
        return _error(exc)
    response = web.Response(status=204, headers=_cors(origin))
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return response


async def config(request: web.Request) -> web.StreamResponse:
    widget = await _widget(request)
    try:
        origin = webchat.check_origin(widget, request.headers.get("Origin"))
    except WebchatError as exc:
        return _error(exc)
    online = await _state(request).online.online()
    return _json(widget.public_json(online=online), origin)


async def post_message(request: web.Request) -> web.StreamResponse:
    widget = await _widget(request)
    try:
        origin = webchat.check_origin(widget, request.headers.get("Origin"))
    except WebchatError as exc:
        return _error(exc)
    _state(request)
    try:
        ack = await _take_message(request.app, widget, await _read_json(request))
    except RateLimited as exc:
        return _error(exc, origin, exc.retry_after)
    except WebchatError as exc:
        return _error(exc, origin)
    return _json(ack, origin, status=200 if ack["duplicate"] else 201)


async def poll(request: web.Request) -> web.StreamResponse:
    """The fallback when a WebSocket cannot get through: replies after `after`, and whether anyone is
    there. Also the history a page load starts from (`after=0`)."""
    widget = await _widget(request)
    try:
        origin = webchat.check_origin(widget, request.headers.get("Origin"))
    except WebchatError as exc:
        return _error(exc)
    state = _state(request)
    try:
        visitor_id = webchat.client_id(request.query, "visitor")
        after = _after(request.query.get("after"))
        _limit(state.read_limiter, widget, visitor_id)
    except RateLimited as exc:
        return _error(exc, origin, exc.retry_after)
    except WebchatError as exc:
        return _error(exc, origin)
    messages = await _history(request.app, widget, visitor_id, after)
    return _json({"messages": messages, "online": await state.online.online()}, origin)


async def _history(
    app: web.Application, widget: WidgetConfig, visitor_id: str, after: int
) -> list[dict[str, Any]]:
    rows = await app[keys.INBOX].visitor_messages(
        webchat.CHANNEL,
        widget.account_id,
        visitor_id,
        after,
        external_prefix=webchat.visitor_prefix(visitor_id),
    )
    return [_visitor_json(m) for m in rows]


async def socket(request: web.Request) -> web.StreamResponse:
    """One visitor's live line: frames in are messages (`{"type": "message", ...}` like the POST body),
    pings and "typing" (which gets no answer); frames out are acks, errors, replies, "typing" and online
    status."""
    widget = await _widget(request)
    state = _state(request)
    try:
        webchat.check_origin(widget, request.headers.get("Origin"))
        visitor_id = webchat.client_id(request.query, "visitor")
        after = _after(request.query.get("after"))
        _limit(state.read_limiter, widget, visitor_id)  # a reconnect loop costs a history read each time
    except RateLimited as exc:
        return _error(exc, None, exc.retry_after)
    except WebchatError as exc:
        return _error(exc)
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=webchat.MAX_REQUEST_BYTES)
    if not ws.can_prepare(request).ok:
        return _error(WebchatError(400, "expected a WebSocket upgrade"))
    await ws.prepare(request)
    state.sockets.add(ws)
    # Subscribe before reading the backlog, so a reply sent in between is not missed (duplicates are
    # dropped by the widget, which knows message ids).
    subscription = request.app[keys.BUS].subscribe(webchat.visitor_topic(widget.account_id, visitor_id))
    pump: asyncio.Task[None] | None = None
    try:
        await ws.send_json({"type": "status", "online": await state.online.online()})
        for message in await _history(request.app, widget, visitor_id, after):
            await ws.send_json({"type": "message", "message": message})
        pump = asyncio.create_task(_pump(ws, subscription, state), name="webchat-pump")
        async for frame in ws:
            if frame.type is not WSMsgType.TEXT:
                continue
            answer = await _frame(request.app, widget, visitor_id, frame.data)
            if answer is not None:
                await ws.send_json(answer)
    except ConnectionResetError:  # the visitor went away mid-send
        pass
    finally:
        subscription.close()
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
                await pump
        state.sockets.discard(ws)
    return ws


async def _frame(
    app: web.Application, widget: WidgetConfig, visitor_id: str, text: str
) -> dict[str, Any] | None:
    """The answer to one frame from the visitor, or None for a frame that gets none ("typing")."""
    try:
        data = json.loads(text)
    except ValueError:
        return {"type": "error", "status": 400, "reason": "malformed JSON"}
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "ping":
        return {"type": "pong"}
    if kind == "typing":
        await _visitor_typing(app, widget, visitor_id)
        return None
    if kind != "message":
        return {"type": "error", "status": 400, "reason": "unknown frame type"}
    assert isinstance(data, dict)
    message_id = data.get("message_id")
    if data.get("visitor_id", visitor_id) != visitor_id:
        return {"type": "error", "status": 422, "reason": "visitor_id differs from the socket's"}
    try:
        ack = await _take_message(app, widget, {**data, "visitor_id": visitor_id})
    except WebchatError as exc:
        error = {"type": "error", "message_id": message_id, "status": exc.status, "reason": exc.reason}
        if isinstance(exc, RateLimited):
            error["retry_after"] = round(exc.retry_after, 1)
        return error
    return {"type": "ack", **ack}


async def _visitor_typing(app: web.Application, widget: WidgetConfig, visitor_id: str) -> None:
    """Tell the agents who may see the visitor's conversation that the visitor is typing. Best-effort and
    never stored: a visitor typing too often, or before their first message, is ignored."""
    if app[WEBCHAT].typing_limiter.take(f"{widget.id}:{visitor_id}"):
        return
    conversation = await app[keys.INBOX].conversation_of_identity(
        webchat.CHANNEL, widget.account_id, visitor_id
    )
    if conversation is None:
        return
    try:
        await app[keys.BUS].publish(TYPING_TOPIC, {"conversation": conversation})
    except Exception:
        log.warning("could not publish a visitor's typing", exc_info=True)


async def _pump(ws: web.WebSocketResponse, subscription: Subscription, state: WebchatState) -> None:
    """Bus events for this visitor to the socket, and the online status every minute."""
    events = aiter(subscription)
    while not ws.closed:
        try:
            event = await asyncio.wait_for(anext(events), STATUS_EVERY)
        except TimeoutError:
            await ws.send_json({"type": "status", "online": await state.online.online()})
            continue
        except StopAsyncIteration:  # the bus is closing
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
            return
        await ws.send_json(event.data)
