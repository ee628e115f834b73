"""`Router` on the test database, one strategy step at a time and in sequence, with a clock the test moves.
Every test ends by replaying the decision log (`replay`): no automatic decision ever exceeded capacity."""

from __future__ import annotations

from sqlalchemy import func, select

from router.engine import Router
from router.model import Skills
from router.rules import RoutingRule
from router.tables import AgentState, RoutingDecision, RoutingItem
from tests.router.conftest import (
    Clock,
    Hook,
    Sessions,
    add_agents,
    add_branch,
    call,
    chat,
    decision_log,
    make_router,
    replay,
)


async def loads(router: Router) -> dict[int, int]:
    return {view.agent_id: view.chats for view in await router.agents()}


async def count(sessions: Sessions, model: type) -> int:
    async with sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)


# --- each step alone ---------------------------------------------------------------------------------


async def test_least_busy_takes_the_agent_with_the_lowest_load_ratio(
    router: Router, sessions: Sessions
) -> None:
    a, b = await add_agents(router, sessions, 2, capacity=4)
    first = await router.assign(chat(1))
    second = await router.assign(chat(2))
    assert (first.agent_id, first.reason) == (a, "least_busy")
    assert second.agent_id == b  # a has 1/4, b 0/4
    await router.set_capacity(a, 10, False)  # a: 1/10 < b: 1/4
    assert (await router.assign(chat(3))).agent_id == a
    assert first.decision_id is not None
    replay(await decision_log(sessions))


async def test_ties_go_to_the_longest_idle_agent(router: Router, sessions: Sessions, clock: Clock) -> None:
    a, b, c = await add_agents(router, sessions, 3)
    got = []
    for n in range(6):
        decision = await router.assign(chat(n))
        got.append(decision.agent_id)
        await router.release("chat", str(n))
        clock.advance(1)
    assert got == [a, b, c, a, b, c]


async def test_sticky_owner_when_online_and_under_capacity(router: Router, sessions: Sessions) -> None:
    a, b = await add_agents(router, sessions, 2, capacity=1)
    assert (await router.assign(chat(1, owner_id=b))).agent_id == b
    decision = await router.assign(chat(2, owner_id=b))  # b is full: least busy
    assert (decision.agent_id, decision.reason) == (a, "least_busy")
    await router.set_presence(b, "away")
    await router.release("chat", "1")
    assert (await router.assign(chat(3, owner_id=b))).reason == "queued"  # a full, b away


async def test_sticky_last_agent_by_rule(router: Router, sessions: Sessions) -> None:
    branch = await add_branch(sessions)
    _a, b, c = await add_agents(router, sessions, 3)
    await router.save_rule(RoutingRule(branch_id=branch, channel="viber", sticky_mode="last"))
    viber = await router.assign(chat(1, channel="viber", branch_id=branch, owner_id=b, last_agent_id=c))
    telegram = await router.assign(chat(2, branch_id=branch, owner_id=b, last_agent_id=c))
    assert (viber.agent_id, viber.reason) == (c, "sticky")
    assert (telegram.agent_id, telegram.reason) == (b, "sticky")


async def test_sticky_wait_holds_the_item_then_falls_through(
    router: Router, sessions: Sessions, clock: Clock, hook: Hook
) -> None:
    a, b = await add_agents(router, sessions, 2, capacity=1)
    await router.save_rule(RoutingRule(sticky_wait_seconds=30))
    await router.assign(chat("busy", pinned_agent_id=b))
    held = await router.assign(chat(1, owner_id=b))
    assert held.reason == "queued"  # a is free, but the item waits for its owner
    clock.advance(10)
    assert await router.tick() == []
    released = await router.release("chat", "busy")
    assert [(d.request.item_id, d.agent_id, d.reason) for d in released] == [("1", b, "sticky")]
    assert hook.seen[-1] == released[0]
    # and when the owner stays busy, the wait ends and the item goes to someone else
    await router.assign(chat(2, owner_id=b))
    clock.advance(31)
    moved = await router.tick()
    assert [(d.request.item_id, d.agent_id, d.reason) for d in moved] == [("2", a, "least_busy")]


async def test_pinned_item_goes_to_its_agent_or_waits_for_them(router: Router, sessions: Sessions) -> None:
    a, b = await add_agents(router, sessions, 2, capacity=1)
    assert (await router.assign(chat(1, pinned_agent_id=b))).reason == "pinned"
    assert (await router.assign(chat(2, pinned_agent_id=b))).reason == "queued"  # even with a free
    assert (await router.assign(chat(3))).agent_id == a
    pulled = await router.release("chat", "1")
    assert [(d.request.item_id, d.agent_id, d.reason) for d in pulled] == [("2", b, "pinned")]


async def test_a_supervisor_pins_an_item_to_a_busy_agent_and_takes_it_back_from_another(
    router: Router, sessions: Sessions
) -> None:
    a, b = await add_agents(router, sessions, 2, capacity=1)
    assert (await router.assign(chat(1))).agent_id == a
    assert (await router.assign(chat(2))).agent_id == b
    # chat 1 must go to b, who is full: a loses it (and is free again), it waits for b alone
    pinned = await router.pin(chat(1), b)
    assert (pinned.agent_id, pinned.reason) == (None, "queued")
    assert await loads(router) == {a: 0, b: 1}
    assert (await router.assign(chat(3))).agent_id == a  # the free agent is not given the pinned item
    pulled = await router.release("chat", "2")  # b frees up: the pinned item reaches b
    assert [(d.request.item_id, d.agent_id, d.reason) for d in pulled] == [("1", b, "pinned")]
    assert (await router.pin(chat(1), b)).agent_id == b  # pinned where it already is: unchanged
    assert (await router.pin(chat(1), None)).agent_id == b  # unpinned: it stays with b
    replay(await decision_log(sessions))


async def test_pinning_a_new_item_places_it_at_once(router: Router, sessions: Sessions) -> None:
    _a, b = await add_agents(router, sessions, 2)
    decision = await router.pin(chat("new"), b)
    assert (decision.agent_id, decision.reason) == (b, "pinned")
    view = await router.agent(b)
    assert view is not None and view.chats == 1
    assert await router.agent(10**6) is None


async def test_queue_by_priority_then_arrival(router: Router, sessions: Sessions, clock: Clock) -> None:
    (a,) = await add_agents(router, sessions, 1, capacity=1)
    await router.assign(chat("holding"))
    for n, priority in enumerate([0, 5, 0, 5]):
        assert (await router.assign(chat(f"q{n}", priority=priority))).reason == "queued"
        clock.advance(1)
    order = []
    item = "holding"
    for _ in range(4):
        (next_,) = await router.release("chat", item)
        item = next_.request.item_id
        order.append(item)
    assert order == ["q1", "q3", "q0", "q2"]
    assert (await loads(router))[a] == 1


async def test_skills_choose_the_agent(router: Router, sessions: Sessions) -> None:
    branch = await add_branch(sessions)
    (ro,) = await add_agents(router, sessions, 1, skills=Skills.of(languages=["ro"], channels=["viber"]))
    (ru,) = await add_agents(router, sessions, 1, skills=Skills.of(languages=["ru"], branches=[branch]))
    assert (await router.assign(chat(1, language="en"))).reason == "queued"
    assert (await router.assign(chat(2, language="ru", branch_id=branch))).agent_id == ru
    assert (await router.assign(chat(3, language="RO", channel="viber"))).agent_id == ro
    assert (await router.assign(chat(4, language="ro", channel="telegram"))).reason == "queued"


async def test_freed_capacity_pulls_the_queue(router: Router, sessions: Sessions, hook: Hook) -> None:
    (a,) = await add_agents(router, sessions, 1, capacity=1, online=False)
    assert (await router.assign(chat(1))).reason == "queued"
    assert (await router.assign(chat(2))).reason == "queued"
    came = await router.set_presence(a, "online")  # coming online pulls
    assert [d.request.item_id for d in came] == ["1"]
    hook.seen.clear()
    await router.set_capacity(a, 2, False)  # more room pulls
    assert [(d.request.item_id, d.agent_id) for d in hook.seen] == [("2", a)]
    assert (await loads(router))[a] == 2
    replay(await decision_log(sessions))


async def test_overflow_widens_to_any_branch_then_any_agent(
    router: Router, sessions: Sessions, clock: Clock
) -> None:
    home, other = await add_branch(sessions), await add_branch(sessions)
    await router.save_rule(RoutingRule(overflow_branch_after_seconds=60, overflow_any_after_seconds=120))
    (elsewhere,) = await add_agents(router, sessions, 1, skills=Skills.of(branches=[other]))
    assert (await router.assign(chat(1, branch_id=home))).reason == "queued"
    clock.advance(61)
    moved = await router.tick()
    assert [(d.agent_id, d.reason) for d in moved] == [(elsewhere, "overflow")]
    await router.accept("chat", "1", elsewhere)
    # a language nobody speaks waits for the second widening
    (await router.assign(chat(2, branch_id=home, language="en")))
    await router.set_skills(elsewhere, Skills.of(branches=[other], languages=["ro"]))
    clock.advance(61)
    assert await router.tick() == []  # branch widened, language not yet
    clock.advance(60)
    assert [(d.request.item_id, d.reason) for d in await router.tick()] == [("2", "overflow")]


async def test_accept_timeout_passes_the_item_on_and_records_the_skipped_agent(
    router: Router, sessions: Sessions, clock: Clock
) -> None:
    await router.save_rule(RoutingRule(channel="telegram", accept_timeout_seconds=30))
    a, b = await add_agents(router, sessions, 2)
    first = await router.assign(chat(1))
    assert first.agent_id == a
    clock.advance(29)
    assert await router.tick() == []
    clock.advance(2)
    (passed,) = await router.tick()
    assert (passed.agent_id, passed.skipped) == (b, (a,))
    await router.accept("chat", "1", b)
    clock.advance(100)
    assert await router.tick() == []  # accepted: no timeout any more
    rows = await decision_log(sessions)
    assert [r.reason for r in rows if r.item_id == "1"] == ["least_busy", "timed_out", "least_busy"]
    assert rows[-1].skipped == [a]
    assert replay(rows) == {a: 0, b: 1}


async def test_a_timed_out_item_waits_when_nobody_else_can_take_it(
    router: Router, sessions: Sessions, clock: Clock
) -> None:
    (a,) = await add_agents(router, sessions, 1)
    await router.save_rule(RoutingRule(accept_timeout_seconds=10, overflow_any_after_seconds=None))
    await router.assign(chat(1))
    clock.advance(11)
    (queued,) = await router.tick()
    assert (queued.agent_id, queued.reason, queued.skipped) == (None, "queued", (a,))


async def test_timeouts_in_a_row_set_the_agent_away(router: Router, sessions: Sessions, clock: Clock) -> None:
    await router.save_rule(RoutingRule(accept_timeout_seconds=10, timeouts_before_away=2))
    a, b = await add_agents(router, sessions, 2, capacity=5)
    await router.set_capacity(b, 0, False)  # only a takes items at first
    for n in range(2):
        assert (await router.assign(chat(n))).agent_id == a
    await router.set_capacity(b, 5, False)
    clock.advance(11)
    moved = await router.tick()
    assert {d.agent_id for d in moved} == {b}
    views = {v.agent_id: v for v in await router.agents()}
    assert views[a].presence == "away" and views[a].consecutive_timeouts == 2


async def test_an_accept_resets_the_timeout_count(router: Router, sessions: Sessions, clock: Clock) -> None:
    await router.save_rule(RoutingRule(accept_timeout_seconds=10, timeouts_before_away=2))
    a, b = await add_agents(router, sessions, 2)
    await router.assign(chat(1))
    clock.advance(11)
    await router.tick()  # a timed out once, b has it
    await router.assign(chat(2))  # a (b holds 1)
    await router.accept("chat", "2", a)
    views = {v.agent_id: v for v in await router.agents()}
    assert views[a].consecutive_timeouts == 0 and views[a].presence == "online"
    assert views[b].chats == 1


# --- calls -------------------------------------------------------------------------------------------


async def test_an_agent_on_a_call_never_gets_a_second_call(router: Router, sessions: Sessions) -> None:
    (a,) = await add_agents(router, sessions, 1, chats_during_call=True, phones=True)
    assert (await router.assign(call("c1"))).agent_id == a
    assert (await router.assign(call("c2"))).reason == "queued"
    assert (await router.assign(chat(1))).agent_id == a  # chats during calls are allowed for a
    pulled = await router.release("call", "c1")  # ringing, never answered: no wrap-up, the next call
    assert [(d.request.item_id, d.agent_id) for d in pulled] == [("c2", a)]
    assert (await router.agents())[0].on_call


async def test_a_call_goes_to_an_agent_at_chat_capacity_with_chats_during_calls(
    router: Router, sessions: Sessions
) -> None:
    a, b = await add_agents(router, sessions, 2, capacity=2, phones=True)
    await router.set_capacity(a, 2, True)
    for n in range(4):
        await router.assign(chat(n))
    assert (await loads(router)) == {a: 2, b: 2}
    decision = await router.assign(call("c1"))
    assert decision.agent_id == a  # b has chats and no chats during calls


async def test_a_call_needs_an_agent_without_chats(router: Router, sessions: Sessions) -> None:
    a, b = await add_agents(router, sessions, 2, capacity=3, phones=True)
    await router.assign(chat(1))  # a
    assert (await router.assign(call("c1"))).agent_id == b
    assert (await router.assign(chat(2))).agent_id == a  # b is on a call without chats during calls


async def test_after_call_work_ends_after_the_wrap_up(
    router: Router, sessions: Sessions, clock: Clock
) -> None:
    (a,) = await add_agents(router, sessions, 1, phones=True)
    await router.assign(call("c1"))
    await router.accept("call", "c1", a)
    await router.release("call", "c1")
    assert (await router.agents())[0].presence == "after_call"
    assert (await router.assign(chat(1))).reason == "queued"
    clock.advance(31)  # wrap_up_seconds=30
    pulled = await router.tick()
    assert [(d.request.item_id, d.agent_id) for d in pulled] == [("1", a)]
    assert (await router.agents())[0].presence == "online"


# --- absence -----------------------------------------------------------------------------------------


async def test_absent_agents_items_are_reassigned_after_the_grace_and_given_back(
    sessions: Sessions, clock: Clock, hook: Hook
) -> None:
    router = make_router(sessions, clock, hook, absence_grace_seconds=60, give_back=True)
    await router.save_rule(RoutingRule(accept_timeout_seconds=3600))
    a, b = await add_agents(router, sessions, 2)
    for n in range(3):
        await router.assign(chat(n, owner_id=a))
    await router.accept("chat", "0", a)  # answered: stays with a
    await router.set_presence(a, "away")
    clock.advance(59)
    assert await router.tick() == []
    clock.advance(2)
    moved = await router.tick()
    assert sorted((d.request.item_id, d.agent_id, d.reason) for d in moved) == [
        ("1", b, "reassigned"),
        ("2", b, "reassigned"),
    ]
    back = await router.set_presence(a, "online")
    assert sorted((d.request.item_id, d.agent_id, d.reason) for d in back) == [
        ("1", a, "given_back"),
        ("2", a, "given_back"),
    ]
    assert await loads(router) == {a: 3, b: 0}
    replay(await decision_log(sessions))


async def test_no_give_back_when_the_setting_is_off(sessions: Sessions, clock: Clock) -> None:
    router = make_router(sessions, clock, absence_grace_seconds=10, give_back=False)
    await router.save_rule(RoutingRule(accept_timeout_seconds=3600))
    a, b = await add_agents(router, sessions, 2)
    await router.assign(chat(1))
    await router.set_presence(a, "offline")
    clock.advance(11)
    assert [d.reason for d in await router.tick()] == ["reassigned"]
    assert await router.set_presence(a, "online") == []
    assert await loads(router) == {a: 0, b: 1}


async def test_a_silent_browser_sets_the_agent_away(sessions: Sessions, clock: Clock) -> None:
    router = make_router(sessions, clock, heartbeat_timeout_seconds=90)
    a, b = await add_agents(router, sessions, 2)
    clock.advance(60)
    await router.heartbeat(b)
    clock.advance(40)
    await router.tick()
    presence = {v.agent_id: v.presence for v in await router.agents()}
    assert presence == {a: "away", b: "online"}


# --- the rest of the surface -------------------------------------------------------------------------


async def test_assigning_an_active_item_again_changes_nothing(router: Router, sessions: Sessions) -> None:
    a, _b = await add_agents(router, sessions, 2)
    first = await router.assign(chat(1))
    again = await router.assign(chat(1))
    assert (again.agent_id, again.reason, again.decision_id) == (a, "least_busy", None)
    assert await count(sessions, RoutingItem) == 1
    await router.release("chat", "1")
    await router.release("chat", "1")  # twice: no double free
    assert (await router.assign(chat(1))).decision_id != first.decision_id  # it came back: routed anew
    assert replay(await decision_log(sessions))[a] + replay(await decision_log(sessions)).get(_b, 0) == 1


async def test_dry_run_writes_nothing(router: Router, sessions: Sessions) -> None:
    a, b = await add_agents(router, sessions, 2)
    await router.assign(chat(1))
    before = (await count(sessions, RoutingDecision), await count(sessions, RoutingItem), await loads(router))
    answer = await router.dry_run(chat(2, owner_id=a))
    assert (answer.agent_id, answer.reason, answer.decision_id) == (a, "sticky", None)
    assert (await router.dry_run(chat(3))).agent_id == b
    after = (await count(sessions, RoutingDecision), await count(sessions, RoutingItem), await loads(router))
    assert before == after


async def test_manual_assignment_moves_the_item_and_may_exceed_capacity(
    router: Router, sessions: Sessions, hook: Hook
) -> None:
    a, b = await add_agents(router, sessions, 2, capacity=1)
    await router.assign(chat(1))  # a
    await router.assign(chat(2))  # b
    queued = await router.assign(chat(3))
    assert queued.reason == "queued"
    manual = await router.manual_assign(chat(1), b)
    assert (manual.agent_id, manual.reason) == (b, "manual")
    # a's room pulled the queued chat; the hook heard of it (not of the manual decision, returned above)
    assert [(d.request.item_id, d.agent_id) for d in hook.seen[-1:]] == [("3", a)]
    assert await loads(router) == {a: 1, b: 2}
    replay(await decision_log(sessions))


async def test_presence_is_checked(router: Router, sessions: Sessions) -> None:
    from switchboard.errors import Invalid

    (a,) = await add_agents(router, sessions, 1)
    try:
        await router.set_presence(a, "sleeping")
    except Invalid as exc:
        assert exc.field == "presence"
    else:
        raise AssertionError("an unknown presence was accepted")


# --- in sequence and at volume -----------------------------------------------------------------------


async def test_strategy_steps_in_sequence(router: Router, sessions: Sessions, clock: Clock) -> None:
    """Pinned, sticky, least busy, queue, pull, overflow and timeout on the same few agents."""
    branch = await add_branch(sessions)
    await router.save_rule(
        RoutingRule(
            accept_timeout_seconds=20, overflow_branch_after_seconds=30, overflow_any_after_seconds=300
        )
    )
    a, b = await add_agents(
        router, sessions, 2, capacity=2, skills=Skills.of(branches=[branch], languages=["ro"])
    )
    (c,) = await add_agents(router, sessions, 1, capacity=1, skills=Skills.of(languages=["ru"]))
    steps = [
        await router.assign(chat(1, pinned_agent_id=c)),
        await router.assign(chat(2, owner_id=b, branch_id=branch)),
        await router.assign(chat(3, branch_id=branch)),
        await router.assign(chat(4, branch_id=branch, priority=1)),
        await router.assign(chat(5, branch_id=branch, priority=9)),
        await router.assign(chat(6, language="ru")),
    ]
    assert [(d.agent_id, d.reason) for d in steps] == [
        (c, "pinned"),
        (b, "sticky"),
        (a, "least_busy"),
        (a, "least_busy"),
        (b, "least_busy"),
        (None, "queued"),
    ]
    for item, agent in ((1, c), (2, b), (3, a), (4, a), (5, b)):
        await router.accept("chat", str(item), agent)
    pulled = await router.release("chat", "1")
    assert [(d.request.item_id, d.agent_id) for d in pulled] == [("6", c)]
    clock.advance(21)
    (passed,) = await router.tick()  # c let 6 time out; nobody else speaks Russian
    assert (passed.request.item_id, passed.reason, passed.skipped) == ("6", "queued", (c,))
    await router.assign(chat(7, pinned_agent_id=c))
    await router.accept("chat", "7", c)
    await router.release("chat", "3")
    clock.advance(300)
    (overflowed,) = await router.tick()
    assert (overflowed.request.item_id, overflowed.agent_id, overflowed.reason) == ("6", a, "overflow")
    replay(await decision_log(sessions))


async def test_fairness_1000_chats_over_10_equal_agents(
    router: Router, sessions: Sessions, clock: Clock
) -> None:
    agents = await add_agents(router, sessions, 10, capacity=5)
    for n in range(1000):
        decision = await router.assign(chat(n))
        assert decision.agent_id is not None
        await router.release("chat", str(n))
        clock.advance(0.5)
    views = await router.agents()
    per_agent = {v.agent_id: v.assignments_today for v in views}
    assert set(per_agent) == set(agents)
    assert all(98 <= n <= 102 for n in per_agent.values()), per_agent
    assert replay(await decision_log(sessions)) == dict.fromkeys(agents, 0)


async def test_the_log_replays_to_the_live_loads(router: Router, sessions: Sessions, clock: Clock) -> None:
    """A mixed run (assign, release, accept, timeouts, absence) leaves the agent rows equal to the log."""
    await router.save_rule(RoutingRule(accept_timeout_seconds=10))
    agents = await add_agents(router, sessions, 5, capacity=2)
    for n in range(60):
        await router.assign(chat(n, priority=n % 3))
        if n % 4 == 0:
            await router.release("chat", str(n - 2))
        if n % 7 == 0:
            clock.advance(11)
            await router.tick()
        if n == 30:
            await router.set_presence(agents[0], "offline")
        if n == 45:
            await router.set_presence(agents[0], "online")
    clock.advance(600)
    await router.tick()
    replayed = replay(await decision_log(sessions))
    async with sessions() as db:
        live = {s.user_id: s.chats for s in await db.scalars(select(AgentState))}
    assert {k: v for k, v in replayed.items() if v} == {k: v for k, v in live.items() if v}


async def test_the_sql_skill_filter_never_hides_a_matching_agent(router: Router, sessions: Sessions) -> None:
    """The least-busy query pre-filters skills in SQL; strategy.matches decides. Same answer as Python
    over every agent, for items at each overflow level."""
    import itertools

    from router import store, strategy

    b1, b2 = await add_branch(sessions), await add_branch(sessions)
    options = {
        "branches": [[], [b1], [b1, b2]],
        "languages": [[], ["ro"], ["ro", "ru"]],
        "products": [[], ["car_loan"]],
        "channels": [[], ["viber"], ["viber", "phone"]],
    }
    for branches, languages, products, channels in itertools.product(*options.values()):
        (agent,) = await add_agents(router, sessions, 1)
        await router.set_skills(
            agent, Skills.of(branches=branches, languages=languages, products=products, channels=channels)
        )
    today = router._today(router._clock())
    async with sessions() as db:
        everyone = await store.fitting_agents(db, "chat", today)
        for branch, language, product, channel, overflow in itertools.product(
            [None, b1, b2],
            [None, "ro", "ru", "en"],
            [None, "car_loan", "carxloan"],
            ["viber", "phone", "sms"],
            [0, 1, 2],
        ):
            item = strategy.Item(
                kind="chat",
                channel=channel,
                branch_id=branch,
                language=language,
                product=product,
                overflow=overflow,
            )
            found = await store.ranked_agents(db, item, today, offset=0, limit=None)
            by_sql = {a.user_id for a in found if strategy.matches(a.skills, item, overflow)}
            by_python = {a.user_id for a in everyone if strategy.matches(a.skills, item, overflow)}
            assert by_sql == by_python, item
