"""A fake Meta Graph API: the adapter's `GraphClient` talks to it through `Settings.graph_api_base`.

It serves the Send API (`POST /{version}/{node}/messages`, answering `{"recipient_id", "message_id"}`), node
reads (`GET /{version}/{node}?fields=id,name` or `id,username`), the page subscription
(`POST` / `DELETE /{version}/{node}/subscribed_apps`, `{"success": true}`) and media files under
`/cdn/{name}` for download tests. It checks the access token (bearer header or `access_token` query) and,
when it knows the app secret, `appsecret_proof`; records every Graph call; answers errors as Graph does
(`{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`) and fails on demand:
`fail("messages", 500, times=2)`, `fail("messages", 400, code=10, subcode=2018278)`,
`hang("messages", seconds=5)`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes._server import Failures, Server

PAGE_NAME = "Credit Expres"
IG_USERNAME = "credit.expres"
_MESSAGES = {
    1: "An unknown error occurred.",
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "(#4) Application request limit reached",
    10: "(#10) This message is sent outside of allowed window.",
    100: '(#100) Param recipient[id] must be a valid ID string (e.g., "123")',
    190: "Invalid OAuth access token - Cannot parse access token",
    551: "(#551) This person isn't available right now.",
    613: "(#613) Calls to this api have exceeded the rate limit.",
}
_TYPES = {190: "OAuthException", 1: "OAuthException", 2: "OAuthException"}


@dataclass
class Call:
    method: str  # HTTP method
    node: str
    edge: str  # "" for the node itself, "messages", "subscribed_apps"
    token: str
    query: dict[str, str]
    body: Any


@dataclass
class _Failure:
    status: int
    code: int
    subcode: int | None
    message: str


@dataclass
class _Media:
    data: bytes
    content_type: str
    status: int = 200


@dataclass
class FakeGraph:
    tokens: set[str] = field(default_factory=set)  # empty: any token is valid
    app_secret: str = ""  # set: appsecret_proof must be right
    version: str = "v21.0"
    calls: list[Call] = field(default_factory=list)
    media_requests: list[dict[str, str]] = field(default_factory=list)  # the headers of each media GET
    _failures: Failures[_Failure] = field(default_factory=Failures)
    _media: dict[str, _Media] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _server: Server = field(default_factory=Server)
    base_url: str = ""

    def fail(
        self,
        edge: str,
        status: int,
        *,
        code: int | None = None,
        subcode: int | None = None,
        message: str | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls to `edge` ("messages", "subscribed_apps", "" for a node) answer this."""
        code = code if code is not None else (2 if status >= 500 else 100)
        text = message or _MESSAGES.get(code, "An error occurred")
        self._failures.add(edge, _Failure(status, code, subcode, text), times=times)

    def hang(self, edge: str, seconds: float, *, times: int = 1) -> None:
        self._failures.hang(edge, seconds, times=times)

    def calls_of(self, edge: str, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.edge == edge and (method is None or c.method == method)]

    def add_media(self, name: str, data: bytes, content_type: str, *, status: int = 200) -> str:
        """Serve `data` at a CDN-like URL (no token needed, as on Meta's CDN); returns the URL."""
        self._media[name] = _Media(data, content_type, status)
        return f"{self.base_url}/cdn/{name}"

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/cdn/{name}", self._cdn)
        app.router.add_route("*", "/{version}/{node}", self._graph)
        app.router.add_route("*", "/{version}/{node}/{edge}", self._graph)
        self.base_url = await self._server.start(app)
        return self.base_url

    async def close(self) -> None:
        await self._server.close()

    # --- the Graph API ---------------------------------------------------------------------------------

    async def _graph(self, request: web.Request) -> web.Response:
        node, edge = request.match_info["node"], request.match_info.get("edge", "")
        auth = request.headers.get("Authorization", "")
        token = (
            auth.removeprefix("Bearer ")
            if auth.startswith("Bearer ")
            else request.query.get("access_token", "")
        )
        body: Any = None
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = (await request.text()) or None
        self.calls.append(Call(request.method, node, edge, token, dict(request.query), body))
        if request.match_info["version"] != self.version:
            return _error(400, 2635, None, f"(#2635) Unknown API version {request.match_info['version']}")
        if not token or (self.tokens and token not in self.tokens):
            return _error(400, 190, None, _MESSAGES[190])
        if self.app_secret:
            proof = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(request.query.get("appsecret_proof", ""), proof):
                return _error(400, 100, None, "Invalid appsecret_proof provided in the API argument")
        if edge == "messages" and request.method == "POST" and not _valid_send(body):
            return _error(400, 100, None, _MESSAGES[100])
        failure = await self._failures.next(edge)
        if failure is not None:
            return _error(failure.status, failure.code, failure.subcode, failure.message)
        return web.json_response(self._result(request.method, node, edge, request.query, body))

    def _result(self, method: str, node: str, edge: str, query: Any, body: Any) -> dict[str, Any]:
        if edge == "messages" and method == "POST":
            return {"recipient_id": body["recipient"]["id"], "message_id": f"m_fake{next(self._ids):06d}"}
        if edge == "subscribed_apps":
            return {"success": True}
        if edge == "":
            fields = str(query.get("fields", "id")).split(",")
            answer: dict[str, Any] = {"id": node}
            if "name" in fields:
                answer["name"] = PAGE_NAME
            if "username" in fields:
                answer["username"] = IG_USERNAME
            return answer
        return {"success": True}

    # --- the CDN ---------------------------------------------------------------------------------------

    async def _cdn(self, request: web.Request) -> web.Response:
        self.media_requests.append(dict(request.headers))
        media = self._media.get(request.match_info["name"])
        if media is None:
            return web.Response(status=404, text="Not Found")
        if media.status != 200:
            return web.Response(status=media.status, text="error")
        return web.Response(body=media.data, content_type=media.content_type)


def _valid_send(body: Any) -> bool:
    """What the Send API requires: a recipient id, and a text or an attachment (with a message tag when the
    messaging type is MESSAGE_TAG)."""
    if not isinstance(body, dict) or not isinstance(body.get("recipient"), dict):
        return False
    message = body.get("message")
    if not body["recipient"].get("id") or not isinstance(message, dict):
        return False
    if body.get("messaging_type") == "MESSAGE_TAG" and not body.get("tag"):
        return False
    return bool(message.get("text")) or isinstance(message.get("attachment"), dict)


def _error(status: int, code: int, subcode: int | None, message: str) -> web.Response:
    error: dict[str, Any] = {
        "message": message,
        "type": _TYPES.get(code, "OAuthException" if status < 500 else "FacebookApiException"),
        "code": code,
        "fbtrace_id": "AbCdEfGhIjKlMnOp",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return web.json_response({"error": error}, status=status)
