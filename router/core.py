"""The router's machinery under its public calls: placing an item with the best agent who can take it,
pulling the queue into freed capacity, giving items back, and the transaction / decision-hook plumbing.

Each public call is one transaction (retried on a PostgreSQL deadlock). Giving an item to an agent locks
the agent's state row first — `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, so two processes routing at
once pick different agents instead of queueing behind each other — then re-checks the locked row's load
before taking capacity. On SQLite one connection with `BEGIN IMMEDIATE` serialises every transaction
(`switchboard.db`), so the same code is correct there without row locks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from router import store, strategy
from router.config import Config, ConfigStore
from router.model import (
    Decision,
    ItemKind,
    Reason,
    RouterSettings,
    RoutingRequest,
    Status,
)
from router.rules import RoutingRule
from switchboard.db import is_postgres, transaction, utcnow
from switchboard.errors import N_, Invalid

logger = logging.getLogger(__name__)

DecisionHook = Callable[[Decision], Awaitable[None]]
T = TypeVar("T")

_RETRY_SQLSTATES: Final = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
_ATTEMPTS: Final = 5
_LOCK_PASSES: Final = 3  # every candidate row locked by others: look again this many times, then queue
_PAGE: Final = 20  # agents read first for the least-busy choice


class RouterCore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        settings: RouterSettings | None = None,
        on_decision: DecisionHook | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.settings = settings or RouterSettings()
        self._on_decision = on_decision
        self.config = ConfigStore(sessions, self.settings)
        self._day_zone = ZoneInfo(self.settings.day_timezone)

    # --- the core ------------------------------------------------------------------------------------

    async def _place(
        self,
        session: AsyncSession,
        row: Row[Any],
        now: dt.datetime,
        cfg: Config,
        *,
        reason: Reason | None = None,
    ) -> Decision:
        """Give a locked, queued item to the best agent who can take it now, else leave it queued."""
        item = store.traits(row)
        request = store.request_of(row)
        rule = cfg.rule(item.branch_id, item.channel)
        today = self._today(now)
        plan = strategy.Plan(())
        postgres = is_postgres(session)
        for attempt in range(_LOCK_PASSES):
            plan = await self._plan(session, item, rule, now)
            if not plan.candidates:
                break
            why = {agent.user_id: why for agent, why in plan.candidates}
            if postgres:  # lock the best candidate nobody else holds, re-checked on its latest version
                after = await store.pick_and_take(session, list(why), item.kind, now=now, today=today)
            else:  # SQLite: this transaction is the only writer, so the snapshot is current
                after = await store.take_agent(
                    session, plan.candidates[0][0].user_id, item.kind, now=now, today=today
                )
            if after is not None:
                final = reason or why[after.user_id]
                decision_id = await store.record_take(
                    session, after, row, reason=final, now=now, skipped=item.skipped
                )
                return Decision(request, after.user_id, final, item.skipped, decision_id)
            await asyncio.sleep(0.001 * (attempt + 1))  # all taken meanwhile: look again
        values: dict[str, Any] = {"status": Status.QUEUED, "reason": Reason.QUEUED, "agent_id": None}
        if plan.hold is not None:
            values.update(hold_agent_id=plan.hold[0], hold_until=plan.hold[1])
        await store.set_item(session, row.id, **values)
        decision_id = await store.log(
            session, kind=row.kind, item_id=row.item_id, agent_id=None, reason=Reason.QUEUED, at=now,
            skipped=item.skipped,
        )  # fmt: skip
        return Decision(request, None, Reason.QUEUED, item.skipped, decision_id)

    async def _plan(
        self, session: AsyncSession, item: strategy.Item, rule: RoutingRule, now: dt.datetime
    ) -> strategy.Plan:
        """The strategy over the agents who fit (plus the pinned / sticky agent, whatever their state): the
        least busy page first, which nearly always holds the answer; when its skills all miss, the rest."""
        today = self._today(now)
        wanted = await store.agents_by_id(session, _wanted(item, rule), today)
        page = await store.ranked_agents(session, item, today, offset=0, limit=_PAGE)
        plan = strategy.plan(item, rule, _unique(wanted, page), now)
        if plan.candidates or plan.hold is not None or len(page) < _PAGE or item.pinned_agent_id is not None:
            return plan
        rest = await store.ranked_agents(session, item, today, offset=_PAGE, limit=None)
        return strategy.plan(item, rule, _unique(wanted, page, rest), now)

    async def _pull(
        self, session: AsyncSession, agent: strategy.Agent, now: dt.datetime, cfg: Config
    ) -> list[Decision]:
        """The (locked) agent takes queue heads they may take, while they have room."""
        today = self._today(now)
        decisions: list[Decision] = []
        closed = cfg.closed_branches(now)
        while strategy.fits(agent, ItemKind.CHAT) or strategy.fits(agent, ItemKind.CALL):
            limit = max(agent.capacity - agent.chats, 1)  # locks no more queue rows than it can take
            rows = await store.queue_for(session, agent, now=now, closed_branches=closed, limit=limit)
            took = False
            for row in rows:
                if not strategy.fits(agent, row.kind):
                    continue
                why = pull_reason(agent, store.traits(row), cfg, now)
                if why is None:
                    continue
                item = store.traits(row)
                decision_id, agent = await store.take(
                    session, agent, row, reason=why, now=now, today=today, skipped=item.skipped
                )
                decisions.append(
                    Decision(store.request_of(row), agent.user_id, why, item.skipped, decision_id)
                )
                took = True
            if not took or len(rows) < limit:
                break
        return decisions

    async def _give_back(
        self, session: AsyncSession, agent_id: int, now: dt.datetime, cfg: Config
    ) -> list[Decision]:
        """Unanswered items taken from this agent for absence come back to them, while they have room."""
        today = self._today(now)
        rows = (
            await session.execute(
                select(store.items_t)
                .where(
                    store.items_t.c.away_from_id == agent_id,
                    store.items_t.c.status.in_([Status.QUEUED, Status.OFFERED]),
                )
                .order_by(store.items_t.c.urgency, store.items_t.c.enqueued_at)
                .with_for_update(skip_locked=True)
            )
        ).all()
        decisions: list[Decision] = []
        for row in rows:
            locked = await store.agent(session, agent_id, today, lock="wait")
            if locked is None or not strategy.fits(locked, row.kind):
                break
            if row.status == Status.OFFERED and row.agent_id is not None:
                await store.drop(
                    session, row.agent_id, row.kind, row.item_id, reason=Reason.RELEASED, now=now, today=today
                )
            decision_id, _ = await store.take(
                session,
                locked,
                row,
                reason=Reason.GIVEN_BACK,
                now=now,
                today=today,
                skipped=tuple(row.skipped),
            )
            await store.set_item(session, row.id, away_from_id=None)
            decisions.append(
                Decision(store.request_of(row), agent_id, Reason.GIVEN_BACK, tuple(row.skipped), decision_id)
            )
        return decisions

    async def _off_hours(
        self, session: AsyncSession, request: RoutingRequest, now: dt.datetime, cfg: Config
    ) -> Decision:
        """A call gets no item (the dialplan's off-hours branch answers it); a chat waits in the queue,
        its overflow clock starting at the next opening."""
        if request.kind != ItemKind.CALL:
            opens = cfg.opens_at(request.branch_id, now) or now
            row, new = await store.open_item(session, request, now, opens)
            if not new:
                return current_decision(row)
            await store.set_item(
                session, row.id, status=Status.QUEUED, off_hours=True, reason=Reason.OFF_HOURS
            )
        decision_id = await store.log(
            session,
            kind=request.kind,
            item_id=request.item_id,
            agent_id=None,
            reason=Reason.OFF_HOURS,
            at=now,
        )
        return Decision(request, None, Reason.OFF_HOURS, decision_id=decision_id)

    # --- plumbing ------------------------------------------------------------------------------------

    def _today(self, now: dt.datetime) -> dt.date:
        return now.astimezone(self._day_zone).date()

    async def _run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """One transaction; a PostgreSQL deadlock or serialization failure runs it again."""
        for attempt in range(_ATTEMPTS):
            try:
                async with transaction(self._sessions) as session:
                    return await work(session)
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) not in _RETRY_SQLSTATES or attempt == _ATTEMPTS - 1:
                    raise
                logger.info("routing transaction retried after %s", getattr(exc.orig, "sqlstate", None))
                await asyncio.sleep(random.uniform(0.005, 0.02) * (attempt + 1))
        raise AssertionError("unreachable")

    async def _emit(self, decisions: Sequence[Decision]) -> None:
        if self._on_decision is None:
            return
        for decision in decisions:
            if decision.decision_id is None:
                continue
            try:
                await self._on_decision(decision)
            except Exception:
                logger.exception(
                    "on_decision failed for %s %s", decision.request.kind, decision.request.item_id
                )


def check_request(request: RoutingRequest) -> None:
    if str(request.kind) not in {k.value for k in ItemKind}:
        raise Invalid(N_("Unknown item kind."), field="kind")
    if not request.item_id or len(request.item_id) > 120:
        raise Invalid(N_("An item needs an id of at most 120 characters."), field="item_id")
    if not request.channel or len(request.channel) > 20:
        raise Invalid(N_("Unknown channel."), field="channel")


def current_decision(row: Row[Any]) -> Decision:
    return Decision(store.request_of(row), row.agent_id, row.reason, tuple(row.skipped or ()))


def _wanted(item: strategy.Item, rule: RoutingRule) -> list[int]:
    """Agents the plan needs even when busy: the pinned one, the sticky one, the one an item waits for."""
    ids = (item.pinned_agent_id, strategy.sticky_agent_id(item, rule), item.hold_agent_id)
    return [i for i in ids if i is not None]


def _unique(*groups: list[strategy.Agent]) -> list[strategy.Agent]:
    return list({agent.user_id: agent for group in groups for agent in group}.values())


def pull_reason(agent: strategy.Agent, item: strategy.Item, cfg: Config, now: dt.datetime) -> Reason | None:
    """Why this agent may take this queued item, or None when they may not (the SQL filter is wider)."""
    if item.pinned_agent_id is not None:
        return Reason.PINNED if item.pinned_agent_id == agent.user_id else None
    if item.hold_agent_id == agent.user_id and item.hold_until is not None and now < item.hold_until:
        return Reason.STICKY
    if agent.user_id in strategy.excluded(item) or not strategy.matches(agent.skills, item, item.overflow):
        return None
    if strategy.sticky_agent_id(item, cfg.rule(item.branch_id, item.channel)) == agent.user_id:
        return Reason.STICKY
    if item.overflow and not strategy.matches(agent.skills, item, 0):
        return Reason.OVERFLOW
    return Reason.LEAST_BUSY
