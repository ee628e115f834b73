"""A fake Viber REST bot API (`https://chatapi.viber.com/pa`) and media server, for `ViberClient` pointed at
`http://127.0.0.1:PORT/pa` through `Settings.viber_api_base`.

It serves `POST /pa/{set_webhook,get_account_info,send_message}`, checks the `X-Viber-Auth-Token` header,
records every call, and answers as Viber documents: always HTTP 200 with a JSON `status` (0 ok, else
`status_message`), `message_token` for a sent message. Like Viber, `send_message` checks the body (receiver,
a sender name of 28 characters at most, what each message type requires) and, when `check_webhook` is on,
`set_webhook` first POSTs a signed `webhook` callback to the address and refuses it unless it answers 200.
It fails on demand — `fail_http("send_message", 502, times=2)`, `fail_status("send_message", 6,
"receiverNotSubscribed")`, `hang("send_message", 5)` — and serves media files (`add_media`) for downloads,
with their own failures (`fail_media`).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes._server import Failures, Server

ACCOUNT_ID = "pa:5342918346728469012"
ACCOUNT_URI = "creditmd"
FIRST_TOKEN = 5741311803571721087
_NAMES = {
    1: "invalidUrl",
    2: "invalidAuthToken",
    3: "badData",
    4: "missingData",
    5: "receiverNotRegistered",
    6: "receiverNotSubscribed",
    12: "tooManyRequests",
}
_REQUIRED = {
    "text": ("text",),
    "picture": ("media", "text"),
    "video": ("media", "size"),
    "file": ("media", "size", "file_name"),
    "url": ("media",),
    "location": ("location",),
    "contact": ("contact",),
    "sticker": ("sticker_id",),
}


@dataclass
class Call:
    endpoint: str
    token: str | None
    body: dict[str, Any]


@dataclass
class _Failure:
    http_status: int = 200
    status: int = 0
    message: str = ""


@dataclass
class _Media:
    data: bytes
    content_type: str
    chunked: bool


@dataclass
class FakeViber:
    tokens: set[str] = field(default_factory=set)  # empty: any token is valid
    account_name: str = "Credit Moldova"
    check_webhook: bool = False
    webhook: str = ""
    calls: list[Call] = field(default_factory=list)
    media_requests: list[str] = field(default_factory=list)
    _failures: Failures[_Failure] = field(default_factory=Failures)
    _media: dict[str, _Media] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(FIRST_TOKEN))
    _server: Server = field(default_factory=Server)
    root: str = ""

    @property
    def base_url(self) -> str:
        """What `Settings.viber_api_base` points at."""
        return f"{self.root}/pa"

    # --- failures on demand ---------------------------------------------------------------------------

    def fail_http(self, endpoint: str, http_status: int, *, times: int = 1) -> None:
        self._failures.add(endpoint, _Failure(http_status=http_status), times=times)

    def fail_status(self, endpoint: str, status: int, message: str | None = None, *, times: int = 1) -> None:
        text = message or _NAMES.get(status, "generalError")
        self._failures.add(endpoint, _Failure(status=status, message=text), times=times)

    def hang(self, endpoint: str, seconds: float, *, times: int = 1) -> None:
        self._failures.hang(endpoint, seconds, times=times)

    def calls_of(self, endpoint: str) -> list[Call]:
        return [c for c in self.calls if c.endpoint == endpoint]

    # --- media ------------------------------------------------------------------------------------------

    def add_media(self, name: str, data: bytes, content_type: str, *, chunked: bool = False) -> str:
        """Serve a file at `/media/{name}`; `chunked` leaves out Content-Length. Returns its URL."""
        self._media[name] = _Media(data, content_type, chunked)
        return f"{self.root}/media/{name}"

    def fail_media(self, name: str, http_status: int, *, times: int = 1) -> None:
        self._failures.add(f"media:{name}", _Failure(http_status=http_status), times=times)

    # --- the server ---------------------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/pa/{endpoint}", self._api)
        app.router.add_get("/media/{name}", self._serve_media)
        self.root = await self._server.start(app)
        return self.base_url

    async def close(self) -> None:
        await self._server.close()

    async def _api(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["endpoint"]
        token = request.headers.get("X-Viber-Auth-Token")
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            body = None
        self.calls.append(Call(endpoint, token, body if isinstance(body, dict) else {}))
        if not isinstance(body, dict):
            return _status(3, "badData")
        if not token:
            return _status(2, "missing_auth_token")
        if self.tokens and token not in self.tokens:
            return _status(2, "invalidAuthToken")
        failure = await self._failures.next(endpoint)
        if failure is not None and failure.http_status != 200:
            return web.Response(status=failure.http_status, text="<html>Server Error</html>")
        if failure is not None:
            return _status(failure.status, failure.message)
        if endpoint == "set_webhook":
            return await self._set_webhook(body, token)
        if endpoint == "get_account_info":
            return _ok(self._account_info())
        if endpoint == "send_message":
            problem = _send_problem(body)
            if problem:
                return _status(3, problem)
            return _ok(
                {"message_token": next(self._ids), "chat_hostname": "SN-CHAT-05_", "billing_status": 1}
            )
        return web.Response(status=404, text="Not Found")

    async def _set_webhook(self, body: dict[str, Any], token: str) -> web.Response:
        url = body.get("url")
        if not isinstance(url, str):
            return _status(4, "missingData")
        if url and self.check_webhook and not await self._webhook_answers(url, token):
            return _status(1, "invalidUrl")
        self.webhook = url
        types = body.get("event_types") or [
            "delivered",
            "seen",
            "failed",
            "subscribed",
            "unsubscribed",
            "conversation_started",
        ]
        return _ok({"chat_hostname": "SN-CHAT-05_", "event_types": types})

    async def _webhook_answers(self, url: str, token: str) -> bool:
        """Viber's check: a signed `webhook` callback to the new address must get a 200."""
        callback = {
            "event": "webhook",
            "timestamp": int(time.time() * 1000),
            "chat_hostname": "SN-CHAT-05_",
            "message_token": next(self._ids),
        }
        raw = json.dumps(callback).encode()
        signature = hmac.new(token.encode(), raw, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Viber-Content-Signature": signature}
        try:
            async with aiohttp.ClientSession() as http, http.post(url, data=raw, headers=headers) as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    def _account_info(self) -> dict[str, Any]:
        return {
            "id": ACCOUNT_ID,
            "chat_hostname": "SN-CHAT-05_",
            "name": self.account_name,
            "uri": ACCOUNT_URI,
            "icon": "https://media-direct.cdn.viber.com/pg_download?id=icon",
            "background": "https://media-direct.cdn.viber.com/pg_download?id=background",
            "category": "Finance",
            "subcategory": "Banking",
            "location": {"lon": 28.832157, "lat": 47.024512},
            "country": "MD",
            "webhook": self.webhook,
            "event_types": ["delivered", "seen", "failed", "subscribed", "unsubscribed"],
            "subscribers_count": 35,
            "members": [{"id": "01234567890A=", "name": "Admin", "avatar": "", "role": "admin"}],
        }

    async def _serve_media(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.media_requests.append(name)
        failure = await self._failures.next(f"media:{name}")
        if failure is not None and failure.http_status != 200:
            return web.Response(status=failure.http_status, text="error")
        item = self._media.get(name)
        if item is None:
            return web.Response(status=404, text="Not Found")
        if not item.chunked:
            return web.Response(body=item.data, content_type=item.content_type)
        response = web.StreamResponse(headers={"Content-Type": item.content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(item.data), 4096):
            await response.write(item.data[start : start + 4096])
        await response.write_eof()
        return response


def _send_problem(body: dict[str, Any]) -> str:
    """What Viber would refuse in a send_message body ("" when nothing)."""
    sender = body.get("sender")
    name = sender.get("name") if isinstance(sender, dict) else None
    if not body.get("receiver"):
        return "missing receiver"
    if not isinstance(name, str) or not name or len(name) > 28:
        return "sender.name is required, 28 characters at most"
    kind = body.get("type")
    if kind not in _REQUIRED:
        return "unknown message type"
    missing = [key for key in _REQUIRED[kind] if body.get(key) is None]
    if missing:
        return f"missing {', '.join(missing)}"
    if kind == "text" and len(body["text"]) > 7000:
        return "text is longer than 7000 characters"
    return ""


def _ok(extra: dict[str, Any]) -> web.Response:
    return web.json_response({"status": 0, "status_message": "ok", **extra})


def _status(status: int, message: str) -> web.Response:
    return web.json_response({"status": status, "status_message": message})
