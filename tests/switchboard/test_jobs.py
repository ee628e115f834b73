"""Durable jobs: same-transaction enqueue, claiming, retries with backoff, leases and fencing, admin helpers.

Runs on the backend chosen by SWITCHBOARD_TEST_BACKEND; the multi-process test needs PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from switchboard.db import transaction, utcnow
from switchboard.jobs import (
    DEFAULT_MAX_ATTEMPTS,
    ClaimedJob,
    JobContext,
    JobRegistry,
    PermanentJobError,
    Worker,
    discard_dead,
    enqueue,
    job_counts,
    list_jobs,
    retry_dead,
    retry_delay,
)
from switchboard.jobs_model import Job
from switchboard.settings import Settings
from tests.conftest import BACKEND

Sessions = async_sessionmaker[AsyncSession]
Handler = Callable[[JobContext, dict[str, Any]], Awaitable[None]]
WORKER_PROC = Path(__file__).with_name("jobs_worker_proc.py")


def make_worker(sessions: Sessions, registry: JobRegistry, **kwargs: Any) -> Worker:
    options: dict[str, Any] = {
        "poll_seconds": 0.02,
        "lease_seconds": 5.0,
        "backoff_base": 10.0,
        "backoff_max": 30.0,
        "rng": random.Random(7),
        "error_pause": 0.01,
    }
    options.update(kwargs)
    return Worker(sessions, registry, **options)


async def add_job(sessions: Sessions, kind: str, payload: dict[str, Any] | None = None, **kwargs: Any) -> int:
    async with transaction(sessions) as session:
        job = await enqueue(session, kind, payload or {}, **kwargs)
        return job.id


async def load(sessions: Sessions, job_id: int) -> Job | None:
    async with sessions() as session:
        return await session.get(Job, job_id)


async def set_columns(sessions: Sessions, job_id: int, **values: Any) -> None:
    async with transaction(sessions) as session:
        await session.execute(update(Job).where(Job.id == job_id).values(**values))


async def make_due(sessions: Sessions, job_id: int) -> None:
    await set_columns(sessions, job_id, run_at=utcnow() - dt.timedelta(seconds=1))


def metric(kind: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("switchboard_jobs_total", {"kind": kind, "outcome": outcome}) or 0.0


# ------------------------------------------------------------------------------------------ enqueue


async def test_a_job_enqueued_in_a_rolled_back_transaction_does_not_exist(sessions: Sessions) -> None:
    with pytest.raises(RuntimeError, match="domain failure"):
        async with transaction(sessions) as session:
            job = await enqueue(session, "t.rollback", {"order": 1})
            assert job.id is not None  # flushed: visible inside the caller's transaction
            raise RuntimeError("domain failure")
    async with sessions() as session:
        assert (await session.scalars(select(Job))).all() == []


async def test_a_committed_job_is_stored_due_now_with_the_default_attempts(sessions: Sessions) -> None:
    before = utcnow()
    job_id = await add_job(sessions, "t.commit", {"order": 1, "names": ["Ana", "Ion"]})
    job = await load(sessions, job_id)
    assert job is not None
    assert job.payload == {"order": 1, "names": ["Ana", "Ion"]}
    assert job.attempts == 0 and job.max_attempts == DEFAULT_MAX_ATTEMPTS and not job.dead
    assert before <= job.run_at <= utcnow() and job.lease_until is None and job.locked_by is None


@pytest.mark.parametrize(
    "payload",
    [{"when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}, {"ratio": float("nan")}, {"blob": object()}],
    ids=["datetime", "nan", "object"],
)
async def test_enqueue_rejects_a_payload_that_is_not_json(
    sessions: Sessions, payload: dict[str, Any]
) -> None:
    async with sessions() as session:
        with pytest.raises(ValueError, match="JSON"):
            await enqueue(session, "t.bad", payload)
        assert not session.new


async def test_enqueue_rejects_both_run_at_and_delay_and_naive_times(sessions: Sessions) -> None:
    async with sessions() as session:
        with pytest.raises(ValueError, match="not both"):
            await enqueue(session, "t.bad", {}, run_at=utcnow(), delay=5)
        with pytest.raises(ValueError, match="timezone"):
            await enqueue(session, "t.bad", {}, run_at=dt.datetime(2026, 1, 1))
        with pytest.raises(ValueError, match="max_attempts"):
            await enqueue(session, "t.bad", {}, max_attempts=0)


def test_a_kind_can_have_only_one_handler() -> None:
    registry = JobRegistry()

    @registry.register("t.dup")
    async def first(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    with pytest.raises(ValueError, match="already registered"):
        registry.add("t.dup", first)
    assert "t.dup" in registry and registry.get("t.dup") is first


def test_worker_from_settings_uses_the_jobs_settings(settings: Settings, sessions: Sessions) -> None:
    worker = Worker.from_settings(settings, sessions, JobRegistry())
    assert worker.poll_seconds == settings.jobs_poll_seconds == 0.05
    assert worker.concurrency == settings.jobs_concurrency
    assert worker.lease_seconds == settings.jobs_lease_seconds
    assert (worker.backoff_base, worker.backoff_max) == (
        settings.jobs_backoff_base_seconds,
        settings.jobs_backoff_max_seconds,
    )
    assert worker.worker_id and len(worker.worker_id) <= 100


# ------------------------------------------------------------------------------------------ running


async def test_a_successful_job_runs_once_and_is_deleted(sessions: Sessions) -> None:
    registry = JobRegistry()
    calls: list[tuple[int, str, int, str, dict[str, Any]]] = []

    @registry.register("t.ok")
    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        calls.append((ctx.job_id, ctx.kind, ctx.attempt, ctx.worker_id, payload))

    ok_before = metric("t.ok", "ok")
    job_id = await add_job(sessions, "t.ok", {"to": "+37360000000"})
    worker = make_worker(sessions, registry, worker_id="w-ok")
    assert await worker.run_once() == 1
    assert calls == [(job_id, "t.ok", 1, "w-ok", {"to": "+37360000000"})]
    assert await load(sessions, job_id) is None
    assert await worker.run_once() == 0
    assert metric("t.ok", "ok") == ok_before + 1


async def test_a_job_scheduled_for_later_is_not_run_early(sessions: Sessions) -> None:
    registry = JobRegistry()
    registry.add("t.later", _never_called)
    await add_job(sessions, "t.later", delay=60)
    assert await make_worker(sessions, registry).run_once() == 0
    async with sessions() as session:
        assert (await job_counts(session))["scheduled"] == 1


async def _never_called(ctx: JobContext, payload: dict[str, Any]) -> None:
    raise AssertionError("this job must not run")


async def test_a_failing_job_backs_off_more_each_time_then_dies_with_its_last_error(
    sessions: Sessions,
) -> None:
    registry = JobRegistry()

    @registry.register("t.flaky")
    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise RuntimeError(f"provider timeout {ctx.attempt}")

    retries_before, dead_before = metric("t.flaky", "retry"), metric("t.flaky", "dead")
    job_id = await add_job(sessions, "t.flaky", max_attempts=4)
    worker = make_worker(sessions, registry, backoff_base=10.0, backoff_max=30.0)
    # Equal jitter: retry n waits between half and all of min(cap, base * 2**(n-1)).
    windows = {1: (5.0, 10.0), 2: (10.0, 20.0), 3: (15.0, 30.0)}
    for attempt in (1, 2, 3):
        started = utcnow()
        assert await worker.run_once() == 1
        finished = utcnow()
        job = await load(sessions, job_id)
        assert job is not None
        low, high = windows[attempt]
        assert started + dt.timedelta(seconds=low) <= job.run_at <= finished + dt.timedelta(seconds=high)
        assert job.attempts == attempt and not job.dead
        assert job.lease_until is None and job.locked_by is None
        assert job.last_error == f"RuntimeError: provider timeout {attempt}"
        assert await worker.run_once() == 0  # not due yet
        await make_due(sessions, job_id)
    assert await worker.run_once() == 1
    job = await load(sessions, job_id)
    assert job is not None and job.dead and job.attempts == 4
    assert job.last_error == "RuntimeError: provider timeout 4"
    await make_due(sessions, job_id)
    assert await worker.run_once() == 0  # dead jobs are never claimed
    assert metric("t.flaky", "retry") == retries_before + 3
    assert metric("t.flaky", "dead") == dead_before + 1


async def test_a_permanent_error_makes_the_job_dead_at_once(sessions: Sessions) -> None:
    registry = JobRegistry()

    @registry.register("t.rejected")
    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise PermanentJobError("provider said 400: invalid number")

    job_id = await add_job(sessions, "t.rejected")
    assert await make_worker(sessions, registry).run_once() == 1
    job = await load(sessions, job_id)
    assert job is not None and job.dead and job.attempts == 1
    assert job.last_error == "PermanentJobError: provider said 400: invalid number"


async def test_a_very_long_error_is_truncated(sessions: Sessions) -> None:
    registry = JobRegistry()

    @registry.register("t.verbose")
    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise PermanentJobError("x" * 10_000)

    job_id = await add_job(sessions, "t.verbose")
    await make_worker(sessions, registry).run_once()
    job = await load(sessions, job_id)
    assert job is not None and job.last_error is not None and len(job.last_error) == 2000


async def test_a_job_of_an_unknown_kind_is_retried_then_dead_never_dropped(sessions: Sessions) -> None:
    worker = make_worker(sessions, JobRegistry())
    job_id = await add_job(sessions, "t.nobody", {"x": 1}, max_attempts=2)
    assert await worker.run_once() == 1
    job = await load(sessions, job_id)
    assert job is not None and not job.dead and job.attempts == 1
    assert job.last_error == "no handler for kind 't.nobody'"
    assert job.run_at > utcnow()
    await make_due(sessions, job_id)
    assert await worker.run_once() == 1
    job = await load(sessions, job_id)
    assert job is not None and job.dead and job.attempts == 2
    assert job.last_error == "no handler for kind 't.nobody'"


# ------------------------------------------------------------------------------------------ backoff


@hypothesis_settings(database=None, deadline=None, max_examples=300)
@given(
    attempt=st.integers(min_value=1, max_value=5000),
    base=st.floats(min_value=0.001, max_value=1000.0),
    cap=st.floats(min_value=0.001, max_value=1e6),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_retry_delay_stays_within_equal_jitter_of_the_capped_exponential(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 1000))
    delay = retry_delay(attempt, base, cap, random.Random(seed))
    assert 0.5 * ceiling <= delay <= ceiling


class _MaxJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def test_retry_delay_doubles_until_the_cap() -> None:
    rng = _MaxJitter()
    assert [retry_delay(n, 2.0, 3600.0, rng) for n in (1, 2, 3, 4, 11, 12, 500)] == [
        2.0,
        4.0,
        8.0,
        16.0,
        2048.0,
        3600.0,
        3600.0,
    ]
    with pytest.raises(ValueError):
        retry_delay(0, 2.0, 3600.0, rng)


# ------------------------------------------------------------------------------------------ leases


async def test_an_expired_lease_is_rerun_exactly_once_and_the_late_worker_is_fenced_off(
    sessions: Sessions,
) -> None:
    registry = JobRegistry()
    crashed = make_worker(sessions, registry, worker_id="crashed", lease_seconds=30)
    stale: list[ClaimedJob] = []
    runs: list[str] = []
    late: dict[str, bool] = {}

    @registry.register("t.lease")
    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        runs.append(ctx.worker_id)
        # The "crashed" worker wakes up while someone else holds the job: none of its writes may land.
        late["complete"] = await crashed._complete(stale[0])
        late["fail"] = await crashed._fail(stale[0], RuntimeError("late"))
        late["renew"] = await crashed._renew(stale[0])
        late["release"] = await crashed._release(stale[0])
        await asyncio.sleep(0.05)  # leave the other worker time to try claiming it too

    job_id = await add_job(sessions, "t.lease")
    stale.extend(await crashed._claim(1))
    assert [(job.id, job.attempts, job.locked_by) for job in stale] == [(job_id, 1, "crashed")]
    first, second = (make_worker(sessions, registry, worker_id=name) for name in ("w-1", "w-2"))
    assert await first.run_once() == 0  # the lease is still valid

    await set_columns(sessions, job_id, lease_until=utcnow() - dt.timedelta(seconds=1))
    ran = await asyncio.gather(first.run_once(), second.run_once(), first.run_once(), second.run_once())
    assert sum(ran) == 1
    assert len(runs) == 1 and runs[0] in {"w-1", "w-2"}
    assert late == {"complete": False, "fail": False, "renew": False, "release": False}
    assert await load(sessions, job_id) is None  # the rightful owner's completion went through
    assert await crashed._complete(stale[0]) is False


async def test_a_long_job_keeps_its_lease_through_heartbeats(sessions: Sessions) -> None:
    registry = JobRegistry()
    started, finish = asyncio.Event(), asyncio.Event()
    runs: list[str] = []

    @registry.register("t.slow")
    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        runs.append(ctx.worker_id)
        started.set()
        await asyncio.wait_for(finish.wait(), 30)  # runs until the test has watched it past two leases

    job_id = await add_job(sessions, "t.slow")
    owner = make_worker(sessions, registry, worker_id="owner", lease_seconds=0.6)
    thief = make_worker(sessions, registry, worker_id="thief", lease_seconds=0.6)
    running = asyncio.create_task(owner.run_once())
    await asyncio.wait_for(started.wait(), 5)
    claimed = await load(sessions, job_id)
    assert claimed is not None and claimed.lease_until is not None
    stolen = 0
    deadline = time.monotonic() + 1.5  # two and a half leases, however slow the machine
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        stolen += await thief.run_once()
    renewed = await load(sessions, job_id)  # still running: its lease was renewed, never lost
    finish.set()
    assert await running == 1
    assert stolen == 0 and runs == ["owner"]
    assert renewed is not None and renewed.lease_until is not None
    assert renewed.lease_until > claimed.lease_until + dt.timedelta(seconds=0.5)
    assert await load(sessions, job_id) is None


# ------------------------------------------------------------------------------------------ loop


async def test_the_background_loop_runs_jobs_within_its_concurrency(sessions: Sessions) -> None:
    registry = JobRegistry()
    in_flight = 0
    peak = 0
    done: list[int] = []
    all_done = asyncio.Event()

    @registry.register("t.loop")
    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        done.append(payload["n"])
        if len(done) == 7:
            all_done.set()

    worker = make_worker(sessions, registry, concurrency=2, poll_seconds=0.5)
    await worker.start()
    try:
        async with transaction(sessions) as session:
            for n in range(7):
                await enqueue(session, "t.loop", {"n": n})
        worker.wake()
        await asyncio.wait_for(all_done.wait(), 10)
    finally:
        await worker.stop()
    assert sorted(done) == list(range(7)) and peak == 2
    assert not worker.running
    async with sessions() as session:
        assert await job_counts(session) == {"pending": 0, "scheduled": 0, "running": 0, "dead": 0}


async def test_stop_lets_a_running_job_finish(sessions: Sessions) -> None:
    registry = JobRegistry()
    started = asyncio.Event()
    finished: list[int] = []

    @registry.register("t.graceful")
    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(0.2)
        finished.append(ctx.job_id)

    worker = make_worker(sessions, registry)
    await worker.start()
    job_id = await add_job(sessions, "t.graceful")
    worker.wake()
    await asyncio.wait_for(started.wait(), 5)
    await worker.stop(grace_seconds=5)
    assert finished == [job_id]
    assert await load(sessions, job_id) is None


async def test_stop_cancels_a_job_past_the_grace_period_and_releases_it(sessions: Sessions) -> None:
    registry = JobRegistry()
    started = asyncio.Event()

    @registry.register("t.stuck")
    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(30)

    worker = make_worker(sessions, registry, lease_seconds=30)
    await worker.start()
    job_id = await add_job(sessions, "t.stuck")
    worker.wake()
    await asyncio.wait_for(started.wait(), 5)
    await worker.stop(grace_seconds=0.05)
    job = await load(sessions, job_id)
    assert job is not None and not job.dead and job.attempts == 1
    assert job.lease_until is None and job.locked_by is None  # due again at once for another worker


async def test_the_loop_survives_a_database_error(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    registry = JobRegistry()
    ran = asyncio.Event()

    @registry.register("t.survivor")
    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        ran.set()

    worker = make_worker(sessions, registry)
    real_claim = worker._claim
    failures = 0

    async def flaky_claim(limit: int) -> list[ClaimedJob]:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise ConnectionError("database went away")
        return await real_claim(limit)

    monkeypatch.setattr(worker, "_claim", flaky_claim)
    await add_job(sessions, "t.survivor")
    await worker.start()
    try:
        await asyncio.wait_for(ran.wait(), 5)
        assert worker.running
    finally:
        await worker.stop()
    assert failures == 2
    assert "claiming failed" in caplog.text


# ------------------------------------------------------------------------------------------ admin


async def test_retry_dead_brings_a_dead_job_back_and_it_then_runs(sessions: Sessions) -> None:
    registry = JobRegistry()
    outcomes = ["fail", "ok"]

    @registry.register("t.revive")
    async def handler(ctx: JobContext, payload: dict[str, Any]) -> None:
        if outcomes.pop(0) == "fail":
            raise PermanentJobError("bad credentials")

    worker = make_worker(sessions, registry)
    job_id = await add_job(sessions, "t.revive")
    assert await worker.run_once() == 1
    async with transaction(sessions) as session:
        assert [job.id for job in await list_jobs(session, dead=True)] == [job_id]
        assert await retry_dead(session, job_id) is True
        assert await retry_dead(session, job_id) is False  # no longer dead
        assert await retry_dead(session, job_id + 1000) is False
    job = await load(sessions, job_id)
    assert job is not None and not job.dead and job.attempts == 0
    assert job.lease_until is None and job.locked_by is None
    assert job.last_error == "PermanentJobError: bad credentials"
    assert await worker.run_once() == 1
    assert outcomes == [] and await load(sessions, job_id) is None


async def test_discard_dead_deletes_only_dead_jobs(sessions: Sessions) -> None:
    live_id = await add_job(sessions, "t.discard")
    dead_id = await add_job(sessions, "t.discard")
    await set_columns(sessions, dead_id, dead=True, last_error="boom")
    async with transaction(sessions) as session:
        assert await discard_dead(session, live_id) is False
        assert await discard_dead(session, dead_id) is True
        assert await discard_dead(session, dead_id) is False
    assert await load(sessions, live_id) is not None and await load(sessions, dead_id) is None


async def test_job_counts_and_lists_split_jobs_by_state(sessions: Sessions) -> None:
    now = utcnow()
    running_id = await add_job(sessions, "t.count", run_at=now - dt.timedelta(seconds=2))
    pending_id = await add_job(sessions, "t.count", run_at=now - dt.timedelta(seconds=1))
    scheduled_id = await add_job(sessions, "t.count", delay=60)
    dead_id = await add_job(sessions, "t.count")
    await set_columns(sessions, dead_id, dead=True)
    claimed = await make_worker(sessions, JobRegistry())._claim(1)
    assert [job.id for job in claimed] == [running_id]
    async with sessions() as session:
        assert await job_counts(session) == {"pending": 1, "scheduled": 1, "running": 1, "dead": 1}
        live = await list_jobs(session, dead=False)
        assert [job.id for job in live] == [running_id, pending_id, scheduled_id]
        assert [job.id for job in await list_jobs(session, dead=False, limit=1, offset=1)] == [pending_id]
        assert [job.id for job in await list_jobs(session, dead=True)] == [dead_id]


# ------------------------------------------------------------------------------------------ processes


@pytest.mark.postgres
async def test_two_worker_processes_drain_3000_jobs_each_exactly_once(
    sessions: Sessions, db_url: str, engine: AsyncEngine
) -> None:
    assert BACKEND == "postgres", "run with SWITCHBOARD_TEST_BACKEND=postgres"
    assert make_url(db_url).get_backend_name() == "postgresql"
    total = 3000
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS test_job_runs"))
        await conn.execute(text("CREATE TABLE test_job_runs (job_id integer NOT NULL, worker text NOT NULL)"))
    procs: list[asyncio.subprocess.Process] = []
    try:
        async with transaction(sessions) as session:
            job_ids = {(await enqueue(session, "t.proc", {"n": n})).id for n in range(total)}
        env = {**os.environ, "JOBS_PROC_DB_URL": db_url}
        for name in ("proc-a", "proc-b"):
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(WORKER_PROC),
                    name,
                    env=env,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
            )
        for proc in procs:
            assert proc.stdout is not None
            assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
        for proc in procs:  # both start draining at the same moment
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        outputs = await asyncio.wait_for(asyncio.gather(*(proc.communicate() for proc in procs)), 60)
        for proc, (_out, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err.decode(errors="replace")

        async with engine.connect() as conn:
            runs = (await conn.execute(text("SELECT job_id, worker FROM test_job_runs"))).all()
            left = await conn.scalar(select(func.count()).select_from(Job))
        ran_ids = [row.job_id for row in runs]
        assert len(ran_ids) == total and set(ran_ids) == job_ids  # every job ran, none twice
        per_worker = {name: sum(1 for row in runs if row.worker == name) for name in ("proc-a", "proc-b")}
        assert all(count > 0 for count in per_worker.values()), per_worker
        assert left == 0
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.communicate()
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS test_job_runs"))
