"""Runs: one script version followed through one conversation or call. The run waits on say and ask steps
for the agent; an answer is checked against its type, then branch, capture and action steps are followed
at once until the next step that needs the agent, or an end. Captures write through the CRM port in the
same transaction (audited by the CRM), so a refused value refuses the answer and nothing moves.

Every step entered is a `script_run_steps` row with its times, answer and the edge taken; analytics are
SQL over them. Two clicks at once cannot both advance a run: the run row is locked (PostgreSQL; SQLite
writers are serial) and each call names the step it answers, so the second one finds the run moved on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from scripts_engine import answers as typed
from scripts_engine import conditions, templates
from scripts_engine.authoring import VersionState, published_version
from scripts_engine.model import (
    ActionStep,
    AnyStep,
    AskStep,
    BranchStep,
    CaptureStep,
    CreateTask,
    EndStep,
    Handover,
    MoveDeal,
    SayStep,
    ScriptDraft,
    SendTemplate,
)
from scripts_engine.ports import Catalog, CrmContext, CrmPort, TaskRequest
from scripts_engine.tables import RunRow, RunStepRow, VersionRow
from switchboard.accounts_model import User
from switchboard.audit import Actor
from switchboard.db import utcnow
from switchboard.errors import N_, Conflict, Invalid, NotFound

MAX_HOPS = 200  # automatic steps one answer may pass before the run is declared stuck


class RunStatus(StrEnum):
    RUNNING = "running"
    ENDED = "ended"
    LEFT = "left"


HANDOVER = "handover"  # a run's outcome when another script took over


@dataclass(frozen=True)
class OptionView:
    value: str
    label: str


@dataclass(frozen=True)
class StepView:
    """What the side panel shows: the step, its rendered text, the answer buttons or the typed input."""

    run_id: int
    version_id: int
    script_key: str
    script_name: str
    version_number: int
    status: RunStatus
    step_id: str | None
    kind: str | None
    title: str = ""
    text: str = ""
    answer_type: str | None = None
    integer: bool = False
    options: list[OptionView] = field(default_factory=list)
    can_go_back: bool = False
    outcome: str | None = None
    reason: str | None = None
    outbox: list[str] = field(default_factory=list)  # texts for the chat's reply box (send_template)
    answers: dict[str, Any] = field(default_factory=dict)  # step id -> the answer's JSON value
    handover_run_id: int | None = None
    call_id: int | None = None  # the call the run follows (the panel's phone badge)

    def as_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["status"] = self.status.value
        out["options"] = [{"value": o.value, "label": o.label} for o in self.options]
        return out


@dataclass(frozen=True)
class RunStepView:
    position: int
    step_id: str
    kind: str
    entered_at: dt.datetime
    left_at: dt.datetime | None
    answer: dict[str, Any] | None
    edge: str | None


async def _graph(session: AsyncSession, version_id: int) -> tuple[VersionRow, ScriptDraft]:
    row = await session.get(VersionRow, version_id)
    if row is None:
        raise NotFound(N_("No such script version."))
    return row, ScriptDraft.from_data(row.graph)


class Engine:
    """The running side of the service; `port` reaches the CRM, `region` reads phone answers."""

    def __init__(self, port: CrmPort, region: str = "MD") -> None:
        self.port = port
        self.region = region

    # --- reading ------------------------------------------------------------------------------------------

    async def _run(self, session: AsyncSession, run_id: int, *, lock: bool = False) -> RunRow:
        query = select(RunRow).where(RunRow.id == run_id).execution_options(populate_existing=True)
        row = await session.scalar(query.with_for_update() if lock else query)
        if row is None:
            raise NotFound(N_("No such script run."))
        return row

    async def _context(self, session: AsyncSession, run: RunRow) -> CrmContext:
        return await self.port.context(
            session,
            conversation_id=run.conversation_id,
            call_id=run.call_id,
            contact_id=run.contact_id,
            lead_id=run.lead_id,
            deal_id=run.deal_id,
        )

    async def _values(
        self, session: AsyncSession, run: RunRow, ctx: CrmContext, draft: ScriptDraft
    ) -> dict[str, Any]:
        agent = await session.get(User, run.agent_id) if run.agent_id is not None else None
        return {
            "contact": dict(ctx.contact),
            "lead": dict(ctx.lead),
            "deal": dict(ctx.deal),
            "agent": {"name": (agent.full_name or agent.username) if agent else ""},
            "answers": _typed_answers(run.answers),
            "script": {"name": draft.name},
        }

    async def current(self, session: AsyncSession, run_id: int) -> StepView:
        run = await self._run(session, run_id)
        version, draft = await _graph(session, run.version_id)
        return await self._view(session, run, version, draft)

    async def _view(
        self, session: AsyncSession, run: RunRow, version: VersionRow, draft: ScriptDraft
    ) -> StepView:
        script_name = draft.name
        base: dict[str, Any] = {
            "run_id": run.id,
            "version_id": run.version_id,
            "script_key": draft.key,
            "script_name": script_name,
            "version_number": version.number,
            "status": RunStatus(run.status),
            "outcome": run.outcome,
            "reason": run.reason,
            "answers": {k: v.get("value") for k, v in run.answers.items()},
            "handover_run_id": run.handover_run_id,
            "call_id": run.call_id,
        }
        step = draft.step(run.current_step) if run.current_step else None
        if step is None or run.status == RunStatus.LEFT.value:
            return StepView(step_id=run.current_step, kind=None, **base)
        values = await self._values(session, run, await self._context(session, run), draft)
        text = templates.render(getattr(step, "text", "") or "", values)
        running = run.status == RunStatus.RUNNING.value
        view = StepView(
            step_id=step.id,
            kind=step.kind,
            title=step.title,
            text=text,
            can_go_back=running and bool(run.trail),
            outbox=list(run.outbox),
            **base,
        )
        if isinstance(step, AskStep) and step.answer is not None:
            options = [OptionView(o.value, templates.render(o.label, values)) for o in step.answer.options]
            return _with_answer(view, step, options)
        return view

    async def active_run(
        self, session: AsyncSession, *, conversation_id: int | None = None, call_id: int | None = None
    ) -> StepView | None:
        """The running run of this conversation or call, for the side panel to pick up again."""
        if conversation_id is None and call_id is None:
            return None
        query = select(RunRow.id).where(RunRow.status == RunStatus.RUNNING.value)
        if conversation_id is not None:
            query = query.where(RunRow.conversation_id == conversation_id)
        if call_id is not None:
            query = query.where(RunRow.call_id == call_id)
        run_id = await session.scalar(query.order_by(RunRow.id.desc()).limit(1))
        return await self.current(session, run_id) if run_id is not None else None

    async def steps(self, session: AsyncSession, run_id: int) -> list[RunStepView]:
        """Every step the run entered, in order, with its times."""
        await self._run(session, run_id)
        rows = await session.scalars(
            select(RunStepRow).where(RunStepRow.run_id == run_id).order_by(RunStepRow.position)
        )
        return [
            RunStepView(r.position, r.step_id, r.kind, r.entered_at, r.left_at, r.answer, r.edge)
            for r in rows
        ]

    # --- starting -------------------------------------------------------------------------------------------

    async def start(
        self,
        session: AsyncSession,
        actor: Actor,
        version_id: int,
        *,
        conversation_id: int | None = None,
        call_id: int | None = None,
        contact_id: int | None = None,
        lead_id: int | None = None,
        deal_id: int | None = None,
    ) -> StepView:
        """A new run of a published version. The run of another script still running in the same
        conversation or call is left ("replaced"): one script at a time guides one talk."""
        version, draft = await _graph(session, version_id)
        if version.state != VersionState.PUBLISHED.value:
            raise Conflict(N_("Only a published script can be started."))
        ctx = await self.port.context(
            session,
            conversation_id=conversation_id,
            call_id=call_id,
            contact_id=contact_id,
            lead_id=lead_id,
            deal_id=deal_id,
        )
        for key, value in (("conversation_id", conversation_id), ("call_id", call_id)):
            if value is None:
                continue
            others = await session.scalars(
                select(RunRow)
                .where(getattr(RunRow, key) == value, RunRow.status == RunStatus.RUNNING.value)
                .with_for_update()
            )
            for other in others:
                await self._close(session, other, RunStatus.LEFT, reason="replaced", edge="leave")
        run = RunRow(
            version_id=version_id,
            conversation_id=conversation_id if conversation_id is not None else ctx.conversation_id,
            call_id=call_id if call_id is not None else ctx.call_id,
            contact_id=ctx.contact_id if ctx.contact_id is not None else contact_id,
            lead_id=ctx.lead_id if ctx.lead_id is not None else lead_id,
            deal_id=ctx.deal_id if ctx.deal_id is not None else deal_id,
            agent_id=actor.user_id,
            status=RunStatus.RUNNING.value,
            answers={},
            trail=[],
            outbox=[],
            started_at=utcnow(),
        )
        session.add(run)
        await session.flush()
        final = await self._follow(session, actor, run, draft, draft.start, hops=[0])
        final_version, final_draft = await _graph(session, final.version_id)
        return await self._view(session, final, final_version, final_draft)

    # --- the agent's moves ----------------------------------------------------------------------------------

    async def _moving(self, session: AsyncSession, run_id: int, step_id: str) -> tuple[RunRow, ScriptDraft]:
        run = await self._run(session, run_id, lock=True)
        if run.status != RunStatus.RUNNING.value:
            raise Conflict(N_("This script run has ended."))
        if run.current_step != step_id:
            raise Conflict(
                N_("The script has already moved on; look at the current step."), step=run.current_step
            )
        _, draft = await _graph(session, run.version_id)
        return run, draft

    async def answer(
        self, session: AsyncSession, actor: Actor, run_id: int, step_id: str, value: Any
    ) -> StepView:
        """The agent's answer to the step `step_id` (the one the panel showed): a typed value for an ask,
        anything (ignored) for a say. Returns the step the run waits on next — of another run when a
        hand-over happened."""
        run, draft = await self._moving(session, run_id, step_id)
        step = draft.step(step_id)
        if isinstance(step, AskStep):
            if step.answer is None:
                raise Conflict(N_("This question has no answer type."))
            answer = typed.parse_answer(step.answer, value, self.region)
            stored = {"type": step.answer.type.value, "value": typed.to_json(answer)}
            run.answers = {**run.answers, step.id: stored}
            chosen = next((o for o in step.answer.options if o.value == answer), None)
            target = chosen.next if chosen is not None and chosen.next else step.next
        elif isinstance(step, SayStep):
            stored, target = None, step.next
        else:
            raise Conflict(
                N_("The script has already moved on; look at the current step."), step=run.current_step
            )
        await self._leave_row(session, run, answer=stored, edge=target)
        run.trail = [*run.trail, step.id]
        run.outbox = []
        final = await self._follow(session, actor, run, draft, target, hops=[0])
        version, final_draft = await _graph(session, final.version_id)
        return await self._view(session, final, version, final_draft)

    async def back(self, session: AsyncSession, actor: Actor, run_id: int, step_id: str) -> StepView:
        """One agent step back: the previous say or ask is shown again and its answer forgotten (values
        already captured stay in the CRM, audited, until the new answer overwrites them)."""
        run, draft = await self._moving(session, run_id, step_id)
        if not run.trail:
            raise Conflict(N_("There is no step to go back to."))
        previous = run.trail[-1]
        await self._leave_row(session, run, answer=None, edge="back")
        run.trail = run.trail[:-1]
        run.answers = {k: v for k, v in run.answers.items() if k != previous}
        run.outbox = []
        step = draft.step(previous)
        assert step is not None
        await self._enter(session, run, step)
        version, _ = await _graph(session, run.version_id)
        return await self._view(session, run, version, draft)

    async def leave(self, session: AsyncSession, actor: Actor, run_id: int, reason: str = "") -> StepView:
        """The agent leaves the script; the run keeps what it recorded."""
        run = await self._run(session, run_id, lock=True)
        if run.status != RunStatus.RUNNING.value:
            raise Conflict(N_("This script run has ended."))
        await self._close(
            session,
            run,
            RunStatus.LEFT,
            reason=" ".join(str(reason or "").split())[:200] or None,
            edge="leave",
        )
        version, draft = await _graph(session, run.version_id)
        return await self._view(session, run, version, draft)

    # --- following the graph --------------------------------------------------------------------------------

    async def _position(self, session: AsyncSession, run_id: int) -> int:
        last = await session.scalar(select(func.max(RunStepRow.position)).where(RunStepRow.run_id == run_id))
        return 0 if last is None else int(last) + 1

    async def _enter(self, session: AsyncSession, run: RunRow, step: AnyStep) -> RunStepRow:
        row = RunStepRow(
            run_id=run.id,
            position=await self._position(session, run.id),
            step_id=step.id,
            kind=step.kind,
            entered_at=utcnow(),
        )
        session.add(row)
        run.current_step = step.id
        await session.flush()
        return row

    async def _leave_row(
        self, session: AsyncSession, run: RunRow, *, answer: dict[str, Any] | None, edge: str | None
    ) -> None:
        row = await session.scalar(
            select(RunStepRow)
            .where(RunStepRow.run_id == run.id, RunStepRow.left_at.is_(None))
            .order_by(RunStepRow.position.desc())
            .limit(1)
        )
        if row is not None:
            row.left_at = utcnow()
            row.answer = answer
            row.edge = edge
        await session.flush()

    async def _close(
        self,
        session: AsyncSession,
        run: RunRow,
        status: RunStatus,
        *,
        reason: str | None,
        edge: str | None,
        outcome: str | None = None,
    ) -> None:
        await self._leave_row(session, run, answer=None, edge=edge)
        run.status = status.value
        run.outcome = outcome
        run.reason = reason
        run.ended_at = utcnow()
        await session.flush()

    async def _follow(
        self,
        session: AsyncSession,
        actor: Actor,
        run: RunRow,
        draft: ScriptDraft,
        target: str | None,
        *,
        hops: list[int],
    ) -> RunRow:
        """Enter `target` and go on through automatic steps; the run (this or a handed-over one) that
        now waits for the agent or has ended."""
        ctx: CrmContext | None = None
        catalog: Catalog | None = None
        while True:
            step = draft.step(target) if target else None
            if step is None:  # only a version published before a check existed could do this
                raise Conflict(N_("The script leads nowhere from here; leave it and tell a supervisor."))
            hops[0] += 1
            if hops[0] > MAX_HOPS:
                raise Conflict(
                    N_("The script loops without asking anything; leave it and tell a supervisor.")
                )
            await self._enter(session, run, step)
            if isinstance(step, SayStep | AskStep):
                return run
            if isinstance(step, EndStep):
                await self._close(
                    session, run, RunStatus.ENDED, reason=step.reason, edge=None, outcome=step.outcome.value
                )
                return run
            if ctx is None:
                ctx = await self._context(session, run)
            if isinstance(step, BranchStep):
                target, taken = self._branch(step, run, ctx)
                await self._leave_row(session, run, answer={"rule": taken}, edge=target)
                continue
            if isinstance(step, CaptureStep):
                if catalog is None:
                    catalog = await self.port.catalog(session)
                result = await self._capture(session, actor, step, run, ctx, catalog)
                await self._leave_row(session, run, answer=result, edge=step.next)
                ctx, target = None, step.next  # the records changed: read them again
                continue
            assert isinstance(step, ActionStep)
            if isinstance(step.do, Handover):
                return await self._handover(session, actor, run, step.do, hops)
            result = await self._action(session, actor, step, run, ctx, draft)
            await self._leave_row(session, run, answer=result, edge=step.next)
            target = step.next

    def _branch(self, step: BranchStep, run: RunRow, ctx: CrmContext) -> tuple[str | None, Any]:
        records = {"contact": ctx.contact, "lead": ctx.lead, "deal": ctx.deal}
        values = _typed_answers(run.answers)
        for i, rule in enumerate(step.rules):
            if conditions.evaluate(rule.when, values, records):
                return rule.next, i
        return step.default, "default"

    async def _capture(
        self,
        session: AsyncSession,
        actor: Actor,
        step: CaptureStep,
        run: RunRow,
        ctx: CrmContext,
        catalog: Catalog,
    ) -> dict[str, Any]:
        spec = catalog.field(step.entity.value, step.field)
        base = {"entity": step.entity.value, "field": step.field}
        if spec is None:
            return {**base, "skipped": "unknown field"}
        entity_id = ctx.entity_id(step.entity.value)
        if entity_id is None:
            return {**base, "skipped": "no record"}
        if step.value is not None:
            value = typed.literal_value(spec, step.value)
        else:
            given = run.answers.get(step.answer or "")
            if given is None:
                return {**base, "skipped": "no answer"}
            answer = typed.from_json(given["type"], given["value"])
            if step.map is not None:
                if str(answer) not in step.map:
                    return {**base, "skipped": "not mapped"}
                value = typed.literal_value(spec, step.map[str(answer)])
            else:
                value = typed.capture_value(spec, answer)
        try:
            await self.port.capture(session, actor, step.entity.value, entity_id, step.field, value)
        except Invalid as exc:  # the CRM refused the value: the agent corrects the answer
            raise Invalid(exc.message, field="answer", **exc.params) from None
        return {**base, "id": entity_id, "value": _json(value)}

    async def _action(
        self,
        session: AsyncSession,
        actor: Actor,
        step: ActionStep,
        run: RunRow,
        ctx: CrmContext,
        draft: ScriptDraft,
    ) -> dict[str, Any]:
        do = step.do
        if isinstance(do, CreateTask):
            values = await self._values(session, run, ctx, draft)
            now = utcnow()
            position = await self._position(session, run.id)
            task_id = await self.port.create_task(
                session,
                actor,
                TaskRequest(
                    title=templates.render(do.title, values)[:200] or do.title[:200],
                    kind=do.task_kind,
                    due_at=now + dt.timedelta(hours=do.due_in_hours) if do.due_in_hours is not None else None,
                    note=templates.render(do.note, values),
                    assignee_id=run.agent_id,
                    contact_id=ctx.contact_id,
                    lead_id=ctx.lead_id,
                    conversation_id=ctx.conversation_id,
                    source_key=f"script-run:{run.id}:{position}",
                ),
            )
            return {"action": do.type, "task_id": task_id}
        if isinstance(do, MoveDeal):
            if ctx.deal_id is None:
                return {"action": do.type, "skipped": "no deal"}
            await self.port.move_deal(session, actor, ctx.deal_id, do.stage)
            return {"action": do.type, "deal_id": ctx.deal_id, "stage": do.stage}
        assert isinstance(do, SendTemplate)
        text = await self.port.send_template(session, actor, do.template, ctx)
        run.outbox = [*run.outbox, text]
        return {"action": do.type, "template": do.template}

    async def _handover(
        self, session: AsyncSession, actor: Actor, run: RunRow, do: Handover, hops: list[int]
    ) -> RunRow:
        target = await published_version(session, do.script)
        if target is None:
            raise Conflict(N_("The script %(key)s to hand over to has no published version."), key=do.script)
        _, draft = await _graph(session, target.id)
        await self._leave_row(session, run, answer={"action": "handover", "script": do.script}, edge=None)
        successor = RunRow(
            version_id=target.id,
            conversation_id=run.conversation_id,
            call_id=run.call_id,
            contact_id=run.contact_id,
            lead_id=run.lead_id,
            deal_id=run.deal_id,
            agent_id=run.agent_id,
            status=RunStatus.RUNNING.value,
            answers={},
            trail=[],
            outbox=list(run.outbox),
            started_at=utcnow(),
        )
        session.add(successor)
        await session.flush()
        run.status = RunStatus.ENDED.value
        run.outcome = HANDOVER
        run.ended_at = utcnow()
        run.handover_run_id = successor.id
        await session.flush()
        return await self._follow(session, actor, successor, draft, draft.start, hops=hops)


def _with_answer(view: StepView, step: AskStep, options: list[OptionView]) -> StepView:
    assert step.answer is not None
    data = {k: getattr(view, k) for k in view.__dataclass_fields__}
    data.update(answer_type=step.answer.type.value, integer=step.answer.integer, options=options)
    return StepView(**data)


def _typed_answers(stored: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for step_id, item in stored.items():
        try:
            out[step_id] = typed.from_json(item["type"], item["value"])
        except (KeyError, ValueError, TypeError, ArithmeticError):
            continue
    return out


def _json(value: Any) -> Any:
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return typed.to_json(value)


__all__ = ["HANDOVER", "Engine", "OptionView", "RunStatus", "RunStepView", "StepView"]
