"""The minimal sales funnel: pipelines of ordered stages (each with a win probability) and the deals that
move through them. A qualified lead becomes a deal with `convert_lead`; a deal is moved between stages,
won, or lost with a reason. Kanban and list views, tasks and offers come later.

Who may see a deal: the same branch rule as leads (`crm_core.leads.may_see`). Functions take the caller's
`AsyncSession`, never commit, and audit each change in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_core import custom_fields, defaults, scoring
from crm_core.classifiers import is_active_code
from crm_core.funnel_model import Deal, Pipeline, Stage
from crm_core.leads import (
    CURRENCIES,
    LeadStatus,
    check_owner,
    check_product,
    get_lead,
    may_see,
    parse_amount,
)
from crm_core.models import Contact, Lead
from switchboard import audit
from switchboard.accounts_model import User
from switchboard.audit import Actor, AuditAction
from switchboard.db import utcnow
from switchboard.errors import N_, Conflict, Forbidden, Invalid, NotFound
from switchboard.permissions import Role

AUDITED = (
    "stage_id",
    "status",
    "amount",
    "currency",
    "product",
    "owner_id",
    "lost_reason",
    "closed_at",
    "custom",
)


@dataclass(frozen=True)
class StageView:
    id: int
    pipeline_id: int
    name: str
    position: int
    probability: int
    kind: str  # open, won, lost


@dataclass(frozen=True)
class PipelineView:
    id: int
    name: str
    is_default: bool
    stages: list[StageView]


@dataclass(frozen=True)
class DealView:
    id: int
    contact_id: int
    contact_name: str
    lead_id: int | None
    pipeline_id: int
    stage_id: int
    stage_name: str
    probability: int
    amount: Decimal | None
    currency: str
    product: str | None
    owner_id: int | None
    owner_name: str | None
    branch_id: int | None
    status: str  # open, won, lost
    lost_reason: str | None
    closed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    custom: dict[str, Any] = field(default_factory=dict)  # admin-defined fields' values, by key

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, dt.datetime):
                value = value.isoformat()
            elif isinstance(value, Decimal):
                value = str(value)
            out[name] = value
        return out


def may_see_deal(role: Role | str, user_id: int, branch_id: int | None, deal: DealView) -> bool:
    return may_see(role, user_id, branch_id, deal.owner_id, deal.branch_id)


# --- pipelines --------------------------------------------------------------------------------------------


def _stage(row: Stage) -> StageView:
    return StageView(row.id, row.pipeline_id, row.name, row.position, row.probability, row.kind)


async def get_pipeline(session: AsyncSession, pipeline_id: int) -> PipelineView | None:
    pipeline = await session.get(Pipeline, pipeline_id)
    if pipeline is None:
        return None
    rows = await session.scalars(
        select(Stage).where(Stage.pipeline_id == pipeline_id).order_by(Stage.position, Stage.id)
    )
    return PipelineView(pipeline.id, pipeline.name, pipeline.is_default, [_stage(r) for r in rows])


async def pipelines(session: AsyncSession) -> list[PipelineView]:
    ids = await session.scalars(select(Pipeline.id).order_by(Pipeline.is_default.desc(), Pipeline.name))
    out = [await get_pipeline(session, pid) for pid in list(ids)]
    return [p for p in out if p is not None]


async def default_pipeline(session: AsyncSession) -> PipelineView:
    """The pipeline converted leads go to: the one marked default, else the oldest; with none at all
    (a database emptied by hand) the day-one "Credit" pipeline is made again."""
    pipeline_id = await session.scalar(
        select(Pipeline.id).order_by(Pipeline.is_default.desc(), Pipeline.id).limit(1)
    )
    if pipeline_id is None:
        row = Pipeline(name=defaults.DEFAULT_PIPELINE, is_default=True)
        session.add(row)
        await session.flush()
        for i, (name, probability, kind) in enumerate(defaults.DEFAULT_STAGES):
            session.add(
                Stage(pipeline_id=row.id, name=name, position=i * 10, probability=probability, kind=kind)
            )
        await session.flush()
        pipeline_id = row.id
    found = await get_pipeline(session, pipeline_id)
    assert found is not None
    return found


# --- deals ------------------------------------------------------------------------------------------------

_OWNER = aliased(User)


async def get_deal(session: AsyncSession, deal_id: int, *, lock: bool = False) -> DealView | None:
    if lock and await session.scalar(select(Deal.id).where(Deal.id == deal_id).with_for_update()) is None:
        return None
    row = (
        await session.execute(
            select(Deal, Stage, Contact, _OWNER.full_name, _OWNER.username)
            .join(Stage, Stage.id == Deal.stage_id)
            .join(Contact, Contact.id == Deal.contact_id)
            .outerjoin(_OWNER, _OWNER.id == Deal.owner_id)
            .where(Deal.id == deal_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is None:
        return None
    deal: Deal = row[0]
    stage: Stage = row[1]
    return DealView(
        id=deal.id,
        contact_id=deal.contact_id,
        contact_name=row[2].display_name,
        lead_id=deal.lead_id,
        pipeline_id=deal.pipeline_id,
        stage_id=deal.stage_id,
        stage_name=stage.name,
        probability=stage.probability,
        amount=deal.amount,
        currency=deal.currency,
        product=deal.product,
        owner_id=deal.owner_id,
        owner_name=(row[3] or row[4]) if deal.owner_id is not None else None,
        branch_id=deal.branch_id,
        status=deal.status,
        lost_reason=deal.lost_reason,
        closed_at=deal.closed_at,
        created_at=deal.created_at,
        updated_at=deal.updated_at,
        custom=dict(deal.custom or {}),
    )


def _snapshot(deal: DealView) -> dict[str, Any]:
    return {name: getattr(deal, name) for name in AUDITED}


async def _record(
    session: AsyncSession, actor: Actor, deal_id: int, before: DealView | None, detail: str
) -> DealView:
    after = await get_deal(session, deal_id)
    assert after is not None
    changes = audit.diff(_snapshot(before) if before else {}, _snapshot(after))
    if "status" in changes and after.lead_id is not None:  # won, lost or reopened: the model learns it
        await scoring.note_outcome(session, after.lead_id, after.status)
    if changes or before is None:
        await audit.record_change(
            session,
            actor,
            module="deals",
            action=AuditAction.UPDATE if before else AuditAction.CREATE,
            record_type="deal",
            record_id=deal_id,
            changes=changes,
            detail=detail,
        )
    return after


async def convert_lead(
    session: AsyncSession, lead_id: int, *, by_user_id: int | None, actor: Actor | None = None
) -> DealView:
    """Make the lead a deal in the default pipeline's first stage, carrying its contact, product, amount,
    owner (else the converting person) and branch; the lead becomes "converted". A converted lead
    returns its deal: converting twice makes one deal. Junk is revived before it converts (409)."""
    actor = actor or Actor(user_id=by_user_id, username=None)
    lead = await get_lead(session, lead_id, lock=True)
    if lead is None:
        raise NotFound(N_("No such lead."))
    if lead.deal_id is not None:
        existing = await get_deal(session, lead.deal_id)
        assert existing is not None
        return existing
    if lead.status == LeadStatus.JUNK:
        raise Conflict(N_("A junk lead cannot be converted; put it back in work first."), field="status")
    pipeline = await default_pipeline(session)
    first = next((s for s in pipeline.stages if s.kind == "open"), None)
    if first is None:
        raise Conflict(N_("The default pipeline has no open stage."), field="pipeline_id")
    owner_id = lead.owner_id if lead.owner_id is not None else by_user_id
    deal = Deal(
        contact_id=lead.contact_id,
        lead_id=lead.id,
        pipeline_id=pipeline.id,
        stage_id=first.id,
        amount=lead.amount,
        currency=lead.currency,
        product=lead.product,
        owner_id=owner_id,
        branch_id=lead.effective_branch_id,
        status="open",
    )
    session.add(deal)
    await session.flush()
    now = utcnow()
    values: dict[str, Any] = {"status": LeadStatus.CONVERTED.value, "updated_at": now}
    if lead.owner_id is None and owner_id is not None:
        values["owner_id"] = owner_id
    await session.execute(
        update(Lead).where(Lead.id == lead.id).values(**values).execution_options(synchronize_session=False)
    )
    await audit.record_change(
        session,
        actor,
        module="leads",
        action=AuditAction.UPDATE,
        record_type="lead",
        record_id=lead.id,
        changes=audit.diff({"status": lead.status}, {"status": LeadStatus.CONVERTED.value}),
        detail=f"converted to deal {deal.id}",
    )
    return await _record(session, actor, deal.id, None, f"from lead {lead.id}")


async def _locked(session: AsyncSession, deal_id: int) -> DealView:
    deal = await get_deal(session, deal_id, lock=True)
    if deal is None:
        raise NotFound(N_("No such deal."))
    return deal


async def _stage_of(session: AsyncSession, deal: DealView, stage_id: Any) -> Stage:
    if isinstance(stage_id, str) and stage_id.isdigit() and len(stage_id) < 11:
        stage_id = int(stage_id)
    if isinstance(stage_id, bool) or not isinstance(stage_id, int):
        raise Invalid(N_("Choose a stage."), field="stage_id")
    stage = await session.get(Stage, stage_id)
    if stage is None or stage.pipeline_id != deal.pipeline_id:
        raise Invalid(N_("This stage is not in the deal's pipeline."), field="stage_id")
    return stage


async def _closing_stage(session: AsyncSession, deal: DealView, kind: str) -> Stage:
    stage = await session.scalar(
        select(Stage)
        .where(Stage.pipeline_id == deal.pipeline_id, Stage.kind == kind)
        .order_by(Stage.position)
        .limit(1)
    )
    if stage is None:
        raise Conflict(N_("This pipeline has no stage for it."), field="stage_id")
    return stage


async def _set(session: AsyncSession, deal_id: int, **values: Any) -> None:
    await session.execute(
        update(Deal)
        .where(Deal.id == deal_id)
        .values(**values, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def move_deal(session: AsyncSession, actor: Actor, deal_id: int, stage_id: Any) -> DealView:
    """Put the deal in another stage of its pipeline. An open stage reopens a won or lost deal; a won
    stage wins it; a lost stage needs `lose` (it needs a reason)."""
    deal = await _locked(session, deal_id)
    stage = await _stage_of(session, deal, stage_id)
    if stage.id == deal.stage_id:
        return deal
    if stage.kind == "lost":
        raise Invalid(N_("Say why the deal was lost."), field="lost_reason")
    if stage.kind == "won":
        await _set(session, deal_id, stage_id=stage.id, status="won", closed_at=utcnow(), lost_reason=None)
    else:
        await _set(session, deal_id, stage_id=stage.id, status="open", closed_at=None, lost_reason=None)
    return await _record(session, actor, deal_id, deal, "move")


async def win(session: AsyncSession, actor: Actor, deal_id: int) -> DealView:
    """The credit was granted: the deal goes to its pipeline's won stage. Won already: unchanged."""
    deal = await _locked(session, deal_id)
    if deal.status == "won":
        return deal
    stage = await _closing_stage(session, deal, "won")
    await _set(session, deal_id, stage_id=stage.id, status="won", closed_at=utcnow(), lost_reason=None)
    return await _record(session, actor, deal_id, deal, "win")


async def lose(session: AsyncSession, actor: Actor, deal_id: int, reason: Any) -> DealView:
    """The deal is lost for `reason`, an active `loss_reason` classifier code."""
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid(N_("Say why the deal was lost."), field="lost_reason")
    reason = reason.strip()
    if not await is_active_code(session, "loss_reason", reason):
        raise Invalid(N_("Choose a reason from the list."), field="lost_reason")
    deal = await _locked(session, deal_id)
    if deal.status == "lost" and deal.lost_reason == reason:
        return deal
    stage = await _closing_stage(session, deal, "lost")
    await _set(session, deal_id, stage_id=stage.id, status="lost", closed_at=utcnow(), lost_reason=reason)
    return await _record(session, actor, deal_id, deal, "lose")


async def update_deal(
    session: AsyncSession, actor: Actor, role: Role | str, deal_id: int, changes: dict[str, Any]
) -> DealView:
    """Change amount, currency, product, owner (supervisors and admins only) or the admin-defined fields
    (`custom`: those sent change, the others keep their value)."""
    deal = await _locked(session, deal_id)
    values: dict[str, Any] = {}
    for name in changes:
        if name not in ("amount", "currency", "product", "owner_id", "custom"):
            raise Invalid(N_("Unknown field."), field=name)
    if "amount" in changes:
        values["amount"] = parse_amount(changes["amount"])
    if "currency" in changes:
        currency = str(changes["currency"] or "MDL").strip().upper()
        if currency not in CURRENCIES:
            raise Invalid(N_("Unknown currency."), field="currency")
        values["currency"] = currency
    if "product" in changes:
        values["product"] = await check_product(session, changes["product"])
    if "owner_id" in changes:
        owner_id = await check_owner(session, changes["owner_id"])
        if owner_id != deal.owner_id and role not in (Role.ADMIN, Role.SUPERVISOR):
            raise Forbidden(
                N_("Only a supervisor or an administrator may change this field."), field="owner_id"
            )
        values["owner_id"] = owner_id
    if "custom" in changes:
        defs = await custom_fields.definitions(session, "deal")
        values["custom"] = custom_fields.validate(defs, changes["custom"], current=deal.custom, partial=True)
    if values:
        await _set(session, deal_id, **values)
    return await _record(session, actor, deal_id, deal, "edit")
