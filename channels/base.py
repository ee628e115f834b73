"""The small interface every provider adapter implements (`channels/<provider>/adapter.py`).

- `verify(request)` checks the webhook's signature or secret and raises `WebhookRejected` (401 / 403);
- `parse(payload)` turns the provider's body into normalised events, raising `BadPayload` (400);
- `send(message)` returns the provider's message id; it raises `switchboard.jobs.PermanentJobError` for a
  provider 4xx that can never succeed and `TransientChannelError` (retried with backoff) for 5xx/timeouts;
- `connect(webhook_url)` / `disconnect()` register and remove the webhook at the provider;
- `close()` releases the HTTP client session.
"""

from __future__ import annotations

import abc
from typing import Any

from aiohttp import web

from channels.model import Channel, DeliveryUpdate, InboundMessage, OutboundMessage

Event = InboundMessage | DeliveryUpdate


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
    channel: Channel

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id

    @abc.abstractmethod
    def verify(self, request: web.Request) -> None: ...

    @abc.abstractmethod
    def parse(self, payload: Any) -> list[Event]: ...

    @abc.abstractmethod
    async def send(self, message: OutboundMessage) -> str: ...

    @abc.abstractmethod
    async def connect(self, webhook_url: str) -> None: ...

    @abc.abstractmethod
    async def disconnect(self) -> None: ...

    async def close(self) -> None:  # noqa: B027 - adapters without a client session need nothing
        """Release the adapter's client session."""
