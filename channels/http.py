"""Plain aiohttp for the provider clients: one lazily made session, and a size-limited download that maps
HTTP and network failures to the jobs worker's errors (`PermanentJobError` for good, `TransientChannelError`
to retry)."""

from __future__ import annotations

from typing import Any

import aiohttp
from yarl import URL

from channels.base import TransientChannelError
from switchboard.jobs import PermanentJobError

MIB = 1024 * 1024
CHUNK = 64 * 1024


class LazySession:
    """One `aiohttp.ClientSession`, made on first use (inside the running loop: a client may be built
    outside one) and made again if it was closed."""

    def __init__(self, timeout: float) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def download(
    session: aiohttp.ClientSession,
    url: str | URL,
    max_bytes: int,
    *,
    failing: str,
    unavailable: str,
    unreachable: str,
    too_large: str,
    **get: Any,
) -> tuple[bytes, str | None]:
    """GET `url`: its bytes and media type (the Content-Type without parameters).

    Refused with `too_large` past `max_bytes`, whether announced by Content-Length or found while reading.
    The wording is the caller's: `failing` for 429 / 5xx and `unavailable` for any other 4xx (both formatted
    with `{status}`), `unreachable` (followed by the exception's name) for network errors and timeouts.
    `get` goes to `session.get` (headers, redirects)."""
    data = bytearray()
    try:
        async with session.get(url, **get) as response:
            if response.status >= 500 or response.status == 429:
                raise TransientChannelError(failing.format(status=response.status))
            if response.status >= 400:
                raise PermanentJobError(unavailable.format(status=response.status))
            if response.content_length is not None and response.content_length > max_bytes:
                raise PermanentJobError(too_large)
            async for chunk in response.content.iter_chunked(CHUNK):
                data.extend(chunk)
                if len(data) > max_bytes:
                    raise PermanentJobError(too_large)
            content_type = response.headers.get("Content-Type")
    except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
        raise TransientChannelError(f"{unreachable}: {type(exc).__name__}") from None
    media_type = content_type.split(";", 1)[0].strip() if content_type else None
    return bytes(data), media_type or None
