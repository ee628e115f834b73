"""The funnel over a seeded history of 50 runs with known paths and times: reached, drop-offs, medians,
success and won shares per step, exactly; and one version against another."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scripts_engine.service import ScriptsService
from scripts_engine.tables import RunRow, RunStepRow
from switchboard.audit import Actor
from switchboard.db import transaction
from tests.conftest import MakeUser
from tests.scripts_engine.fakes import FakeCrm, draft, simple

Sessions = async_sessionmaker[AsyncSession]
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
Path = list[tuple[str, int | None]]  # (step, seconds spent; None: still there)


async def _seed(db: AsyncSession, version_id: int, groups: list[tuple[int, Path, dict]]) -> None:
    n = 0
    for count, path, extra in groups:
        for i in range(count):
            deal = extra.get("deals", [None] * count)[i]
            run = RunRow(
                version_id=version_id,
                status=extra["status"],
                outcome=extra.get("outcome"),
                deal_id=deal,
                answers={},
                trail=[],
                outbox=[],
                started_at=T0 + dt.timedelta(hours=n),
                current_step=path[-1][0],
            )
            db.add(run)
            await db.flush()
            at = run.started_at
            for position, (step, seconds) in enumerate(path):
                left = None if seconds is None else at + dt.timedelta(seconds=seconds)
                last = position == len(path) - 1
                edge = extra.get("last_edge") if last else path[position + 1][0]
                db.add(
                    RunStepRow(
                        run_id=run.id,
                        position=position,
                        step_id=step,
                        kind="say",
                        entered_at=at,
                        left_at=left,
                        edge=edge,
                    )
                )
                at = left or at
            run.ended_at = at if extra["status"] != "running" else None
            n += 1
    await db.flush()


async def test_the_funnel_counts_match_a_seeded_history(make_user: MakeUser, sessions: Sessions) -> None:
    person = await make_user("supervisor")
    actor = Actor(person.id, person.username)
    crm = FakeCrm(won=set(range(1, 9)) | {31})
    service = ScriptsService(crm)
    success: Path = [("hello", 10), ("amount", 30), ("save", 0), ("big", 0), ("yes", 0)]
    slower: Path = [("hello", 10), ("amount", 36), ("save", 0), ("big", 0), ("yes", 0)]
    refusal: Path = [("hello", 20), ("amount", 40), ("save", 0), ("big", 0), ("no", 0)]
    left_at_amount: Path = [("hello", 10), ("amount", 60)]
    still_at_hello: Path = [("hello", None)]
    went_back: Path = [("hello", 5), ("amount", 7), ("hello", 9)]
    async with transaction(sessions) as db:
        v1 = await service.save_draft(db, actor, simple())
        await service.publish(db, actor, v1.id)
        await _seed(
            db,
            v1.id,
            [
                (19, success, {"status": "ended", "outcome": "success", "deals": list(range(1, 20))}),
                (1, slower, {"status": "ended", "outcome": "success", "deals": [20]}),
                (10, refusal, {"status": "ended", "outcome": "refusal", "deals": list(range(21, 31))}),
                (12, left_at_amount, {"status": "left", "last_edge": "leave", "deals": list(range(31, 43))}),
                (4, still_at_hello, {"status": "running"}),
                (4, went_back, {"status": "left", "last_edge": "leave"}),
            ],
        )
        funnel = await service.funnel(db, v1.id)
    assert (funnel.runs, funnel.running, funnel.ended, funnel.left, funnel.success, funnel.won) == (
        50,
        4,
        30,
        16,
        20,
        9,
    )
    got = {s.step_id: (s.reached, s.drop_offs, s.median_seconds, s.success, s.won) for s in funnel.steps}
    assert got == {
        # 46 runs spent time at hello: 32 x 10 s, 4 x 14 s (5 + 9, after going back), 10 x 20 s
        "hello": (50, 8, 10.0, 20, 9),
        # 46 runs: 4 x 7, 19 x 30, 1 x 36, 10 x 40, 12 x 60 → the middle two are 30 and 36
        "amount": (46, 12, 33.0, 20, 9),
        "save": (30, 0, 0.0, 20, 8),
        "big": (30, 0, 0.0, 20, 8),
        "yes": (20, 0, 0.0, 20, 8),
        "no": (10, 0, 0.0, 0, 0),
    }
    hello = funnel.step("hello")
    assert hello is not None and (hello.success_share, hello.won_share) == (0.4, 0.18)
    assert [s.step_id for s in funnel.steps] == [
        "hello",
        "amount",
        "save",
        "big",
        "yes",
        "no",
    ]  # the script's order


async def test_two_versions_compare_step_by_step(make_user: MakeUser, sessions: Sessions) -> None:
    person = await make_user("supervisor")
    actor = Actor(person.id, person.username)
    service = ScriptsService(FakeCrm(won={5}))
    second = draft(
        {"id": "intro", "kind": "say", "next": "hello"},
        {"id": "hello", "kind": "say", "next": "yes"},
        {"id": "yes", "kind": "end", "outcome": "success"},
        start="intro",
    )
    async with transaction(sessions) as db:
        v1 = await service.save_draft(db, actor, simple())
        await service.publish(db, actor, v1.id)
        await _seed(db, v1.id, [(3, [("hello", 10), ("amount", None)], {"status": "running"})])
        v2 = await service.save_draft(db, actor, second)
        await service.publish(db, actor, v2.id)
        await _seed(
            db,
            v2.id,
            [
                (
                    2,
                    [("intro", 4), ("hello", 6), ("yes", 0)],
                    {"status": "ended", "outcome": "success", "deals": [5, 6]},
                ),
            ],
        )
        comparison = await service.compare(db, v1.id, v2.id)
    assert (comparison.a.version_number, comparison.b.version_number) == (1, 2)
    assert [c.step_id for c in comparison.steps] == ["hello", "amount", "save", "big", "yes", "no", "intro"]
    hello = comparison.steps[0]
    assert hello.a is not None and hello.b is not None
    assert (hello.a.reached, hello.a.drop_offs, hello.a.median_seconds, hello.a.success_share) == (
        3,
        0,
        10.0,
        0.0,
    )
    assert (hello.b.reached, hello.b.median_seconds, hello.b.success_share, hello.b.won_share) == (
        2,
        6.0,
        1.0,
        0.5,
    )
    amount = comparison.steps[1]
    assert amount.a is not None and (amount.a.reached, amount.a.drop_offs, amount.a.median_seconds) == (
        3,
        3,
        None,
    )
    assert amount.b is None and comparison.steps[-1].a is None


async def test_runs_the_engine_recorded_are_counted(make_user: MakeUser, sessions: Sessions) -> None:
    person = await make_user("agent")
    actor = Actor(person.id, person.username)
    service = ScriptsService(FakeCrm(won={100}))
    async with transaction(sessions) as db:
        v1 = await service.save_draft(db, actor, simple())
        await service.publish(db, actor, v1.id)
        done = await service.start(db, actor, v1.id)
        await service.answer(db, actor, done.run_id, "hello", None)
        await service.answer(db, actor, done.run_id, "amount", "5000")
        dropped = await service.start(db, actor, v1.id)
        await service.leave(db, actor, dropped.run_id, "")
        funnel = await service.funnel(db, v1.id)
    hello = funnel.step("hello")
    assert hello is not None and (hello.reached, hello.drop_offs, hello.success, hello.won) == (2, 1, 1, 2)
    assert [(s.step_id, s.reached) for s in funnel.steps if s.reached] == [
        ("hello", 2),
        ("amount", 1),
        ("save", 1),
        ("big", 1),
        ("yes", 1),
    ]
