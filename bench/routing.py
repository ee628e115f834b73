"""Routing decisions on PostgreSQL with 1,000 agents and 5,000 queued items, beside the time of one bare
`SELECT 1` round trip on a connection of the same engine in the same run (the floor: a decision is a
transaction of several statements, so it costs a handful of round trips at best).

(A) The queue holds 5,000 chats in a language nobody speaks (they wait for ever, and every pull has to
    look past them); new chats go to the least busy of the 1,000 agents, and the oldest held chats are
    released (each release also asks the queue for work). Closed loop at 1 and at 8 concurrent callers.
(B) Every agent full (5 chats each) and 5,000 chats queued that they can take: each release frees a slot
    and pulls the queue head — the decision measured is the release with its pull (8 callers).

Set BENCH_DATABASE_URL to use an existing (migrated or empty) database; by default the bench creates a
fresh database on the local server and drops it at the end.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from collections import deque
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).parent.parent))

import asyncpg
from sqlalchemy import insert, text

from router.engine import Router
from router.model import Decision, ItemKind, RouterSettings, RoutingRequest, Skills
from router.rules import RoutingRule
from router.store import skill_tags
from router.tables import AgentState
from switchboard import migrate
from switchboard.accounts_model import Branch, User
from switchboard.db import create_engine, create_sessionmaker, utcnow

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
AGENTS = 1000
CAPACITY = 5
QUEUED = 5000
DECISIONS = int(os.environ.get("BENCH_DECISIONS", "2000"))
LANGUAGES = ("ro", "ru")
BRANCHES = 5
T = TypeVar("T")


async def fresh_database() -> tuple[str, str | None]:
    if url := os.environ.get("BENCH_DATABASE_URL"):
        return url, None
    name = f"sb_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def seed(sessions: Any, tag: str) -> list[int]:
    """1,000 online agents with capacity 5, each speaking one language and serving one branch."""
    now = utcnow()
    async with sessions() as db, db.begin():
        branch_ids = list(
            (
                await db.execute(
                    insert(Branch).returning(Branch.id),
                    [{"name": f"{tag} branch {b}"} for b in range(BRANCHES)],
                )
            ).scalars()
        )
        users = [
            {"username": f"{tag}-agent-{i}", "full_name": "", "role": "agent", "password_hash": "-"}
            for i in range(AGENTS)
        ]
        ids = list((await db.execute(insert(User).returning(User.id), users)).scalars())
        await db.execute(
            insert(AgentState),
            [
                {
                    "user_id": agent_id,
                    "presence": "online",
                    "presence_since": now,
                    "capacity": CAPACITY,
                    "chats_during_call": False,
                    "skills": skills_of(i, branch_ids).to_json(),
                    "skill_tags": skill_tags(skills_of(i, branch_ids)),
                    "chats": 0,
                    "on_call": False,
                    "assignments_today": 0,
                    "consecutive_timeouts": 0,
                    "last_heartbeat": now,
                }
                for i, agent_id in enumerate(ids)
            ],
        )
    return branch_ids


def skills_of(i: int, branch_ids: list[int]) -> Skills:
    return Skills.of(branches=[branch_ids[i % BRANCHES]], languages=[LANGUAGES[i % 2]])


def chat(item: str, branches: list[int], language: str | None = None) -> RoutingRequest:
    return RoutingRequest(
        kind=ItemKind.CHAT,
        item_id=item,
        channel="telegram",
        branch_id=random.choice(branches),
        language=language or random.choice(LANGUAGES),
    )


async def timed(calls: list[float], call: Awaitable[T]) -> T:
    started = time.perf_counter()
    result = await call
    calls.append(time.perf_counter() - started)
    return result


async def select_one(engine: Any) -> float:
    """p50 of a bare `SELECT 1` on one pooled connection of the router's engine."""
    samples = []
    async with engine.connect() as conn:
        for _ in range(2000):
            started = time.perf_counter()
            await conn.execute(text("SELECT 1"))
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def scenario_a(router: Router, branches: list[int], concurrency: int, tag: str) -> None:
    assigns: list[float] = []
    releases: list[float] = []
    held: deque[str] = deque()
    counter = iter(range(DECISIONS))
    decided = 0
    keep = AGENTS * CAPACITY * 6 // 10  # hold ~60% of all capacity

    def hold(decisions: list[Decision]) -> None:
        nonlocal decided
        for decision in decisions:
            if decision.agent_id is not None:
                held.append(decision.request.item_id)
                decided += 1

    async def caller() -> None:
        for n in counter:
            hold([await timed(assigns, router.assign(chat(f"{tag}-{n}", branches)))])
            while len(held) > keep:
                hold(await timed(releases, router.release(ItemKind.CHAT, held.popleft())))

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    print(
        f"(A) least busy of {AGENTS}, {QUEUED} waiting, {concurrency} caller(s): "
        f"{decided / elapsed:7.0f} decisions/s"
        f"   assign p50 {ms(statistics.median(assigns))} p99 {ms(pct(assigns, 0.99))}"
        + (
            f"   release p50 {ms(statistics.median(releases))} p99 {ms(pct(releases, 0.99))}"
            if releases
            else ""
        )
    )
    for item in held:
        await router.release(ItemKind.CHAT, item)


async def scenario_b(router: Router, branches: list[int], concurrency: int) -> None:
    held: deque[str] = deque()
    queued: list[float] = []
    for n in range(AGENTS * CAPACITY + QUEUED):  # fill every agent, then queue 5,000 they can take
        decision = await timed(queued, router.assign(chat(f"b-{n}", branches)))
        if decision.agent_id is not None:
            held.append(decision.request.item_id)
    queued = queued[AGENTS * CAPACITY :]
    releases: list[float] = []
    pulled = 0

    async def caller() -> None:
        nonlocal pulled
        for _ in range(DECISIONS // concurrency):
            got = await timed(releases, router.release(ItemKind.CHAT, held.popleft()))
            pulled += len(got)
            held.extend(d.request.item_id for d in got)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    print(
        f"(B) all {AGENTS} full, {QUEUED} queued, {concurrency} caller(s): {pulled / elapsed:7.0f} pulls/s"
        f"   release+pull p50 {ms(statistics.median(releases))} p99 {ms(pct(releases, 0.99))}"
        f"   (queued assign p50 {ms(statistics.median(queued))} p99 {ms(pct(queued, 0.99))})"
    )


async def main() -> None:
    db_url, created = await fresh_database()
    try:
        await migrate.upgrade(db_url)
        engine = create_engine(db_url)
        sessions = create_sessionmaker(engine)
        tag = uuid.uuid4().hex[:6]
        branches = await seed(sessions, tag)
        never = RoutingRule(overflow_branch_after_seconds=None, overflow_any_after_seconds=None)
        router = Router(sessions, settings=RouterSettings(default_rule=never))
        print(f"Routing on PostgreSQL: {AGENTS} agents x {CAPACITY} chats, {DECISIONS} decisions per line")
        floor = await select_one(engine)
        print(f"bare SELECT 1 round trip, same engine          p50 {ms(floor)}")
        nobody: list[float] = []
        for n in range(QUEUED):
            await timed(nobody, router.assign(chat(f"{tag}-en-{n}", branches, "en")))
        print(f"queueing {QUEUED} chats nobody can take          p50 {ms(statistics.median(nobody))}")
        for concurrency in (1, 8):
            await scenario_a(router, branches, concurrency, f"{tag}-a{concurrency}")
        async with engine.begin() as conn:  # the English chats leave; scenario B builds its own queue
            await conn.execute(text("UPDATE routing_items SET status = 'ended' WHERE status = 'queued'"))
        await scenario_b(router, branches, 8)
        print(f"bare SELECT 1 round trip again                   p50 {ms(await select_one(engine))}")
        await engine.dispose()
    finally:
        if created:
            await drop_database(created)


if __name__ == "__main__":
    asyncio.run(main())
