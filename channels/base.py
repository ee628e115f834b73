"""The small interface every provider adapter implements (`channels/<provider>/adapter.py`).

- `verify(request)` checks the webhook's signature or secret and raises `WebhookRejected` (401 / 403);
- `parse(request)` turns the provider's body into normalised events, raising `BadPayload` (400);
- `handshake(request)` answers a provider's GET verification (Meta's `hub.challenge`);
- `send(message)` returns `Sent` (the provider's message id); it raises `switchboard.jobs.PermanentJobError`
  for a provider 4xx that can never succeed and `TransientChannelError` (retried with backoff) for
  5xx / timeouts;
- `check()` proves the credentials (the admin's "test" button, and before an account is stored);
- `connect(webhook_url)` / `disconnect()` register and remove the webhook at the provider;
- `fetch_media(url, max_bytes)` downloads an inbound attachment (provider URLs expire);
- `poll(handle)` for providers without webhooks (e-mail): fetch what is new, hand each event to `handle`
  (which stores it) and only then mark it seen at the provider;
- `close()` releases the HTTP client session.

Adapters see a `WebhookRequest` (a plain dataclass), not aiohttp's request: the web layer reads the body once,
within its size limit, and every adapter verifies exactly the bytes that are parsed.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from channels.model import (
    Channel,
    ConsentUpdate,
    DeliveryUpdate,
    InboundMessage,
    OutboundMessage,
    Sent,
    WatermarkUpdate,
)
from switchboard.jobs import PermanentJobError

Event = InboundMessage | DeliveryUpdate | ConsentUpdate | WatermarkUpdate
EventHandler = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    url: str  # the address the provider called, as it called it (Twilio signs it)
    headers: Mapping[str, str]  # case-insensitive (aiohttp's CIMultiDictProxy)
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        """The body as JSON, or `BadPayload`."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise BadPayload("the body is not valid JSON") from None

    def form(self) -> dict[str, str]:
        """The body as an `application/x-www-form-urlencoded` form (last value wins), or `BadPayload`."""
        try:
            text = self.body.decode("utf-8")
            return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
        except (ValueError, UnicodeDecodeError):
            raise BadPayload("the body is not a valid form") from None


@dataclass(frozen=True)
class WebhookReply:
    """What the provider gets back once the events are stored."""

    body: str = '{"ok": true}'
    content_type: str = "application/json"
    status: int = 200


class WebhookRejected(Exception):
    """The webhook is not from the provider: 401 when the proof is missing, 403 when it is wrong."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class BadPayload(Exception):
    """The body is not a payload the provider documents: answered 400 with the reason, never 500."""


class TransientChannelError(Exception):
    """A failure worth retrying (provider 5xx, rate limit, timeout, network)."""


class ChannelAdapter(abc.ABC):
    channel: Channel  # a class attribute, or set in __init__ by an adapter that serves two channels
    reply: WebhookReply = WebhookReply()
    polls: bool = False  # True: the hub calls poll() on a timer instead of waiting for webhooks

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id

    def verify(self, request: WebhookRequest) -> None:
        raise WebhookRejected(405, "this channel takes no webhooks")

    def parse(self, request: WebhookRequest) -> list[Event]:
        raise BadPayload("this channel takes no webhooks")

    def handshake(self, request: WebhookRequest) -> WebhookReply:
        """The answer to a GET on the webhook address (only Meta verifies a webhook this way)."""
        raise WebhookRejected(405, "this channel has no webhook handshake")

    @abc.abstractmethod
    async def send(self, message: OutboundMessage) -> Sent: ...

    @abc.abstractmethod
    async def check(self) -> dict[str, Any]:
        """Prove the credentials; returns what may be shown and kept in the account's config."""

    async def connect(self, webhook_url: str) -> None:  # noqa: B027 - polling channels register nothing
        """Register the webhook at the provider."""

    async def disconnect(self) -> None:  # noqa: B027
        """Remove the webhook at the provider."""

    async def fetch_media(self, url: str, max_bytes: int) -> tuple[bytes, str | None]:
        """The attachment's bytes and content type; PermanentJobError when larger than max_bytes."""
        raise PermanentJobError(f"{self.channel} attachments cannot be downloaded")

    async def poll(self, handle: EventHandler) -> None:  # noqa: B027
        """Fetch new events and hand each to `handle`; mark them seen only after it returns."""

    async def close(self) -> None:  # noqa: B027 - adapters without a client session need nothing
        """Release the adapter's client session."""
