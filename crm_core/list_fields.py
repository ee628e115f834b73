"""The fields a list of contacts, companies, leads or deals can show, filter and sort on: each record's own
columns, the related facts people expect on the row (a lead's contact name and phone, a deal's stage and
pipeline, the branch's and the responsible expert's names) and every custom field (`custom.<key>`).

Each field carries the SQL expression its filters and sorting compare (typed per kind: a custom number
or money is extracted from the JSON `custom` column as a number, a date as its ISO text, a boolean as a
boolean — the same SQL on SQLite and PostgreSQL) and what the row shows. The FROM clause every expression
refers to is `base(entity)`; `crm_core.list_views` adds the caller's visibility and the filters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Numeric, Select, Text, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from crm_core import classifiers, custom_fields, leads, profile
from crm_core.contacts_model import Company
from crm_core.custom_fields import FieldDef, FieldKind
from crm_core.funnel_model import Deal, Pipeline, Stage
from crm_core.models import Contact, Lead
from switchboard.accounts_model import Branch, User
from switchboard.errors import N_

ENTITIES = custom_fields.ENTITIES  # contact, company, lead, deal
Expr = Any  # a column, an ORM attribute or a SQL expression over `base(entity)`


class Kind(StrEnum):
    """What a field holds, which decides its operators and how a filter value is read."""

    TEXT = "text"
    NUMBER = "number"
    MONEY = "money"
    DATE = "date"
    DATETIME = "datetime"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    TAGS = "tags"  # a list of free words (a contact's segment tags)
    BOOLEAN = "boolean"


OPERATORS: dict[Kind, tuple[str, ...]] = {
    Kind.TEXT: ("eq", "ne", "contains", "starts", "in", "empty", "not_empty"),
    Kind.NUMBER: ("eq", "ne", "gt", "gte", "lt", "lte", "between", "empty", "not_empty"),
    Kind.MONEY: ("eq", "ne", "gt", "gte", "lt", "lte", "between", "empty", "not_empty"),
    Kind.DATE: ("eq", "ne", "gt", "gte", "lt", "lte", "between", "empty", "not_empty"),
    Kind.DATETIME: ("eq", "gt", "gte", "lt", "lte", "between", "empty", "not_empty"),
    Kind.CHOICE: ("eq", "ne", "in", "empty", "not_empty"),
    Kind.MULTI_CHOICE: ("contains", "empty", "not_empty"),
    Kind.TAGS: ("contains", "empty", "not_empty"),
    Kind.BOOLEAN: ("eq",),
}


@dataclass(frozen=True)
class Option:
    code: str
    label: str  # a msgid when the field's options are the hub's own words (`translate`)


@dataclass(frozen=True)
class ListField:
    name: str  # "first_name", "stage", "custom.income"
    label: str  # a msgid for core fields, the admin's label for custom ones
    kind: Kind
    expr: Expr  # what filters and sorting compare
    shown: Expr | None = None  # what the row shows when it differs (a name for an id)
    options: tuple[Option, ...] = ()
    translate: bool = False  # labels (and option labels) are msgids
    int_codes: bool = False  # a choice of record ids: values compare as integers
    default: bool = False  # one of the list's columns until the user picks others
    custom: FieldDef | None = None

    @property
    def operators(self) -> tuple[str, ...]:
        return OPERATORS[self.kind]

    @property
    def display_expr(self) -> Expr:
        return self.shown if self.shown is not None else self.expr

    def option_label(self, code: Any) -> str:
        wanted = str(code)
        return next((o.label for o in self.options if o.code == wanted), wanted)

    def as_json(self, translate: Any = None) -> dict[str, Any]:
        """For the filter builder; `translate` turns msgids into the caller's language."""

        def tr(text: str) -> str:
            return translate(text) if translate is not None and self.translate else text

        return {
            "name": self.name,
            "label": tr(self.label),
            "kind": self.kind.value,
            "operators": list(self.operators),
            "options": [{"code": o.code, "label": tr(o.label)} for o in self.options],
            "custom": self.custom is not None,
        }


# --- the FROM clause and the related tables ---------------------------------------------------------------

_CONTACT_BRANCH = aliased(Branch, name="contact_branch")
_CONTACT_OWNER = aliased(User, name="contact_owner")
_COMPANY_BRANCH = aliased(Branch, name="company_branch")
_LEAD_BRANCH = aliased(Branch, name="lead_branch")
_LEAD_OWNER = aliased(User, name="lead_owner")
_LEAD_DEAL = aliased(Deal, name="lead_deal")
_DEAL_BRANCH = aliased(Branch, name="deal_branch")
_DEAL_OWNER = aliased(User, name="deal_owner")


def root(entity: str) -> Any:
    """The record's table class (its `id` and `custom` columns)."""
    return {"contact": Contact, "company": Company, "lead": Lead, "deal": Deal}[entity]


def base(entity: str, *columns: ColumnElement[Any]) -> Select[Any]:
    """`SELECT columns FROM` the entity's table joined to what its fields and visibility rule read."""
    statement = select(*columns)
    if entity == "contact":
        return (
            statement.select_from(Contact)
            .outerjoin(_CONTACT_BRANCH, _CONTACT_BRANCH.id == Contact.branch_id)
            .outerjoin(_CONTACT_OWNER, _CONTACT_OWNER.id == Contact.owner_id)
        )
    if entity == "company":
        return statement.select_from(Company).outerjoin(
            _COMPANY_BRANCH, _COMPANY_BRANCH.id == Company.branch_id
        )
    if entity == "lead":
        return (
            statement.select_from(Lead)
            .join(Contact, Contact.id == Lead.contact_id)
            .outerjoin(_LEAD_BRANCH, _LEAD_BRANCH.id == Lead.branch_id)
            .outerjoin(_LEAD_OWNER, _LEAD_OWNER.id == Lead.owner_id)
            .outerjoin(_LEAD_DEAL, _LEAD_DEAL.lead_id == Lead.id)
        )
    return (
        statement.select_from(Deal)
        .join(Contact, Contact.id == Deal.contact_id)
        .join(Stage, Stage.id == Deal.stage_id)
        .join(Pipeline, Pipeline.id == Deal.pipeline_id)
        .outerjoin(_DEAL_BRANCH, _DEAL_BRANCH.id == Deal.branch_id)
        .outerjoin(_DEAL_OWNER, _DEAL_OWNER.id == Deal.owner_id)
    )


def _person(user: Any) -> ColumnElement[Any]:
    return func.coalesce(func.nullif(user.full_name, ""), user.username)


def _contact_name() -> ColumnElement[Any]:
    full = func.trim(Contact.first_name + " " + Contact.last_name)
    return func.coalesce(func.nullif(full, ""), Contact.phone, Contact.email, "")


# --- the options the choices pick from ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    branches: tuple[Option, ...]
    people: tuple[Option, ...]
    stages: tuple[Option, ...]
    pipelines: tuple[Option, ...]
    products: tuple[Option, ...]
    junk_reasons: tuple[Option, ...]
    loss_reasons: tuple[Option, ...]


async def _classifier(session: AsyncSession, kind: str, locale: str) -> tuple[Option, ...]:
    return tuple(
        Option(code, label) for code, label in (await classifiers.labels(session, kind, locale)).items()
    )


async def _options(session: AsyncSession, entity: str, locale: str) -> _Options:
    branches = tuple(
        Option(str(b.id), b.name) for b in await session.scalars(select(Branch).order_by(Branch.name))
    )
    people = tuple(
        Option(str(u.id), u.full_name or u.username)
        for u in await session.scalars(select(User).order_by(User.full_name, User.username))
    )
    stages: tuple[Option, ...] = ()
    pipelines: tuple[Option, ...] = ()
    if entity == "deal":
        rows = await session.execute(
            select(Stage.id, Stage.name, Pipeline.name)
            .join(Pipeline, Pipeline.id == Stage.pipeline_id)
            .order_by(Pipeline.id, Stage.position, Stage.id)
        )
        named = list(rows)
        several = len({pipeline for _, _, pipeline in named}) > 1
        stages = tuple(Option(str(i), f"{p}: {s}" if several else s) for i, s, p in named)
        pipelines = tuple(
            Option(str(p.id), p.name) for p in await session.scalars(select(Pipeline).order_by(Pipeline.id))
        )
    wants_products = entity in ("lead", "deal")
    return _Options(
        branches=branches,
        people=people,
        stages=stages,
        pipelines=pipelines,
        products=await _classifier(session, "product", locale) if wants_products else (),
        junk_reasons=await _classifier(session, "junk_reason", locale) if entity == "lead" else (),
        loss_reasons=await _classifier(session, "loss_reason", locale) if entity == "deal" else (),
    )


def _branch(column: Any, branch: Any, o: _Options, *, default: bool = False) -> ListField:
    """A record's branch: chosen among the branches, shown by name (`branch` is its joined alias)."""
    return ListField(
        "branch", N_("Branch"), Kind.CHOICE, column, shown=branch.name, options=o.branches,
        translate=True, int_codes=True, default=default,
    )  # fmt: skip


def _owner(column: Any, user: Any, o: _Options, *, default: bool = False) -> ListField:
    """A record's responsible expert: chosen among the people, shown by name (`user`: its joined alias)."""
    return ListField(
        "owner", N_("Responsible expert"), Kind.CHOICE, column, shown=_person(user), options=o.people,
        translate=True, int_codes=True, default=default,
    )  # fmt: skip


def _words(*codes: str) -> tuple[Option, ...]:
    """Options that are the hub's own words: the code is the msgid, capitalised."""
    return tuple(Option(code, code.replace("_", " ").capitalize()) for code in codes)


LEAD_STATUSES = _words(*(s.value for s in leads.LeadStatus))
DEAL_STATUSES = _words("open", "won", "lost")
CURRENCIES = tuple(Option(c, c) for c in leads.CURRENCIES)
COMPANY_SIZES = _words(*(s for s in profile.COMPANY_SIZES if s))


# --- the core fields of each entity -----------------------------------------------------------------------


def _contact_fields(o: _Options) -> list[ListField]:
    F = ListField
    return [
        F("id", N_("ID"), Kind.NUMBER, Contact.id, translate=True),
        F("name", N_("Name"), Kind.TEXT, _contact_name(), translate=True, default=True),
        F("first_name", N_("First name"), Kind.TEXT, Contact.first_name, translate=True),
        F("last_name", N_("Last name"), Kind.TEXT, Contact.last_name, translate=True),
        F("phone", N_("Phone"), Kind.TEXT, Contact.phone, translate=True, default=True),
        F("email", N_("E-mail"), Kind.TEXT, Contact.email, translate=True, default=True),
        F("idnp", N_("IDNP"), Kind.TEXT, Contact.idnp, translate=True, default=True),
        F("birth_date", N_("Birth date"), Kind.DATE, Contact.birth_date, translate=True),
        F("address", N_("Address"), Kind.TEXT, Contact.address, translate=True),
        F(
            "tags",
            N_("Tags"),
            Kind.TAGS,
            cast(Contact.tags, Text),
            shown=Contact.tags,
            translate=True,
            default=True,
        ),
        _branch(Contact.branch_id, _CONTACT_BRANCH, o),
        _owner(Contact.owner_id, _CONTACT_OWNER, o),
        F("language", N_("Language"), Kind.TEXT, Contact.language, translate=True),
        F("created_at", N_("Created"), Kind.DATETIME, Contact.created_at, translate=True),
        F("updated_at", N_("Updated"), Kind.DATETIME, Contact.updated_at, translate=True),
    ]


def _company_fields(o: _Options) -> list[ListField]:
    F = ListField
    return [
        F("id", N_("ID"), Kind.NUMBER, Company.id, translate=True),
        F("name", N_("Name"), Kind.TEXT, Company.name, translate=True, default=True),
        F("fiscal_code", N_("Fiscal code"), Kind.TEXT, Company.fiscal_code, translate=True, default=True),
        F("industry", N_("Industry"), Kind.TEXT, Company.industry, translate=True, default=True),
        F("size", N_("Size"), Kind.CHOICE, Company.size, options=COMPANY_SIZES, translate=True, default=True),
        F("address", N_("Address"), Kind.TEXT, Company.address, translate=True),
        _branch(Company.branch_id, _COMPANY_BRANCH, o, default=True),
        F("created_at", N_("Created"), Kind.DATETIME, Company.created_at, translate=True),
        F("updated_at", N_("Updated"), Kind.DATETIME, Company.updated_at, translate=True),
    ]


def _lead_fields(o: _Options) -> list[ListField]:
    F = ListField
    text = Kind.TEXT
    return [
        F("id", N_("ID"), Kind.NUMBER, Lead.id, translate=True, default=True),
        F("contact_name", N_("Contact"), text, _contact_name(), translate=True, default=True),
        F("contact_phone", N_("Contact phone"), text, Contact.phone, translate=True, default=True),
        F("contact_email", N_("Contact e-mail"), text, Contact.email, translate=True),
        F(
            "status",
            N_("Status"),
            Kind.CHOICE,
            Lead.status,
            options=LEAD_STATUSES,
            translate=True,
            default=True,
        ),
        F("source_channel", N_("Channel"), text, Lead.source_channel, translate=True, default=True),
        F("campaign", N_("Campaign"), text, Lead.campaign, translate=True),
        F("utm_source", "utm_source", text, Lead.utm_source),
        F("utm_medium", "utm_medium", text, Lead.utm_medium),
        F("utm_campaign", "utm_campaign", text, Lead.utm_campaign),
        F("utm_content", "utm_content", text, Lead.utm_content),
        F("utm_term", "utm_term", text, Lead.utm_term),
        F(
            "product",
            N_("Product"),
            Kind.CHOICE,
            Lead.product,
            options=o.products,
            translate=True,
            default=True,
        ),
        F("amount", N_("Requested amount"), Kind.MONEY, Lead.amount, translate=True, default=True),
        F("currency", N_("Currency"), Kind.CHOICE, Lead.currency, options=CURRENCIES, translate=True),
        F("term_months", N_("Term, months"), Kind.NUMBER, Lead.term_months, translate=True),
        F("score", N_("Score"), Kind.NUMBER, Lead.score, translate=True, default=True),
        _branch(Lead.branch_id, _LEAD_BRANCH, o),
        _owner(Lead.owner_id, _LEAD_OWNER, o, default=True),
        F(
            "junk_reason",
            N_("Junk reason"),
            Kind.CHOICE,
            Lead.junk_reason,
            options=o.junk_reasons,
            translate=True,
        ),
        F("deal_id", N_("Deal"), Kind.NUMBER, _LEAD_DEAL.id, translate=True),
        F("first_contact_at", N_("First contact"), Kind.DATETIME, Lead.first_contact_at, translate=True),
        F("first_response_at", N_("First response"), Kind.DATETIME, Lead.first_response_at, translate=True),
        F("created_at", N_("Created"), Kind.DATETIME, Lead.created_at, translate=True, default=True),
        F("updated_at", N_("Updated"), Kind.DATETIME, Lead.updated_at, translate=True),
    ]


def _deal_fields(o: _Options) -> list[ListField]:
    F = ListField
    return [
        F("id", N_("ID"), Kind.NUMBER, Deal.id, translate=True, default=True),
        F("contact_name", N_("Contact"), Kind.TEXT, _contact_name(), translate=True, default=True),
        F("contact_phone", N_("Contact phone"), Kind.TEXT, Contact.phone, translate=True, default=True),
        F(
            "pipeline",
            N_("Pipeline"),
            Kind.CHOICE,
            Deal.pipeline_id,
            shown=Pipeline.name,
            options=o.pipelines,
            translate=True,
            int_codes=True,
        ),
        F(
            "stage",
            N_("Stage"),
            Kind.CHOICE,
            Deal.stage_id,
            shown=Stage.name,
            options=o.stages,
            translate=True,
            int_codes=True,
            default=True,
        ),
        F("probability", N_("Probability, %"), Kind.NUMBER, Stage.probability, translate=True),
        F(
            "status",
            N_("Status"),
            Kind.CHOICE,
            Deal.status,
            options=DEAL_STATUSES,
            translate=True,
            default=True,
        ),
        F("amount", N_("Amount"), Kind.MONEY, Deal.amount, translate=True, default=True),
        F("currency", N_("Currency"), Kind.CHOICE, Deal.currency, options=CURRENCIES, translate=True),
        F(
            "product",
            N_("Product"),
            Kind.CHOICE,
            Deal.product,
            options=o.products,
            translate=True,
            default=True,
        ),
        _owner(Deal.owner_id, _DEAL_OWNER, o, default=True),
        _branch(Deal.branch_id, _DEAL_BRANCH, o),
        F(
            "lost_reason",
            N_("Loss reason"),
            Kind.CHOICE,
            Deal.lost_reason,
            options=o.loss_reasons,
            translate=True,
        ),
        F("lead_id", N_("Lead"), Kind.NUMBER, Deal.lead_id, translate=True),
        F("closed_at", N_("Closed"), Kind.DATETIME, Deal.closed_at, translate=True),
        F("created_at", N_("Created"), Kind.DATETIME, Deal.created_at, translate=True, default=True),
        F("updated_at", N_("Updated"), Kind.DATETIME, Deal.updated_at, translate=True),
    ]


# --- custom fields ----------------------------------------------------------------------------------------

_CUSTOM_KINDS = {
    FieldKind.TEXT: Kind.TEXT,
    FieldKind.NUMBER: Kind.NUMBER,
    FieldKind.MONEY: Kind.MONEY,
    FieldKind.DATE: Kind.DATE,
    FieldKind.CHOICE: Kind.CHOICE,
    FieldKind.MULTI_CHOICE: Kind.MULTI_CHOICE,
    FieldKind.BOOLEAN: Kind.BOOLEAN,
}


def custom_expr(column: Any, field: FieldDef) -> ColumnElement[Any]:
    """The custom value typed for comparison on either engine: numbers as floats, money (stored as exact
    decimal text) as NUMERIC, booleans as booleans, the rest as text: a multi-choice as the JSON text of
    its list, dates as ISO text (which sorts as dates do)."""
    value = column[field.key]
    if field.kind is FieldKind.NUMBER:
        return value.as_float()  # type: ignore[no-any-return]
    if field.kind is FieldKind.MONEY:
        return cast(value.as_string(), Numeric(18, 2))
    if field.kind is FieldKind.BOOLEAN:
        return value.as_boolean()  # type: ignore[no-any-return]
    return value.as_string()  # type: ignore[no-any-return]


def _custom_field(entity: str, field: FieldDef) -> ListField:
    return ListField(
        name=field.path,
        label=field.label,
        kind=_CUSTOM_KINDS[field.kind],
        expr=custom_expr(root(entity).custom, field),
        options=tuple(Option(o.code, o.label) for o in field.options),
        custom=field,
    )


# --- the catalog ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    """Every field of one entity's list, minus those hidden from the caller's role."""

    entity: str
    fields: tuple[ListField, ...]

    def get(self, name: str) -> ListField | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def default_columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.default)


_CORE = {"contact": _contact_fields, "company": _company_fields, "lead": _lead_fields, "deal": _deal_fields}


def core_names(entity: str) -> tuple[str, ...]:
    """The core field names of an entity (for the field-hiding admin page); no database needed."""
    empty = _Options((), (), (), (), (), (), ())
    return tuple(f.name for f in _CORE[custom_fields.check_entity(entity)](empty))


def core_labels(entity: str) -> dict[str, str]:
    empty = _Options((), (), (), (), (), (), ())
    return {f.name: f.label for f in _CORE[custom_fields.check_entity(entity)](empty)}


async def catalog(
    session: AsyncSession, entity: str, *, hidden: Collection[str] = (), locale: str = "ro"
) -> Catalog:
    """The entity's fields (core, then active custom ones in form order) without `hidden`."""
    custom_fields.check_entity(entity)
    core = _CORE[entity](await _options(session, entity, locale))
    custom = [_custom_field(entity, d) for d in await custom_fields.definitions(session, entity)]
    gone = set(hidden)
    return Catalog(entity, tuple(f for f in [*core, *custom] if f.name not in gone))


# --- showing a value --------------------------------------------------------------------------------------


def plain(field: ListField, value: Any) -> Any:
    """A row's value as a spreadsheet cell: numbers stay numbers, dates dates, the rest text (choices by
    label, booleans as ✓). Labels of the hub's own words stay msgids here; the web layer translates."""
    if value is None or value == "" or value == []:
        return ""
    if field.custom is not None:
        if field.kind in (Kind.NUMBER, Kind.MONEY):
            return Decimal(str(value)) if field.kind is Kind.MONEY else value
        if field.kind is Kind.DATE:
            try:
                return dt.date.fromisoformat(str(value))
            except ValueError:
                return str(value)
        return field.custom.display(value)
    if field.kind is Kind.TAGS:
        return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if field.kind is Kind.CHOICE and field.shown is None:
        return field.option_label(value)
    if field.kind is Kind.BOOLEAN:
        return "✓" if value else ""
    if isinstance(value, int | float | Decimal | dt.date):
        return value
    return str(value)


def as_text(value: Any) -> str:
    """A plain value as the page and the CSV show it."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
