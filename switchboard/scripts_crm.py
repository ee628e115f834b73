"""The script engine's CRM port, implemented over crm_core and inbox's public functions.

This module is part of the composition root (like `switchboard.app`, which builds the service with it,
and the demo seeding in `switchboard.cli`): it is the one place where `scripts_engine` meets the CRM, so
that room imports neither crm_core nor inbox. Nothing below `switchboard.app` imports this module.

Every write goes through crm_core's own validated, audited update paths: `leads.update_lead`,
`funnel.update_deal` / `move_deal` / `win`, `profile.save_contact` (the whole profile, changed in one
field) and, for custom fields, `custom_fields.validate(partial=True)` inside those. "Send a template"
fills a canned reply (inbox.canned) for the customer and agent and hands the text back for the reply box:
the agent sends it, nothing leaves the hub on its own.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import classifiers, custom_fields, funnel, leads, profile, tasks
from crm_core.contacts import contact_card
from crm_core.funnel_model import Deal, Stage
from crm_core.models import Lead
from inbox import canned
from inbox.calls_model import Call
from inbox.canned_model import CannedReply
from inbox.models import Conversation
from scripts_engine.ports import Catalog, CrmContext, FieldKind, FieldSpec, TaskRequest
from switchboard.accounts_model import User
from switchboard.audit import Actor
from switchboard.errors import N_, Invalid, NotFound
from switchboard.permissions import Role

_CUSTOM_KINDS = {
    custom_fields.FieldKind.TEXT: FieldKind.TEXT,
    custom_fields.FieldKind.NUMBER: FieldKind.NUMBER,
    custom_fields.FieldKind.MONEY: FieldKind.MONEY,
    custom_fields.FieldKind.DATE: FieldKind.DATE,
    custom_fields.FieldKind.CHOICE: FieldKind.CHOICE,
    custom_fields.FieldKind.MULTI_CHOICE: FieldKind.MULTI_CHOICE,
    custom_fields.FieldKind.BOOLEAN: FieldKind.BOOLEAN,
}
_CONTACT_FIELDS = (
    ("first_name", FieldKind.TEXT),
    ("last_name", FieldKind.TEXT),
    ("idnp", FieldKind.TEXT),
    ("birth_date", FieldKind.DATE),
    ("address", FieldKind.TEXT),
    ("phone", FieldKind.PHONE),  # added to the contact's phones (the primary one stays)
)
_READ_ONLY = {
    "contact": frozenset(
        {"name", "email", "tags", "language", "branch_id", "owner_id", "consents", "phones"}
    ),
    "lead": frozenset(
        {"status", "source_channel", "utm_source", "utm_medium", "utm_campaign", "score", "owner_id"}
        | {"branch_id", "deal_id", "contact_id"}
    ),
    "deal": frozenset(
        {"stage", "status", "probability", "lost_reason", "owner_id", "pipeline_id", "lead_id"}
    ),
}
# the agent's role for writes: a script never changes the manager-only fields (score, owner)
_WRITER_ROLE = Role.AGENT


def _plain(view: Any) -> dict[str, Any]:
    return {name: getattr(view, name) for name in view.__dataclass_fields__}


class CrmAdapter:
    """`scripts_engine.ports.CrmPort` over crm_core and inbox."""

    def __init__(self, region: str = "MD", locale: str = "ro") -> None:
        self.region = region
        self.locale = locale

    # --- reading ------------------------------------------------------------------------------------------

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
        channel: str | None = None
        if call_id is not None:
            call = await session.get(Call, call_id)
            if call is not None:
                channel = "phone"
                conversation_id = conversation_id or call.conversation_id
                contact_id = contact_id or call.contact_id
        if conversation_id is not None:
            conversation = await session.get(Conversation, conversation_id)
            if conversation is not None:
                channel = channel or conversation.last_inbound_channel
                contact_id = contact_id or conversation.contact_id
        deal_view = await funnel.get_deal(session, deal_id) if deal_id is not None else None
        if deal_view is not None:
            lead_id = lead_id or deal_view.lead_id
            contact_id = contact_id or deal_view.contact_id
        if lead_id is None and contact_id is not None:
            lead_id = await session.scalar(
                select(Lead.id)
                .where(Lead.contact_id == contact_id, Lead.status != leads.LeadStatus.JUNK.value)
                .order_by(Lead.created_at.desc(), Lead.id.desc())
                .limit(1)
            )
        lead_view = await leads.get_lead(session, lead_id) if lead_id is not None else None
        if lead_view is not None:
            contact_id = contact_id or lead_view.contact_id
            if deal_view is None and lead_view.deal_id is not None:
                deal_view = await funnel.get_deal(session, lead_view.deal_id)
        found = await profile.profile_of(session, contact_id) if contact_id is not None else None
        contact: dict[str, Any] = {}
        if found is not None:
            contact = found.as_json()
            contact["birth_date"] = found.contact.birth_date
            contact["language"] = found.contact.language
        lead = _plain(lead_view) if lead_view is not None else {}
        deal = _plain(deal_view) if deal_view is not None else {}
        if deal_view is not None:
            deal["stage"] = deal_view.stage_name
        return CrmContext(
            contact_id=found.contact.id if found is not None else None,
            lead_id=lead_view.id if lead_view is not None else None,
            deal_id=deal_view.id if deal_view is not None else None,
            conversation_id=conversation_id,
            call_id=call_id,
            channel=channel or (lead_view.source_channel if lead_view is not None else None),
            language=found.contact.language if found is not None else None,
            segments=tuple(found.contact.tags or ()) if found is not None else (),
            product=(lead_view.product if lead_view else None) or (deal_view.product if deal_view else None),
            deal_stage=deal_view.stage_name if deal_view is not None else None,
            contact=contact,
            lead=lead,
            deal=deal,
        )

    async def catalog(self, session: AsyncSession) -> Catalog:
        products = tuple(await classifiers.labels(session, "product", self.locale))
        currencies = tuple(leads.CURRENCIES)
        fields: dict[str, dict[str, FieldSpec]] = {
            "contact": {name: FieldSpec("contact", name, kind) for name, kind in _CONTACT_FIELDS},
            "lead": {
                "product": FieldSpec("lead", "product", FieldKind.CHOICE, options=products),
                "amount": FieldSpec("lead", "amount", FieldKind.MONEY),
                "currency": FieldSpec("lead", "currency", FieldKind.CHOICE, options=currencies),
                "term_months": FieldSpec("lead", "term_months", FieldKind.INTEGER),
                "campaign": FieldSpec("lead", "campaign", FieldKind.TEXT),
            },
            "deal": {
                "amount": FieldSpec("deal", "amount", FieldKind.MONEY),
                "currency": FieldSpec("deal", "currency", FieldKind.CHOICE, options=currencies),
                "product": FieldSpec("deal", "product", FieldKind.CHOICE, options=products),
            },
        }
        for channel in profile.CONSENT_CHANNELS:
            name = f"consent.{channel}"
            fields["contact"][name] = FieldSpec("contact", name, FieldKind.BOOLEAN)
        for entity in fields:
            for d in await custom_fields.definitions(session, entity):
                fields[entity][d.path] = FieldSpec(
                    entity, d.path, _CUSTOM_KINDS[d.kind], d.label, tuple(o.code for o in d.options)
                )
        stages = frozenset(await session.scalars(select(Stage.name)))
        templates = frozenset(await session.scalars(select(CannedReply.shortcut)))
        return Catalog(
            fields=fields,
            stages=stages,
            templates=templates,
            task_kinds=frozenset(k.value for k in tasks.TaskKind),
            readable=_READ_ONLY,
        )

    async def deal_won(self, session: AsyncSession, deal_ids: Collection[int]) -> set[int]:
        if not deal_ids:
            return set()
        rows = await session.scalars(select(Deal.id).where(Deal.id.in_(list(deal_ids)), Deal.status == "won"))
        return set(rows)

    # --- writing ------------------------------------------------------------------------------------------

    async def capture(
        self, session: AsyncSession, actor: Actor, entity: str, entity_id: int, field: str, value: Any
    ) -> None:
        if entity == "lead":
            await leads.update_lead(session, actor, _WRITER_ROLE, entity_id, _changes(field, value))
        elif entity == "deal":
            await funnel.update_deal(session, actor, _WRITER_ROLE, entity_id, _changes(field, value))
        elif entity == "contact":
            await self._capture_contact(session, actor, entity_id, field, value)
        else:
            raise Invalid(N_("Unknown kind of record."), field="entity")

    async def _capture_contact(
        self, session: AsyncSession, actor: Actor, contact_id: int, field: str, value: Any
    ) -> None:
        """One field of the profile changed, the rest as it is, through the contact page's own save."""
        found = await profile.profile_of(session, contact_id)
        if found is None:
            raise NotFound(N_("No such contact."))
        data = found.as_json()
        if field.startswith("custom."):
            data["custom"] = {field.removeprefix("custom."): value}
        elif field.startswith("consent."):
            data["consents"] = {**(data.get("consents") or {}), field.removeprefix("consent."): bool(value)}
        elif field == "phone":
            if value not in {p["number"] for p in data["phones"]}:
                data["phones"] = [*data["phones"], {"number": value, "label": ""}]
        elif field == "birth_date":
            data["birth_date"] = value.isoformat() if hasattr(value, "isoformat") else value
        elif field in ("first_name", "last_name", "idnp", "address"):
            data[field] = value
        else:
            raise Invalid(N_("Unknown field."), field=field)
        if not field.startswith("custom."):
            data.pop("custom", None)  # unchanged: the stored values stay
        await profile.save_contact(
            session, actor, contact_id, profile.parse_profile(data, self.region), confirm_duplicate=True
        )

    async def create_task(self, session: AsyncSession, actor: Actor, task: TaskRequest) -> int:
        view = await tasks.create_task(
            session,
            title=task.title,
            kind=task.kind,
            assignee_id=task.assignee_id,
            due_at=task.due_at,
            contact_id=task.contact_id,
            lead_id=task.lead_id,
            conversation_id=task.conversation_id,
            note=task.note,
            source_key=task.source_key,
            created_by_id=actor.user_id,
        )
        return view.id

    async def move_deal(self, session: AsyncSession, actor: Actor, deal_id: int, stage: str) -> None:
        deal = await funnel.get_deal(session, deal_id)
        if deal is None:
            raise NotFound(N_("No such deal."))
        target = await session.scalar(
            select(Stage).where(Stage.pipeline_id == deal.pipeline_id, Stage.name == stage).limit(1)
        )
        if target is None:
            raise Invalid(N_("This stage is not in the deal's pipeline."), field="stage_id")
        if target.kind == "won":
            await funnel.win(session, actor, deal_id)
        else:
            await funnel.move_deal(session, actor, deal_id, target.id)

    async def send_template(
        self, session: AsyncSession, actor: Actor, template: str, context: CrmContext
    ) -> str:
        reply = await session.scalar(select(CannedReply).where(CannedReply.shortcut == template))
        if reply is None:
            raise NotFound(N_("No such canned reply."))
        card = await contact_card(session, context.contact_id) if context.contact_id is not None else None
        agent = await session.get(User, actor.user_id) if actor.user_id is not None else None
        return canned.render(reply, card, agent)


def _changes(field: str, value: Any) -> dict[str, Any]:
    if field.startswith("custom."):
        return {"custom": {field.removeprefix("custom."): value}}
    if isinstance(value, Decimal) and field == "term_months":
        value = int(value)
    return {field: value}


async def seed_demo_script(session: AsyncSession, actor: Actor, region: str = "MD") -> int:
    """`switchboard demo`: the lead's "income" custom field (money) the demo script captures into, made
    once, and the demo script published. Returns the published version's id. The day-one vocabularies and
    pipeline it names (products, the "Documents" stage) are put back first if someone emptied them."""
    await classifiers.seed_defaults(session)
    await funnel.default_pipeline(session)
    from scripts_engine.demo import load_demo
    from scripts_engine.service import ScriptsService

    if not any(
        d.key == "income" for d in await custom_fields.definitions(session, "lead", include_inactive=True)
    ):
        await custom_fields.create_definition(
            session,
            actor,
            "lead",
            custom_fields.FieldInput("income", "Venit lunar net", custom_fields.FieldKind.MONEY, position=10),
        )
    version = await load_demo(session, ScriptsService(CrmAdapter(region), region=region), actor)
    return version.id


__all__ = ["CrmAdapter", "seed_demo_script"]
