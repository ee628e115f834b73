"""The script model: a script is a graph of steps (say, ask, branch, capture, action, end) with a condition
for when it applies. These pydantic models are the one shape shared by the database (a version's whole
graph is one JSON document), the YAML files and the editor.

The models are deliberately lenient about completeness — a draft may lack a `next` or an answer type while
it is being written — and strict about shape (unknown keys and wrong types are refused): what makes a
graph publishable is `scripts_engine.validation`'s business, which reports every problem at once.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_STEPS = 500
MAX_TEXT = 5000
MAX_NAME = 200
MAX_OPTIONS = 50
MAX_RULES = 50
MAX_CONDITION_DEPTH = 8
ID_PATTERN = r"^[a-z][a-z0-9_]{0,49}$"
KEY_PATTERN = r"^[a-z][a-z0-9_-]{0,59}$"
_ID = re.compile(ID_PATTERN)

Scalar = str | bool | int | float
StepId = Annotated[str, Field(pattern=ID_PATTERN)]


class StepKind(StrEnum):
    SAY = "say"
    ASK = "ask"
    BRANCH = "branch"
    CAPTURE = "capture"
    ACTION = "action"
    END = "end"


AGENT_KINDS = frozenset({StepKind.SAY, StepKind.ASK})  # a run waits for the agent on these
AUTO_KINDS = frozenset({StepKind.BRANCH, StepKind.CAPTURE, StepKind.ACTION})  # followed automatically


class AnswerType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    MONEY = "money"
    DATE = "date"
    PHONE = "phone"
    CHOICE = "choice"


class Outcome(StrEnum):
    SUCCESS = "success"
    REFUSAL = "refusal"
    CALLBACK = "callback"


class Entity(StrEnum):
    CONTACT = "contact"
    LEAD = "lead"
    DEAL = "deal"


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    EMPTY = "empty"
    NOT_EMPTY = "not_empty"


UNARY_OPS = frozenset({Op.EMPTY, Op.NOT_EMPTY})
LIST_OPS = frozenset({Op.IN, Op.NOT_IN})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Choice(_Model):
    """One answer button: `value` is what is stored and compared, `next` an optional edge of its own."""

    value: str = Field(min_length=1, max_length=50)
    label: str = Field(max_length=200)
    next: StepId | None = None


class AnswerSpec(_Model):
    type: AnswerType
    options: list[Choice] = Field(default_factory=list, max_length=MAX_OPTIONS)
    integer: bool = False  # a number answer in whole units (months, children)
    min: Decimal | None = None
    max: Decimal | None = None


class Condition(_Model):
    """A safe expression: a comparison of one field (`answer.<step>`, `lead.amount`, `contact.custom.x`)
    with a literal, or `all` / `any` of conditions. Nothing is evaluated as code."""

    all: list[Condition] | None = None
    any: list[Condition] | None = None
    field: str | None = Field(default=None, max_length=120)
    op: Op | None = None
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        forms = sum(x is not None for x in (self.all, self.any, self.field))
        if forms != 1:
            raise ValueError("a condition has exactly one of all, any or field")
        if self.field is not None and self.op is None:
            raise ValueError("a comparison needs an op")
        if self.field is None and (self.op is not None or self.value is not None):
            raise ValueError("all / any take no op or value")
        return self

    def depth(self) -> int:
        inner = self.all if self.all is not None else self.any
        return 1 + max((c.depth() for c in inner or ()), default=0)


class Rule(_Model):
    when: Condition
    next: StepId | None = None


class SayStep(_Model):
    id: StepId
    kind: Literal["say"]
    title: str = Field(default="", max_length=MAX_NAME)
    text: str = Field(default="", max_length=MAX_TEXT)
    next: StepId | None = None


class AskStep(_Model):
    id: StepId
    kind: Literal["ask"]
    title: str = Field(default="", max_length=MAX_NAME)
    text: str = Field(default="", max_length=MAX_TEXT)
    answer: AnswerSpec | None = None
    next: StepId | None = None


class BranchStep(_Model):
    id: StepId
    kind: Literal["branch"]
    title: str = Field(default="", max_length=MAX_NAME)
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_RULES)
    default: StepId | None = None  # the "else" edge: taken when no rule matches


class CaptureStep(_Model):
    """Write a value into a contact / lead / deal field: an earlier answer (`answer`, optionally turned
    into the field's values by `map`) or a literal `value`."""

    id: StepId
    kind: Literal["capture"]
    title: str = Field(default="", max_length=MAX_NAME)
    entity: Entity
    field: str = Field(min_length=1, max_length=120)
    answer: StepId | None = None
    map: dict[str, Scalar] | None = None
    value: Scalar | None = None
    next: StepId | None = None


class CreateTask(_Model):
    type: Literal["create_task"]
    title: str = Field(min_length=1, max_length=MAX_NAME)  # a template
    task_kind: str = Field(default="follow_up", max_length=20)
    due_in_hours: int | None = Field(default=None, ge=0, le=24 * 365)
    note: str = Field(default="", max_length=MAX_TEXT)  # a template


class MoveDeal(_Model):
    type: Literal["move_deal"]
    stage: str = Field(min_length=1, max_length=100)  # the stage's name in the deal's pipeline


class SendTemplate(_Model):
    type: Literal["send_template"]
    template: str = Field(min_length=1, max_length=30)  # a canned reply's shortcut


class Handover(_Model):
    type: Literal["handover"]
    script: str = Field(pattern=KEY_PATTERN)  # the key of the script that takes over


ActionSpec = Annotated[CreateTask | MoveDeal | SendTemplate | Handover, Field(discriminator="type")]


class ActionStep(_Model):
    id: StepId
    kind: Literal["action"]
    title: str = Field(default="", max_length=MAX_NAME)
    do: ActionSpec
    next: StepId | None = None  # not used after a hand-over, which ends the run


class EndStep(_Model):
    id: StepId
    kind: Literal["end"]
    title: str = Field(default="", max_length=MAX_NAME)
    outcome: Outcome
    reason: str | None = Field(default=None, max_length=200)  # why the customer refused
    text: str = Field(default="", max_length=MAX_TEXT)  # a closing line for the agent


Step = Annotated[
    SayStep | AskStep | BranchStep | CaptureStep | ActionStep | EndStep, Field(discriminator="kind")
]


class AppliesTo(_Model):
    """When a script is suggested: each list that is not empty must match (segments: any one of them)."""

    channels: list[str] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list)
    products: list[str] = Field(default_factory=list)
    deal_stages: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)


class ScriptDraft(_Model):
    """A whole script as written: what a version stores, what YAML holds, what the editor edits."""

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=MAX_NAME)
    description: str = Field(default="", max_length=MAX_TEXT)
    applies: AppliesTo = Field(default_factory=AppliesTo)
    start: StepId | None = None
    steps: list[Step] = Field(default_factory=list, max_length=MAX_STEPS)

    @field_validator("steps")
    @classmethod
    def _shallow_conditions(cls, steps: list[Any]) -> list[Any]:
        for step in steps:
            for rule in getattr(step, "rules", ()):
                if rule.when.depth() > MAX_CONDITION_DEPTH:
                    raise ValueError(f"conditions nest at most {MAX_CONDITION_DEPTH} deep")
        return steps

    def step(self, step_id: str) -> AnyStep | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def as_data(self) -> dict[str, Any]:
        """The stable JSON form (defaults left out) stored in the database and written as YAML."""
        return self.model_dump(mode="json", exclude_defaults=True, exclude_none=True)

    @classmethod
    def from_data(cls, data: Any) -> ScriptDraft:
        return cls.model_validate(data)


AnyStep = SayStep | AskStep | BranchStep | CaptureStep | ActionStep | EndStep


def edges(step: AnyStep) -> list[tuple[str, str]]:
    """The step's outgoing edges as (label, target): `next`, each choice's and rule's own, the default."""
    out: list[tuple[str, str]] = []
    if isinstance(step, AskStep) and step.answer is not None:
        out += [(f"option:{c.value}", c.next) for c in step.answer.options if c.next]
    if isinstance(step, BranchStep):
        out += [(f"rule:{i}", r.next) for i, r in enumerate(step.rules) if r.next]
        if step.default:
            out.append(("default", step.default))
    elif isinstance(step, ActionStep):
        if step.next and not isinstance(step.do, Handover):
            out.append(("next", step.next))
    elif not isinstance(step, EndStep) and step.next:
        out.append(("next", step.next))
    return out


def is_step_id(value: str) -> bool:
    return bool(_ID.match(value))
