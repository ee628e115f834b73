"""`router.strategy` alone: eligibility, capacity rules for calls and chats, and the order of candidates."""

from __future__ import annotations

import datetime as dt

from router import strategy
from router.model import Reason, Skills
from router.rules import RoutingRule
from tests.router.conftest import MONDAY_NOON

NOW = MONDAY_NOON


def agent(user_id: int, **kw: object) -> strategy.Agent:
    values: dict[str, object] = {
        "presence": "online",
        "capacity": 3,
        "chats_during_call": False,
        "skills": Skills(),
        "chats": 0,
        "on_call": False,
        "last_assigned_at": None,
        "assignments_today": 0,
    }
    values.update(kw)
    return strategy.Agent(user_id=user_id, **values)  # type: ignore[arg-type]


def chat(**kw: object) -> strategy.Item:
    return strategy.Item(kind="chat", channel=str(kw.pop("channel", "telegram")), **kw)  # type: ignore[arg-type]


def call(**kw: object) -> strategy.Item:
    return strategy.Item(kind="call", channel="phone", **kw)  # type: ignore[arg-type]


def order(
    item: strategy.Item, agents: list[strategy.Agent], rule: RoutingRule | None = None
) -> list[tuple[int, str]]:
    plan = strategy.plan(item, rule or RoutingRule(), agents, NOW)
    return [(a.user_id, str(reason)) for a, reason in plan.candidates]


def test_capacity_rules_for_chats_and_calls() -> None:
    assert strategy.fits(agent(1, chats=2), "chat") and not strategy.fits(agent(1, chats=3), "chat")
    assert not strategy.fits(agent(1, presence="away"), "chat")
    assert not strategy.fits(agent(1, presence="after_call"), "call")
    # a call takes the agent whole: it needs no chats, unless chats are allowed during calls
    assert strategy.fits(agent(1), "call") and not strategy.fits(agent(1, chats=1), "call")
    assert strategy.fits(agent(1, chats=3, chats_during_call=True), "call")
    # never a second call
    assert not strategy.fits(agent(1, on_call=True, chats_during_call=True), "call")
    # chats while on a call only with chats during calls
    assert not strategy.fits(agent(1, on_call=True), "chat")
    assert strategy.fits(agent(1, on_call=True, chats_during_call=True), "chat")


def test_skills_match_and_widen_with_overflow() -> None:
    skills = Skills.of(branches=[1], languages=["RO"], products=["mortgage"], channels=["viber"])
    assert skills.languages == ("ro",)
    item = chat(channel="viber", branch_id=1, language="ro", product="mortgage")
    assert strategy.matches(skills, item, 0)
    other_branch = chat(channel="viber", branch_id=2, language="ro")
    assert not strategy.matches(skills, other_branch, 0) and strategy.matches(skills, other_branch, 1)
    russian = chat(channel="viber", branch_id=2, language="ru")
    assert not strategy.matches(skills, russian, 1) and strategy.matches(skills, russian, 2)
    assert strategy.matches(Skills(), russian, 0)  # empty lists take anything
    assert strategy.matches(skills, chat(channel="viber"), 0)  # an item asking nothing fits anyone


def test_least_busy_by_load_ratio_then_idle_then_assignments_today() -> None:
    early, late = NOW - dt.timedelta(hours=2), NOW - dt.timedelta(minutes=5)
    agents = [
        agent(1, chats=1, capacity=2),  # 0.5
        agent(2, chats=1, capacity=5),  # 0.2
        agent(3, chats=2, capacity=10, last_assigned_at=late),  # 0.2, idle shorter
        agent(4, chats=1, capacity=5, last_assigned_at=early, assignments_today=9),  # 0.2, idle longer
        agent(5, chats=1, capacity=5, last_assigned_at=early, assignments_today=3),  # 0.2, fewer today
        agent(6, chats=3, capacity=3),  # full
    ]
    assert order(chat(), agents) == [
        (2, "least_busy"),
        (5, "least_busy"),
        (4, "least_busy"),
        (3, "least_busy"),
        (1, "least_busy"),
    ]


def test_pinned_first_and_only() -> None:
    agents = [agent(1), agent(2, chats=2)]
    assert order(chat(pinned_agent_id=2), agents) == [(2, "pinned")]
    assert order(chat(pinned_agent_id=2), [agent(1), agent(2, chats=3)]) == []  # waits for them


def test_sticky_owner_or_last_agent_by_rule() -> None:
    agents = [agent(1), agent(2, chats=1), agent(3, chats=2)]
    item = chat(owner_id=3, last_agent_id=2)
    assert order(item, agents)[:2] == [(3, "sticky"), (1, "least_busy")]
    assert order(item, agents, RoutingRule(sticky_mode="last"))[0] == (2, "sticky")
    # the owner at capacity: least busy instead (no wait configured)
    full = [agent(1), agent(3, chats=3)]
    assert order(item, full) == [(1, "least_busy")]


def test_sticky_wait_holds_the_item_for_a_busy_owner_once() -> None:
    rule = RoutingRule(sticky_wait_seconds=20)
    agents = [agent(1), agent(3, chats=3)]
    plan = strategy.plan(chat(owner_id=3), rule, agents, NOW)
    assert plan.candidates == () and plan.hold == (3, NOW + dt.timedelta(seconds=20))
    waited = chat(owner_id=3, hold_agent_id=3, hold_until=NOW)  # the wait is over
    assert order(waited, agents, rule) == [(1, "least_busy")]
    # an owner who is away is not waited for
    assert order(chat(owner_id=3), [agent(1), agent(3, presence="away")], rule) == [(1, "least_busy")]


def test_agents_who_let_an_item_time_out_are_skipped_until_it_overflows_to_anyone() -> None:
    agents = [agent(1), agent(2, chats=1)]
    assert order(chat(skipped=(1,)), agents) == [(2, "least_busy")]
    assert [a for a, _ in order(chat(skipped=(1,), overflow=2), agents)] == [1, 2]


def test_overflow_reason_only_when_the_widening_was_needed() -> None:
    agents = [agent(1, skills=Skills.of(branches=[2])), agent(2, chats=1, skills=Skills.of(branches=[1]))]
    assert order(chat(branch_id=1), agents) == [(2, "least_busy")]
    assert order(chat(branch_id=1, overflow=1), agents) == [(1, "overflow"), (2, "least_busy")]
    assert Reason.OVERFLOW == "overflow"
