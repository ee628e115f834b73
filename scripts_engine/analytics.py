"""Per script version, per step: how many runs reached it, how many dropped out there (their last step,
and they were left or never ended), the median time a run spent at it (its visits added up), and the share
of the runs that reached it which ended in success and whose deal was won. Shown as a funnel over the
steps in the script's order, and one version against another.

The numbers are computed in Python over the version's run steps, so SQLite and PostgreSQL give exactly
the same results (no percentile function on SQLite). Whether a deal was won comes through the port.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scripts_engine.authoring import get_version
from scripts_engine.model import Outcome
from scripts_engine.ports import CrmPort
from scripts_engine.runs import RunStatus
from scripts_engine.tables import RunRow, RunStepRow


@dataclass(frozen=True)
class StepStats:
    step_id: str
    kind: str
    title: str
    reached: int
    drop_offs: int
    median_seconds: float | None
    success: int  # runs that reached the step and ended in success
    won: int  # runs that reached the step and whose deal was won

    @property
    def success_share(self) -> float:
        return self.success / self.reached if self.reached else 0.0

    @property
    def won_share(self) -> float:
        return self.won / self.reached if self.reached else 0.0


@dataclass(frozen=True)
class Funnel:
    version_id: int
    script_key: str
    version_number: int
    runs: int
    running: int
    ended: int
    left: int
    success: int
    won: int
    steps: list[StepStats] = field(default_factory=list)

    def step(self, step_id: str) -> StepStats | None:
        return next((s for s in self.steps if s.step_id == step_id), None)


@dataclass(frozen=True)
class ComparedStep:
    step_id: str
    a: StepStats | None
    b: StepStats | None


@dataclass(frozen=True)
class Comparison:
    a: Funnel
    b: Funnel
    steps: list[ComparedStep]


async def funnel(session: AsyncSession, port: CrmPort, version_id: int) -> Funnel:
    version = await get_version(session, version_id)
    runs = (
        await session.execute(
            select(RunRow.id, RunRow.status, RunRow.outcome, RunRow.deal_id).where(
                RunRow.version_id == version_id
            )
        )
    ).all()
    won_deals = await port.deal_won(session, {r.deal_id for r in runs if r.deal_id is not None})
    status = {r.id: r.status for r in runs}
    success = {r.id for r in runs if r.outcome == Outcome.SUCCESS.value}
    won = {r.id for r in runs if r.deal_id is not None and r.deal_id in won_deals}
    reached: dict[str, set[int]] = defaultdict(set)
    seconds: dict[str, dict[int, float]] = defaultdict(dict)
    last: dict[int, str] = {}
    rows = await session.execute(
        select(RunStepRow.run_id, RunStepRow.step_id, RunStepRow.entered_at, RunStepRow.left_at)
        .join(RunRow, RunRow.id == RunStepRow.run_id)
        .where(RunRow.version_id == version_id)
        .order_by(RunStepRow.run_id, RunStepRow.position)
    )
    for run_id, step_id, entered, left in rows:
        reached[step_id].add(run_id)
        last[run_id] = step_id
        if left is not None:
            spent = seconds[step_id]
            spent[run_id] = spent.get(run_id, 0.0) + (left - entered).total_seconds()
    dropped: dict[str, int] = defaultdict(int)
    for run_id, step_id in last.items():
        if status[run_id] in (RunStatus.LEFT.value, RunStatus.RUNNING.value):
            dropped[step_id] += 1
    steps = []
    for step in version.draft.steps:
        ids = reached.get(step.id, set())
        durations = list(seconds.get(step.id, {}).values())
        steps.append(
            StepStats(
                step_id=step.id,
                kind=step.kind,
                title=step.title,
                reached=len(ids),
                drop_offs=dropped.get(step.id, 0),
                median_seconds=statistics.median(durations) if durations else None,
                success=len(ids & success),
                won=len(ids & won),
            )
        )
    count = {s: sum(1 for v in status.values() if v == s.value) for s in RunStatus}
    return Funnel(
        version_id=version.id,
        script_key=version.key,
        version_number=version.number,
        runs=len(runs),
        running=count[RunStatus.RUNNING],
        ended=count[RunStatus.ENDED],
        left=count[RunStatus.LEFT],
        success=len(success),
        won=len(won),
        steps=steps,
    )


async def compare(session: AsyncSession, port: CrmPort, version_a: int, version_b: int) -> Comparison:
    """Two versions' funnels side by side, step by step (a's steps in order, then those only b has)."""
    a = await funnel(session, port, version_a)
    b = await funnel(session, port, version_b)
    order = [s.step_id for s in a.steps] + [s.step_id for s in b.steps if a.step(s.step_id) is None]
    return Comparison(a, b, [ComparedStep(step_id, a.step(step_id), b.step(step_id)) for step_id in order])
