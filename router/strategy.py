"""Who should get an item, as pure functions over a snapshot of agents (no I/O, easy to test).

Order: pinned agent → sticky agent (owner, or last agent by rule) → least busy among eligible agents
(lowest load ÷ capacity, then longest idle since the last assignment, then fewest assignments today).
The engine then locks the candidates one by one and re-checks them, so a stale snapshot can only cost a
retry, never an agent over capacity.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from router.model import ItemKind, Presence, Reason, Skills
from router.rules import RoutingRule

_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Agent:
    """An agent's state as read from (or locked in) the database."""

    user_id: int
    presence: str
    capacity: int
    chats_during_call: bool
    skills: Skills
    chats: int
    on_call: bool
    last_assigned_at: dt.datetime | None
    assignments_today: int
    takes_calls: bool = True  # has a phone endpoint: a call routed to them can be dialled


@dataclass(frozen=True)
class Item:
    """What the strategy needs to know about an item."""

    kind: str
    channel: str
    branch_id: int | None = None
    language: str | None = None
    product: str | None = None
    owner_id: int | None = None
    last_agent_id: int | None = None
    pinned_agent_id: int | None = None
    overflow: int = 0  # 0: exact skills, 1: any branch, 2: any agent
    skipped: tuple[int, ...] = ()
    hold_agent_id: int | None = None  # a sticky agent the item waits for ...
    hold_until: dt.datetime | None = None  # ... until then


@dataclass(frozen=True)
class Plan:
    candidates: tuple[tuple[Agent, Reason], ...]  # try in this order
    hold: tuple[int, dt.datetime] | None = None  # nobody now: wait for this sticky agent until then


def fits(agent: Agent, kind: str) -> bool:
    """Whether the agent can take one more item of `kind` now: online, and a call only with a phone
    endpoint, when not on a call and either chat-free or allowed chats during a call; a chat only under
    capacity and, while on a call, only with chats during calls allowed."""
    if agent.presence != Presence.ONLINE:
        return False
    if kind == ItemKind.CALL:
        return agent.takes_calls and not agent.on_call and (agent.chats == 0 or agent.chats_during_call)
    if agent.chats >= agent.capacity:
        return False
    return not agent.on_call or agent.chats_during_call


def matches(skills: Skills, item: Item, overflow: int) -> bool:
    """Skills against the item; an empty skill list takes anything. Overflow 1 drops the branch, 2 all."""
    if overflow >= 2:
        return True
    if (
        overflow < 1
        and skills.branches
        and item.branch_id is not None
        and item.branch_id not in skills.branches
    ):
        return False
    for have, want in (
        (skills.languages, item.language),
        (skills.products, item.product),
        (skills.channels, item.channel),
    ):
        if have and want and want.lower() not in have:
            return False
    return True


def rank(agent: Agent) -> tuple[float, dt.datetime, int, int]:
    load = agent.chats / agent.capacity if agent.capacity else float("inf")
    return (load, agent.last_assigned_at or _NEVER, agent.assignments_today, agent.user_id)


def sticky_agent_id(item: Item, rule: RoutingRule) -> int | None:
    if rule.sticky_mode == "last":
        return item.last_agent_id or item.owner_id
    return item.owner_id


def excluded(item: Item) -> frozenset[int]:
    """Agents who let this item time out don't get it again, unless it overflowed to anyone at all."""
    return frozenset() if item.overflow >= 2 else frozenset(item.skipped)


def least_busy(agents: Iterable[Agent], item: Item, skip: frozenset[int] = frozenset()) -> list[Agent]:
    eligible = [
        a
        for a in agents
        if a.user_id not in skip and fits(a, item.kind) and matches(a.skills, item, item.overflow)
    ]
    return sorted(eligible, key=rank)


def plan(item: Item, rule: RoutingRule, agents: Sequence[Agent], now: dt.datetime) -> Plan:
    """The candidates for `item`, best first. `agents` holds at least every agent that fits its kind
    (others are ignored, except a busy sticky agent, which may make the item wait)."""
    by_id = {a.user_id: a for a in agents}
    skip = excluded(item)
    if item.pinned_agent_id is not None:
        pinned = by_id.get(item.pinned_agent_id)
        if pinned is not None and fits(pinned, item.kind):
            return Plan(((pinned, Reason.PINNED),))
        return Plan(())  # a pinned item waits for its agent
    head: list[tuple[Agent, Reason]] = []
    sticky_id = sticky_agent_id(item, rule)
    if item.hold_agent_id is not None and item.hold_until is not None and now < item.hold_until:
        sticky_id = item.hold_agent_id
    sticky = by_id.get(sticky_id) if sticky_id is not None else None
    if sticky is not None and sticky.user_id not in skip and _sticky_ok(sticky, item):
        if fits(sticky, item.kind):
            head.append((sticky, Reason.STICKY))
        elif _may_wait(sticky, item, rule, now):
            until = item.hold_until or now + dt.timedelta(seconds=rule.sticky_wait_seconds)
            return Plan((), (sticky.user_id, until))
    rest = [
        (a, Reason.OVERFLOW if item.overflow and not matches(a.skills, item, 0) else Reason.LEAST_BUSY)
        for a in least_busy(agents, item, skip)
        if not head or a.user_id != head[0][0].user_id
    ]
    return Plan((*head, *rest))


def _sticky_ok(agent: Agent, item: Item) -> bool:
    """A sticky agent knows the customer, so only the channel skill applies to them."""
    return not agent.skills.channels or item.channel.lower() in agent.skills.channels


def _may_wait(agent: Agent, item: Item, rule: RoutingRule, now: dt.datetime) -> bool:
    if rule.sticky_wait_seconds <= 0 or agent.presence not in (Presence.ONLINE, Presence.AFTER_CALL):
        return False
    if item.kind == ItemKind.CALL and not agent.takes_calls:
        return False  # no phone to ring: waiting for them would never end in a call
    if item.hold_agent_id == agent.user_id and item.hold_until is not None:
        return now < item.hold_until  # already waited: the wait does not start again
    return True
