"""Durable jobs throughput: how fast one worker drains the outbox, against the floor of the same database
doing the bare minimum per job (insert a row, delete it) measured in the same run.

Set BENCH_DATABASE_URL to a PostgreSQL database to measure the production store; the default is a
temporary SQLite file.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))

from sqlalchemy import delete, insert, text

from switchboard import jobs, migrate
from switchboard.db import create_engine, create_sessionmaker, utcnow
from switchboard.jobs_model import Job

N = int(os.environ.get("BENCH_JOBS", "3000"))


async def floor(sessions: Any) -> float:
    """One transaction to insert a job row and one to delete it: the least an outbox can cost."""
    started = time.perf_counter()
    for i in range(N):
        async with sessions() as db, db.begin():
            row = await db.execute(
                insert(Job)
                .values(kind="floor", payload={"i": i}, max_attempts=1, run_at=utcnow())
                .returning(Job.id)
            )
            job_id = row.scalar_one()
        async with sessions() as db, db.begin():
            await db.execute(delete(Job).where(Job.id == job_id))
    return N / (time.perf_counter() - started)


async def worker_drain(sessions: Any, concurrency: int) -> tuple[float, float]:
    registry = jobs.JobRegistry()
    done = asyncio.Event()
    count = 0

    @registry.register("bench.noop")
    async def noop(context: jobs.JobContext, payload: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        if count == N:
            done.set()

    started = time.perf_counter()
    for start in range(0, N, 500):
        async with sessions() as db, db.begin():
            for i in range(start, min(N, start + 500)):
                await jobs.enqueue(db, "bench.noop", {"i": i})
    enqueue_rate = N / (time.perf_counter() - started)
    worker = jobs.Worker(sessions, registry, concurrency=concurrency, poll_seconds=0.05)
    started = time.perf_counter()
    await worker.start()
    await asyncio.wait_for(done.wait(), timeout=600)
    elapsed = time.perf_counter() - started
    await worker.stop()
    return enqueue_rate, N / elapsed


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BENCH_DATABASE_URL", f"sqlite+aiosqlite:///{tmp}/jobs.db")
        await migrate.upgrade(url)
        engine = create_engine(url)
        sessions = create_sessionmaker(engine)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM jobs"))
            print(f"Jobs, {N} per figure, database {url.split(':', 1)[0]}")
            base = await floor(sessions)
            print(f"floor: insert + delete, one row each  {base:8.0f} jobs/s")
            enqueue_rate, drain = await worker_drain(sessions, concurrency=4)
            print(f"enqueue (500 per transaction)          {enqueue_rate:8.0f} jobs/s")
            print(f"worker drain, concurrency 4            {drain:8.0f} jobs/s")
            print(f"ratio drain ÷ floor:                   {drain / base:8.2f}")
        finally:
            await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
