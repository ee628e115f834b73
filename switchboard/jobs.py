"""Durable jobs (the transactional outbox) and the worker that runs them.

A room calls `enqueue()` with its own session, so the job commits or rolls back together with the domain
rows that need it: no "row saved but notification lost" and no "notification sent for a rolled-back row".

Workers (one per `serve` process, any number of processes, SQLite or PostgreSQL) claim due jobs with a
single `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`, which hands each job to
exactly one worker for `lease_seconds`. A running job's lease is renewed by a heartbeat; a worker that dies
stops renewing and its job is claimed again once the lease expires, so delivery is at-least-once and
handlers must be idempotent. Every write a worker makes after the claim is fenced on
`(id, locked_by, attempts)`, so a worker that lost its lease can neither delete nor reschedule a job that
someone else has claimed since.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, cast

from prometheus_client import Counter, Histogram
from sqlalchemy import (
    ColumnElement,
    Result,
    Table,
    and_,
    case,
    delete,
    false,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard.db import utcnow
from switchboard.jobs_model import Job
from switchboard.settings import Settings

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "ClaimedJob",
    "JobContext",
    "JobHandler",
    "JobRegistry",
    "PermanentJobError",
    "Worker",
    "discard_dead",
    "enqueue",
    "job_counts",
    "list_jobs",
    "retry_dead",
    "retry_delay",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS: Final = 8
"""Attempts before a job is dead when the caller gives none (the same as `Settings.jobs_max_attempts`)."""

LAST_ERROR_LIMIT: Final = 2000
_WORKER_ID_LIMIT: Final = 100  # jobs.locked_by is String(100)

_jobs: Final = cast(Table, Job.__table__)

JOBS_TOTAL: Final = Counter(
    "switchboard_jobs_total", "Job runs by kind and outcome (ok, retry, dead).", ["kind", "outcome"]
)
JOB_SECONDS: Final = Histogram("switchboard_job_seconds", "Time a job handler ran, by kind.", ["kind"])


class PermanentJobError(Exception):
    """Raised by a handler for a failure that can never succeed (e.g. a provider's 4xx): no retries."""


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler gets besides the payload; `sessions` lets it open its own transactions."""

    job_id: int
    kind: str
    attempt: int
    max_attempts: int
    worker_id: str
    sessions: async_sessionmaker[AsyncSession]


JobHandler = Callable[[JobContext, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job as one worker claimed it; `attempts` is the fencing token for every later write."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    locked_by: str


class JobRegistry:
    """Maps job kinds to handlers; one handler per kind so a job's meaning is never ambiguous."""

    def __init__(self) -> None:
        self._handlers: dict[str, JobHandler] = {}

    def add(self, kind: str, handler: JobHandler) -> None:
        if not kind:
            raise ValueError("job kind must not be empty")
        if kind in self._handlers:
            raise ValueError(f"a handler for job kind {kind!r} is already registered")
        self._handlers[kind] = handler

    def register(self, kind: str) -> Callable[[JobHandler], JobHandler]:
        """Decorator form of `add()`."""

        def decorator(handler: JobHandler) -> JobHandler:
            self.add(kind, handler)
            return handler

        return decorator

    def get(self, kind: str) -> JobHandler | None:
        return self._handlers.get(kind)

    def __contains__(self, kind: object) -> bool:
        return kind in self._handlers

    def kinds(self) -> list[str]:
        return sorted(self._handlers)


# --------------------------------------------------------------------------------------------- enqueue


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    run_at: dt.datetime | None = None,
    delay: float | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> Job:
    """Add a job to the caller's session (and flush, so it has an id); it commits with the caller's rows.

    `max_attempts` is stored on the job at enqueue time; callers holding `Settings` pass
    `settings.jobs_max_attempts`, everyone else gets `DEFAULT_MAX_ATTEMPTS`. The payload must survive
    JSON (no NaN, no datetimes or objects): it is checked here, not when a worker first reads it.
    A worker notices the job at its next poll; call `Worker.wake()` after commit to run it sooner.
    """
    if not kind or len(kind) > 100:
        raise ValueError("job kind must be 1-100 characters")
    if not isinstance(payload, dict):
        raise ValueError("job payload must be a dict")
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"job payload is not JSON-serialisable: {exc}") from None
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if run_at is not None and delay is not None:
        raise ValueError("give run_at or delay, not both")
    now = utcnow()
    if run_at is None:
        run_at = now + dt.timedelta(seconds=delay or 0.0)
    elif run_at.tzinfo is None:
        raise ValueError("run_at must be timezone-aware")
    job = Job(
        kind=kind,
        payload=payload,
        run_at=run_at,
        attempts=0,
        max_attempts=max_attempts,
        dead=False,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    await session.flush()
    return job


# --------------------------------------------------------------------------------------------- backoff


def retry_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before retry number `attempt` (1-based): exponential, capped, with "equal jitter".

    The random factor in [0.5, 1.0] spreads retries of jobs that failed together (a provider outage)
    so they don't all come back at the same instant, while keeping at least half the backoff.
    """
    if attempt < 1:
        raise ValueError("attempt must be at least 1")
    exponent = min(attempt - 1, 1000)  # 2.0**1000 is still a finite float
    ceiling = min(cap, base * math.pow(2.0, exponent))
    return ceiling * rng.uniform(0.5, 1.0)


# --------------------------------------------------------------------------------------------- helpers


def _rowcount(result: Result[Any]) -> int:
    return int(result.rowcount or 0) if isinstance(result, CursorResult) else 0


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:LAST_ERROR_LIMIT]


def _fenced(job: ClaimedJob) -> ColumnElement[bool]:
    """Only the worker that holds the current claim (same worker, same attempt) may write the job."""
    return and_(_jobs.c.id == job.id, _jobs.c.locked_by == job.locked_by, _jobs.c.attempts == job.attempts)


def _default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[-_WORKER_ID_LIMIT:]


# --------------------------------------------------------------------------------------------- worker


class Worker:
    """Claims due jobs and runs their handlers, at most `concurrency` at a time.

    `start()`/`stop()` run the polling loop in the background; `run_once()` does one claim-and-run
    round in the foreground (tests, CLI).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: JobRegistry,
        *,
        worker_id: str | None = None,
        concurrency: int = 4,
        poll_seconds: float = 0.5,
        lease_seconds: float = 60.0,
        backoff_base: float = 2.0,
        backoff_max: float = 3600.0,
        rng: random.Random | None = None,
        error_pause: float = 1.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if poll_seconds <= 0 or lease_seconds <= 0 or backoff_base <= 0 or backoff_max <= 0:
            raise ValueError("poll, lease and backoff times must be positive")
        if worker_id is not None and not 0 < len(worker_id) <= _WORKER_ID_LIMIT:
            raise ValueError(f"worker_id must be 1-{_WORKER_ID_LIMIT} characters")
        self.sessions = sessions
        self.registry = registry
        self.worker_id = worker_id or _default_worker_id()
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.error_pause = error_pause
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._running: dict[asyncio.Task[None], ClaimedJob] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        registry: JobRegistry,
        *,
        worker_id: str | None = None,
    ) -> Worker:
        return cls(
            sessions,
            registry,
            worker_id=worker_id,
            concurrency=settings.jobs_concurrency,
            poll_seconds=settings.jobs_poll_seconds,
            lease_seconds=settings.jobs_lease_seconds,
            backoff_base=settings.jobs_backoff_base_seconds,
            backoff_max=settings.jobs_backoff_max_seconds,
        )

    # ------------------------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    async def start(self) -> None:
        """Spawn the polling loop (idempotent)."""
        if self.running:
            return
        self._stopping = False
        self._loop_task = asyncio.create_task(self._loop(), name=f"jobs-worker:{self.worker_id}")

    async def stop(self, grace_seconds: float = 30.0) -> None:
        """Stop claiming, give running jobs `grace_seconds` to finish, then cancel the rest.

        A cancelled job's lease is released so another worker can retry it at once instead of waiting
        for the lease to expire (the attempt still counts).
        """
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
        tasks = dict(self._running)
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            for task in pending:
                job = tasks[task]
                logger.warning("job %s (%s) cancelled at shutdown; releasing its lease", job.id, job.kind)
                try:
                    await self._release(job)
                except Exception:
                    logger.exception("could not release job %s; it will be retried after its lease", job.id)

    def wake(self) -> None:
        """Make the loop poll now (e.g. right after a commit that enqueued a job)."""
        self._wake.set()

    # ------------------------------------------------------------------------------------ running

    async def run_once(self, limit: int | None = None) -> int:
        """Claim up to `limit` (default: `concurrency`) due jobs, run them and return how many ran."""
        jobs = await self._claim(self.concurrency if limit is None else limit)
        if jobs:
            await asyncio.gather(*(self._run(job) for job in jobs))
        return len(jobs)

    async def _loop(self) -> None:
        """Poll, keep up to `concurrency` jobs in flight; survive any error (the database may be down)."""
        logger.info("jobs worker %s started", self.worker_id)
        while not self._stopping:
            self._wake.clear()
            free = self.concurrency - len(self._running)
            if free > 0:
                try:
                    jobs = await self._claim(free)
                except Exception:
                    logger.exception("jobs worker %s: claiming failed; retrying", self.worker_id)
                    await self._sleep(self.error_pause)
                    continue
                for job in jobs:
                    task = asyncio.create_task(self._run(job), name=f"job:{job.id}")
                    self._running[task] = job
                    task.add_done_callback(self._job_done)
                if jobs and len(jobs) == free:
                    continue  # a full batch: there may be more due, claim again as soon as a slot frees
            await self._sleep(self.poll_seconds)
        logger.info("jobs worker %s stopped claiming", self.worker_id)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._wake.set()  # a slot is free

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _claim(self, limit: int) -> list[ClaimedJob]:
        """Lease up to `limit` due jobs to this worker in one statement (atomic on both backends)."""
        if limit < 1:
            return []
        now = utcnow()
        due = (
            select(_jobs.c.id)
            .where(
                _jobs.c.dead == false(),
                _jobs.c.run_at <= now,
                or_(_jobs.c.lease_until.is_(None), _jobs.c.lease_until < now),
            )
            .order_by(_jobs.c.run_at, _jobs.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(_jobs)
            .where(_jobs.c.id.in_(due))
            .values(
                attempts=_jobs.c.attempts + 1,
                lease_until=now + dt.timedelta(seconds=self.lease_seconds),
                locked_by=self.worker_id,
                updated_at=now,
            )
            .returning(_jobs.c.id, _jobs.c.kind, _jobs.c.payload, _jobs.c.attempts, _jobs.c.max_attempts)
        )
        async with self.sessions() as session, session.begin():
            rows = (await session.execute(stmt)).all()
        claimed = [
            ClaimedJob(
                id=row.id,
                kind=row.kind,
                payload=row.payload,
                attempts=row.attempts,
                max_attempts=row.max_attempts,
                locked_by=self.worker_id,
            )
            for row in rows
        ]
        claimed.sort(key=lambda job: job.id)
        return claimed

    async def _run(self, job: ClaimedJob) -> None:
        """Run one claimed job and record the outcome; never raises (except cancellation)."""
        heartbeat = asyncio.create_task(self._heartbeat(job), name=f"job-heartbeat:{job.id}")
        try:
            async with self._slots:
                error = await self._call_handler(job)
            if error is None:
                await self._complete(job)
            else:
                await self._fail(job, error)
        except Exception:
            # The outcome could not be written (database down?): the lease expires and the job is retried.
            logger.exception("job %s (%s): could not record the outcome", job.id, job.kind)
        finally:
            heartbeat.cancel()
            await asyncio.wait([heartbeat])  # unlike `await heartbeat`, never swallows our own cancellation

    async def _call_handler(self, job: ClaimedJob) -> Exception | None:
        handler = self.registry.get(job.kind)
        if handler is None:
            return _NoHandler(f"no handler for kind {job.kind!r}")
        context = JobContext(
            job_id=job.id,
            kind=job.kind,
            attempt=job.attempts,
            max_attempts=job.max_attempts,
            worker_id=self.worker_id,
            sessions=self.sessions,
        )
        started = time.perf_counter()
        try:
            await handler(context, job.payload)
        except Exception as exc:
            # The traceback helps; the payload (personal data) is deliberately not logged.
            logger.exception("job %s (%s) attempt %s failed", job.id, job.kind, job.attempts)
            return exc
        finally:
            JOB_SECONDS.labels(kind=job.kind).observe(time.perf_counter() - started)
        return None

    async def _heartbeat(self, job: ClaimedJob) -> None:
        """Renew the lease every lease/3 while the handler runs, so a long job is not claimed twice."""
        interval = self.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                renewed = await self._renew(job)
            except Exception:
                logger.exception("job %s: lease renewal failed; will try again", job.id)
                continue
            if not renewed:
                logger.warning("job %s (%s): lease lost to another worker", job.id, job.kind)
                return

    async def _renew(self, job: ClaimedJob) -> bool:
        now = utcnow()
        stmt = (
            update(_jobs)
            .where(_fenced(job))
            .values(lease_until=now + dt.timedelta(seconds=self.lease_seconds), updated_at=now)
        )
        async with self.sessions() as session, session.begin():
            return _rowcount(await session.execute(stmt)) == 1

    async def _complete(self, job: ClaimedJob) -> bool:
        """Delete the finished job; False if this worker no longer holds it (fenced off)."""
        async with self.sessions() as session, session.begin():
            done = _rowcount(await session.execute(delete(_jobs).where(_fenced(job)))) == 1
        if done:
            JOBS_TOTAL.labels(kind=job.kind, outcome="ok").inc()
        else:
            logger.warning("job %s (%s) finished after its lease was lost; not deleting it", job.id, job.kind)
        return done

    async def _fail(self, job: ClaimedJob, error: BaseException) -> bool:
        """Reschedule with backoff, or mark dead; False if this worker no longer holds the job."""
        now = utcnow()
        last_error = str(error)[:LAST_ERROR_LIMIT] if isinstance(error, _NoHandler) else _describe(error)
        dead = isinstance(error, PermanentJobError) or job.attempts >= job.max_attempts
        values: dict[str, Any] = {"last_error": last_error, "updated_at": now, "lease_until": None}
        if dead:
            values["dead"] = True
        else:
            delay = retry_delay(job.attempts, self.backoff_base, self.backoff_max, self._rng)
            values["run_at"] = now + dt.timedelta(seconds=delay)
            values["locked_by"] = None
        stmt = update(_jobs).where(_fenced(job)).values(**values)
        async with self.sessions() as session, session.begin():
            written = _rowcount(await session.execute(stmt)) == 1
        if written:
            outcome = "dead" if dead else "retry"
            JOBS_TOTAL.labels(kind=job.kind, outcome=outcome).inc()
            if dead:
                logger.error("job %s (%s) is dead after %s attempt(s)", job.id, job.kind, job.attempts)
        else:
            logger.warning("job %s (%s) failed after its lease was lost; not updating it", job.id, job.kind)
        return written

    async def _release(self, job: ClaimedJob) -> bool:
        """Give a claimed job back without an outcome (shutdown): due again at once."""
        now = utcnow()
        stmt = update(_jobs).where(_fenced(job)).values(lease_until=None, locked_by=None, updated_at=now)
        async with self.sessions() as session, session.begin():
            return _rowcount(await session.execute(stmt)) == 1


class _NoHandler(LookupError):
    """A job whose kind has no handler: a failure like any other, so the job is retried, never dropped."""


# --------------------------------------------------------------------------------------------- admin


async def list_jobs(session: AsyncSession, *, dead: bool, limit: int = 50, offset: int = 0) -> list[Job]:
    """Dead jobs newest first (what broke last), live jobs in the order they will run."""
    order = (Job.updated_at.desc(), Job.id.desc()) if dead else (Job.run_at.asc(), Job.id.asc())
    stmt = select(Job).where(Job.dead == (true() if dead else false())).order_by(*order)
    return list((await session.scalars(stmt.limit(limit).offset(offset))).all())


async def job_counts(session: AsyncSession) -> dict[str, int]:
    """Counts for the admin page: pending (due, not leased), scheduled (future), running (leased), dead."""
    now = utcnow()
    leased = and_(_jobs.c.lease_until.is_not(None), _jobs.c.lease_until >= now)
    live = _jobs.c.dead == false()

    def count_where(*conditions: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((and_(*conditions), 1), else_=0)), 0)

    stmt = select(
        count_where(live, ~leased, _jobs.c.run_at <= now).label("pending"),
        count_where(live, ~leased, _jobs.c.run_at > now).label("scheduled"),
        count_where(live, leased).label("running"),
        count_where(_jobs.c.dead == true()).label("dead"),
    )
    row = (await session.execute(stmt)).one()
    return {key: int(row._mapping[key]) for key in ("pending", "scheduled", "running", "dead")}


async def retry_dead(session: AsyncSession, job_id: int) -> bool:
    """Bring a dead job back with a fresh set of attempts, due now; its last_error is kept for context."""
    now = utcnow()
    stmt = (
        update(_jobs)
        .where(_jobs.c.id == job_id, _jobs.c.dead == true())
        .values(dead=False, attempts=0, run_at=now, lease_until=None, locked_by=None, updated_at=now)
    )
    return _rowcount(await session.execute(stmt)) == 1


async def discard_dead(session: AsyncSession, job_id: int) -> bool:
    """Delete a dead job for good; live jobs cannot be discarded this way."""
    stmt = delete(_jobs).where(_jobs.c.id == job_id, _jobs.c.dead == true())
    return _rowcount(await session.execute(stmt)) == 1
