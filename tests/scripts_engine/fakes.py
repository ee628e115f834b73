"""An in-memory CRM behind the script engine's port, and small scripts to run, for the unit tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from scripts_engine.model import ScriptDraft
from scripts_engine.ports import Catalog, CrmContext, FieldKind, FieldSpec, TaskRequest
from switchboard.audit import Actor
from switchboard.errors import N_, Invalid

_TYPES: dict[FieldKind, tuple[type, ...]] = {
    FieldKind.TEXT: (str,),
    FieldKind.PHONE: (str,),
    FieldKind.INTEGER: (int,),
    FieldKind.NUMBER: (int, Decimal),
    FieldKind.MONEY: (Decimal,),
    FieldKind.DATE: (dt.date,),
    FieldKind.CHOICE: (str,),
    FieldKind.BOOLEAN: (bool,),
    FieldKind.MULTI_CHOICE: (list,),
}


def _spec(entity: str, name: str, kind: FieldKind, *options: str) -> FieldSpec:
    return FieldSpec(entity, name, kind, options=options)


FIELDS = {
    "contact": {
        s.name: s
        for s in (
            _spec("contact", "first_name", FieldKind.TEXT),
            _spec("contact", "idnp", FieldKind.TEXT),
            _spec("contact", "birth_date", FieldKind.DATE),
            _spec("contact", "consent.phone", FieldKind.BOOLEAN),
        )
    },
    "lead": {
        s.name: s
        for s in (
            _spec("lead", "amount", FieldKind.MONEY),
            _spec("lead", "term_months", FieldKind.INTEGER),
            _spec("lead", "product", FieldKind.CHOICE, "consumer", "mortgage", "car_loan"),
            _spec("lead", "custom.income", FieldKind.MONEY),
        )
    },
    "deal": {s.name: s for s in (_spec("deal", "amount", FieldKind.MONEY),)},
}


@dataclass
class FakeCrm:
    """Contact 1, lead 10 and deal 100 of conversation 7; writes checked for type like the real CRM."""

    contact: dict[str, Any] = field(default_factory=lambda: {"id": 1, "first_name": "Ion", "custom": {}})
    lead: dict[str, Any] = field(default_factory=lambda: {"id": 10, "amount": None, "custom": {}})
    deal: dict[str, Any] = field(default_factory=lambda: {"id": 100, "stage": "New application"})
    channel: str = "telegram"
    tags: tuple[str, ...] = ()
    won: set[int] = field(default_factory=set)
    tasks: list[TaskRequest] = field(default_factory=list)
    moves: list[tuple[int, str]] = field(default_factory=list)
    writes: list[tuple[str, int, str, Any]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # fields whose writes the CRM refuses

    async def context(
        self,
        session: AsyncSession,
        *,
        conversation_id: int | None = None,
        call_id: int | None = None,
        contact_id: int | None = None,
        lead_id: int | None = None,
        deal_id: int | None = None,
    ) -> CrmContext:
        return CrmContext(
            contact_id=1,
            lead_id=10,
            deal_id=deal_id if deal_id is not None else 100,
            conversation_id=conversation_id,
            call_id=call_id,
            channel=self.channel,
            language="ro",
            segments=self.tags,
            product=self.lead.get("product"),
            deal_stage=self.deal.get("stage"),
            contact=dict(self.contact),
            lead=dict(self.lead),
            deal=dict(self.deal),
        )

    async def catalog(self, session: AsyncSession) -> Catalog:
        return Catalog(
            fields=FIELDS,
            stages=frozenset({"New application", "Documents"}),
            templates=frozenset({"hello"}),
            task_kinds=frozenset({"callback", "follow_up", "meeting"}),
            readable={"deal": frozenset({"stage"}), "contact": frozenset({"tags"})},
        )

    async def capture(
        self, session: AsyncSession, actor: Actor, entity: str, entity_id: int, name: str, value: Any
    ) -> None:
        spec = FIELDS[entity][name]
        if name in self.refuse:
            raise Invalid(N_("An IDNP is 13 digits with a valid check digit."), field=name)
        if not isinstance(value, _TYPES[spec.kind]) or (
            spec.kind is not FieldKind.BOOLEAN and isinstance(value, bool)
        ):
            raise AssertionError(f"{name} got {value!r}, not a {spec.kind}")
        record = {"contact": self.contact, "lead": self.lead, "deal": self.deal}[entity]
        if name.startswith("custom."):
            record["custom"] = {**record["custom"], name.removeprefix("custom."): value}
        else:
            record[name] = value
        self.writes.append((entity, entity_id, name, value))

    async def create_task(self, session: AsyncSession, actor: Actor, task: TaskRequest) -> int:
        self.tasks.append(task)
        return len(self.tasks)

    async def move_deal(self, session: AsyncSession, actor: Actor, deal_id: int, stage: str) -> None:
        self.moves.append((deal_id, stage))
        self.deal["stage"] = stage

    async def send_template(
        self, session: AsyncSession, actor: Actor, template: str, context: CrmContext
    ) -> str:
        return f"Bună, {context.contact.get('first_name')}!"

    async def deal_won(self, session: AsyncSession, deal_ids: Collection[int]) -> set[int]:
        return {d for d in deal_ids if d in self.won}


def draft(
    *steps: dict[str, Any], key: str = "sales", start: str | None = "hello", **extra: Any
) -> ScriptDraft:
    return ScriptDraft.from_data(
        {"key": key, "name": key.title(), "start": start, "steps": list(steps), **extra}
    )


def simple(
    key: str = "sales", greeting: str = "Bună ziua, {{ contact.first_name }}!", **extra: Any
) -> ScriptDraft:
    """hello (say) → amount (ask money) → capture into lead.amount → big? (branch) → end success / refusal."""
    return draft(
        {"id": "hello", "kind": "say", "text": greeting, "next": "amount"},
        {"id": "amount", "kind": "ask", "text": "Ce sumă?", "answer": {"type": "money"}, "next": "save"},
        {
            "id": "save",
            "kind": "capture",
            "entity": "lead",
            "field": "amount",
            "answer": "amount",
            "next": "big",
        },
        {
            "id": "big",
            "kind": "branch",
            "rules": [{"when": {"field": "answer.amount", "op": "gte", "value": 1000}, "next": "yes"}],
            "default": "no",
        },
        {"id": "yes", "kind": "end", "outcome": "success", "text": "Mulțumesc!"},
        {"id": "no", "kind": "end", "outcome": "refusal", "reason": "too_small"},
        key=key,
        **extra,
    )
