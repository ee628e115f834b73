"""Two OS processes routing against one PostgreSQL database: no agent ever over capacity, every item
assigned exactly once — proven from the decision log alone. The processes route on the real clock, so
their agents are set up on it too."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from router.model import ASSIGNING, ItemKind, Presence, Reason, Status
from router.store import queued_count
from router.tables import AgentState, RoutingItem
from switchboard.db import utcnow
from tests.conftest import BACKEND
from tests.router.conftest import Clock, Sessions, add_agents, chat, decision_log, make_router, replay
from tests.router.router_proc import proc_router

PROC = Path(__file__).with_name("router_proc.py")
ITEMS, AGENTS, CAPACITY = 10_000, 50, 2


async def seed_agents(sessions: Sessions, count: int, *, capacity: int) -> list[int]:
    """Online agents for the routing processes, set online on the real clock those processes route by:
    on the tests' fixed clock their last heartbeat would be weeks old, and the first `tick()` of either
    process would set them all away, stranding whatever the other one queues after it."""
    return await add_agents(make_router(sessions, Clock(utcnow())), sessions, count, capacity=capacity)


async def test_seeded_agents_stay_online_and_pull_the_queue_after_a_process_ticks(sessions: Sessions) -> None:
    """The concurrency test's failure, one step at a time: one process ticks while the other still has a
    chat queued; its release must still pull that chat."""
    (agent,) = await seed_agents(sessions, 1, capacity=1)
    first, second = proc_router(sessions), proc_router(sessions)
    assert (await first.assign(chat("c1", channel="webchat"))).agent_id == agent
    assert (await first.assign(chat("c2", channel="webchat"))).reason == Reason.QUEUED
    assert await second.tick() == []  # the other process finished routing: its drain finds no room
    assert (await second.agent(agent)).presence == Presence.ONLINE  # type: ignore[union-attr]
    pulled = await first.release(ItemKind.CHAT, "c1")
    assert [(d.request.item_id, d.agent_id) for d in pulled] == [("c2", agent)]
    await first.release(ItemKind.CHAT, "c2")
    async with sessions() as db:
        assert await queued_count(db) == 0
    assert replay(await decision_log(sessions)) == {agent: 0}


@pytest.mark.postgres
async def test_two_processes_route_10000_chats_to_50_agents(sessions: Sessions, db_url: str) -> None:
    assert BACKEND == "postgres", "run with SWITCHBOARD_TEST_BACKEND=postgres"
    assert make_url(db_url).get_backend_name() == "postgresql"
    agents = await seed_agents(sessions, AGENTS, capacity=CAPACITY)
    env = {**os.environ, "ROUTER_PROC_DB_URL": db_url, "PYTHONPATH": str(PROC.parent.parent.parent)}
    half = ITEMS // 2
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(PROC), name, str(first), str(half), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        for name, first in (("a", 0), ("b", half))
    ]  # fmt: skip
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
        started = time.monotonic()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 300)
        elapsed = time.monotonic() - started
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.communicate()
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode(errors="replace")
        words = out.decode().split()
        assert words[0] == "done" and int(words[1]) > 0, out  # each process routed its share
    rows = await decision_log(sessions)
    assignments = Counter(row.item_id for row in rows if row.reason in ASSIGNING)
    assert len(assignments) == ITEMS and set(assignments.values()) == {1}  # every item exactly once
    final = replay(rows)  # every load change in lock order: never over capacity
    assert set(final) <= set(agents) and not any(final.values())
    assert sum(1 for row in rows if row.reason == "queued") > 0  # capacity really was the limit
    async with sessions() as db:
        assert {s.chats for s in await db.scalars(select(AgentState))} == {0}
        assert set(await db.scalars(select(RoutingItem.status).distinct())) == {Status.ENDED}
    print(f"\n10,000 chats over two processes in {elapsed:.1f} s")
