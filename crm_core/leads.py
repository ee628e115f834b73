"""Leads: a customer's request (product, amount, term, the branch they chose) with where they came from
(channel, campaign, UTM, referrer, landing page — read-only, recorded on first contact), worked through
new → in work → qualified, and either converted into a deal (`crm_core.funnel.convert_lead`, the only way
to "converted") or dropped as junk with a reason.

Who may see a lead: admins all; supervisors the leads of their branch; agents their own and their
branch's. A lead's branch is the one the customer chose, else its contact's; a lead of no branch belongs
to every branch, as an unassigned conversation does. Score and owner are for supervisors and admins.

Functions take the caller's `AsyncSession`, never commit, and audit changes in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_core import custom_fields, scoring
from crm_core.classifiers import is_active_code
from crm_core.funnel_model import Deal
from crm_core.models import Contact, Lead
from switchboard import audit
from switchboard.accounts_model import Branch, User
from switchboard.audit import Actor, AuditAction
from switchboard.db import utcnow
from switchboard.errors import N_, Conflict, Forbidden, Invalid, NotFound
from switchboard.permissions import Role

MAX_AMOUNT = Decimal("10000000")
MAX_TERM = 360
MAX_SCORE = 100
MAX_CAMPAIGN = 200
CURRENCIES = ("MDL", "EUR", "USD")


class LeadStatus(StrEnum):
    NEW = "new"
    IN_WORK = "in_work"
    QUALIFIED = "qualified"
    CONVERTED = "converted"
    JUNK = "junk"


# Where a lead may go by hand. "converted" is reached only through `funnel.convert_lead` and is final.
TRANSITIONS: dict[LeadStatus, frozenset[LeadStatus]] = {
    LeadStatus.NEW: frozenset({LeadStatus.IN_WORK, LeadStatus.QUALIFIED, LeadStatus.JUNK}),
    LeadStatus.IN_WORK: frozenset({LeadStatus.NEW, LeadStatus.QUALIFIED, LeadStatus.JUNK}),
    LeadStatus.QUALIFIED: frozenset({LeadStatus.IN_WORK, LeadStatus.JUNK}),
    LeadStatus.JUNK: frozenset({LeadStatus.NEW, LeadStatus.IN_WORK}),
    LeadStatus.CONVERTED: frozenset(),
}
EDITABLE = (
    "status",
    "junk_reason",
    "product",
    "amount",
    "currency",
    "term_months",
    "branch_id",
    "campaign",
    "custom",  # the admin-defined fields (`crm_core.custom_fields`), checked on every write
)
MANAGER_ONLY = ("score", "owner_id")  # locked for agents
READ_ONLY = (
    "contact_id",
    "source_channel",
    "page_url",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "first_contact_at",
    "first_response_at",
    "created_at",
    "updated_at",
)
AUDITED = EDITABLE + MANAGER_ONLY


@dataclass(frozen=True)
class LeadView:
    id: int
    contact_id: int
    contact_name: str
    contact_branch_id: int | None
    source_channel: str
    campaign: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_content: str | None
    utm_term: str | None
    referrer: str | None
    page_url: str | None
    branch_id: int | None  # chosen by the customer
    branch_name: str | None
    product: str | None
    amount: Decimal | None
    currency: str
    term_months: int | None
    status: str
    junk_reason: str | None
    owner_id: int | None
    owner_name: str | None
    score: int
    first_contact_at: dt.datetime
    first_response_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
    deal_id: int | None  # the deal it was converted into
    custom: dict[str, Any] = field(default_factory=dict)  # admin-defined fields' values, by key

    @property
    def effective_branch_id(self) -> int | None:
        return self.branch_id if self.branch_id is not None else self.contact_branch_id

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


# --- who may see and change ----------------------------------------------------------------------------


def may_see(
    role: Role | str, user_id: int, branch_id: int | None, owner_id: int | None, record_branch: int | None
) -> bool:
    """The branch rule shared by leads and deals (see the module's docstring)."""
    try:
        role = Role(role)
    except ValueError:
        return False
    if role is Role.ADMIN:
        return True
    if role not in (Role.SUPERVISOR, Role.AGENT):
        return False
    if role is Role.AGENT and owner_id is not None and owner_id == user_id:
        return True
    if branch_id is None:
        return record_branch is None
    return record_branch in (None, branch_id)


def may_see_lead(role: Role | str, user_id: int, branch_id: int | None, lead: LeadView) -> bool:
    return may_see(role, user_id, branch_id, lead.owner_id, lead.effective_branch_id)


def locked_fields(role: Role | str) -> frozenset[str]:
    """Fields this role sees but may not change."""
    return frozenset() if role in (Role.ADMIN, Role.SUPERVISOR) else frozenset(MANAGER_ONLY)


# --- reading --------------------------------------------------------------------------------------------

_OWNER = aliased(User)


async def get_lead(session: AsyncSession, lead_id: int, *, lock: bool = False) -> LeadView | None:
    """One lead with its contact's name, owner, branch and deal, or None. `lock=True` holds the lead's
    row (PostgreSQL) until the transaction ends."""
    if lock and await session.scalar(select(Lead.id).where(Lead.id == lead_id).with_for_update()) is None:
        return None
    row = (
        await session.execute(
            select(Lead, Contact, _OWNER.full_name, _OWNER.username, Branch.name, Deal.id)
            .join(Contact, Contact.id == Lead.contact_id)
            .outerjoin(_OWNER, _OWNER.id == Lead.owner_id)
            .outerjoin(Branch, Branch.id == Lead.branch_id)
            .outerjoin(Deal, Deal.lead_id == Lead.id)
            .where(Lead.id == lead_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is None:
        return None
    lead: Lead = row[0]
    contact: Contact = row[1]
    return LeadView(
        id=lead.id,
        contact_id=lead.contact_id,
        contact_name=contact.display_name,
        contact_branch_id=contact.branch_id,
        source_channel=lead.source_channel,
        campaign=lead.campaign,
        utm_source=lead.utm_source,
        utm_medium=lead.utm_medium,
        utm_campaign=lead.utm_campaign,
        utm_content=lead.utm_content,
        utm_term=lead.utm_term,
        referrer=lead.referrer,
        page_url=lead.page_url,
        branch_id=lead.branch_id,
        branch_name=row[4],
        product=lead.product,
        amount=lead.amount,
        currency=lead.currency or "MDL",
        term_months=lead.term_months,
        status=lead.status,
        junk_reason=lead.junk_reason,
        owner_id=lead.owner_id,
        owner_name=(row[2] or row[3]) if lead.owner_id is not None else None,
        score=lead.score or 0,
        first_contact_at=lead.first_contact_at,
        first_response_at=lead.first_response_at,
        created_at=lead.created_at,
        updated_at=lead.updated_at,
        deal_id=row[5],
        custom=dict(lead.custom or {}),
    )


# --- validation -----------------------------------------------------------------------------------------


def parse_amount(value: Any, field: str = "amount") -> Decimal | None:
    """A positive amount of at most 10,000,000 with at most two decimals; "" and None clear it."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise Invalid(N_("Enter an amount such as 50000 or 12500.50."), field=field)
    try:
        amount = Decimal(str(value).strip().replace(" ", "").replace(",", "."))
    except InvalidOperation:
        raise Invalid(N_("Enter an amount such as 50000 or 12500.50."), field=field) from None
    if not amount.is_finite() or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise Invalid(N_("Enter an amount such as 50000 or 12500.50."), field=field)
    if amount <= 0 or amount > MAX_AMOUNT:
        raise Invalid(N_("The amount must be above 0 and at most %(max)s."), field=field, max="10 000 000")
    return amount.quantize(Decimal("0.01"))


def _int(value: Any, field: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value.strip()) < 11:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(N_("Enter a whole number."), field=field)
    if not low <= value <= high:
        raise Invalid(N_("Enter a number from %(min)s to %(max)s."), field=field, min=low, max=high)
    return value


def parse_term(value: Any, field: str = "term_months") -> int | None:
    """A loan term in whole months, 1 to `MAX_TERM`; "" and None clear it."""
    return _int(value, field, 1, MAX_TERM)


def _text(value: Any, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(N_("This field must be text."), field=field)
    value = " ".join(value.split())
    if len(value) > limit:
        raise Invalid(N_("At most %(n)s characters."), field=field, n=limit)
    return value or None


async def check_product(session: AsyncSession, value: Any, field: str = "product") -> str | None:
    code = _text(value, field, 50)
    if code is not None and not await is_active_code(session, "product", code):
        raise Invalid(N_("Choose a product from the list."), field=field)
    return code


async def check_owner(session: AsyncSession, value: Any, field: str = "owner_id") -> int | None:
    """A responsible expert: an active agent or supervisor."""
    owner_id = _int(value, field, 1, 2**31 - 1)
    if owner_id is None:
        return None
    user = await session.get(User, owner_id)
    if user is None or not user.active or user.role not in (Role.AGENT, Role.SUPERVISOR):
        raise Invalid(N_("The responsible expert must be an active agent or supervisor."), field=field)
    return owner_id


async def _branch(session: AsyncSession, value: Any) -> int | None:
    branch_id = _int(value, "branch_id", 1, 2**31 - 1)
    if branch_id is not None:
        branch = await session.get(Branch, branch_id)
        if branch is None or not branch.active:
            raise Invalid(N_("No such branch."), field="branch_id")
    return branch_id


def _same(value: Any) -> str:
    """A value as a form would send it: an agent's form echoing the locked score is not a change."""
    return "" if value is None else str(value).strip()


def _status(value: Any) -> LeadStatus:
    try:
        return LeadStatus(value)
    except ValueError:
        raise Invalid(N_("Unknown lead status."), field="status") from None


# --- changing -------------------------------------------------------------------------------------------


async def update_lead(
    session: AsyncSession, actor: Actor, role: Role | str, lead_id: int, changes: Mapping[str, Any]
) -> LeadView:
    """Change some of a lead's fields (only those given). Source and UTM fields are read-only; score and
    owner are for supervisors and admins (403 for agents); "junk" needs a `junk_reason`; "converted" is
    reached only by converting. Audited with the fields that changed."""
    before = await get_lead(session, lead_id, lock=True)
    if before is None:
        raise NotFound(N_("No such lead."))
    for name in changes:
        if name in READ_ONLY:
            raise Invalid(N_("This field cannot be changed."), field=name)
        if name not in EDITABLE and name not in MANAGER_ONLY:
            raise Invalid(N_("Unknown field."), field=name)
        if name in locked_fields(role) and _same(changes[name]) != _same(getattr(before, name)):
            raise Forbidden(N_("Only a supervisor or an administrator may change this field."), field=name)
    if before.status == LeadStatus.CONVERTED and changes.get("status", before.status) != before.status:
        raise Conflict(N_("A converted lead cannot change its status; work on its deal."), field="status")
    values: dict[str, Any] = {}
    if "product" in changes:
        values["product"] = await check_product(session, changes["product"])
    if "amount" in changes:
        values["amount"] = parse_amount(changes["amount"])
    if "currency" in changes:
        currency = _text(changes["currency"], "currency", 3) or "MDL"
        if currency.upper() not in CURRENCIES:
            raise Invalid(N_("Unknown currency."), field="currency")
        values["currency"] = currency.upper()
    if "term_months" in changes:
        values["term_months"] = _int(changes["term_months"], "term_months", 1, MAX_TERM)
    if "branch_id" in changes:
        values["branch_id"] = await _branch(session, changes["branch_id"])
    if "campaign" in changes:
        values["campaign"] = _text(changes["campaign"], "campaign", MAX_CAMPAIGN)
    if "score" in changes:
        values["score"] = _int(changes["score"], "score", 0, MAX_SCORE) or 0
    if "owner_id" in changes:
        values["owner_id"] = await check_owner(session, changes["owner_id"])
    if "custom" in changes:  # the fields sent change, the others keep their value (a form sends all)
        defs = await custom_fields.definitions(session, "lead")
        values["custom"] = custom_fields.validate(
            defs, changes["custom"], current=before.custom, partial=True
        )
    await _status_change(session, before, changes, values)
    snapshot_before = {name: getattr(before, name) for name in AUDITED}
    diff = audit.diff(snapshot_before, {**snapshot_before, **values})
    if diff:
        await session.execute(
            update(Lead)
            .where(Lead.id == lead_id)
            .values(**values, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        await audit.record_change(
            session,
            actor,
            module="leads",
            action=AuditAction.UPDATE,
            record_type="lead",
            record_id=lead_id,
            changes=diff,
        )
    # the rules rescore it; a score a manager set becomes their correction of the rules' points
    await scoring.recompute(session, lead_id, target=values["score"] if "score" in diff else None)
    after = await get_lead(session, lead_id)
    assert after is not None
    return after


async def _status_change(
    session: AsyncSession, before: LeadView, changes: Mapping[str, Any], values: dict[str, Any]
) -> None:
    current = LeadStatus(before.status) if before.status in set(LeadStatus) else LeadStatus.NEW
    target = _status(changes["status"]) if "status" in changes else current
    if target is not current:
        if target is LeadStatus.CONVERTED:
            raise Conflict(N_("Convert the lead to make it a deal; its status follows."), field="status")
        if target not in TRANSITIONS[current]:
            raise Conflict(N_("A lead cannot go from this status to that one."), field="status")
        values["status"] = target.value
    if target is LeadStatus.JUNK:
        reason = _text(changes.get("junk_reason", before.junk_reason), "junk_reason", 50)
        if reason is None:
            raise Invalid(N_("Say why this lead is junk."), field="junk_reason")
        if reason != before.junk_reason and not await is_active_code(session, "junk_reason", reason):
            raise Invalid(N_("Choose a reason from the list."), field="junk_reason")
        values["junk_reason"] = reason
    elif before.junk_reason is not None or changes.get("junk_reason"):
        values["junk_reason"] = None  # a reason belongs to junk only


async def note_first_response(session: AsyncSession, contact_id: int, at: dt.datetime) -> int:
    """The inbox's first agent reply to a customer: stamp it on the contact's leads that have none yet
    (an open lead, not converted or junk). Returns how many leads were stamped."""
    result = await session.execute(
        update(Lead)
        .where(
            Lead.contact_id == contact_id,
            Lead.first_response_at.is_(None),
            Lead.status.notin_((LeadStatus.CONVERTED.value, LeadStatus.JUNK.value)),
        )
        .values(first_response_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
