"""What the script engine needs from the CRM, as a port: the composition root passes in an adapter that
satisfies `CrmPort` (`switchboard.scripts_crm.CrmAdapter`), tests pass a fake. The engine never imports
crm_core or inbox, so it can be tested alone and the CRM can change behind the port.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.audit import Actor


class FieldKind(StrEnum):
    """What a capturable field holds; decides which answers may be written into it."""

    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    MONEY = "money"
    DATE = "date"
    PHONE = "phone"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class FieldSpec:
    entity: str  # contact, lead, deal
    name: str  # "amount", "idnp", "consent.sms", "custom.income"
    kind: FieldKind
    label: str = ""
    options: tuple[str, ...] = ()  # the codes a choice field accepts (empty: not known, any)


@dataclass(frozen=True)
class Catalog:
    """Everything validation checks a script against: capturable and readable fields per entity, the
    deal stages a `move_deal` may name, the templates a `send_template` may name, the task kinds."""

    fields: Mapping[str, Mapping[str, FieldSpec]]
    stages: frozenset[str] = frozenset()
    templates: frozenset[str] = frozenset()
    task_kinds: frozenset[str] = frozenset()
    readable: Mapping[str, frozenset[str]] = field(default_factory=dict)  # branch-only (read-only) fields

    def field(self, entity: str, name: str) -> FieldSpec | None:
        return self.fields.get(entity, {}).get(name)

    def can_read(self, entity: str, name: str) -> bool:
        return self.field(entity, name) is not None or name in self.readable.get(entity, frozenset())


@dataclass(frozen=True)
class CrmContext:
    """The records a run is about, as plain dicts for templates and branch conditions, plus the facts a
    script's `applies` condition is matched on."""

    contact_id: int | None = None
    lead_id: int | None = None
    deal_id: int | None = None
    conversation_id: int | None = None
    call_id: int | None = None
    channel: str | None = None
    language: str | None = None
    segments: tuple[str, ...] = ()
    product: str | None = None
    deal_stage: str | None = None
    contact: Mapping[str, Any] = field(default_factory=dict)
    lead: Mapping[str, Any] = field(default_factory=dict)
    deal: Mapping[str, Any] = field(default_factory=dict)

    def record(self, entity: str) -> Mapping[str, Any]:
        return {"contact": self.contact, "lead": self.lead, "deal": self.deal}.get(entity, {})

    def entity_id(self, entity: str) -> int | None:
        return {"contact": self.contact_id, "lead": self.lead_id, "deal": self.deal_id}.get(entity)


@dataclass(frozen=True)
class TaskRequest:
    title: str
    kind: str
    due_at: dt.datetime | None
    note: str
    assignee_id: int | None
    contact_id: int | None
    lead_id: int | None
    conversation_id: int | None
    source_key: str  # makes the task once even if the step is replayed


class CrmPort(Protocol):
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
        """The records behind these ids; missing ones are found from the others (a conversation's
        contact, the contact's newest open lead, the lead's deal)."""
        ...

    async def catalog(self, session: AsyncSession) -> Catalog: ...

    async def capture(
        self, session: AsyncSession, actor: Actor, entity: str, entity_id: int, field: str, value: Any
    ) -> None:
        """Write one typed value (str, int, Decimal, date, bool, list) through the CRM's own validated,
        audited update path; raises `switchboard.errors.DomainError` when the CRM refuses it."""
        ...

    async def create_task(self, session: AsyncSession, actor: Actor, task: TaskRequest) -> int: ...

    async def move_deal(self, session: AsyncSession, actor: Actor, deal_id: int, stage: str) -> None: ...

    async def send_template(
        self, session: AsyncSession, actor: Actor, template: str, context: CrmContext
    ) -> str:
        """The template's text filled for this customer and agent, for the agent's reply box."""
        ...

    async def deal_won(self, session: AsyncSession, deal_ids: Collection[int]) -> set[int]: ...
