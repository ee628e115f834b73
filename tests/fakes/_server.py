"""What the fake provider servers share: serving an aiohttp app on a free local port, and the failures
queued on demand (`fail(..., times=2)`, `hang(..., seconds=5)`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from aiohttp import web

F = TypeVar("F")


class Server:
    """An aiohttp app served on 127.0.0.1 at a free port, without an access log (paths may hold tokens)."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, app: web.Application) -> str:
        """Serve `app`; its root URL, `http://127.0.0.1:PORT`."""
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class _Queued(Generic[F]):
    failure: F | None  # None: a hang
    times: int
    hang: float = 0.0


@dataclass
class Failures(Generic[F]):
    """Per key (a method, an endpoint), what the next calls meet, in the order queued: a failure (the fake's
    own description of the error answer) or a hang; each serves `times` calls, then the next in line."""

    _queues: dict[str, list[_Queued[F]]] = field(default_factory=dict)

    def add(self, key: str, failure: F, *, times: int = 1) -> None:
        self._queues.setdefault(key, []).append(_Queued(failure, times))

    def hang(self, key: str, seconds: float, *, times: int = 1) -> None:
        self._queues.setdefault(key, []).append(_Queued(None, times, seconds))

    async def next(self, key: str) -> F | None:
        """The failure this call answers with, or None to answer normally (after sleeping, for a hang)."""
        queue = self._queues.get(key, [])
        if not queue:
            return None
        queued = queue[0]
        queued.times -= 1
        if queued.times <= 0:
            queue.pop(0)
        if queued.failure is None:
            await asyncio.sleep(queued.hang)
        return queued.failure
