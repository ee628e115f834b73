"""`tick()`: the router's periodic pass — wrap-up ends, silent browsers go away, unanswered offers time out
and pass on, absent agents' items move, the queue's skill requirements widen, and agents with room pull
the queue. Every process may run it; each step locks only the rows it changes (SKIP LOCKED on PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from router import store, strategy
from router.config import Config
from router.core import RouterCore
from router.model import (
    Decision,
    ItemKind,
    Presence,
    Reason,
    Status,
)
from router.tables import AgentState, RoutingItem

logger = logging.getLogger(__name__)

_TICK_BATCH: Final = 500
_DRAIN_AGENTS: Final = 200  # agents with room that look at the queue per tick, least busy first


class PeriodicPass(RouterCore):
    async def tick(self) -> list[Decision]:
        """Call every few seconds from one or more processes: ends after-call work, sets silent browsers
        away, passes on timed-out offers, moves absent agents' unanswered items, widens overflow and lets
        agents with room pull the queue (which also catches an item queued while a release committed)."""
        now, cfg = self._clock(), await self.config.current()
        decisions: list[Decision] = []
        decisions += await self._end_after_call(now, cfg)
        await self._expire_heartbeats(now)
        decisions += await self._accept_timeouts(now, cfg)
        decisions += await self._absences(now, cfg)
        await self._widen_overflow(now, cfg)
        decisions += await self._drain(now, cfg)
        return decisions

    async def _end_after_call(self, now: dt.datetime, cfg: Config) -> list[Decision]:
        async with self._sessions() as session:
            ids = list(
                await session.scalars(
                    select(AgentState.user_id).where(
                        AgentState.presence == Presence.AFTER_CALL, AgentState.wrap_up_until <= now
                    )
                )
            )
        decisions: list[Decision] = []
        for agent_id in ids:

            async def work(session: AsyncSession, agent_id: int = agent_id) -> list[Decision]:
                locked = await store.agent(session, agent_id, self._today(now), lock="wait")
                if locked is None or locked.presence != Presence.AFTER_CALL:
                    return []
                await session.execute(
                    update(AgentState)
                    .where(AgentState.user_id == agent_id)
                    .values(presence=Presence.ONLINE, presence_since=now, wrap_up_until=None)
                )
                fresh = await store.agent(session, agent_id, self._today(now))
                assert fresh is not None
                return await self._pull(session, fresh, now, cfg)

            found = await self._run(work)
            await self._emit(found)
            decisions += found
        return decisions

    async def _expire_heartbeats(self, now: dt.datetime) -> None:
        cutoff = now - dt.timedelta(seconds=self.settings.heartbeat_timeout_seconds)

        async def work(session: AsyncSession) -> None:
            await session.execute(
                update(AgentState)
                .where(AgentState.presence == Presence.ONLINE, AgentState.last_heartbeat < cutoff)
                .values(presence=Presence.AWAY, presence_since=now)
            )

        await self._run(work)

    async def _accept_timeouts(self, now: dt.datetime, cfg: Config) -> list[Decision]:
        shortest = min(rule.accept_timeout_seconds for rule in cfg.all_rules())
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(RoutingItem.id, RoutingItem.branch_id, RoutingItem.channel, RoutingItem.offered_at)
                    .where(
                        RoutingItem.status == Status.OFFERED,
                        RoutingItem.offered_at <= now - dt.timedelta(seconds=shortest),
                    )
                    .order_by(RoutingItem.offered_at)
                    .limit(_TICK_BATCH)
                )
            ).all()
        decisions: list[Decision] = []
        for row in rows:
            timeout = cfg.rule(row.branch_id, row.channel).accept_timeout_seconds
            if row.offered_at + dt.timedelta(seconds=timeout) > now:
                continue

            async def work(
                session: AsyncSession, row_id: int = row.id, offered_at: dt.datetime = row.offered_at
            ) -> list[Decision]:
                return await self._time_out(session, row_id, offered_at, now, cfg)

            found = await self._run(work)
            await self._emit(found)
            decisions += found
        return decisions

    async def _time_out(
        self, session: AsyncSession, row_id: int, offered_at: dt.datetime, now: dt.datetime, cfg: Config
    ) -> list[Decision]:
        row = await store.item_by_id(session, row_id, lock="skip")
        if (
            row is None
            or row.status != Status.OFFERED
            or row.offered_at != offered_at
            or row.agent_id is None
        ):
            return []
        agent_id = row.agent_id
        await store.drop(
            session, agent_id, row.kind, row.item_id, reason=Reason.TIMED_OUT, now=now, today=self._today(now)
        )
        strikes = (
            await session.execute(
                update(AgentState)
                .where(AgentState.user_id == agent_id)
                .values(consecutive_timeouts=AgentState.consecutive_timeouts + 1)
                .returning(AgentState.consecutive_timeouts, AgentState.presence)
            )
        ).one()
        limit = cfg.rule(row.branch_id, row.channel).timeouts_before_away
        if limit and strikes.consecutive_timeouts >= limit and strikes.presence == Presence.ONLINE:
            await session.execute(
                update(AgentState)
                .where(AgentState.user_id == agent_id)
                .values(presence=Presence.AWAY, presence_since=now)
            )
        skipped = [*row.skipped, agent_id] if agent_id not in row.skipped else list(row.skipped)
        await store.set_item(
            session, row.id, status=Status.ROUTING, agent_id=None, offered_at=None, skipped=skipped
        )
        return [await self._place(session, await store.reread(session, row.id), now, cfg)]

    async def _absences(self, now: dt.datetime, cfg: Config) -> list[Decision]:
        cutoff = now - dt.timedelta(seconds=self.settings.absence_grace_seconds)
        today = self._today(now)
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(RoutingItem.id, RoutingItem.agent_id)
                    .join(AgentState, AgentState.user_id == RoutingItem.agent_id)
                    .where(
                        RoutingItem.status == Status.OFFERED,
                        AgentState.presence.in_([Presence.AWAY, Presence.OFFLINE]),
                        AgentState.presence_since <= cutoff,
                    )
                    .limit(_TICK_BATCH)
                )
            ).all()
        decisions: list[Decision] = []
        for row in rows:

            async def work(
                session: AsyncSession, row_id: int = row.id, agent_id: int = row.agent_id
            ) -> list[Decision]:
                item = await store.item_by_id(session, row_id, lock="skip")
                if item is None or item.status != Status.OFFERED or item.agent_id != agent_id:
                    return []
                await store.drop(
                    session, agent_id, item.kind, item.item_id, reason=Reason.RELEASED, now=now, today=today
                )
                await store.set_item(
                    session,
                    row_id,
                    status=Status.ROUTING,
                    agent_id=None,
                    offered_at=None,
                    away_from_id=agent_id,
                )
                fresh = await store.reread(session, row_id)
                return [await self._place(session, fresh, now, cfg, reason=Reason.REASSIGNED)]

            found = await self._run(work)
            await self._emit(found)
            decisions += found
        return decisions

    async def _widen_overflow(self, now: dt.datetime, cfg: Config) -> None:
        thresholds = [
            seconds
            for rule in cfg.all_rules()
            for seconds in (rule.overflow_branch_after_seconds, rule.overflow_any_after_seconds)
            if seconds is not None
        ]
        if not thresholds:
            return
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(RoutingItem.id, RoutingItem.branch_id, RoutingItem.channel, RoutingItem.queued_at)
                    .where(
                        RoutingItem.status == Status.QUEUED,
                        RoutingItem.overflow < 2,
                        RoutingItem.queued_at <= now - dt.timedelta(seconds=min(thresholds)),
                    )
                    .order_by(RoutingItem.queued_at)
                )
            ).all()
        levels: dict[int, list[int]] = {1: [], 2: []}
        for row in rows:
            rule = cfg.rule(row.branch_id, row.channel)
            waited = (now - row.queued_at).total_seconds()
            anyone, branch = rule.overflow_any_after_seconds, rule.overflow_branch_after_seconds
            if anyone is not None and waited >= anyone:
                levels[2].append(row.id)
            elif branch is not None and waited >= branch:
                levels[1].append(row.id)
        for level, ids in levels.items():
            for start in range(0, len(ids), _TICK_BATCH):
                chunk = ids[start : start + _TICK_BATCH]

                async def work(session: AsyncSession, level: int = level, chunk: list[int] = chunk) -> None:
                    await session.execute(
                        update(RoutingItem)
                        .where(
                            RoutingItem.id.in_(chunk),
                            RoutingItem.status == Status.QUEUED,
                            RoutingItem.overflow < level,
                        )
                        .values(overflow=level)
                    )

                await self._run(work)

    async def _drain(self, now: dt.datetime, cfg: Config) -> list[Decision]:
        """Agents with room look at the queue: releases and presence changes pull it at once, so this only
        catches what time changed (opening hours, an ended wait, overflow) and an item queued while a
        release was committing. Bounded per tick; the least busy agents look first."""
        today = self._today(now)
        async with self._sessions() as session:
            if await store.queued_count(session) == 0:
                return []
            agents = {
                a.user_id: a for kind in ItemKind for a in await store.fitting_agents(session, kind, today)
            }
        decisions: list[Decision] = []
        for candidate in sorted(agents.values(), key=strategy.rank)[:_DRAIN_AGENTS]:

            async def work(session: AsyncSession, agent_id: int = candidate.user_id) -> list[Decision]:
                locked = await store.agent(session, agent_id, today, lock="skip")
                return await self._pull(session, locked, now, cfg) if locked is not None else []

            found = await self._run(work)
            await self._emit(found)
            decisions += found
        return decisions
