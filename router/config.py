"""Routing rules and working hours: stored per branch / channel, read through a short cache.

Every decision needs them, and admins change them rarely, so a process re-reads them at most every
`config_ttl_seconds` (and at once after its own change); another process sees a change within that time.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from router.hours import WorkingHours
from router.model import RouterSettings
from router.rules import RoutingRule, resolve
from router.tables import BranchHours, RoutingRuleRow
from switchboard.accounts_model import Branch
from switchboard.db import transaction
from switchboard.errors import N_, Invalid


@dataclass(frozen=True)
class Config:
    rules: tuple[RoutingRule, ...] = ()
    hours: dict[int, WorkingHours] = field(default_factory=dict)
    default: RoutingRule = field(default_factory=RoutingRule)

    def rule(self, branch_id: int | None, channel: str | None) -> RoutingRule:
        return resolve(self.rules, branch_id, channel, self.default)

    def is_open(self, branch_id: int | None, at: dt.datetime) -> bool:
        hours = self.hours.get(branch_id) if branch_id is not None else None
        return hours is None or hours.is_open(at)

    def opens_at(self, branch_id: int | None, at: dt.datetime) -> dt.datetime | None:
        hours = self.hours.get(branch_id) if branch_id is not None else None
        return at if hours is None else hours.opens_at(at)

    def off_hours_reply(self, branch_id: int | None, language: str | None, at: dt.datetime) -> str | None:
        hours = self.hours.get(branch_id) if branch_id is not None else None
        return None if hours is None else hours.reply(language, at)

    def closed_branches(self, at: dt.datetime) -> list[int]:
        return sorted(b for b, hours in self.hours.items() if not hours.is_open(at))

    def all_rules(self) -> Iterable[RoutingRule]:
        return (*self.rules, self.default)


def _rule(row: RoutingRuleRow) -> RoutingRule:
    return RoutingRule(
        branch_id=row.branch_id,
        channel=row.channel,
        sticky_mode=row.sticky_mode,
        sticky_wait_seconds=row.sticky_wait_seconds,
        accept_timeout_seconds=row.accept_timeout_seconds,
        overflow_branch_after_seconds=row.overflow_branch_after_seconds,
        overflow_any_after_seconds=row.overflow_any_after_seconds,
        timeouts_before_away=row.timeouts_before_away,
    )


def _hours(row: BranchHours) -> WorkingHours:
    return WorkingHours.parse(row.branch_id, row.timezone, row.week, row.holidays, row.replies)


class ConfigStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: RouterSettings) -> None:
        self._sessions = sessions
        self._settings = settings
        self._cached: Config | None = None
        self._read_at = 0.0

    def invalidate(self) -> None:
        self._cached = None

    async def current(self) -> Config:
        if self._cached is None or time.monotonic() - self._read_at > self._settings.config_ttl_seconds:
            async with self._sessions() as session:
                rules = [_rule(r) for r in await session.scalars(select(RoutingRuleRow))]
                hours = {h.branch_id: _hours(h) for h in await session.scalars(select(BranchHours))}
            self._cached = Config(tuple(rules), hours, self._settings.default_rule)
            self._read_at = time.monotonic()
        return self._cached

    async def rules(self) -> list[RoutingRule]:
        async with self._sessions() as session:
            rows = await session.scalars(select(RoutingRuleRow).order_by(RoutingRuleRow.scope))
            return [_rule(r) for r in rows]

    async def save_rule(self, rule: RoutingRule) -> RoutingRule:
        """Creates or replaces the rule of `rule`'s branch and channel."""
        async with transaction(self._sessions) as session:
            await _check_branch(session, rule.branch_id)
            values = {
                "scope": rule.scope,
                "branch_id": rule.branch_id,
                "channel": rule.channel,
                "sticky_mode": rule.sticky_mode,
                "sticky_wait_seconds": rule.sticky_wait_seconds,
                "accept_timeout_seconds": rule.accept_timeout_seconds,
                "overflow_branch_after_seconds": rule.overflow_branch_after_seconds,
                "overflow_any_after_seconds": rule.overflow_any_after_seconds,
                "timeouts_before_away": rule.timeouts_before_away,
            }
            row = await session.scalar(select(RoutingRuleRow).where(RoutingRuleRow.scope == rule.scope))
            if row is None:
                session.add(RoutingRuleRow(**values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)
        self.invalidate()
        return rule

    async def delete_rule(self, branch_id: int | None, channel: str | None) -> None:
        scope = RoutingRule(branch_id=branch_id, channel=channel).scope
        async with transaction(self._sessions) as session:
            await session.execute(delete(RoutingRuleRow).where(RoutingRuleRow.scope == scope))
        self.invalidate()

    async def hours(self, branch_id: int) -> WorkingHours | None:
        async with self._sessions() as session:
            row = await session.get(BranchHours, branch_id)
            return _hours(row) if row is not None else None

    async def save_hours(self, hours: WorkingHours) -> WorkingHours:
        async with transaction(self._sessions) as session:
            await _check_branch(session, hours.branch_id)
            row = await session.get(BranchHours, hours.branch_id)
            if row is None:
                row = BranchHours(branch_id=hours.branch_id)
                session.add(row)
            row.timezone = hours.timezone
            row.week = hours.week_json()
            row.holidays = hours.holidays_json()
            row.replies = dict(hours.replies)
        self.invalidate()
        return hours

    async def delete_hours(self, branch_id: int) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(delete(BranchHours).where(BranchHours.branch_id == branch_id))
        self.invalidate()


async def _check_branch(session: AsyncSession, branch_id: int | None) -> None:
    if branch_id is not None and await session.get(Branch, branch_id) is None:
        raise Invalid(N_("No such branch."), field="branch_id")
