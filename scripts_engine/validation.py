"""Validation before publishing: every problem of a script at once, each naming its step and a machine-
readable code, so the editor can mark them. A script with no problems can be published.

Graph checks: duplicate ids, a missing start, dangling edges, missing edges, steps the start never reaches,
steps from which no end can be reached (which also catches a loop that cannot exit), loops made only of
automatic steps (they would spin without the agent). Step checks: asks without an answer type or options,
branches without a default or comparing unknown answers / fields / options, captures into missing fields
or with a type mismatch, actions naming an unknown stage / template / task kind, hand-overs to a script
that does not exist or is not published, template syntax errors, refusals without a reason.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scripts_engine import conditions, templates
from scripts_engine.answers import answer_fits, literal_value
from scripts_engine.model import (
    AUTO_KINDS,
    LIST_OPS,
    UNARY_OPS,
    ActionStep,
    AnswerType,
    AnyStep,
    AskStep,
    BranchStep,
    CaptureStep,
    CreateTask,
    EndStep,
    Handover,
    MoveDeal,
    Op,
    Outcome,
    SayStep,
    ScriptDraft,
    SendTemplate,
    StepKind,
    edges,
)
from scripts_engine.ports import Catalog
from switchboard.errors import N_

MESSAGES: dict[str, str] = {
    "empty_script": N_("The script has no steps."),
    "duplicate_step": N_("Two steps have the id %(step)s."),
    "missing_start": N_("Choose the step the script starts with."),
    "dangling_edge": N_("The step leads to %(target)s, which does not exist."),
    "missing_edge": N_("Say which step comes next."),
    "unreachable_step": N_("No path from the start reaches this step."),
    "no_end_reachable": N_("No end can be reached from this step."),
    "auto_loop": N_("This step is in a loop that never waits for the agent."),
    "ask_without_answer": N_("Say what kind of answer this question takes."),
    "ask_without_options": N_("A choice needs answer options."),
    "duplicate_option": N_("Two answer options have the value %(value)s."),
    "options_without_choice": N_("Only a choice answer has options."),
    "bad_bounds": N_("The minimum is above the maximum."),
    "branch_without_default": N_("A branch needs a default step for when no rule matches."),
    "branch_unknown_answer": N_("The condition reads the answer of %(ref)s, which is not a question."),
    "branch_unknown_option": N_("%(value)s is not one of the answers of %(ref)s."),
    "branch_unknown_field": N_("The condition reads %(ref)s, which is not a known field."),
    "bad_condition": N_("The comparison with %(op)s needs a value."),
    "capture_unknown_field": N_("%(entity)s has no field %(name)s to write into."),
    "capture_without_value": N_("Say which answer or value to write."),
    "capture_unknown_answer": N_("%(ref)s is not a question of this script."),
    "capture_type_mismatch": N_("A %(answer)s cannot be written into %(name)s (a %(kind)s field)."),
    "capture_bad_map": N_("The value map must give a value for each answer option (missing: %(value)s)."),
    "unknown_task_kind": N_("Unknown kind of task: %(value)s."),
    "unknown_stage": N_("No deal stage is called %(value)s."),
    "unknown_template": N_("No canned reply has the shortcut %(value)s."),
    "handover_self": N_("A script cannot hand over to itself."),
    "handover_unknown_script": N_("No script has the key %(value)s."),
    "handover_not_published": N_("The script %(value)s has no published version."),
    "template_syntax": N_("The text has a template error on line %(line)s: %(error)s"),
    "refusal_without_reason": N_("A refusal needs a reason."),
}


@dataclass(frozen=True)
class Problem:
    code: str
    step_id: str | None  # None: the script as a whole
    field: str | None = None  # which input of the step ("next", "answer.options", "rules.0.when")
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def message(self) -> str:
        """The English msgid; the web side translates it and fills in `params`."""
        return MESSAGES[self.code]

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "step": self.step_id, "field": self.field, "params": dict(self.params)}


def validate(
    draft: ScriptDraft, catalog: Catalog, published: Mapping[str, bool] | None = None
) -> list[Problem]:
    """Every problem of `draft`. `published` maps the keys of the other scripts that exist to whether one
    of their versions is published (for hand-overs)."""
    return _Check(draft, catalog, published or {}).run()


class _Check:
    def __init__(self, draft: ScriptDraft, catalog: Catalog, published: Mapping[str, bool]) -> None:
        self.draft = draft
        self.catalog = catalog
        self.published = published
        self.problems: list[Problem] = []
        self.steps: dict[str, AnyStep] = {}
        for step in draft.steps:
            self.steps.setdefault(step.id, step)

    def add(self, code: str, at: str | None, where: str | None = None, **params: Any) -> None:
        self.problems.append(Problem(code, at, where, params))

    def run(self) -> list[Problem]:
        if not self.draft.steps:
            self.add("empty_script", None)
            return self.problems
        seen: set[str] = set()
        for step in self.draft.steps:
            if step.id in seen:
                self.add("duplicate_step", step.id, "id", step=step.id)
            seen.add(step.id)
        if self.draft.start is None or self.draft.start not in self.steps:
            self.add("missing_start", None, "start")
        for step in self.draft.steps:
            self._edges(step)
            self._step(step)
        self._graph()
        return self.problems

    # --- one step ------------------------------------------------------------------------------------------

    def _edges(self, step: AnyStep) -> None:
        for label, target in edges(step):
            if target not in self.steps:
                self.add("dangling_edge", step.id, label, target=target)
        needs_next = isinstance(step, SayStep | CaptureStep) or (
            isinstance(step, ActionStep) and not isinstance(step.do, Handover)
        )
        if isinstance(step, AskStep):
            options = step.answer.options if step.answer is not None else []
            needs_next = not (step.answer and step.answer.type is AnswerType.CHOICE and options) or any(
                o.next is None for o in options
            )
        if needs_next and not getattr(step, "next", None):
            self.add("missing_edge", step.id, "next")

    def _step(self, step: AnyStep) -> None:
        if isinstance(step, SayStep):
            self._template(step.id, "text", step.text)
        elif isinstance(step, AskStep):
            self._template(step.id, "text", step.text)
            self._ask(step)
        elif isinstance(step, BranchStep):
            self._branch(step)
        elif isinstance(step, CaptureStep):
            self._capture(step)
        elif isinstance(step, ActionStep):
            self._action(step)
        elif isinstance(step, EndStep):
            self._template(step.id, "text", step.text)
            if step.outcome is Outcome.REFUSAL and not (step.reason or "").strip():
                self.add("refusal_without_reason", step.id, "reason")

    def _template(self, step_id: str, where: str, source: str) -> None:
        error = templates.syntax_error(source)
        if error is not None:
            self.add("template_syntax", step_id, where, line=error[0], error=error[1])

    def _ask(self, step: AskStep) -> None:
        spec = step.answer
        if spec is None:
            self.add("ask_without_answer", step.id, "answer")
            return
        if spec.type is AnswerType.CHOICE and not spec.options:
            self.add("ask_without_options", step.id, "answer.options")
        if spec.type is not AnswerType.CHOICE and spec.options:
            self.add("options_without_choice", step.id, "answer.options")
        values: set[str] = set()
        for option in spec.options:
            if option.value in values:
                self.add("duplicate_option", step.id, "answer.options", value=option.value)
            values.add(option.value)
        if spec.min is not None and spec.max is not None and spec.min > spec.max:
            self.add("bad_bounds", step.id, "answer.min")

    def _branch(self, step: BranchStep) -> None:
        if not step.default:
            self.add("branch_without_default", step.id, "default")
        for i, rule in enumerate(step.rules):
            where = f"rules.{i}"
            if not rule.next:
                self.add("missing_edge", step.id, f"{where}.next")
            for leaf in conditions.comparisons(rule.when):
                self._comparison(step.id, where, leaf.field or "", leaf.op, leaf.value)

    def _comparison(self, step_id: str, where: str, ref: str, op: Op | None, value: Any) -> None:
        head, name = conditions.split_ref(ref)
        if op is not None and op not in UNARY_OPS and value is None:
            self.add("bad_condition", step_id, where, op=op.value)
        if head == conditions.ANSWER:
            ask = self.steps.get(name)
            if not isinstance(ask, AskStep):
                self.add("branch_unknown_answer", step_id, where, ref=name)
                return
            spec = ask.answer
            if spec is not None and spec.type is AnswerType.CHOICE and op in ({Op.EQ, Op.NE} | LIST_OPS):
                known = {o.value for o in spec.options}
                for literal in value if isinstance(value, list) else [value]:
                    if literal is not None and str(literal) not in known:
                        self.add("branch_unknown_option", step_id, where, ref=name, value=str(literal))
            return
        if head not in ("contact", "lead", "deal") or not self.catalog.can_read(head, name):
            self.add("branch_unknown_field", step_id, where, ref=ref)

    def _capture(self, step: CaptureStep) -> None:
        target = self.catalog.field(step.entity.value, step.field)
        if target is None:
            self.add("capture_unknown_field", step.id, "field", entity=step.entity.value, name=step.field)
            return
        if (step.answer is None) == (step.value is None):
            self.add("capture_without_value", step.id, "answer")
            return
        if step.value is not None:
            self._literal(step.id, "value", target, step.value, "value")
            return
        ask = self.steps.get(step.answer or "")
        if not isinstance(ask, AskStep):
            self.add("capture_unknown_answer", step.id, "answer", ref=step.answer)
            return
        if ask.answer is None:
            return  # reported on the ask step
        if step.map is not None:
            for option in ask.answer.options:
                if option.value not in step.map:
                    self.add("capture_bad_map", step.id, "map", value=option.value)
            for value in step.map.values():
                self._literal(step.id, "map", target, value, ask.answer.type.value)
        elif not answer_fits(ask.answer, target):
            kind = ask.answer.type.value
            self.add(
                "capture_type_mismatch",
                step.id,
                "field",
                answer=kind,
                name=step.field,
                kind=target.kind.value,
            )

    def _literal(self, step_id: str, where: str, target: Any, value: Any, answer: str) -> None:
        try:
            literal_value(target, value)
        except ValueError:
            self.add(
                "capture_type_mismatch",
                step_id,
                where,
                answer=answer,
                name=target.name,
                kind=target.kind.value,
            )

    def _action(self, step: ActionStep) -> None:
        do = step.do
        if isinstance(do, CreateTask):
            self._template(step.id, "do.title", do.title)
            self._template(step.id, "do.note", do.note)
            if self.catalog.task_kinds and do.task_kind not in self.catalog.task_kinds:
                self.add("unknown_task_kind", step.id, "do.task_kind", value=do.task_kind)
        elif isinstance(do, MoveDeal):
            if do.stage not in self.catalog.stages:
                self.add("unknown_stage", step.id, "do.stage", value=do.stage)
        elif isinstance(do, SendTemplate):
            if do.template not in self.catalog.templates:
                self.add("unknown_template", step.id, "do.template", value=do.template)
        elif do.script == self.draft.key:
            self.add("handover_self", step.id, "do.script")
        elif do.script not in self.published:
            self.add("handover_unknown_script", step.id, "do.script", value=do.script)
        elif not self.published[do.script]:
            self.add("handover_not_published", step.id, "do.script", value=do.script)

    # --- the graph ---------------------------------------------------------------------------------------

    def _targets(self, step: AnyStep) -> list[str]:
        return [t for _, t in edges(step) if t in self.steps]

    def _graph(self) -> None:
        order = list(self.steps)
        start = self.draft.start
        if start in self.steps:
            reached = _closure([start], lambda s: self._targets(self.steps[s]))
            for step_id in order:
                if step_id not in reached:
                    self.add("unreachable_step", step_id)
        terminal = [
            s.id
            for s in self.steps.values()
            if isinstance(s, EndStep) or (isinstance(s, ActionStep) and isinstance(s.do, Handover))
        ]
        incoming: dict[str, list[str]] = {s: [] for s in order}
        for step in self.steps.values():
            for target in self._targets(step):
                incoming[target].append(step.id)
        finishing = _closure(terminal, lambda s: incoming[s])
        for step_id in order:
            if step_id not in finishing:
                self.add("no_end_reachable", step_id)
        auto = {s for s, step in self.steps.items() if StepKind(step.kind) in AUTO_KINDS}
        for step_id in order:
            if step_id not in auto:
                continue
            following = [t for t in self._targets(self.steps[step_id]) if t in auto]
            if step_id in _closure(
                following, lambda s: [t for t in self._targets(self.steps[s]) if t in auto]
            ):
                self.add("auto_loop", step_id)


def _closure(seeds: Iterable[str], neighbours: Any) -> set[str]:
    seen: set[str] = set()
    queue = deque(seeds)
    while queue:
        node = queue.popleft()
        if node in seen:
            continue
        seen.add(node)
        queue.extend(n for n in neighbours(node) if n not in seen)
    return seen
