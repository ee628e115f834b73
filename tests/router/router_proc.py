"""One routing process for `test_concurrency.py` (run as a script, not collected).

Reads the database URL from `ROUTER_PROC_DB_URL` and `name first count` from argv. Prints `ready`, waits for
a line on stdin (so that both processes start at the same moment), then routes chats `first ..
first+count-1` with several concurrent tasks; the process keeps up to `HELD` chats, releasing the
oldest when it holds more or when an item had to queue (so agents fill up, items queue, releases pull
the queue). Every decision it receives (from assign, release or tick) makes it hold that item; at the
end it releases everything and ticks until the shared queue is empty. Prints `done <assigned>
<pulled>`; exit code 0 on success.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import deque

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from router.engine import Router
from router.model import Decision, ItemKind, RouterSettings, RoutingRequest
from router.rules import RoutingRule
from router.store import queued_count
from router.tables import AgentState
from switchboard.db import create_engine, create_sessionmaker

TASKS = int(os.environ.get("ROUTER_PROC_TASKS", "8"))
HELD = 60  # chats a process keeps: 2 x 60 > 50 agents x 2 chats, so agents fill up and items queue
# The drain fails only when the shared queue stops moving for this long: the other process may still be
# routing (and queuing) for a while on a loaded machine, so a fixed deadline from here would be a guess.
STALL_SECONDS = 60.0


def proc_router(sessions: async_sessionmaker[AsyncSession]) -> Router:
    """The router each process runs: on the real clock (its `tick()` sets away every agent whose last
    heartbeat is a day older than that clock), no accept timeouts, no overflow."""
    return Router(
        sessions,
        settings=RouterSettings(
            default_rule=RoutingRule(accept_timeout_seconds=3600, overflow_branch_after_seconds=None,
                                     overflow_any_after_seconds=None),
            heartbeat_timeout_seconds=86400,
            absence_grace_seconds=86400,
        ),
    )  # fmt: skip


async def agents_summary(sessions: async_sessionmaker[AsyncSession]) -> str:
    """The agents' presence and held chats, for the stall message (`away: 50 agents, 0 chats`)."""
    query = (
        select(AgentState.presence, func.count(), func.sum(AgentState.chats))
        .group_by(AgentState.presence)
        .order_by(AgentState.presence)
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    return "; ".join(f"{presence}: {agents} agents, {chats} chats" for presence, agents, chats in rows)


async def run(db_url: str, first: int, count: int) -> tuple[int, int]:
    engine = create_engine(db_url)
    sessions = create_sessionmaker(engine)
    router = proc_router(sessions)
    items = deque(range(first, first + count))
    held: deque[str] = deque()
    assigned = pulled = 0

    def hold(decisions: list[Decision]) -> None:
        nonlocal pulled
        for decision in decisions:
            if decision.agent_id is not None:
                held.append(decision.request.item_id)
                pulled += 1

    async def worker() -> None:
        nonlocal assigned
        while items:
            n = items.popleft()
            request = RoutingRequest(kind=ItemKind.CHAT, item_id=f"i{n}", channel="webchat")
            decision = await router.assign(request)
            if decision.agent_id is not None:
                assigned += 1
                held.append(request.item_id)
            # agents full (the item queued) or this process holding more than its share: end a chat
            if held and (decision.agent_id is None or len(held) > HELD):
                hold(await router.release(ItemKind.CHAT, held.popleft()))

    try:
        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(TASKS)))
        print(f"routing took {time.monotonic() - t0:.2f}s cpu {time.process_time():.2f}s", file=sys.stderr)
        last, moved = -1, time.monotonic()
        while True:
            while held:
                hold(await router.release(ItemKind.CHAT, held.popleft()))
            hold(await router.tick())
            async with sessions() as session:
                waiting = await queued_count(session)
            if not held and waiting == 0:
                break
            if waiting != last:
                last, moved = waiting, time.monotonic()
            elif time.monotonic() - moved > STALL_SECONDS:
                agents = await agents_summary(sessions)
                raise SystemExit(f"{waiting} items queued, unchanged for {STALL_SECONDS:.0f} s ({agents})")
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()
    return assigned, pulled


def main() -> int:
    db_url = os.environ["ROUTER_PROC_DB_URL"]
    first, count = int(sys.argv[2]), int(sys.argv[3])
    import logging

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    print("ready", flush=True)
    if not sys.stdin.readline():
        return 2
    assigned, pulled = asyncio.run(run(db_url, first, count))
    print(f"done {assigned} {pulled}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
