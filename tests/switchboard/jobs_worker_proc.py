"""One jobs-worker process for `test_jobs.py`'s multi-process test (run as a script, not collected).

Reads the database URL from `JOBS_PROC_DB_URL` (not argv: a URL may carry a password) and its worker id
from argv[1]. Prints `ready` once imported, waits for a line on stdin (so that both processes start
draining at the same moment), then runs a `Worker` whose `t.proc` handler inserts one row per run into
`test_job_runs`, until the jobs table is empty. Exit code 0 on success.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any

from sqlalchemy import func, select, text

from switchboard.db import create_engine, create_sessionmaker, transaction
from switchboard.jobs import JobContext, JobRegistry, Worker
from switchboard.jobs_model import Job

DEADLINE_SECONDS = 50.0


async def drain(db_url: str, worker_id: str) -> int:
    engine = create_engine(db_url)
    sessions = create_sessionmaker(engine)
    registry = JobRegistry()

    @registry.register("t.proc")
    async def record_run(ctx: JobContext, payload: dict[str, Any]) -> None:
        async with transaction(ctx.sessions) as session:
            await session.execute(
                text("INSERT INTO test_job_runs (job_id, worker) VALUES (:job_id, :worker)"),
                {"job_id": ctx.job_id, "worker": ctx.worker_id},
            )

    worker = Worker(
        sessions, registry, worker_id=worker_id, concurrency=8, poll_seconds=0.05, lease_seconds=30
    )
    deadline = time.monotonic() + DEADLINE_SECONDS
    status = 0
    await worker.start()
    try:
        while True:
            await asyncio.sleep(0.1)
            async with sessions() as session:
                remaining = await session.scalar(select(func.count()).select_from(Job))
            if remaining == 0:
                break
            if time.monotonic() > deadline:
                print(f"{worker_id}: {remaining} jobs left at the deadline", file=sys.stderr)
                status = 1
                break
    finally:
        await worker.stop(grace_seconds=10)
        await engine.dispose()
    return status


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    db_url = os.environ["JOBS_PROC_DB_URL"]
    worker_id = sys.argv[1]
    print("ready", flush=True)
    if not sys.stdin.readline():
        return 2  # the test went away before saying go
    return asyncio.run(drain(db_url, worker_id))


if __name__ == "__main__":
    sys.exit(main())
