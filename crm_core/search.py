"""The search box's CRM half: contacts, companies, leads and deals matching one query
(`crm_core.search_query`), each kind scoped by its own visibility rule and listed newest first.

`newest_matching(…)` runs a kind's select with the full-text condition on either engine (the index of
`crm_core.search_index`); the inbox uses it for messages (`inbox.search`), and the web view puts the
hits of both together. Functions take the caller's session and never write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import search_index
from crm_core.contacts_model import Company
from crm_core.field_visibility import contact_label_of
from crm_core.funnel_model import Deal
from crm_core.models import Contact, Lead
from crm_core.profile import visible_companies, visible_contacts
from crm_core.search_query import Query, fold
from switchboard.db import is_postgres
from switchboard.permissions import Role

MAX_QUERY = 200  # characters of one query
RECENT = 5000  # newest rows of a table looked through first (`newest_matching`)
RARE = 2000  # newest matches of a rare query taken from the index before the visibility rule
DEFAULT_LIMIT = 20  # hits per kind
MAX_LIMIT = 100
SNIPPET = 120  # characters of a snippet
OVERFETCH = 5  # times the page read when hits must also match on what the reader may see


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
    hidden: Mapping[str, frozenset[str]] = field(default_factory=dict)  # entity → fields hidden from the role

    def hides(self, entity: str) -> frozenset[str]:
        return self.hidden.get(entity, frozenset())


@dataclass(frozen=True)
class Hit:
    kind: Kind
    id: int
    title: str
    snippet: str
    link: str

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value}


def matches(session: AsyncSession, table: str, query: Query) -> ColumnElement[bool]:
    """The full-text condition "this row of `table` matches `query`" (not empty) on either engine, for the
    WHERE of a select from `table`: the stored `search_vector` on PostgreSQL, the FTS5 table's rowids on
    SQLite."""
    phones = table in search_index.PHONE_COLUMNS
    if is_postgres(session):
        vector: ColumnElement[Any] = literal_column(f"{table}.{search_index.PG_COLUMN}")
        return _ts_match(vector, query.tsquery(phones))
    fts = search_index.fts_table(table)
    rowids = (
        text(f"SELECT rowid FROM {fts} WHERE {fts} MATCH :match")
        .bindparams(match=query.fts5(phones))
        .columns(rowid=Integer)
    )
    return literal_column(f"{table}.id", Integer).in_(rowids)


def _ts_match(vector: ColumnElement[Any], tsquery: str) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = vector.bool_op("@@")(
        func.to_tsquery(literal_column("'simple'::regconfig"), tsquery)
    )
    return condition


async def newest_matching(
    session: AsyncSession, table: str, id_column: Any, query: Query, statement: Any, limit: int
) -> Sequence[Any]:
    """The rows of `statement` (a select from `table`, with its joins and visibility rule) matching
    `query`, newest `limit` first, fast whether the words are common or rare.

    On PostgreSQL, first among the newest RECENT rows only: a common word ("Rusu", "credit") fills the
    page there, and those are then exactly the newest hits of all. When it does not, the words are rare,
    so the GIN index lists the newest RARE matches (materialised, so the planner cannot trade it for a walk
    of the whole table on a guess) and the page is read from those by primary key."""
    ordered = statement.order_by(id_column.desc()).limit(limit)
    if not is_postgres(session):
        return (await session.execute(ordered.where(matches(session, table, query)))).all()
    threshold = await session.scalar(select(id_column).order_by(id_column.desc()).offset(RECENT - 1).limit(1))
    if threshold is not None:
        recent = ordered.where(matches(session, table, query), id_column >= threshold)
        rows = (await session.execute(recent)).all()
        if len(rows) >= limit:
            return rows
    found = (
        select(literal_column("id", Integer).label("id"))
        .select_from(text(table))
        .where(
            _ts_match(
                literal_column(search_index.PG_COLUMN), query.tsquery(table in search_index.PHONE_COLUMNS)
            )
        )
        .cte(f"{table}_found")
        .prefix_with("MATERIALIZED")
    )
    ids = list(await session.scalars(select(found.c.id).order_by(found.c.id.desc()).limit(RARE)))
    rows = (await session.execute(ordered.where(id_column.in_(ids)))).all() if ids else []
    if len(rows) >= limit or len(ids) < RARE:
        return rows
    # Common in old rows, rare in new ones, and most of the newest hidden from this viewer: every match.
    indexed = statement.join_from(id_column.class_, found, found.c.id == id_column).order_by(
        found.c.id.desc()
    )
    return (await session.execute(indexed.limit(limit))).all()


async def seen_matching(
    session: AsyncSession,
    table: str,
    id_column: Any,
    query: Query,
    statement: Any,
    limit: int,
    hidden: frozenset[str],
) -> list[Any]:
    """`newest_matching`, for a reader some of whose fields of `table` are hidden: a row is a hit only when
    the query matches what the reader may see of it (the first entity of each row), so a hidden phone or
    IDNP can neither find a record nor, excluded with `-`, drop one. The index is asked without the
    exclusions for a few pages, then each row is checked in Python (`Query.found_in`)."""
    unseen = search_index.hidden_columns(table, hidden)
    if not unseen:
        return list(await newest_matching(session, table, id_column, query, statement, limit))
    rows = await newest_matching(session, table, id_column, query.positive(), statement, limit * OVERFETCH)
    seen = [column for column in search_index.DOCUMENTS[table] if column not in unseen]
    phone = search_index.PHONE_COLUMNS.get(table)
    kept = []
    for row in rows:
        record = row[0]
        document = " ".join(str(getattr(record, column) or "") for column in seen)
        phones = [getattr(record, phone) or ""] if phone is not None and phone not in unseen else []
        if query.found_in(document, phones):
            kept.append(row)
    return kept[:limit]


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
    statement = select(Contact).where(visible_contacts(scope.role, scope.branch_id, scope.user_id))
    hidden = scope.hides("contact")
    found = await seen_matching(session, "contacts", Contact.id, query, statement, limit, hidden)
    rows = [row[0] for row in found]
    return [
        Hit(
            Kind.CONTACT,
            c.id,
            contact_label_of(c, hidden),
            _facts(hidden, phone=c.phone, email=c.email, idnp=c.idnp, address=c.address),
            f"/contacts/{c.id}",
        )
        for c in rows
    ]


async def _companies(session: AsyncSession, query: Query, scope: Scope, limit: int) -> list[Hit]:
    statement = select(Company).where(visible_companies(scope.role, scope.branch_id))
    hidden = scope.hides("company")
    found = await seen_matching(session, "companies", Company.id, query, statement, limit, hidden)
    rows = [row[0] for row in found]
    return [
        Hit(
            Kind.COMPANY,
            c.id,
            c.name if "name" not in hidden else f"#{c.id}",
            _facts(hidden, fiscal_code=c.fiscal_code, industry=c.industry, address=c.address),
            f"/contacts/companies/{c.id}",
        )
        for c in rows
    ]


async def _with_contact(
    session: AsyncSession,
    kind: Kind,
    model: Any,
    visible: ColumnElement[bool],
    query: Query,
    limit: int,
    hidden: frozenset[str],
    facts: Callable[[Any, frozenset[str]], str],
) -> list[Hit]:
    """Leads or deals matching the query, each shown as "#id customer" with its facts (`hidden`: the
    lead's or deal's fields hidden from the reader, `contact_name` / `contact_phone` among them)."""
    statement = select(model, Contact).join(Contact, Contact.id == model.contact_id).where(visible)
    rows = await seen_matching(session, model.__tablename__, model.id, query, statement, limit, hidden)
    as_contact = {"name"} if "contact_name" in hidden else set()
    as_contact |= {"phone"} if "contact_phone" in hidden else set()
    as_contact |= {"email"} if "contact_email" in hidden else set()
    return [
        Hit(
            kind,
            row.id,
            f"#{row.id} "
            + contact_label_of(contact, as_contact),
            facts(row, hidden),
            f"/{model.__tablename__}/{row.id}",
        )
        for row, contact in rows
    ]  # fmt: skip


def _facts(hidden: frozenset[str], **values: str | None) -> str:
    """A hit's snippet: the values of the fields the reader may see, by their list-field names."""
    return " · ".join(value for name, value in values.items() if value and name not in hidden)


def _lead_facts(lead: Lead, hidden: frozenset[str]) -> str:
    return _facts(
        hidden,
        source_channel=lead.source_channel,
        campaign=lead.campaign,
        utm_campaign=lead.utm_campaign,
        utm_source=lead.utm_source,
        product=lead.product,
        status=lead.status,
    )


def _deal_facts(deal: Deal, hidden: frozenset[str]) -> str:
    amount = f"{deal.amount} {deal.currency}" if deal.amount is not None else None
    return _facts(
        hidden, product=deal.product, amount=amount, status=deal.status, lost_reason=deal.lost_reason
    )


async def _leads(session: AsyncSession, query: Query, scope: Scope, limit: int) -> list[Hit]:
    hidden = scope.hides("lead")
    visible = visible_leads(scope)
    return await _with_contact(session, Kind.LEAD, Lead, visible, query, limit, hidden, _lead_facts)


async def _deals(session: AsyncSession, query: Query, scope: Scope, limit: int) -> list[Hit]:
    hidden = scope.hides("deal")
    visible = visible_deals(scope)
    return await _with_contact(session, Kind.DEAL, Deal, visible, query, limit, hidden, _deal_facts)
