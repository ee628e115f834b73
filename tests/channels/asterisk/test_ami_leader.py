"""One process at a time consumes AMI: the holder of a PostgreSQL advisory lock; another takes over when it
stops or its database session dies. On SQLite the only process always leads."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from channels.asterisk.leader import AmiLeader
from tests.conftest import pg_admin_url


class Work:
    """Stands for `AmiConnection.run`: marks itself running until cancelled."""

    def __init__(self) -> None:
        self.running = asyncio.Event()
        self.stopped = asyncio.Event()
        self.starts = 0

    async def __call__(self) -> None:
        self.starts += 1
        self.running.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.running.clear()
            self.stopped.set()


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_on_sqlite_the_only_process_always_leads(tmp_path: object) -> None:
    leader = AmiLeader(f"sqlite+aiosqlite:///{tmp_path}/x.db", retry_seconds=0.05)
    work = Work()
    task = asyncio.create_task(leader.run(work))
    await asyncio.wait_for(work.running.wait(), 2)
    assert leader.is_leader
    await stop(task)
    assert work.stopped.is_set() and not leader.is_leader


def pg_url() -> str:
    return make_url(pg_admin_url()).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


@pytest.mark.postgres
async def test_a_second_process_takes_over_when_the_leader_stops() -> None:
    name = f"ami-test-{uuid.uuid4().hex[:8]}"
    first, second = AmiLeader(pg_url(), name, retry_seconds=0.1), AmiLeader(pg_url(), name, retry_seconds=0.1)
    work1, work2 = Work(), Work()
    task1 = asyncio.create_task(first.run(work1))
    await asyncio.wait_for(work1.running.wait(), 5)
    task2 = asyncio.create_task(second.run(work2))
    try:
        await asyncio.sleep(0.4)  # several retries
        assert first.is_leader and not second.is_leader and work2.starts == 0
        await stop(task1)  # the leading process shuts down: its session, and the lock, go with it
        await asyncio.wait_for(work2.running.wait(), 5)
        assert second.is_leader and work1.stopped.is_set()
    finally:
        await stop(task1)
        await stop(task2)


@pytest.mark.postgres
async def test_a_leader_whose_session_dies_stops_and_another_takes_over() -> None:
    name = f"ami-test-{uuid.uuid4().hex[:8]}"
    first, second = AmiLeader(pg_url(), name, retry_seconds=0.1), AmiLeader(pg_url(), name, retry_seconds=0.1)
    work1, work2 = Work(), Work()
    task1 = asyncio.create_task(first.run(work1))
    await asyncio.wait_for(work1.running.wait(), 5)
    task2 = asyncio.create_task(second.run(work2))
    try:
        await asyncio.sleep(0.3)
        assert work2.starts == 0
        admin = await asyncpg.connect(
            make_url(pg_admin_url()).set(drivername="postgresql").render_as_string(False)
        )
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first.backend_pid)
        finally:
            await admin.close()
        await asyncio.wait_for(work1.stopped.wait(), 5)  # the old leader notices and stops consuming
        await asyncio.wait_for(work2.running.wait(), 5)
        assert second.is_leader
        await asyncio.sleep(0.3)
        assert not (work1.running.is_set() and work2.running.is_set())  # never both, once settled
        assert work2.starts == 1
    finally:
        await stop(task1)
        await stop(task2)
