"""The Viber REST bot API over aiohttp, at `Settings.viber_api_base` (`https://chatapi.viber.com/pa`).

viberbot's own `Api` is synchronous (requests) and logs whole payloads, token included, so the calls are
made here: `POST {base}/{endpoint}` with the `X-Viber-Auth-Token` header and a JSON body. Viber answers
HTTP 200 with a JSON `status` (0 is ok) and `status_message`; each documented status is either permanent
(`PermanentJobError`: wrong token, unknown or unsubscribed receiver, bad data) or worth retrying
(`TransientChannelError`: rate limit, unknown "general error"), like HTTP 5xx, timeouts and network errors.
The token is never logged nor put in an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from channels.base import TransientChannelError
from channels.http import MIB, LazySession, download
from switchboard.jobs import PermanentJobError

DEFAULT_TIMEOUT = 30.0
AUTH_HEADER = "X-Viber-Auth-Token"

# Viber's documented status codes (REST bot API, "Error codes"): name and what it means for a send.
STATUS: dict[int, tuple[str, str]] = {
    1: ("invalidUrl", "the webhook URL is not valid"),
    2: ("invalidAuthToken", "the authentication token is not valid"),
    3: ("badData", "Viber refused the request's data"),
    4: ("missingData", "a mandatory field is missing"),
    5: ("receiverNotRegistered", "the customer is not registered on Viber"),
    6: ("receiverNotSubscribed", "the customer is not subscribed to this Viber account"),
    7: ("publicAccountBlocked", "this Viber account is blocked"),
    8: ("publicAccountNotFound", "the token does not belong to a Viber account"),
    9: ("publicAccountSuspended", "this Viber account is suspended"),
    10: ("webhookNotSet", "no webhook is set for this Viber account"),
    11: ("receiverNoSuitableDevice", "the customer's Viber cannot receive bot messages"),
    12: ("tooManyRequests", "Viber's rate limit was reached"),
    13: ("apiVersionNotSupported", "the customer's Viber is too old for this message"),
    14: ("incompatibleWithVersion", "the message does not fit its min_api_version"),
    15: ("publicAccountNotAuthorized", "this Viber account is not authorised"),
    16: ("inchatReplyMessageNotAllowed", "in-chat replies are not allowed"),
    17: ("publicAccountIsNotInline", "this Viber account is not inline"),
    18: ("noPublicChat", "this Viber account has no public chat"),
    19: ("cannotSendBroadcast", "the broadcast cannot be sent"),
    20: ("broadcastNotAllowed", "broadcasts are not allowed for this account"),
}
# Worth another try later: the rate limit. Any status Viber does not document ("general error") too.
TRANSIENT_STATUSES = frozenset({12})


@dataclass(frozen=True)
class AccountInfo:
    id: str
    name: str
    uri: str
    webhook: str


def status_error(status: int, message: str | None) -> PermanentJobError | TransientChannelError:
    """The hub's error for a non-zero Viber status, carrying Viber's `status_message`."""
    name, meaning = STATUS.get(status, (message or "generalError", "Viber reported an error"))
    reason = f"{message or name}: {meaning} (Viber status {status})"
    if status in STATUS and status not in TRANSIENT_STATUSES:
        return PermanentJobError(reason)
    return TransientChannelError(reason)


class ViberClient:
    def __init__(self, token: str, api_base: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._token = token
        self._base = api_base.rstrip("/")
        self._session = LazySession(timeout)

    def __repr__(self) -> str:
        return "ViberClient(***)"

    async def call(self, endpoint: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """POST one API call; its answer when `status` is 0, else the mapped error."""
        url = f"{self._base}/{endpoint}"
        headers = {AUTH_HEADER: self._token}
        try:
            async with self._session.get().post(url, json=dict(payload), headers=headers) as r:
                if r.status >= 500 or r.status == 429:
                    raise TransientChannelError(f"Viber answered HTTP {r.status} to {endpoint}")
                if r.status >= 400:
                    raise PermanentJobError(f"Viber answered HTTP {r.status} to {endpoint}")
                answer = await r.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransientChannelError(f"Viber did not answer {endpoint}: {type(exc).__name__}") from None
        except ValueError:
            raise TransientChannelError(f"Viber's answer to {endpoint} is not JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("status"), int):
            raise TransientChannelError(f"Viber's answer to {endpoint} has no status")
        if answer["status"] != 0:
            message = answer.get("status_message")
            raise status_error(answer["status"], message if isinstance(message, str) else None)
        return answer

    async def set_webhook(self, url: str, event_types: Sequence[str] = ()) -> list[str]:
        """Register (or, with an empty url, remove) the webhook; the event types Viber will send."""
        payload: dict[str, Any] = {"url": url}
        if url:
            payload |= {"event_types": list(event_types), "send_name": True, "send_photo": False}
        answer = await self.call("set_webhook", payload)
        types = answer.get("event_types")
        return [str(t) for t in types] if isinstance(types, list) else []

    async def account_info(self) -> AccountInfo:
        answer = await self.call("get_account_info", {})
        return AccountInfo(
            id=str(answer.get("id") or ""),
            name=str(answer.get("name") or ""),
            uri=str(answer.get("uri") or ""),
            webhook=str(answer.get("webhook") or ""),
        )

    async def send_message(self, payload: Mapping[str, Any]) -> str:
        """One `send_message`; Viber's `message_token` as text (it is a 64-bit number)."""
        answer = await self.call("send_message", payload)
        token = answer.get("message_token")
        if token is None:
            raise TransientChannelError("Viber accepted the message but gave no message_token")
        return str(token)

    async def download(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        """GET an inbound media URL (a signed CDN address: the token is not sent), refused past max_bytes
        whether announced by Content-Length or found while reading."""
        if urlsplit(url).scheme not in {"http", "https"}:
            raise PermanentJobError("not a Viber media address")
        return await download(
            self._session.get(),
            url,
            max_bytes,
            failing="the Viber media server answered HTTP {status}",
            unavailable="the Viber media server answered HTTP {status}: the link may have expired",
            unreachable="the Viber media could not be downloaded",
            too_large=f"the file is larger than {max_bytes / MIB:g} MiB",
        )

    async def close(self) -> None:
        await self._session.close()
