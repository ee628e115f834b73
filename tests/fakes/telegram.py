"""A fake Telegram Bot API server: aiogram's `Bot` talks to it through
`TelegramAPIServer.from_base("http://127.0.0.1:PORT")`.

It serves `/bot{token}/{method}`, records every call (method, token, form fields), answers as the Bot API
documents (`{"ok": true, "result": ...}` / `{"ok": false, "error_code": ..., "description": ...}`) and fails
on demand: `fail("sendMessage", 500, times=2)`, `fail("sendMessage", 403, "Forbidden: bot was blocked by
the user")`, `hang("sendMessage", seconds=5)`.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes._server import Failures, Server

BOT_ID = 7000001
BOT_USERNAME = "switchboard_test_bot"
_DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    429: "Too Many Requests: retry after 1",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass
class Call:
    method: str
    token: str
    params: dict[str, Any]


@dataclass
class _Failure:
    status: int
    description: str


@dataclass
class FakeTelegram:
    tokens: set[str] = field(default_factory=set)  # empty: any token is valid
    files: dict[str, bytes] = field(default_factory=dict)  # file_id -> content, for getFile + download
    calls: list[Call] = field(default_factory=list)
    _failures: Failures[_Failure] = field(default_factory=Failures)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(5000))
    _server: Server = field(default_factory=Server)
    base_url: str = ""

    def fail(self, method: str, status: int, description: str | None = None, *, times: int = 1) -> None:
        description = description or _DESCRIPTIONS.get(status, "Error")
        self._failures.add(method, _Failure(status, description), times=times)

    def hang(self, method: str, seconds: float, *, times: int = 1) -> None:
        self._failures.hang(method, seconds, times=times)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self.base_url = await self._server.start(app)  # no access log: its paths hold the token
        return self.base_url

    async def close(self) -> None:
        await self._server.close()

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        params: dict[str, Any] = {}
        if request.content_type == "application/json":
            params = await request.json()
        elif request.can_read_body:
            form = await request.post()
            params = {k: v for k, v in form.items() if isinstance(v, str)}
            params.update({k: v.filename for k, v in form.items() if isinstance(v, web.FileField)})
        self.calls.append(Call(method, token, params))
        if self.tokens and token not in self.tokens:
            return _error(401, "Unauthorized")
        failure = await self._failures.next(method)
        if failure is not None:
            return _error(failure.status, failure.description)
        return web.json_response({"ok": True, "result": self._result(method, params)})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["path"].removeprefix("docs/")
        content = self.files.get(file_id)
        if content is None:
            return web.Response(status=404)
        return web.Response(body=content, content_type="application/octet-stream")

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "Switchboard", "username": BOT_USERNAME}
        if method == "sendMessage":
            chat_id = params.get("chat_id", "0")
            return {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": int(chat_id), "type": "private"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Switchboard"},
                "text": params.get("text", ""),
            }
        if method == "getFile":
            file_id = str(params.get("file_id", ""))
            content = self.files.get(file_id)
            size = len(content) if content is not None else 0
            return {
                "file_id": file_id,
                "file_unique_id": file_id[-8:],
                "file_size": size,
                "file_path": f"docs/{file_id}",
            }
        if method in {"sendPhoto", "sendDocument", "sendVoice", "sendVideo"}:
            return {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": int(params.get("chat_id", "0")), "type": "private"},
                "caption": params.get("caption"),
            }
        if method == "getWebhookInfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        return True  # setWebhook, deleteWebhook, ...


def _error(status: int, description: str) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if status == 429:
        body["parameters"] = {"retry_after": 1}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")
