"""The live feed: one WebSocket per browser tab carrying the inbox's bus events to the people allowed to
see them, so a customer's message reaches the agent's screen without a reload.

The bus has no history (a tab that was away misses what happened meanwhile), so a tab that reconnects
passes `?after=<last message id it saw>` and first gets the catch-up from the database, then the live
events. The subscription is opened before the catch-up is read, so nothing falls between the two; a
message in both is sent once. Every frame is JSON: `{"type": "message" | "status" | "conversation" |
"typing" | "removed" | "resync" | "ready" | "notification" | "call", ...}`; a notification and a call (the
screen pop of the agent whose phone rings) go only to their person. `?only=personal` (the pages other than
the inbox) carries just those two, with no catch-up.

The tab says one thing back: `{"type": "typing", "conversation_id": N}` while the agent types a reply,
which shows "typing…" to the customer when they last wrote from the web chat and the agent may see the
conversation. Anything else is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from channels import webchat
from inbox.service import Inbox, Viewer
from switchboard.bus import EventBus, Subscription
from webui import keys
from webui.security import current_user

log = logging.getLogger(__name__)

LIVE_SOCKETS = web.AppKey("live_sockets", weakref.WeakSet[web.WebSocketResponse])
HEARTBEAT_SECONDS = 25.0  # under the usual 60 s proxy idle timeout; a dead peer is dropped after it
MAX_CLIENT_FRAME = 4096  # the tab only ever says "typing"; anything big is not ours
CATCHUP_PAGE = 500
CATCHUP_MAX = 5000  # further behind than this, the tab reloads its lists instead ("resync")
WATCHED_AT_START = 200  # conversations the tab probably shows, so it can be told when one leaves its view
NOTIFICATION_TOPIC = "inbox.notification"
CALL_TOPIC = "inbox.call"  # inbox.calls.CALL_TOPIC
_PERSONAL = {NOTIFICATION_TOPIC: "notification", CALL_TOPIC: "call"}
TYPING_EVERY = 1.0  # seconds: the tab sends "typing" every 2 s; faster than this per conversation is dropped
TYPING_REMEMBERED = 64  # conversations whose last "typing" one feed remembers
_FRAME_TYPES = {
    "inbox.message": "message",
    "inbox.status": "status",
    "inbox.conversation": "conversation",
    "inbox.typing": "typing",
}


def setup_live(app: web.Application) -> None:
    """Track the open feeds so a shutdown closes them (browsers then reconnect to another process).
    Idempotent, so tests may call it on an app whose composition root already did."""
    if LIVE_SOCKETS in app:
        return
    sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
    app[LIVE_SOCKETS] = sockets
    app.on_shutdown.append(_close_sockets)


async def _close_sockets(app: web.Application) -> None:
    tracked = app[LIVE_SOCKETS]
    sockets = list(tracked)
    if sockets:
        log.info("closing %d live feed(s) for shutdown", len(sockets))
    await asyncio.gather(
        *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in sockets),
        return_exceptions=True,
    )


def _same_origin(request: web.Request) -> bool:
    """Browsers send cookies with a cross-site WebSocket handshake and CORS does not apply to it, so a
    page on another (sub)domain could read an agent's feed: refuse a foreign Origin."""
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser: the session cookie had to be presented deliberately
        return True
    return urlsplit(origin).netloc.lower() == request.host.lower()


def _after(request: web.Request) -> int:
    raw = request.query.get("after", "0")
    if not raw.isdigit() or len(raw) > 12:
        raise web.HTTPBadRequest(reason="after must be a message id")
    return int(raw)


async def live_feed(request: web.Request) -> web.StreamResponse:
    """`GET /live`: the security middleware has already checked the session and INBOX_VIEW."""
    if not _same_origin(request):
        raise web.HTTPForbidden(reason="cross-site WebSocket refused")
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_CLIENT_FRAME)
    if not ws.can_prepare(request).ok:
        raise web.HTTPUpgradeRequired(reason="WebSocket upgrade expected", headers={"Upgrade": "websocket"})
    after = _after(request)
    personal = request.query.get("only") == "personal"
    sockets = request.app.get(LIVE_SOCKETS)
    if sockets is None:
        raise RuntimeError("setup_live(app) was not called by the composition root")
    user = current_user(request)
    feed = _Feed(
        ws,
        Viewer(user.id, user.role, user.branch_id),
        request.app[keys.INBOX],
        0 if personal else after,
        request.app[keys.BUS],
        personal=personal,
    )
    await ws.prepare(request)
    sockets.add(ws)
    try:
        await _serve(ws, feed, request.app[keys.BUS].subscribe("inbox.*"))
    except ConnectionError:
        log.debug("live feed: user %s went away during the catch-up", user.id)
    except Exception:  # the response is already a WebSocket: log here, the error pages cannot help
        log.exception("live feed of user %s failed", user.id)
        await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")
    finally:
        sockets.discard(ws)
        await ws.close()
    return ws


async def _serve(ws: web.WebSocketResponse, feed: _Feed, subscription: Subscription) -> None:
    async with subscription as events:
        await feed.start()
        forwarder = asyncio.create_task(feed.forward(events), name=f"live feed of user {feed.viewer.user_id}")
        try:
            async for frame in ws:  # reading keeps pings and the close handshake flowing
                if frame.type is WSMsgType.TEXT:
                    await feed.from_tab(frame.data)
        finally:
            forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forwarder


class _Feed:
    """What one tab is sent: only conversations its viewer may see, each catch-up message once."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        viewer: Viewer,
        inbox: Inbox,
        after: int,
        bus: EventBus,
        *,
        personal: bool = False,
    ) -> None:
        self.ws = ws
        self.personal = personal  # only the viewer's own notifications and calls
        self.after = after
        self.viewer = viewer
        self.inbox = inbox
        self.bus = bus
        self.typed: dict[int, float] = {}  # conversation id -> when its last "typing" went out
        self.caught_up: set[int] = set()  # message ids sent by the catch-up, not to be sent again live
        self.watched: set[int] = set()  # conversations the tab shows, told when they leave its view

    async def start(self) -> None:
        if self.personal:
            await self.ws.send_json({"type": "ready"})
            return
        listed = await self.inbox.conversations(self.viewer, status=None, limit=WATCHED_AT_START)
        self.watched.update(c["id"] for c in listed)
        if self.after > 0:
            await self._catch_up(self.after)
        await self.ws.send_json({"type": "ready"})

    async def _catch_up(self, after: int) -> None:
        cursor = after
        while True:
            payloads = await self.inbox.messages_since(self.viewer, cursor, limit=CATCHUP_PAGE)
            for payload in payloads:
                message_id = int(payload["message"]["id"])
                self.caught_up.add(message_id)
                self.watched.add(int(payload["conversation"]["id"]))
                await self.ws.send_json({"type": "message", "catchup": True, **payload})
                cursor = max(cursor, message_id)
            if len(payloads) < CATCHUP_PAGE:
                return
            if len(self.caught_up) >= CATCHUP_MAX:
                await self.ws.send_json({"type": "resync"})
                return

    async def from_tab(self, text: str) -> None:
        """A frame the tab sent: only "typing" means anything; it never gets an answer."""
        try:
            data = json.loads(text)
        except ValueError:
            return
        if not isinstance(data, dict) or data.get("type") != "typing":
            return
        conversation_id = data.get("conversation_id")
        if not isinstance(conversation_id, int) or isinstance(conversation_id, bool) or conversation_id <= 0:
            return
        await self._agent_typing(conversation_id)

    async def _agent_typing(self, conversation_id: int) -> None:
        """Show "typing…" in the widget of the visitor behind the conversation, if the viewer may see it
        and the customer last wrote from the web chat. Throttled per conversation; best-effort."""
        now = time.monotonic()
        if now - self.typed.get(conversation_id, -TYPING_EVERY) < TYPING_EVERY:
            return
        if len(self.typed) >= TYPING_REMEMBERED:
            self.typed.clear()
        self.typed[conversation_id] = now
        target = await self.inbox.reply_identity(self.viewer, conversation_id)
        if target is None or target[0] != webchat.CHANNEL.value:
            return
        _, account_id, visitor_id = target
        try:
            await webchat.publish_typing(self.bus, account_id, visitor_id)
        except Exception:
            log.warning("could not tell a visitor that user %s is typing", self.viewer.user_id, exc_info=True)

    async def forward(self, events: Subscription) -> None:
        """Copy matching bus events to the socket until either ends; a full queue means the tab fell
        behind and lost events, so it is told to reload."""
        dropped = events.dropped
        try:
            async for event in events:
                frame = self._frame(event.topic, event.data)
                if frame is not None:
                    await self.ws.send_json(frame)
                if events.dropped != dropped:
                    dropped = events.dropped
                    await self.ws.send_json({"type": "resync"})
        except ConnectionError:
            log.debug("live feed: the tab went away while we wrote to it")
        finally:
            # The bus closed (shutdown) or the tab is gone: end the socket, the tab reconnects.
            await self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"feed ended")

    def _frame(self, topic: str, data: dict[str, Any]) -> dict[str, Any] | None:
        personal = _PERSONAL.get(topic)
        if personal is not None:  # only the sockets of the person it is for
            if data.get("user_id") != self.viewer.user_id or not isinstance(data.get(personal), dict):
                return None
            return {"type": personal, personal: data[personal]}
        if self.personal:
            return None
        kind = _FRAME_TYPES.get(topic)
        conversation = data.get("conversation")
        if kind is None or not isinstance(conversation, dict) or "id" not in conversation:
            return None
        conversation_id = int(conversation["id"])
        if not self.viewer.can_see(conversation):
            if conversation_id in self.watched:  # reassigned away or moved out of the branch
                self.watched.discard(conversation_id)
                return {"type": "removed", "conversation_id": conversation_id}
            return None
        message = data.get("message")
        if kind == "message" and isinstance(message, dict) and message.get("id") in self.caught_up:
            self.caught_up.discard(message["id"])
            return None
        self.watched.add(conversation_id)
        return {"type": kind, **data}
