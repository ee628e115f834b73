"""List views: a filter over any field of contacts, companies, leads or deals (`crm_core.list_fields`,
custom fields included), a sort and the chosen columns, compiled to one SQL query that is always ANDed
with the caller's visibility rule; and saved views — named, owned, optionally shared with everyone
(supervisors and admins only), one of them each user's default per list.

Filters arrive as untrusted JSON: a list of `{"field", "op", "value"}`. `parse_filters` checks each
against the caller's catalog (a hidden field is unknown to it), the operator against the field's kind
and the value against its type, and raises `Invalid` naming the field. A saved view is read back through
the same checks, leniently: a condition on a field since hidden or removed is dropped, never applied.

Functions take the caller's session and never commit; saved-view changes are audited.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Numeric, and_, delete, false, func, literal, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from crm_core import custom_fields, list_fields, profile
from crm_core.list_fields import Catalog, Kind, ListField
from crm_core.list_views_model import MAX_VIEW_NAME, DefaultView, SavedView
from crm_core.search import Scope, visible_deals, visible_leads
from switchboard import audit
from switchboard.accounts_model import User
from switchboard.audit import Actor, AuditAction
from switchboard.errors import N_, Conflict, Invalid, NotFound
from switchboard.permissions import Role

MAX_CONDITIONS = 20
MAX_TEXT = 200  # characters of one filter value
MAX_LIST = 50  # values of one `in`
MAX_COLUMNS = 60
PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
MAX_VIEWS = 100  # saved views of one user per list
MAX_NUMBER = Decimal("1e15")
_NO_VALUE = ("empty", "not_empty")
_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y")
_TRUE = ("true", "1", "yes", "da", "да")
_FALSE = ("false", "0", "no", "nu", "нет")
SHARERS = (Role.ADMIN, Role.SUPERVISOR)


def visible(entity: str, scope: Scope) -> ColumnElement[bool]:
    """The caller's visibility rule for the entity's FROM clause (`list_fields.base`): admins all,
    supervisors and agents their branch's (and agents their own), as the record pages decide."""
    if entity == "contact":
        return profile.visible_contacts(scope.role, scope.branch_id, scope.user_id)
    if entity == "company":
        return profile.visible_companies(scope.role, scope.branch_id)
    if entity == "lead":
        return visible_leads(scope)
    if entity == "deal":
        return visible_deals(scope)
    return false()


# --- reading a filter -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any  # typed: str, Decimal, date, bool, int, a tuple for in / between, None for empty

    def as_json(self) -> dict[str, Any]:
        def plain(v: Any) -> Any:
            if isinstance(v, tuple):
                return [plain(x) for x in v]
            if isinstance(v, Decimal):
                return str(v)
            if isinstance(v, dt.date):
                return v.isoformat()
            return v

        out: dict[str, Any] = {"field": self.field, "op": self.op}
        if self.op not in _NO_VALUE:
            out["value"] = plain(self.value)
        return out


def _bad(field: ListField) -> Invalid:
    return Invalid(N_("Check the value of %(name)s."), field=field.name, name=field.name)


def _text(field: ListField, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise _bad(field)
    text = str(value).strip()
    if not text or len(text) > MAX_TEXT:
        raise _bad(field)
    return text


def _number(field: ListField, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise _bad(field)
    text = str(value).strip().replace("\u00a0", "").replace(" ", "")
    if "," in text:
        text = text.replace(",", "" if "." in text else ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _bad(field) from None
    if not number.is_finite() or abs(number) >= MAX_NUMBER:
        raise _bad(field)
    return number


def _date(field: ListField, value: Any) -> dt.date:
    if isinstance(value, str):
        for fmt in _DATE_FORMATS:
            try:
                day = dt.datetime.strptime(value.strip(), fmt).date()
            except ValueError:
                continue
            if dt.date(1900, 1, 1) <= day <= dt.date(2200, 12, 31):
                return day
    raise _bad(field)


def _boolean(field: ListField, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().casefold() if isinstance(value, str | int) else ""
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _bad(field)


def _choice(field: ListField, value: Any) -> str | int:
    code = _text(field, value)
    if field.options and code not in {o.code for o in field.options}:
        raise _bad(field)
    if field.int_codes:
        if not code.isdigit() or len(code) > 10:
            raise _bad(field)
        return int(code)
    return code


def _one(field: ListField, value: Any) -> Any:
    kind = field.kind
    if kind in (Kind.NUMBER, Kind.MONEY):
        return _number(field, value)
    if kind in (Kind.DATE, Kind.DATETIME):
        return _date(field, value)
    if kind is Kind.BOOLEAN:
        return _boolean(field, value)
    if kind in (Kind.CHOICE, Kind.MULTI_CHOICE):
        return _choice(field, value)
    return _text(field, value)


def _value(field: ListField, op: str, value: Any) -> Any:
    if op in _NO_VALUE:
        return None
    if op == "between":
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise _bad(field)
        low, high = _one(field, value[0]), _one(field, value[1])
        if low > high:
            raise _bad(field)
        return (low, high)
    if op == "in":
        if not isinstance(value, list | tuple) or not 0 < len(value) <= MAX_LIST:
            raise _bad(field)
        return tuple(dict.fromkeys(_one(field, v) for v in value))
    return _one(field, value)


def _condition(catalog: Catalog, raw: Any) -> Condition:
    if (
        not isinstance(raw, Mapping)
        or not isinstance(raw.get("field"), str)
        or not isinstance(raw.get("op"), str)
    ):
        raise Invalid(N_("Each condition needs a field, an operator and a value."), field="filters")
    name, op = raw["field"][:80], raw["op"][:20]
    field = catalog.get(name)
    if field is None:
        raise Invalid(N_("Unknown field: %(name)s."), field="filters", name=name)
    if op not in field.operators:
        raise Invalid(N_("The field %(name)s cannot be filtered with %(op)s."), field=name, name=name, op=op)
    return Condition(name, op, _value(field, op, raw.get("value")))


def parse_filters(catalog: Catalog, raw: Any, *, strict: bool = True) -> tuple[Condition, ...]:
    """Conditions from JSON. Strict (a request) refuses the first bad one; lenient (a saved view read
    back) drops the conditions that no longer fit the caller's catalog."""
    if raw is None or raw == "":
        return ()
    if not isinstance(raw, list):
        raise Invalid(N_("Filters must be a list of conditions."), field="filters")
    if len(raw) > MAX_CONDITIONS:
        raise Invalid(N_("At most %(n)s conditions."), field="filters", n=MAX_CONDITIONS)
    out: list[Condition] = []
    for item in raw:
        try:
            out.append(_condition(catalog, item))
        except Invalid:
            if strict:
                raise
    return tuple(out)


def parse_columns(catalog: Catalog, raw: Any, *, strict: bool = True) -> tuple[str, ...]:
    """The chosen columns (known to the catalog, each once); none chosen → the list's defaults."""
    if raw is None or raw == "" or raw == []:
        return catalog.default_columns
    if isinstance(raw, str):
        raw = [part for part in raw.split(",") if part]
    if not isinstance(raw, list) or len(raw) > MAX_COLUMNS:
        raise Invalid(N_("Choose the columns from the list."), field="columns")
    out: list[str] = []
    for name in raw:
        if not isinstance(name, str) or catalog.get(name) is None:
            if strict:
                raise Invalid(N_("Unknown field: %(name)s."), field="columns", name=str(name)[:80])
            continue
        if name not in out:
            out.append(name)
    return tuple(out) or catalog.default_columns


def parse_sort(catalog: Catalog, raw: Any, *, strict: bool = True) -> str:
    """`name` or `-name` (descending); empty is newest first."""
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, str) or catalog.get(raw.removeprefix("-")) is None:
        if strict:
            raise Invalid(N_("Unknown field: %(name)s."), field="sort", name=str(raw)[:80])
        return ""
    return raw


@dataclass(frozen=True)
class ListQuery:
    conditions: tuple[Condition, ...] = ()
    columns: tuple[str, ...] = ()
    sort: str = ""

    def filters_json(self) -> list[dict[str, Any]]:
        return [c.as_json() for c in self.conditions]


def parse_query(
    catalog: Catalog, filters: Any, columns: Any = None, sort: Any = None, *, strict: bool = True
) -> ListQuery:
    return ListQuery(
        parse_filters(catalog, filters, strict=strict),
        parse_columns(catalog, columns, strict=strict),
        parse_sort(catalog, sort, strict=strict),
    )


def loads_filters(text: str) -> Any:
    """A `filters=` query parameter (JSON) as data, or Invalid."""
    if not text:
        return []
    if len(text) > 20_000:
        raise Invalid(N_("Filters must be a list of conditions."), field="filters")
    try:
        return json.loads(text)
    except ValueError:
        raise Invalid(N_("Filters must be a list of conditions."), field="filters") from None


# --- compiling it -----------------------------------------------------------------------------------------


def _day(value: dt.date, plus: int = 0) -> dt.datetime:
    return dt.datetime.combine(value + dt.timedelta(days=plus), dt.time(), tzinfo=dt.UTC)


def _is_empty(field: ListField, e: ColumnElement[Any]) -> ColumnElement[bool]:
    if field.kind is Kind.TAGS:
        return or_(e.is_(None), e == "[]")
    if field.kind in (Kind.TEXT, Kind.CHOICE) and not field.int_codes:
        return or_(e.is_(None), e == "")
    return e.is_(None)


def _typed(field: ListField, value: Any) -> Any:
    """A parsed value as the expression compares it."""
    if field.kind in (Kind.NUMBER, Kind.MONEY):
        return literal(value, Numeric(20, 4))
    if field.kind is Kind.DATE and field.custom is not None:
        return value.isoformat()  # custom dates are ISO text
    return value


def compile_condition(field: ListField, c: Condition) -> ColumnElement[bool]:
    e: ColumnElement[Any] = field.expr
    op, value = c.op, c.value
    if op == "empty":
        return _is_empty(field, e)
    if op == "not_empty":
        return ~_is_empty(field, e)
    kind = field.kind
    if kind is Kind.BOOLEAN:
        return e.is_(True) if value else or_(e.is_(None), e.is_(False))
    if kind in (Kind.MULTI_CHOICE, Kind.TAGS):  # JSON text of a list: look for the quoted item
        return e.contains(json.dumps(str(value)), autoescape=True)
    if kind is Kind.TEXT:
        folded = func.lower(e)
        if op == "in":
            return folded.in_([str(v).lower() for v in value])
        word = str(value).lower()
        if op == "contains":
            return folded.contains(word, autoescape=True)
        if op == "starts":
            return folded.startswith(word, autoescape=True)
        return folded == word if op == "eq" else or_(e.is_(None), folded != word)
    if kind is Kind.DATETIME:  # a day in UTC
        if op == "between":
            return and_(e >= _day(value[0]), e < _day(value[1], 1))
        bounds = {
            "eq": and_(e >= _day(value), e < _day(value, 1)),
            "gt": e >= _day(value, 1),
            "gte": e >= _day(value),
            "lt": e < _day(value),
            "lte": e < _day(value, 1),
        }
        return bounds[op]
    if op == "between":
        return and_(e >= _typed(field, value[0]), e <= _typed(field, value[1]))
    if op == "in":
        return e.in_([_typed(field, v) for v in value])
    typed = _typed(field, value)
    compare: dict[str, ColumnElement[bool]] = {
        "eq": e == typed,
        "ne": or_(e.is_(None), e != typed),
        "gt": e > typed,
        "gte": e >= typed,
        "lt": e < typed,
        "lte": e <= typed,
    }
    return compare[op]


def where(catalog: Catalog, query: ListQuery) -> ColumnElement[bool]:
    clauses = []
    for c in query.conditions:
        field = catalog.get(c.field)
        if field is None:  # parse_filters checked it against this catalog
            raise Invalid(N_("Unknown field: %(name)s."), field="filters", name=c.field)
        clauses.append(compile_condition(field, c))
    return and_(true(), *clauses)


# --- reading the rows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: int
    cells: dict[str, Any]  # column name → plain value (`list_fields.plain`)


@dataclass(frozen=True)
class ListPage:
    rows: list[Row]
    total: int
    page: int
    pages: int
    page_size: int


def _statement(catalog: Catalog, query: ListQuery, scope: Scope, extra: ColumnElement[bool] | None) -> Any:
    table = list_fields.root(catalog.entity)
    shown = [catalog.get(name) for name in query.columns]
    core = [f for f in shown if f is not None and f.custom is None]
    statement = list_fields.base(
        catalog.entity, table.id, table.custom, *(f.display_expr.label(f"c_{i}") for i, f in enumerate(core))
    ).where(visible(catalog.entity, scope), where(catalog, query))
    if extra is not None:
        statement = statement.where(extra)
    return statement, core


def _ordered(catalog: Catalog, statement: Any, query: ListQuery) -> Any:
    table = list_fields.root(catalog.entity)
    if not query.sort:
        return statement.order_by(table.id.desc())
    field = catalog.get(query.sort.removeprefix("-"))
    assert field is not None  # parse_sort checked it
    key = field.display_expr if field.custom is None else field.expr
    if query.sort.startswith("-"):
        return statement.order_by(key.desc().nulls_last(), table.id.desc())
    return statement.order_by(key.asc().nulls_last(), table.id.asc())


def _rows(catalog: Catalog, query: ListQuery, core: list[ListField], result: Any) -> list[Row]:
    rows: list[Row] = []
    for record in result:
        by_name = {f.name: record[2 + i] for i, f in enumerate(core)}
        custom = record[1] if isinstance(record[1], dict) else {}
        cells: dict[str, Any] = {}
        for name in query.columns:
            field = catalog.get(name)
            if field is None:
                continue
            raw = custom.get(field.custom.key) if field.custom is not None else by_name.get(name)
            cells[name] = list_fields.plain(field, raw)
        rows.append(Row(record[0], cells))
    return rows


async def count(
    session: AsyncSession,
    catalog: Catalog,
    query: ListQuery,
    scope: Scope,
    *,
    extra: ColumnElement[bool] | None = None,
) -> int:
    statement, _ = _statement(catalog, query, scope, extra)
    return int(await session.scalar(select(func.count()).select_from(statement.subquery())) or 0)


async def fetch(
    session: AsyncSession,
    catalog: Catalog,
    query: ListQuery,
    scope: Scope,
    *,
    limit: int,
    offset: int = 0,
    extra: ColumnElement[bool] | None = None,
) -> list[Row]:
    """`limit` rows from `offset` of what the query matches and `scope` may see, in the query's order."""
    statement, core = _statement(catalog, query, scope, extra)
    result = await session.execute(_ordered(catalog, statement, query).limit(limit).offset(offset))
    return _rows(catalog, query, core, result)


async def stream(
    session: AsyncSession,
    catalog: Catalog,
    query: ListQuery,
    scope: Scope,
    *,
    limit: int,
    batch: int = 1000,
    extra: ColumnElement[bool] | None = None,
) -> AsyncIterator[list[Row]]:
    """Up to `limit` rows of what the query matches, in batches, from one query (a server-side cursor on
    PostgreSQL): an export reads one consistent result, without re-counting offsets or holding every row."""
    statement, core = _statement(catalog, query, scope, extra)
    result = await session.stream(_ordered(catalog, statement, query).limit(limit))
    async for chunk in result.partitions(batch):
        yield _rows(catalog, query, core, chunk)


async def page(
    session: AsyncSession,
    catalog: Catalog,
    query: ListQuery,
    scope: Scope,
    *,
    number: int = 1,
    page_size: int = PAGE_SIZE,
    extra: ColumnElement[bool] | None = None,
) -> ListPage:
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    total = await count(session, catalog, query, scope, extra=extra)
    pages = max(1, -(-total // page_size))
    number = min(max(1, number), pages)
    rows = await fetch(
        session, catalog, query, scope, limit=page_size, offset=(number - 1) * page_size, extra=extra
    )
    return ListPage(rows, total, number, pages, page_size)


# --- saved views ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ViewInput:
    name: str
    query: ListQuery
    shared: bool = False


@dataclass(frozen=True)
class View:
    id: int
    entity: str
    name: str
    owner_id: int
    owner_name: str
    shared: bool
    filters: list[dict[str, Any]]
    columns: list[str]
    sort: str
    is_default: bool

    def as_json(self, user_id: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "entity": self.entity,
            "name": self.name,
            "owner_id": self.owner_id,
            "owner_name": self.owner_name,
            "mine": self.owner_id == user_id,
            "shared": self.shared,
            "filters": self.filters,
            "columns": self.columns,
            "sort": self.sort,
            "is_default": self.is_default,
        }

    def query(self, catalog: Catalog) -> ListQuery:
        """The view as the caller may run it now (conditions on fields hidden since are dropped)."""
        return parse_query(catalog, self.filters, self.columns, self.sort, strict=False)


def parse_view(catalog: Catalog, scope: Scope, data: Mapping[str, Any]) -> ViewInput:
    """A view from the API or the page: name, filters, columns, sort, shared (supervisors, admins)."""
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_VIEW_NAME:
        raise Invalid(N_("A name must have 1 to %(n)s characters."), field="name", n=MAX_VIEW_NAME)
    shared = data.get("shared", False)
    if not isinstance(shared, bool):
        raise Invalid(N_("Choose yes or no."), field="shared")
    if shared and scope.role not in SHARERS:
        raise Invalid(N_("Only supervisors and administrators may share a view."), field="shared")
    query = parse_query(catalog, data.get("filters"), data.get("columns"), data.get("sort"))
    return ViewInput(" ".join(name.split()), query, shared)


def _snapshot(row: SavedView) -> dict[str, Any]:
    return {
        "name": row.name,
        "shared": row.shared,
        "filters": row.filters,
        "columns": row.columns,
        "sort": row.sort,
    }


async def _views(session: AsyncSession, scope: Scope, entity: str, view_id: int | None = None) -> list[View]:
    default = await session.scalar(
        select(DefaultView.view_id).where(DefaultView.user_id == scope.user_id, DefaultView.entity == entity)
    )
    statement = (
        select(SavedView, User.full_name, User.username)
        .join(User, User.id == SavedView.owner_id)
        .where(
            SavedView.entity == entity, or_(SavedView.owner_id == scope.user_id, SavedView.shared.is_(True))
        )
        .order_by(SavedView.name, SavedView.id)
    )
    if view_id is not None:
        statement = statement.where(SavedView.id == view_id)
    return [
        View(
            id=row.id,
            entity=row.entity,
            name=row.name,
            owner_id=row.owner_id,
            owner_name=full_name or username,
            shared=row.shared,
            filters=list(row.filters or []),
            columns=list(row.columns or []),
            sort=row.sort or "",
            is_default=row.id == default,
        )
        for row, full_name, username in await session.execute(statement)
    ]


async def list_views(session: AsyncSession, scope: Scope, entity: str) -> list[View]:
    """The caller's own views of `entity` and those shared with everyone, by name."""
    return await _views(session, scope, custom_fields.check_entity(entity))


async def get_view(session: AsyncSession, scope: Scope, view_id: int) -> View:
    """One view the caller may use (their own or a shared one); NotFound otherwise."""
    entity = await session.scalar(select(SavedView.entity).where(SavedView.id == view_id))
    found = await _views(session, scope, entity, view_id) if entity is not None else []
    if not found:
        raise NotFound(N_("No such view."))
    return found[0]


async def _own_row(session: AsyncSession, scope: Scope, view_id: int) -> SavedView:
    """A view the caller may change: their own, or (admins) a shared one."""
    row = await session.get(SavedView, view_id)
    if row is None or not (row.owner_id == scope.user_id or (row.shared and scope.role is Role.ADMIN)):
        raise NotFound(N_("No such view."))
    return row


async def _check_name(
    session: AsyncSession, owner_id: int, entity: str, name: str, view_id: int | None
) -> None:
    taken = await session.scalar(
        select(SavedView.id).where(
            SavedView.owner_id == owner_id, SavedView.entity == entity, SavedView.name == name
        )
    )
    if taken is not None and taken != view_id:
        raise Conflict(N_("You have a view with this name."), field="name")


async def create_view(session: AsyncSession, actor: Actor, scope: Scope, entity: str, p: ViewInput) -> View:
    await _check_name(session, scope.user_id, entity, p.name, None)
    mine = await session.scalar(
        select(func.count())
        .select_from(SavedView)
        .where(SavedView.owner_id == scope.user_id, SavedView.entity == entity)
    )
    if (mine or 0) >= MAX_VIEWS:
        raise Invalid(N_("At most %(n)s views per list."), field="name", n=MAX_VIEWS)
    row = SavedView(
        entity=entity,
        name=p.name,
        owner_id=scope.user_id,
        shared=p.shared,
        filters=p.query.filters_json(),
        columns=list(p.query.columns),
        sort=p.query.sort,
    )
    session.add(row)
    await session.flush()
    await audit.record_change(
        session,
        actor,
        module="crm",
        action=AuditAction.CREATE,
        record_type="saved_view",
        record_id=row.id,
        changes=audit.diff({}, {"entity": entity, **_snapshot(row)}),
    )
    return await get_view(session, scope, row.id)


async def update_view(session: AsyncSession, actor: Actor, scope: Scope, view_id: int, p: ViewInput) -> View:
    row = await _own_row(session, scope, view_id)
    if p.shared and scope.role not in SHARERS:
        raise Invalid(N_("Only supervisors and administrators may share a view."), field="shared")
    await _check_name(session, row.owner_id, row.entity, p.name, row.id)
    before = _snapshot(row)
    row.name, row.shared, row.sort = p.name, p.shared, p.query.sort
    row.filters, row.columns = p.query.filters_json(), list(p.query.columns)
    await session.flush()
    changes = audit.diff(before, _snapshot(row))
    if changes:
        await audit.record_change(
            session,
            actor,
            module="crm",
            action=AuditAction.UPDATE,
            record_type="saved_view",
            record_id=row.id,
            changes=changes,
        )
    return await get_view(session, scope, row.id)


async def delete_view(session: AsyncSession, actor: Actor, scope: Scope, view_id: int) -> None:
    row = await _own_row(session, scope, view_id)
    before = {"entity": row.entity, **_snapshot(row)}
    await session.execute(delete(DefaultView).where(DefaultView.view_id == row.id))
    await session.delete(row)
    await session.flush()
    await audit.record_change(
        session,
        actor,
        module="crm",
        action=AuditAction.DELETE,
        record_type="saved_view",
        record_id=view_id,
        changes=audit.diff(before, {}),
    )


async def set_default(session: AsyncSession, scope: Scope, entity: str, view_id: int | None) -> None:
    """Make a view (own or shared) the caller's default for `entity`; None clears it."""
    await session.execute(
        delete(DefaultView).where(DefaultView.user_id == scope.user_id, DefaultView.entity == entity)
    )
    if view_id is not None:
        view = await get_view(session, scope, view_id)
        if view.entity != entity:
            raise NotFound(N_("No such view."))
        session.add(DefaultView(user_id=scope.user_id, entity=entity, view_id=view_id))
    await session.flush()


async def default_view(session: AsyncSession, scope: Scope, entity: str) -> View | None:
    return next((v for v in await _views(session, scope, entity) if v.is_default), None)


def value_text(value: Any, translate: Any = None, field: ListField | None = None) -> str:
    """A cell as text for the page and the CSV (core options in the caller's language)."""
    translatable = field is not None and field.translate and field.kind is Kind.CHOICE and field.shown is None
    if translatable and translate is not None and isinstance(value, str) and value:
        return str(translate(value))
    return list_fields.as_text(value)
