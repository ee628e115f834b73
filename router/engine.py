"""The router's front door: `Router.assign()` and everything that frees, moves or re-offers items.

Each public call is one transaction (retried on a PostgreSQL deadlock). Giving an item to an agent locks
the agent's state row first — `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, so two processes routing at
once pick different agents instead of queueing behind each other — then re-checks the locked row's load
before taking capacity. On SQLite one connection with `BEGIN IMMEDIATE` serialises every transaction
(`switchboard.db`), so the same code is correct there without row locks.

Decisions are handed to `on_decision` after their transaction commits: every stored decision except the
one `assign()` / `manual_assign()` return to their caller (release, presence, capacity and `tick()` also
return theirs, for tests and callers that want them).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from router import store, strategy
from router.config import Config, ConfigStore
from router.hours import WorkingHours
from router.model import (
    ACTIVE,
    AgentView,
    Decision,
    ItemKind,
    Presence,
    Reason,
    RouterSettings,
    RoutingRequest,
    Skills,
    Status,
    phone_endpoint,
)
from router.rules import RoutingRule
from router.tables import AgentState, RoutingItem
from switchboard.accounts_model import User
from switchboard.db import is_postgres, transaction, utcnow
from switchboard.errors import N_, Conflict, Invalid

__all__ = [
    "AgentView",
    "Decision",
    "DecisionHook",
    "Presence",
    "Router",
    "RouterSettings",
    "RoutingRequest",
    "Skills",
]

logger = logging.getLogger(__name__)

DecisionHook = Callable[[Decision], Awaitable[None]]
T = TypeVar("T")

_RETRY_SQLSTATES: Final = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
_ATTEMPTS: Final = 5
_LOCK_PASSES: Final = 3  # every candidate row locked by others: look again this many times, then queue
_TICK_BATCH: Final = 500
_DRAIN_AGENTS: Final = 200  # agents with room that look at the queue per tick, least busy first
_PAGE: Final = 20  # agents read first for the least-busy choice
MAX_CAPACITY: Final = 50
_ENDPOINT_TAKEN: Final = N_("Another agent already has this phone endpoint.")


class Router:
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

    # --- routing -------------------------------------------------------------------------------------

    async def assign(self, request: RoutingRequest) -> Decision:
        """Pinned → sticky → least busy → queue (or off hours); an item already active is left as it is
        and its current decision returned (no new row)."""
        _check(request)
        now, cfg = self._clock(), await self.config.current()

        async def work(session: AsyncSession) -> Decision:
            if not cfg.is_open(request.branch_id, now):
                return await self._off_hours(session, request, now, cfg)
            row, new = await store.open_item(session, request, now, now)
            if not new:
                return _current(row)
            return await self._place(session, row, now, cfg)

        return await self._run(work)

    async def dry_run(self, request: RoutingRequest) -> Decision:
        """Who would get this now — reads only, locks and writes nothing."""
        _check(request)
        now, cfg = self._clock(), await self.config.current()
        if not cfg.is_open(request.branch_id, now):
            return Decision(request, None, Reason.OFF_HOURS)
        async with self._sessions() as session:
            existing = await store.item(session, str(request.kind), request.item_id)
            if existing is not None and existing.status in ACTIVE:
                return _current(existing)
            item = store.traits_of(request)
            rule = cfg.rule(item.branch_id, item.channel)
            plan = await self._plan(session, item, rule, now)
            await session.rollback()
        if plan.candidates:
            agent, reason = plan.candidates[0]
            return Decision(request, agent.user_id, reason)
        return Decision(request, None, Reason.QUEUED)

    async def manual_assign(self, request: RoutingRequest, agent_id: int) -> Decision:
        """A supervisor's (or the agent's own) choice, taken as accepted; the only way past capacity."""
        _check(request)
        now, cfg = self._clock(), await self.config.current()
        today = self._today(now)

        async def work(session: AsyncSession) -> tuple[Decision, list[Decision]]:
            row, new = await store.open_item(session, request, now, now)
            if not new and row.agent_id == agent_id and row.status in (Status.OFFERED, Status.ACCEPTED):
                await store.set_item(session, row.id, status=Status.ACCEPTED, accepted_at=now)
                return _current(row), []
            freed: list[Decision] = []
            previous = row.agent_id if row.status in (Status.OFFERED, Status.ACCEPTED) else None
            await store.ensure_agent(session, agent_id, self.settings, now)
            locked = await store.agent(session, agent_id, today, lock="wait")
            assert locked is not None  # a supervisor may knowingly go over capacity: the log shows it
            decision_id, _ = await store.take(
                session, locked, row, reason=Reason.MANUAL, now=now, today=today, status=Status.ACCEPTED
            )
            if previous is not None:
                after = await store.drop(
                    session, previous, row.kind, row.item_id, reason=Reason.RELEASED, now=now, today=today
                )
                freed = await self._pull(session, after, now, cfg)
            return Decision(request, agent_id, Reason.MANUAL, decision_id=decision_id), freed

        decision, freed = await self._run(work)
        await self._emit(freed)
        return decision

    async def pin(self, request: RoutingRequest, agent_id: int | None) -> Decision:
        """A supervisor pins an item to one agent: it waits for them alone (taken back from anyone else
        who has it) and goes to them as soon as they have room; None unpins it for the normal strategy."""
        _check(request)
        now, cfg = self._clock(), await self.config.current()
        today = self._today(now)
        pinned = dataclasses.replace(request, pinned_agent_id=agent_id)

        async def work(session: AsyncSession) -> tuple[Decision, list[Decision]]:
            row, new = await store.open_item(session, pinned, now, now)
            if new:
                return await self._place(session, row, now, cfg), []
            values: dict[str, Any] = {"pinned_agent_id": agent_id, "request": pinned.to_json()}
            holder = row.agent_id if row.status in (Status.OFFERED, Status.ACCEPTED) else None
            if holder is not None and (agent_id is None or holder == agent_id):
                await store.set_item(session, row.id, **values)  # already where it should be
                return _current(await store.reread(session, row.id)), []
            values.update(status=Status.ROUTING, agent_id=None, offered_at=None, accepted_at=None)
            await store.set_item(session, row.id, **values)
            freed: list[Decision] = []
            if holder is not None:
                after = await store.drop(
                    session, holder, row.kind, row.item_id, reason=Reason.RELEASED, now=now, today=today
                )
                freed = await self._pull(session, after, now, cfg)
            return await self._place(session, await store.reread(session, row.id), now, cfg), freed

        decision, freed = await self._run(work)
        await self._emit(freed)
        return decision

    async def release(self, kind: ItemKind | str, item_id: str) -> list[Decision]:
        """The item ended: frees the agent's capacity (after a call, wrap-up starts) and pulls the queue."""
        now, cfg = self._clock(), await self.config.current()
        today = self._today(now)

        async def work(session: AsyncSession) -> list[Decision]:
            row = await store.end_item(session, str(kind), item_id)
            if row is None or row.agent_id is None:
                return []
            after = await store.drop(
                session, row.agent_id, row.kind, row.item_id, reason=Reason.RELEASED, now=now, today=today
            )
            wrap_up = self.settings.wrap_up_seconds
            if row.kind == ItemKind.CALL and row.accepted_at is not None and wrap_up > 0:
                await session.execute(
                    update(AgentState)
                    .where(AgentState.user_id == row.agent_id, AgentState.presence == Presence.ONLINE)
                    .values(
                        presence=Presence.AFTER_CALL,
                        presence_since=now,
                        wrap_up_until=now + dt.timedelta(seconds=wrap_up),
                    )
                )
                return []
            return await self._pull(session, after, now, cfg)

        decisions = await self._run(work)
        await self._emit(decisions)
        return decisions

    async def accept(self, kind: ItemKind | str, item_id: str, agent_id: int) -> None:
        """The agent took the item (first reply, answered call): its accept timeout stops. An item offered
        to someone else, or not offered at all, is left alone."""
        now = self._clock()

        async def work(session: AsyncSession) -> None:
            row = await store.item(session, str(kind), item_id, lock="wait")
            if row is None or row.status != Status.OFFERED or row.agent_id != agent_id:
                return
            await store.set_item(session, row.id, status=Status.ACCEPTED, accepted_at=now)
            await session.execute(
                update(AgentState).where(AgentState.user_id == agent_id).values(consecutive_timeouts=0)
            )

        await self._run(work)

    # --- agents --------------------------------------------------------------------------------------

    async def set_presence(self, agent_id: int, presence: Presence | str) -> list[Decision]:
        """Online gives back items taken away for absence (a setting) and pulls the queue; away and
        offline start the grace period after which `tick()` moves their unanswered items."""
        try:
            presence = Presence(presence)
        except ValueError:
            raise Invalid(N_("Unknown presence."), field="presence") from None
        now, cfg = self._clock(), await self.config.current()
        today = self._today(now)

        async def work(session: AsyncSession) -> list[Decision]:
            await store.ensure_agent(session, agent_id, self.settings, now)
            locked = await store.agent(session, agent_id, today, lock="wait")
            assert locked is not None
            if locked.presence != presence:
                values: dict[str, Any] = {"presence": presence, "presence_since": now}
                if presence == Presence.ONLINE:
                    values.update(last_heartbeat=now, consecutive_timeouts=0, wrap_up_until=None)
                await session.execute(
                    update(AgentState).where(AgentState.user_id == agent_id).values(**values)
                )
            if presence != Presence.ONLINE:
                return []
            decisions = await self._give_back(session, agent_id, now, cfg) if self.settings.give_back else []
            fresh = await store.agent(session, agent_id, today, lock="wait")
            assert fresh is not None
            return decisions + await self._pull(session, fresh, now, cfg)

        decisions = await self._run(work)
        await self._emit(decisions)
        return decisions

    async def heartbeat(self, agent_id: int) -> None:
        now = self._clock()

        async def work(session: AsyncSession) -> None:
            await store.ensure_agent(session, agent_id, self.settings, now)
            await session.execute(
                update(AgentState).where(AgentState.user_id == agent_id).values(last_heartbeat=now)
            )

        await self._run(work)

    async def set_capacity(self, agent_id: int, chats: int, chats_during_call: bool) -> None:
        """More room pulls the queue at once (the decisions go to `on_decision`)."""
        if isinstance(chats, bool) or not isinstance(chats, int) or not 0 <= chats <= MAX_CAPACITY:
            raise Invalid(
                N_("Capacity must be from %(low)s to %(high)s chats."),
                field="capacity",
                low=0,
                high=MAX_CAPACITY,
            )
        await self._update_agent(agent_id, capacity=chats, chats_during_call=bool(chats_during_call))

    async def set_skills(self, agent_id: int, skills: Skills) -> None:
        await self._update_agent(agent_id, skills=skills.to_json(), skill_tags=store.skill_tags(skills))

    async def set_endpoint(self, agent_id: int, endpoint: str | None) -> str | None:
        """The phone endpoint the dialplan dials for this agent's calls (`PJSIP/1001`); None or blank
        clears it, and an agent without one is never given a call. One endpoint belongs to one agent."""
        value = phone_endpoint(endpoint)
        now = self._clock()

        async def work(session: AsyncSession) -> None:
            await store.ensure_agent(session, agent_id, self.settings, now)
            if value is not None:
                holder = await session.scalar(
                    select(AgentState.user_id).where(
                        AgentState.phone_endpoint == value, AgentState.user_id != agent_id
                    )
                )
                if holder is not None:
                    raise Conflict(_ENDPOINT_TAKEN, field="phone_endpoint")
            await session.execute(
                update(AgentState).where(AgentState.user_id == agent_id).values(phone_endpoint=value)
            )

        try:
            await self._run(work)
        except IntegrityError:  # the same endpoint given to two agents at the same moment
            raise Conflict(_ENDPOINT_TAKEN, field="phone_endpoint") from None
        return value

    async def endpoint(self, agent_id: int) -> str | None:
        """The agent's phone endpoint, or None (the FastAGI answer for a call routed to them)."""
        async with self._sessions() as session:
            return await session.scalar(
                select(AgentState.phone_endpoint).where(AgentState.user_id == agent_id)
            )

    async def agent_by_endpoint(self, endpoint: str | None) -> int | None:
        """Whose phone is `endpoint` (`PJSIP/1001`): the AMI side names agents by the channel it rings."""
        if not endpoint:
            return None
        async with self._sessions() as session:
            return await session.scalar(
                select(AgentState.user_id).where(AgentState.phone_endpoint == endpoint)
            )

    async def _update_agent(self, agent_id: int, **values: Any) -> None:
        now, cfg = self._clock(), await self.config.current()

        async def work(session: AsyncSession) -> list[Decision]:
            await store.ensure_agent(session, agent_id, self.settings, now)
            await store.agent(session, agent_id, self._today(now), lock="wait")
            await session.execute(update(AgentState).where(AgentState.user_id == agent_id).values(**values))
            fresh = await store.agent(session, agent_id, self._today(now))
            assert fresh is not None
            return await self._pull(session, fresh, now, cfg)

        await self._emit(await self._run(work))

    async def agents(self) -> list[AgentView]:
        """Every active user with routing state, and every active agent-role user (with the defaults)."""
        return await self._agent_views()

    async def agent(self, agent_id: int) -> AgentView | None:
        """One person's routing state (None for an inactive user, or a non-agent who never took part)."""
        found = await self._agent_views(agent_id)
        return found[0] if found else None

    async def _agent_views(self, agent_id: int | None = None) -> list[AgentView]:
        today = self._today(self._clock())
        query = (
            select(User.id, User.username, User.full_name, User.role, AgentState)
            .outerjoin(AgentState, AgentState.user_id == User.id)
            .where(User.active.is_(True))
            .order_by(User.full_name, User.username)
        )
        if agent_id is not None:
            query = query.where(User.id == agent_id)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        views = []
        for user_id, username, full_name, role, state in rows:
            if state is None and role != "agent":
                continue
            views.append(self._view(user_id, full_name or username, state, today))
        return views

    def _view(self, user_id: int, name: str, state: AgentState | None, today: dt.date) -> AgentView:
        if state is None:
            return AgentView(
                user_id, name, Presence.OFFLINE, None, 0, False, self.settings.default_capacity,
                self.settings.default_chats_during_call, Skills(), None, 0, 0, None,
            )  # fmt: skip
        return AgentView(
            agent_id=user_id,
            name=name,
            presence=Presence(state.presence),
            presence_since=state.presence_since,
            chats=state.chats,
            on_call=state.on_call,
            capacity=state.capacity,
            chats_during_call=state.chats_during_call,
            skills=Skills.from_json(state.skills),
            idle_since=state.last_assigned_at,
            assignments_today=state.assignments_today if state.assignments_day == today else 0,
            consecutive_timeouts=state.consecutive_timeouts,
            last_heartbeat=state.last_heartbeat,
            phone_endpoint=state.phone_endpoint,
        )

    # --- rules and hours -----------------------------------------------------------------------------

    async def is_open(self, branch_id: int | None, at: dt.datetime | None = None) -> bool:
        return (await self.config.current()).is_open(branch_id, at or self._clock())

    async def opens_at(self, branch_id: int | None, at: dt.datetime | None = None) -> dt.datetime | None:
        """Now when open, else the branch's next opening (for "we answer from 09:00" and callbacks)."""
        return (await self.config.current()).opens_at(branch_id, at or self._clock())

    async def off_hours_reply(
        self, branch_id: int | None, language: str | None, at: dt.datetime | None = None
    ) -> str | None:
        """The branch's off-hours reply for the customer's language, its next opening filled in."""
        return (await self.config.current()).off_hours_reply(branch_id, language, at or self._clock())

    async def rules(self) -> list[RoutingRule]:
        return await self.config.rules()

    async def save_rule(self, rule: RoutingRule) -> RoutingRule:
        return await self.config.save_rule(rule)

    async def delete_rule(self, branch_id: int | None, channel: str | None) -> None:
        await self.config.delete_rule(branch_id, channel)

    async def working_hours(self, branch_id: int) -> WorkingHours | None:
        return await self.config.hours(branch_id)

    async def save_hours(self, hours: WorkingHours) -> WorkingHours:
        return await self.config.save_hours(hours)

    async def delete_hours(self, branch_id: int) -> None:
        await self.config.delete_hours(branch_id)

    # --- the periodic pass ---------------------------------------------------------------------------

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
                why = _pull_reason(agent, store.traits(row), cfg, now)
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
        if request.kind == ItemKind.CALL:
            decision_id = await store.log(
                session,
                kind=request.kind,
                item_id=request.item_id,
                agent_id=None,
                reason=Reason.OFF_HOURS,
                at=now,
            )
            return Decision(request, None, Reason.OFF_HOURS, decision_id=decision_id)
        row, new = await store.open_item(session, request, now, cfg.opens_at(request.branch_id, now) or now)
        if not new:
            return _current(row)
        await store.set_item(session, row.id, status=Status.QUEUED, off_hours=True, reason=Reason.OFF_HOURS)
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


def _check(request: RoutingRequest) -> None:
    if str(request.kind) not in {k.value for k in ItemKind}:
        raise Invalid(N_("Unknown item kind."), field="kind")
    if not request.item_id or len(request.item_id) > 120:
        raise Invalid(N_("An item needs an id of at most 120 characters."), field="item_id")
    if not request.channel or len(request.channel) > 20:
        raise Invalid(N_("Unknown channel."), field="channel")


def _current(row: Row[Any]) -> Decision:
    return Decision(store.request_of(row), row.agent_id, row.reason, tuple(row.skipped or ()))


def _wanted(item: strategy.Item, rule: RoutingRule) -> list[int]:
    """Agents the plan needs even when busy: the pinned one, the sticky one, the one an item waits for."""
    ids = (item.pinned_agent_id, strategy.sticky_agent_id(item, rule), item.hold_agent_id)
    return [i for i in ids if i is not None]


def _unique(*groups: list[strategy.Agent]) -> list[strategy.Agent]:
    return list({agent.user_id: agent for group in groups for agent in group}.values())


def _pull_reason(agent: strategy.Agent, item: strategy.Item, cfg: Config, now: dt.datetime) -> Reason | None:
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
