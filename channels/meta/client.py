"""The Meta Graph API over plain aiohttp, at `Settings.graph_api_base` + `Settings.graph_api_version`.

The page access token travels in the `Authorization: Bearer` header (never in a URL, so never in an access
log), with `appsecret_proof` beside it for apps that require it. Graph errors
(`{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`) become the hub's: API-unknown /
service errors (codes 1, 2), rate limits (4, 17, 32, 613), `is_transient` errors, HTTP 429 and 5xx are
`TransientChannelError`, retried with backoff; any other 4xx (bad parameter, permission, outside the
messaging window, expired token, person unavailable…) is a `PermanentJobError` with Meta's own message.
Media are downloaded from Meta's CDN without the token: those URLs are signed by themselves.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import aiohttp

from channels.base import TransientChannelError
from channels.http import MIB, LazySession, download
from switchboard.jobs import PermanentJobError

DEFAULT_TIMEOUT = 30.0
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 613})


class GraphClient:
    def __init__(
        self,
        token: str,
        *,
        api_base: str,
        version: str,
        app_secret: str = "",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._token = token
        self._root = f"{api_base.rstrip('/')}/{version.strip('/')}"
        self._proof = (
            hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest() if app_secret else ""
        )
        self._session = LazySession(timeout)

    def __repr__(self) -> str:
        return f"GraphClient({self._root!r}, token=***)"

    async def call(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """One Graph request (`path` below the version, e.g. `123/messages`); the answer's JSON object."""
        query = dict(params or {})
        if self._proof:
            query["appsecret_proof"] = self._proof
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with self._session.get().request(
                method, f"{self._root}/{path.lstrip('/')}", params=query, json=body, headers=headers
            ) as response:
                status = response.status
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    answer = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientChannelError(f"the Graph API did not answer: {type(exc).__name__}") from None
        if status >= 400 or (isinstance(answer, dict) and "error" in answer):
            raise error_of(status, answer)
        if not isinstance(answer, dict):
            raise TransientChannelError(f"the Graph API gave an unreadable answer (HTTP {status})")
        return answer

    async def send_message(self, node: str, payload: Mapping[str, Any]) -> str:
        """Send API: `POST /{node}/messages`; Meta's message id (`mid`)."""
        answer = await self.call("POST", f"{node}/messages", body=dict(payload))
        message_id = answer.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise PermanentJobError("the Graph API accepted the message but gave no message id")
        return message_id

    async def node(self, node: str, fields: str) -> dict[str, Any]:
        return await self.call("GET", node, params={"fields": fields})

    async def subscribe(self, node: str, fields: str) -> None:
        await self.call("POST", f"{node}/subscribed_apps", params={"subscribed_fields": fields})

    async def unsubscribe(self, node: str) -> None:
        await self.call("DELETE", f"{node}/subscribed_apps")

    async def download(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        """An attachment from Meta's CDN: refused past `max_bytes` before or while it is read; an expired
        or missing file is permanent, a CDN hiccup is retried."""
        if not url.startswith(("https://", "http://")):
            raise PermanentJobError("not a Meta attachment URL")
        return await download(
            self._session.get(),
            url,
            max_bytes,
            failing="Meta's CDN answered HTTP {status}",
            unavailable="the attachment is no longer available (HTTP {status})",
            unreachable="the attachment could not be downloaded",
            too_large=f"the file is larger than {max_bytes // MIB} MiB",
        )

    async def close(self) -> None:
        await self._session.close()


def error_of(status: int, answer: Any) -> Exception:
    """The hub's exception for a Graph error answer."""
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        error = {}
    message = error.get("message")
    reason = message if isinstance(message, str) and message else f"the Graph API answered HTTP {status}"
    code = error.get("code")
    if status >= 500 or status == 429 or code in TRANSIENT_CODES or error.get("is_transient") is True:
        return TransientChannelError(reason)
    return PermanentJobError(reason)
