"""Exactly one hub process consumes a PBX's AMI stream: the one holding a PostgreSQL advisory lock.

The lock (`pg_try_advisory_lock`) lives on a dedicated connection opened for it, so it is held exactly as
long as that session: when the leading process dies, PostgreSQL drops the session and the lock with it, and
the next process that tries (every `retry_seconds`) takes over. The leader checks its own connection just as
often and stops its work as soon as the connection is gone (its lock is gone too), which bounds the moment
two processes might both consume to about `retry_seconds`; call records are keyed by Linkedid, so such an
overlap never duplicates a call. On SQLite there is one process, so it always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a name (e.g. `ami:pbx.example:5038`)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class AmiLeader:
    """`await leader.run(work)`: run `work()` (e.g. `AmiConnection.run`) only while this process leads;
    cancelled when leadership is lost, started again when it is won back. Runs until cancelled."""

    def __init__(self, database_url: str, name: str = "ami", *, retry_seconds: float = 5.0) -> None:
        self.name = name
        self.key = lock_key(f"switchboard:{name}")
        self.retry_seconds = retry_seconds
        self.is_leader = False
        self.backend_pid: int | None = None  # the lock connection's PostgreSQL backend, while leading
        url = make_url(database_url)
        self._sqlite = url.get_backend_name() == "sqlite"
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def run(self, work: Callable[[], Awaitable[None]]) -> None:
        if self._sqlite:
            self.is_leader = True
            try:
                await work()
            finally:
                self.is_leader = False
            return
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self._dsn, timeout=self.retry_seconds * 2 + 5)
                if await connection.fetchval("SELECT pg_try_advisory_lock($1)", self.key):
                    await self._lead(connection, work)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("AMI leadership %r: database unavailable (%s)", self.name, exc)
            except Exception:
                log.exception("AMI leadership %r: the work failed", self.name)
            finally:
                self.is_leader = False
                self.backend_pid = None
                if connection is not None:
                    await self._close(connection)
            await asyncio.sleep(self.retry_seconds)

    async def _lead(self, connection: asyncpg.Connection, work: Callable[[], Awaitable[None]]) -> None:
        self.is_leader = True
        self.backend_pid = connection.get_server_pid()
        log.info("this process now consumes AMI (%r)", self.name)
        task = asyncio.ensure_future(work())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.retry_seconds)
                if done:
                    task.result()  # a crash is logged by run(); a clean return just retries later
                    return
                # The lock lives as long as this session: a dead connection means it is gone.
                await asyncio.wait_for(connection.fetchval("SELECT 1"), self.retry_seconds)
        finally:
            if not task.done():
                log.warning("AMI leadership %r lost: stopping the AMI consumer", self.name)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _close(self, connection: asyncpg.Connection) -> None:
        """Closing the session releases the lock; a dead one is just dropped."""
        try:
            await asyncio.wait_for(connection.close(), self.retry_seconds)
        except Exception:
            connection.terminate()
