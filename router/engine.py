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

import dataclasses
import datetime as dt
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from router import store
from router.core import DecisionHook, check_request, current_decision
from router.hours import WorkingHours
from router.model import (
    ACTIVE,
    AgentView,
    Decision,
    ItemKind,
    LoggedDecision,
    Presence,
    Reason,
    RouterSettings,
    RoutingRequest,
    Skills,
    Status,
    phone_endpoint,
)
from router.periodic import PeriodicPass
from router.rules import RoutingRule
from router.tables import AgentState, RoutingDecision
from switchboard.accounts_model import User
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


MAX_CAPACITY: Final = 50
_ENDPOINT_TAKEN: Final = N_("Another agent already has this phone endpoint.")


class Router(PeriodicPass):
    """The public calls; `PeriodicPass` adds `tick()`, `RouterCore` the machinery under both."""

    # --- routing -------------------------------------------------------------------------------------

    async def assign(self, request: RoutingRequest) -> Decision:
        """Pinned → sticky → least busy → queue (or off hours); an item already active is left as it is
        and its current decision returned (no new row)."""
        check_request(request)
        now, cfg = self._clock(), await self.config.current()

        async def work(session: AsyncSession) -> Decision:
            if not cfg.is_open(request.branch_id, now):
                return await self._off_hours(session, request, now, cfg)
            row, new = await store.open_item(session, request, now, now)
            if not new:
                return current_decision(row)
            return await self._place(session, row, now, cfg)

        return await self._run(work)

    async def dry_run(self, request: RoutingRequest) -> Decision:
        """Who would get this now — reads only, locks and writes nothing."""
        check_request(request)
        now, cfg = self._clock(), await self.config.current()
        if not cfg.is_open(request.branch_id, now):
            return Decision(request, None, Reason.OFF_HOURS)
        async with self._sessions() as session:
            existing = await store.item(session, str(request.kind), request.item_id)
            if existing is not None and existing.status in ACTIVE:
                return current_decision(existing)
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
        check_request(request)
        now, cfg = self._clock(), await self.config.current()
        today = self._today(now)

        async def work(session: AsyncSession) -> tuple[Decision, list[Decision]]:
            row, new = await store.open_item(session, request, now, now)
            if not new and row.agent_id == agent_id and row.status in (Status.OFFERED, Status.ACCEPTED):
                await store.set_item(session, row.id, status=Status.ACCEPTED, accepted_at=now)
                return current_decision(row), []
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
        check_request(request)
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
                return current_decision(await store.reread(session, row.id)), []
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

    async def decisions(
        self, *, kind: str | None = None, item_id: str | None = None, limit: int = 50
    ) -> list[LoggedDecision]:
        """The decision log, newest first: one item's whole history, or the latest across the hub."""
        query = (
            select(RoutingDecision, User.full_name, User.username)
            .outerjoin(User, User.id == RoutingDecision.agent_id)
            .order_by(RoutingDecision.id.desc())
            .limit(max(1, min(limit, 500)))
        )
        if kind is not None:
            query = query.where(RoutingDecision.kind == kind)
        if item_id is not None:
            query = query.where(RoutingDecision.item_id == item_id)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            LoggedDecision(
                id=row.id,
                kind=row.kind,
                item_id=row.item_id,
                agent_id=row.agent_id,
                agent_name=(full_name or username) if row.agent_id is not None else None,
                reason=row.reason,
                skipped=tuple(row.skipped or ()),
                load_before=row.load_before,
                load_after=row.load_after,
                capacity=row.capacity,
                at=row.at,
            )
            for row, full_name, username in rows
        ]

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
