"""Fixtures of the router's tests: a clock the test moves, a router on the test database that records the
decisions its hook receives, agents inserted in bulk (no password hashing), and a replay of the decision
log that checks every agent's load against capacity."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from router.engine import Router
from router.model import ASSIGNING, Decision, ItemKind, Reason, RouterSettings, RoutingRequest, Skills
from router.tables import RoutingDecision
from switchboard.accounts_model import Branch, User

Sessions = async_sessionmaker[AsyncSession]
MONDAY_NOON = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)  # 12:00 in Chișinău, a Monday
_serial = itertools.count(1)


class Clock:
    """The router's only source of time in these tests."""

    def __init__(self, now: dt.datetime = MONDAY_NOON) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


@dataclass
class Hook:
    seen: list[Decision] = field(default_factory=list)

    async def __call__(self, decision: Decision) -> None:
        self.seen.append(decision)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hook() -> Hook:
    return Hook()


def make_router(sessions: Sessions, clock: Clock, hook: Hook | None = None, **settings: object) -> Router:
    defaults: dict[str, object] = {
        "wrap_up_seconds": 30,
        "heartbeat_timeout_seconds": 86400,  # only the heartbeat test lets browsers fall silent
    }
    return Router(
        sessions,
        clock=clock,
        settings=RouterSettings(**{**defaults, **settings}),  # type: ignore[arg-type]
        on_decision=hook,
    )


@pytest.fixture
def router(sessions: Sessions, clock: Clock, hook: Hook) -> Router:
    return make_router(sessions, clock, hook)


async def add_branch(sessions: Sessions, name: str | None = None) -> int:
    async with sessions() as db, db.begin():
        return int(
            (
                await db.execute(
                    insert(Branch).values(name=name or f"branch-{next(_serial)}").returning(Branch.id)
                )
            ).scalar_one()
        )


async def add_users(sessions: Sessions, count: int, *, role: str = "agent") -> list[int]:
    """Users straight into the table: the router needs ids, not logins."""
    rows = [
        {"username": f"agent{next(_serial)}", "full_name": "", "role": role, "password_hash": "-"}
        for _ in range(count)
    ]
    async with sessions() as db, db.begin():
        result = await db.execute(insert(User).returning(User.id), rows)
        return sorted(int(i) for i in result.scalars())


async def add_agents(
    router: Router,
    sessions: Sessions,
    count: int,
    *,
    capacity: int = 3,
    chats_during_call: bool = False,
    skills: Skills | None = None,
    online: bool = True,
    phones: bool = False,
) -> list[int]:
    """`phones`: each gets a phone endpoint (`PJSIP/<id>`); an agent without one is never given a call."""
    ids = await add_users(sessions, count)
    for agent_id in ids:
        await router.set_capacity(agent_id, capacity, chats_during_call)
        if phones:
            await router.set_endpoint(agent_id, f"PJSIP/{agent_id}")
        if skills is not None:
            await router.set_skills(agent_id, skills)
        if online:
            await router.set_presence(agent_id, "online")
    return ids


def chat(item_id: str | int, **kw: object) -> RoutingRequest:
    return RoutingRequest(
        kind=ItemKind.CHAT, item_id=str(item_id), channel=str(kw.pop("channel", "telegram")), **kw
    )  # type: ignore[arg-type]


def call(item_id: str | int, **kw: object) -> RoutingRequest:
    return RoutingRequest(kind=ItemKind.CALL, item_id=str(item_id), channel="phone", **kw)  # type: ignore[arg-type]


async def decision_log(sessions: Sessions) -> list[RoutingDecision]:
    async with sessions() as db:
        return list(await db.scalars(select(RoutingDecision).order_by(RoutingDecision.id)))


def replay(rows: Sequence[RoutingDecision]) -> dict[int, int]:
    """Replays every chat load change in the log, in order, and checks it: each row's "before" is the
    load the earlier rows left, "after" is one more (an assignment) or one less, and automatic routing
    never goes over capacity. Returns each agent's final chat load."""
    load: dict[int, int] = defaultdict(int)
    for row in rows:
        if row.load_before is None or row.kind != ItemKind.CHAT:
            continue
        assert row.agent_id is not None
        assert row.load_before == load[row.agent_id], (
            row.id,
            row.agent_id,
            row.load_before,
            load[row.agent_id],
        )
        step = 1 if row.reason in ASSIGNING else -1
        assert row.load_after == row.load_before + step, row.id
        if row.reason != Reason.MANUAL:
            assert row.load_after is not None and row.capacity is not None
            assert row.load_after <= row.capacity, (row.id, row.agent_id, row.load_after, row.capacity)
        load[row.agent_id] = row.load_after
    return dict(load)
