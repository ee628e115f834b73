"""The Twilio REST API through the official SDK's async client, pointed at `Settings.twilio_api_base`.

`twilio.rest.Client` builds every request (paths, form encoding, paging) and parses every answer; the HTTP
client under it is the SDK's `AsyncTwilioHttpClient`, adapted for aiohttp 3.14 (which deprecates the
`BasicAuth` the SDK still builds, and wants lists of form values spelled out), with its one session made
lazily inside the running loop and closed by `close()`.

Twilio's errors become the hub's: a 4xx that cannot succeed (invalid 'To', outside the WhatsApp window,
unsubscribed recipient, wrong credentials) is a `PermanentJobError` carrying Twilio's code and message; 429,
5xx, network errors and timeouts are `TransientChannelError`, retried with backoff. The auth token is never
logged and never part of an error.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.http.response import Response  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]
from yarl import URL

from channels.base import TransientChannelError
from channels.http import MIB, LazySession, download
from switchboard.jobs import PermanentJobError

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0
_SDK_PREFIX = re.compile(r"^Unable to \w+ record: ")


@dataclass(frozen=True)
class SentMessage:
    sid: str
    status: str


@dataclass(frozen=True)
class AccountInfo:
    sid: str
    friendly_name: str
    status: str


@dataclass(frozen=True)
class PhoneNumber:
    sid: str
    phone_number: str
    sms_url: str


class HubHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The SDK's async HTTP client with its session made on first use and credentials sent as a header."""

    def __init__(self, timeout: float) -> None:
        super().__init__(pool_connections=False, timeout=timeout)
        self.session = LazySession(timeout)

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's signature
        allow_redirects: bool = False,
    ) -> Response:
        sent_headers = dict(headers or {})
        if auth is not None:
            sent_headers["Authorization"] = aiohttp.encode_basic_auth(auth[0], auth[1])
        async with self.session.get().request(
            method.upper(),
            url,
            params=_pairs(params) or None,
            data=_pairs(data) or None,
            headers=sent_headers,
            timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
            allow_redirects=allow_redirects,
        ) as answer:
            text = await answer.text()
            return Response(answer.status, text, answer.headers)

    async def close(self) -> None:
        await self.session.close()


def _pairs(values: dict[str, object] | None) -> list[tuple[str, str]]:
    """Form or query values as pairs: a list (several `MediaUrl`) becomes one pair per item."""
    pairs: list[tuple[str, str]] = []
    for key, value in (values or {}).items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is not None:
                pairs.append((key, str(item)))
    return pairs


class TwilioClient:
    def __init__(
        self, account_sid: str, auth_token: str, api_base: str, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.account_sid = account_sid
        self._auth = (account_sid, auth_token)
        self._timeout = timeout
        self._http = HubHttpClient(timeout)
        # environment={}: TWILIO_* variables (credentials, edge, region) never change where a request goes
        self._client = Client(account_sid, auth_token, http_client=self._http, environment={})
        self._client.api.base_url = api_base.rstrip("/")
        self._api_host = URL(api_base).host or ""

    def __repr__(self) -> str:
        return f"TwilioClient({self.account_sid!r}, auth_token=***)"

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self._timeout + 5)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise error_of(exc) from None
        except TwilioException as exc:  # a list page that was not 200: the Response is the 2nd argument
            status = getattr(exc.args[1], "status_code", 0) if len(exc.args) > 1 else 0
            if 400 <= status < 500 and status != 429:
                raise PermanentJobError(f"Twilio refused the request (HTTP {status})") from None
            raise TransientChannelError(f"Twilio failed (HTTP {status or '?'})") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransientChannelError(f"Twilio did not answer: {type(exc).__name__}") from None
        except json.JSONDecodeError:  # a 2xx whose body is not JSON
            raise TransientChannelError("Twilio gave an unreadable answer") from None

    async def send(
        self,
        *,
        to: str,
        from_: str,
        body: str | None = None,
        media_urls: Sequence[str] = (),
        content_sid: str | None = None,
        content_variables: str | None = None,
        status_callback: str | None = None,
    ) -> SentMessage:
        values: dict[str, Any] = {"to": to, "from_": from_}
        if body:
            values["body"] = body
        if media_urls:
            values["media_url"] = list(media_urls)
        if content_sid:
            values["content_sid"] = content_sid
        if content_variables:
            values["content_variables"] = content_variables
        if status_callback:
            values["status_callback"] = status_callback
        message = await self._call(self._client.messages.create_async(**values))
        return SentMessage(str(message.sid), str(message.status or ""))

    async def account(self) -> AccountInfo:
        found = await self._call(self._client.api.v2010.accounts(self.account_sid).fetch_async())
        return AccountInfo(str(found.sid), str(found.friendly_name or ""), str(found.status or ""))

    async def find_number(self, phone: str) -> PhoneNumber | None:
        """The account's IncomingPhoneNumber for an E.164 number, or None."""
        found = await self._call(self._client.incoming_phone_numbers.list_async(phone_number=phone, limit=20))
        for number in found:
            if number.phone_number == phone:
                return PhoneNumber(str(number.sid), str(number.phone_number), str(number.sms_url or ""))
        return None

    async def set_sms_url(self, number_sid: str, url: str) -> None:
        await self._call(
            self._client.incoming_phone_numbers(number_sid).update_async(sms_url=url, sms_method="POST")
        )

    async def download(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        """A media file of an incoming message. Twilio answers with a redirect to its CDN; the
        credentials go only to Twilio's own API host (HTTP basic auth, for accounts with media auth on)
        and aiohttp drops them on the redirect to another origin."""
        target = URL(url)
        headers = {}
        if target.host and (target.host == self._api_host or target.host.endswith(".twilio.com")):
            headers["Authorization"] = aiohttp.encode_basic_auth(*self._auth)
        data, media_type = await download(
            self._http.session.get(),
            target,
            max_bytes,
            failing="Twilio media: HTTP {status}",
            unavailable="Twilio media is not available (HTTP {status})",
            unreachable="Twilio media did not arrive",
            too_large=f"the file is larger than {max_bytes // MIB} MiB",
            headers=headers,
            allow_redirects=True,
            max_redirects=5,
        )
        return data, media_type or "application/octet-stream"  # aiohttp's word for a missing Content-Type

    async def close(self) -> None:
        await self._http.close()


def error_of(exc: TwilioRestException | TwilioServiceException) -> Exception:
    """Twilio's error as the jobs worker understands it: 4xx (but 429) for good, anything else retried."""
    status = int(getattr(exc, "status", 0) or 0)
    code = getattr(exc, "code", None)
    if isinstance(exc, TwilioServiceException):
        text = str(exc.detail or exc.title or "")
    else:
        text = _SDK_PREFIX.sub("", str(exc.msg or ""))
    reason = f"Twilio {code}: {text}" if code and code != status else f"Twilio HTTP {status}: {text}"
    if 400 <= status < 500 and status != 429:
        return PermanentJobError(reason.strip())
    return TransientChannelError(reason.strip())
