"""The search box's CRM half: contacts, companies, leads and deals matching one query
(`crm_core.search_query`), each kind scoped by its own visibility rule and listed newest first.

`matching_ids(session, table, query)` is the full-text condition on either engine (the index of
`crm_core.search_index`); the inbox uses it for messages (`inbox.search`), and the web view puts the
hits of both together. Functions take the caller's session and never write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, false, func, literal_column, or_, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import search_index
from crm_core.contacts_model import Company
from crm_core.funnel_model import Deal
from crm_core.models import Contact, Lead
from crm_core.profile import visible_companies, visible_contacts
from crm_core.search_query import Query, fold
from switchboard.db import is_postgres
from switchboard.permissions import Role

MAX_QUERY = 200  # characters of one query
DEFAULT_LIMIT = 20  # hits per kind
MAX_LIMIT = 100
SNIPPET = 120  # characters of a snippet


class Kind(StrEnum):
    CONTACT = "contact"
    COMPANY = "company"
    LEAD = "lead"
    DEAL = "deal"
    MESSAGE = "message"


@dataclass(frozen=True)
class Scope:
    """Who is searching: the same three facts every visibility rule reads."""

    user_id: int
    role: Role
    branch_id: int | None


@dataclass(frozen=True)
class Hit:
    kind: Kind
    id: int
    title: str
    snippet: str
    link: str

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value}


def matching_ids(session: AsyncSession, table: str, query: Query) -> Any:
    """A select of the ids in `table` whose document matches `query` (not empty), for `id IN (…)`.
    The match runs on the table alone, so joins in the outer query never make its columns ambiguous."""
    if is_postgres(session):
        document: ColumnElement[Any] = literal_column(search_index.tsvector_sql(table))
        condition = document.bool_op("@@")(
            func.to_tsquery(literal_column("'simple'::regconfig"), query.tsquery())
        )
        # Materialised: otherwise the planner may walk the primary key newest first and compute the
        # document of every row until it has enough hits, instead of asking the GIN index once.
        found = (
            select(literal_column("id", Integer).label("id"))
            .select_from(text(table))
            .where(condition)
            .cte(f"{table}_found")
            .prefix_with("MATERIALIZED")
        )
        return select(found.c.id)
    fts = search_index.fts_table(table)
    return (
        text(f"SELECT rowid FROM {fts} WHERE {fts} MATCH :match")
        .bindparams(match=query.fts5())
        .columns(rowid=Integer)
    )


def snippet(text_: str, query: Query, width: int = SNIPPET) -> str:
    """A window of `text_` around the first word of the query found in it (folded), else its start."""
    flat = " ".join(text_.split())
    if len(flat) <= width:
        return flat
    folded = fold(flat)
    start = 0
    for group in query.must:
        for term in group:
            at = folded.find(term.tokens[0])
            if at >= 0:
                start = max(0, at - width // 3)
                break
        else:
            continue
        break
    piece = flat[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(flat) else "")


def visible_leads(scope: Scope) -> ColumnElement[bool]:
    """`crm_core.leads.may_see` as SQL, over `Lead` joined to its `Contact`."""
    branch = func.coalesce(Lead.branch_id, Contact.branch_id)
    return _branch_rule(scope, branch, Lead.owner_id)


def visible_deals(scope: Scope) -> ColumnElement[bool]:
    return _branch_rule(scope, Deal.branch_id, Deal.owner_id)


def _branch_rule(scope: Scope, branch: Any, owner: Any) -> ColumnElement[bool]:
    if scope.role is Role.ADMIN:
        return true()
    if scope.role not in (Role.SUPERVISOR, Role.AGENT):
        return false()
    in_branch = (
        branch.is_(None) if scope.branch_id is None else or_(branch.is_(None), branch == scope.branch_id)
    )
    if scope.role is Role.AGENT:
        return or_(owner == scope.user_id, in_branch)
    return in_branch


async def search(
    session: AsyncSession,
    query: Query,
    scope: Scope,
    *,
    kinds: Iterable[Kind] = (Kind.CONTACT, Kind.COMPANY, Kind.LEAD, Kind.DEAL),
    limit: int = DEFAULT_LIMIT,
) -> list[Hit]:
    """The CRM records matching `query` that `scope` may see, up to `limit` of each kind asked for,
    newest first within a kind. An empty query finds nothing."""
    if query.empty:
        return []
    limit = max(1, min(limit, MAX_LIMIT))
    wanted = set(kinds)
    hits: list[Hit] = []
    if Kind.CONTACT in wanted:
        hits += await _contacts(session, query, scope, limit)
    if Kind.COMPANY in wanted:
        hits += await _companies(session, query, scope, limit)
    if Kind.LEAD in wanted:
        hits += await _leads(session, query, scope, limit)
    if Kind.DEAL in wanted:
        hits += await _deals(session, query, scope, limit)
    return hits


async def _contacts(session: AsyncSession, query: Query, scope: Scope, limit: int) -> list[Hit]:
    rows = await session.scalars(
        select(Contact)
        .where(
            Contact.id.in_(matching_ids(session, "contacts", query)),
            visible_contacts(scope.role, scope.branch_id, scope.user_id),
        )
        .order_by(Contact.id.desc())
        .limit(limit)
    )
    return [
        Hit(
            Kind.CONTACT,
            c.id,
            c.display_name,
            " · ".join(x for x in (c.phone, c.email, c.idnp, c.address) if x),
            f"/contacts/{c.id}",
        )
        for c in rows
    ]


async def _companies(session: AsyncSession, query: Query, scope: Scope, limit: int) -> list[Hit]:
    rows = await session.scalars(
        select(Company)
        .where(
            Company.id.in_(matching_ids(session, "companies", query)),
            visible_companies(scope.role, scope.branch_id),
        )
        .order_by(Company.id.desc())
        .limit(limit)
    )
    return [
        Hit(
            Kind.COMPANY,
            c.id,
            c.name,
            " · ".join(x for x in (c.fiscal_code, c.industry, c.address) if x),
            f"/contacts/companies/{c.id}",
        )
        for c in rows
    ]


async def _leads(session: AsyncSession, query: Query, scope: Scope, limit: int) -> list[Hit]:
    rows = await session.execute(
        select(Lead, Contact)
        .join(Contact, Contact.id == Lead.contact_id)
        .where(Lead.id.in_(matching_ids(session, "leads", query)), visible_leads(scope))
        .order_by(Lead.id.desc())
        .limit(limit)
    )
    hits = []
    for lead, contact in rows:
        facts = (
            lead.source_channel,
            lead.campaign,
            lead.utm_campaign,
            lead.utm_source,
            lead.product,
            lead.status,
        )
        hits.append(
            Hit(
                Kind.LEAD,
                lead.id,
                f"#{lead.id} {contact.display_name}",
                " · ".join(x for x in facts if x),
                f"/leads/{lead.id}",
            )
        )
    return hits


async def _deals(session: AsyncSession, query: Query, scope: Scope, limit: int) -> list[Hit]:
    rows = await session.execute(
        select(Deal, Contact)
        .join(Contact, Contact.id == Deal.contact_id)
        .where(and_(Deal.id.in_(matching_ids(session, "deals", query)), visible_deals(scope)))
        .order_by(Deal.id.desc())
        .limit(limit)
    )
    hits = []
    for deal, contact in rows:
        amount = f"{deal.amount} {deal.currency}" if deal.amount is not None else None
        facts = (deal.product, amount, deal.status, deal.lost_reason)
        hits.append(
            Hit(
                Kind.DEAL,
                deal.id,
                f"#{deal.id} {contact.display_name}",
                " · ".join(x for x in facts if x),
                f"/deals/{deal.id}",
            )
        )
    return hits
