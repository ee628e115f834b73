"""What scoring knows of a lead: its request, source, branch, how complete its contact's profile is and how
much the customer engaged — read in one statement (lead joined to contact), for one lead, one contact's
leads or a batch, so both the rules and the learned model look at the same facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import Contact, Lead


@dataclass(frozen=True)
class Facts:
    product: str | None = None
    amount: Decimal | None = None
    currency: str = "MDL"
    term_months: int | None = None
    source_channel: str = ""
    utm_source: str | None = None
    utm_campaign: str | None = None
    campaign: str | None = None
    branch_id: int | None = None  # the one the customer chose, else the contact's
    has_phone: bool = False
    has_email: bool = False
    has_idnp: bool = False
    has_birth_date: bool = False
    contact_custom: Mapping[str, Any] = field(default_factory=dict)
    lead_custom: Mapping[str, Any] = field(default_factory=dict)
    replies: int = 0
    answered_calls: int = 0


@dataclass(frozen=True)
class LeadScoreRow:
    """A lead's facts with what is stored of its score now (to write only what changed)."""

    lead_id: int
    status: str
    score: int
    breakdown: list[dict[str, Any]]
    adjustment: int
    facts: Facts


_COLUMNS = (
    Lead.id,
    Lead.status,
    Lead.score,
    Lead.score_breakdown,
    Lead.score_adjustment,
    Lead.product,
    Lead.amount,
    Lead.currency,
    Lead.term_months,
    Lead.source_channel,
    Lead.utm_source,
    Lead.utm_campaign,
    Lead.campaign,
    Lead.branch_id,
    Lead.custom,
    Lead.customer_replies,
    Lead.answered_calls,
    Contact.branch_id.label("contact_branch_id"),
    Contact.phone,
    Contact.email,
    Contact.idnp,
    Contact.birth_date,
    Contact.custom.label("contact_custom"),
)


def query(where: ColumnElement[bool]) -> Select[Any]:
    return select(*_COLUMNS).join(Contact, Contact.id == Lead.contact_id).where(where).order_by(Lead.id)


def _row(r: Any) -> LeadScoreRow:
    facts = Facts(
        product=r.product,
        amount=r.amount,
        currency=r.currency or "MDL",
        term_months=r.term_months,
        source_channel=r.source_channel or "",
        utm_source=r.utm_source,
        utm_campaign=r.utm_campaign,
        campaign=r.campaign,
        branch_id=r.branch_id if r.branch_id is not None else r.contact_branch_id,
        has_phone=bool(r.phone),
        has_email=bool(r.email),
        has_idnp=bool(r.idnp),
        has_birth_date=r.birth_date is not None,
        contact_custom=r.contact_custom or {},
        lead_custom=r.custom or {},
        replies=r.customer_replies or 0,
        answered_calls=r.answered_calls or 0,
    )
    return LeadScoreRow(
        r.id, r.status, r.score or 0, list(r.score_breakdown or []), r.score_adjustment or 0, facts
    )


async def load(
    session: AsyncSession, where: ColumnElement[bool], *, limit: int | None = None
) -> list[LeadScoreRow]:
    statement = query(where)
    if limit is not None:
        statement = statement.limit(limit)
    return [_row(r) for r in await session.execute(statement)]
