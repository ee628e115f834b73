"""Scoring rules: what an admin says a lead is worth — points (negative too) when its product, amount, term,
source, campaign or branch is one of some values, when its contact's profile has a phone, an e-mail, an
IDNP, a birth date or a custom field filled, or when the customer replied / answered a call at least N
times. `evaluate` is pure: the active rules, in position order, against a lead's `Facts`.

Rules are deactivated, never deleted: a lead's breakdown keeps naming the rules that gave its points.
Functions take the caller's session, never commit, and audit changes in the same transaction."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from crm_core import custom_fields, defaults
from crm_core.classifiers import is_active_code
from crm_core.scoring_facts import Facts
from crm_core.scoring_model import MAX_RULE_NAME, ScoringRule
from switchboard import audit
from switchboard.accounts_model import Branch
from switchboard.audit import Actor, AuditAction
from switchboard.errors import N_, Invalid, NotFound

MAX_POINTS = 100
MAX_VALUES = 50
MAX_VALUE = 200
MAX_COUNT = 1000
MAX_RANGE_AMOUNT = Decimal("10000000")
CURRENCIES = ("MDL", "EUR", "USD")
_CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_CACHE = "crm_core.scoring_rules.active"
AUDITED = ("name", "kind", "params", "points", "active", "position")


class RuleKind(StrEnum):
    PRODUCT = "product"
    AMOUNT = "amount"
    TERM = "term"
    SOURCE_CHANNEL = "source_channel"
    UTM_SOURCE = "utm_source"
    CAMPAIGN = "campaign"
    BRANCH = "branch"
    COMPLETENESS = "completeness"
    REPLIES = "replies"
    ANSWERED_CALLS = "answered_calls"


class Item(StrEnum):
    """What a completeness rule asks the profile to have."""

    PHONE = "phone"
    EMAIL = "email"
    IDNP = "idnp"
    BIRTH_DATE = "birth_date"
    CUSTOM = "custom"  # a custom field of the contact or the lead (`entity`, `key`)


VALUE_KINDS = frozenset(
    {RuleKind.PRODUCT, RuleKind.SOURCE_CHANNEL, RuleKind.UTM_SOURCE, RuleKind.CAMPAIGN, RuleKind.BRANCH}
)
RANGE_KINDS = frozenset({RuleKind.AMOUNT, RuleKind.TERM})
COUNT_KINDS = frozenset({RuleKind.REPLIES, RuleKind.ANSWERED_CALLS})


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    kind: str
    params: dict[str, Any]
    points: int
    active: bool
    position: int

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _view(row: ScoringRule) -> Rule:
    return Rule(row.id, row.name, row.kind, dict(row.params or {}), row.points, row.active, row.position)


# --- evaluating -------------------------------------------------------------------------------------------


def _filled(value: Any) -> bool:
    return not (value is None or value == "" or value == [] or value == {})


def _in(value: str | None, values: Sequence[Any], *, fold: bool = False) -> bool:
    if value is None:
        return False
    if fold:
        return value.strip().lower() in {str(v).lower() for v in values}
    return value in values


def _between(value: Decimal | int | None, low: Any, high: Any) -> bool:
    if value is None:
        return False
    if low is not None and Decimal(str(value)) < Decimal(str(low)):
        return False
    return high is None or Decimal(str(value)) <= Decimal(str(high))


def matches(rule: Rule, facts: Facts) -> bool:
    """True when the lead meets the rule's condition; a rule of an unknown kind never matches."""
    p = rule.params
    values = p.get("values") or []
    match rule.kind:
        case RuleKind.PRODUCT:
            return _in(facts.product, values)
        case RuleKind.SOURCE_CHANNEL:
            return _in(facts.source_channel, values)
        case RuleKind.UTM_SOURCE:
            return _in(facts.utm_source, values, fold=True)
        case RuleKind.CAMPAIGN:
            return _in(facts.campaign, values, fold=True) or _in(facts.utm_campaign, values, fold=True)
        case RuleKind.BRANCH:
            return facts.branch_id is not None and facts.branch_id in values
        case RuleKind.AMOUNT:
            currency = p.get("currency")
            if currency and facts.currency != currency:
                return False
            return _between(facts.amount, p.get("min"), p.get("max"))
        case RuleKind.TERM:
            return _between(facts.term_months, p.get("min"), p.get("max"))
        case RuleKind.REPLIES:
            return facts.replies >= int(p.get("min") or 1)
        case RuleKind.ANSWERED_CALLS:
            return facts.answered_calls >= int(p.get("min") or 1)
        case RuleKind.COMPLETENESS:
            return _complete(p, facts)
    return False


def _complete(p: Mapping[str, Any], facts: Facts) -> bool:
    match p.get("item"):
        case Item.PHONE:
            return facts.has_phone
        case Item.EMAIL:
            return facts.has_email
        case Item.IDNP:
            return facts.has_idnp
        case Item.BIRTH_DATE:
            return facts.has_birth_date
        case Item.CUSTOM:
            values = facts.lead_custom if p.get("entity") == "lead" else facts.contact_custom
            return _filled(values.get(str(p.get("key"))))
    return False


def evaluate(rules: Sequence[Rule], facts: Facts) -> tuple[int, list[dict[str, Any]]]:
    """(sum of points, [{rule_id, name, points}]) of the active rules the lead meets, in rule order."""
    met = [r for r in rules if r.active and matches(r, facts)]
    return sum(r.points for r in met), [{"rule_id": r.id, "name": r.name, "points": r.points} for r in met]


# --- the active rules, read once per transaction ------------------------------------------------------------


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, _transaction: SessionTransaction) -> None:
    """A transaction's cached rules die with it: the next one reads what admins have changed since."""
    session.info.pop(_CACHE, None)


async def active_rules(session: AsyncSession) -> list[Rule]:
    """The active rules in order, read once per transaction (scoring runs on every lead change)."""
    cached = session.info.get(_CACHE)
    if cached is None:
        rows = await session.scalars(
            select(ScoringRule)
            .where(ScoringRule.active.is_(True))
            .order_by(ScoringRule.position, ScoringRule.id)
        )
        cached = [_view(r) for r in rows]
        session.info[_CACHE] = cached
    return list(cached)


async def list_rules(session: AsyncSession) -> list[Rule]:
    rows = await session.scalars(select(ScoringRule).order_by(ScoringRule.position, ScoringRule.id))
    return [_view(r) for r in rows]


async def get_rule(session: AsyncSession, rule_id: int) -> Rule | None:
    row = await session.get(ScoringRule, rule_id)
    return _view(row) if row is not None else None


# --- validating ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleInput:
    name: str
    kind: RuleKind
    params: dict[str, Any]
    points: int
    active: bool = True
    position: int | None = None


def _whole(value: Any, name: str, low: int, high: int) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,10}", value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(N_("Enter a whole number."), field=name)
    if not low <= value <= high:
        raise Invalid(N_("Enter a number from %(min)s to %(max)s."), field=name, min=low, max=high)
    return value


def _amount(value: Any, name: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise Invalid(N_("Enter an amount such as 50000 or 12500.50."), field=name)
    try:
        amount = Decimal(str(value).strip().replace(" ", "").replace(",", "."))
    except InvalidOperation:
        raise Invalid(N_("Enter an amount such as 50000 or 12500.50."), field=name) from None
    if not amount.is_finite() or not 0 <= amount <= MAX_RANGE_AMOUNT:
        raise Invalid(N_("Enter an amount such as 50000 or 12500.50."), field=name)
    return str(amount.quantize(Decimal("0.01")))


def _values(raw: Any) -> list[str]:
    """A list from JSON, or one text with values separated by commas, semicolons or new lines."""
    if raw is None:
        raw = []
    if isinstance(raw, str):
        raw = re.split(r"[,;\n]", raw)
    if not isinstance(raw, list) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in raw
    ):
        raise Invalid(N_("Give a list of values."), field="values")
    out: list[str] = []
    for value in (str(v).strip() for v in raw):
        if len(value) > MAX_VALUE:
            raise Invalid(N_("At most %(n)s characters."), field="values", n=MAX_VALUE)
        if value and value not in out:
            out.append(value)
    if not out:
        raise Invalid(N_("Give at least one value."), field="values")
    if len(out) > MAX_VALUES:
        raise Invalid(N_("At most %(n)s values."), field="values", n=MAX_VALUES)
    return out


def _params(kind: RuleKind, data: Mapping[str, Any]) -> dict[str, Any]:
    """The condition of a rule of `kind`, checked in shape (references are checked by `check_references`)."""
    if kind in VALUE_KINDS:
        values = _values(data.get("values"))
        if kind is RuleKind.BRANCH:
            if not all(v.isdigit() and len(v) < 11 for v in values):
                raise Invalid(N_("Choose branches from the list."), field="values")
            return {"values": [int(v) for v in values]}
        if kind in (RuleKind.PRODUCT, RuleKind.SOURCE_CHANNEL):
            values = [v.lower() for v in values]
            if not all(_CODE.match(v) for v in values):
                raise Invalid(N_("Use lowercase latin letters, digits, _ and - in the code."), field="values")
        return {"values": values}
    if kind in RANGE_KINDS:
        if kind is RuleKind.AMOUNT:
            low, high = _amount(data.get("min"), "min"), _amount(data.get("max"), "max")
            currency = str(data.get("currency") or "").strip().upper() or None
            if currency is not None and currency not in CURRENCIES:
                raise Invalid(N_("Unknown currency."), field="currency")
            params: dict[str, Any] = {"min": low, "max": high, "currency": currency}
        else:
            params = {
                "min": _whole(data.get("min"), "min", 1, 360),
                "max": _whole(data.get("max"), "max", 1, 360),
            }
        if params["min"] is None and params["max"] is None:
            raise Invalid(N_("Give a lower or an upper limit."), field="min")
        low, high = params["min"], params["max"]
        if low is not None and high is not None and Decimal(str(low)) > Decimal(str(high)):
            raise Invalid(N_("The lower limit is above the upper one."), field="max")
        return params
    if kind in COUNT_KINDS:
        count = _whole(data.get("min"), "min", 1, MAX_COUNT)
        if count is None:
            raise Invalid(N_("Give how many times at least."), field="min")
        return {"min": count}
    item = str(data.get("item") or "")
    if item not in set(Item):
        raise Invalid(N_("Choose what the profile must have."), field="item")
    if item != Item.CUSTOM:
        return {"item": item}
    entity = str(data.get("entity") or "contact")
    if entity not in ("contact", "lead"):
        raise Invalid(N_("Choose a custom field of the contact or of the lead."), field="entity")
    key = str(data.get("key") or "").strip()
    if not key:
        raise Invalid(N_("Choose a custom field."), field="key")
    return {"item": item, "entity": entity, "key": key}


def parse_rule(data: Mapping[str, Any]) -> RuleInput:
    """A rule from a form or a JSON body: name, kind, the kind's condition, points, active, position."""
    name = data.get("name")
    if not isinstance(name, str) or not " ".join(name.split()):
        raise Invalid(N_("Give the rule a name."), field="name")
    name = " ".join(name.split())
    if len(name) > MAX_RULE_NAME:
        raise Invalid(N_("At most %(n)s characters."), field="name", n=MAX_RULE_NAME)
    try:
        kind = RuleKind(str(data.get("kind") or ""))
    except ValueError:
        raise Invalid(N_("Choose what the rule looks at."), field="kind") from None
    points = _whole(data.get("points"), "points", -MAX_POINTS, MAX_POINTS)
    if points is None:
        raise Invalid(N_("Give the points the rule adds (negative to take away)."), field="points")
    if points == 0:
        raise Invalid(N_("A rule of 0 points changes nothing."), field="points")
    active = data.get("active", True)
    if not isinstance(active, bool):
        if active not in ("1", "true", "on", "0", "false", "off", ""):
            raise Invalid(N_("Give true or false."), field="active")
        active = active in ("1", "true", "on")
    position = _whole(data.get("position"), "position", 0, 1_000_000)
    return RuleInput(name, kind, _params(kind, data), points, active, position)


async def check_references(session: AsyncSession, p: RuleInput) -> None:
    """Products, branches and custom fields a rule names must exist (and be in use when it is made)."""
    if p.kind is RuleKind.PRODUCT:
        for code in p.params["values"]:
            if not await is_active_code(session, "product", code):
                raise Invalid(N_("Choose a product from the list."), field="values")
    elif p.kind is RuleKind.BRANCH:
        found = set(await session.scalars(select(Branch.id).where(Branch.id.in_(p.params["values"]))))
        if found != set(p.params["values"]):
            raise Invalid(N_("No such branch."), field="values")
    elif p.kind is RuleKind.COMPLETENESS and p.params["item"] == Item.CUSTOM:
        keys = {d.key for d in await custom_fields.definitions(session, p.params["entity"])}
        if p.params["key"] not in keys:
            raise Invalid(N_("No such custom field."), field="key")


# --- changing -----------------------------------------------------------------------------------------------


def _snapshot(rule: Rule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in AUDITED}


async def create_rule(session: AsyncSession, actor: Actor, p: RuleInput) -> Rule:
    """A new rule; without a position it goes last."""
    await check_references(session, p)
    position = p.position
    if position is None:
        position = ((await session.scalar(select(func.max(ScoringRule.position)))) or 0) + 10
    row = ScoringRule(
        name=p.name, kind=p.kind.value, params=p.params, points=p.points, active=p.active, position=position
    )
    session.add(row)
    await session.flush()
    session.info.pop(_CACHE, None)
    rule = _view(row)
    await audit.record_change(
        session,
        actor,
        module="scoring",
        action=AuditAction.CREATE,
        record_type="scoring_rule",
        record_id=row.id,
        changes=audit.diff({}, _snapshot(rule)),
    )
    return rule


async def update_rule(session: AsyncSession, actor: Actor, rule_id: int, p: RuleInput) -> tuple[Rule, bool]:
    """Replace a rule's name, condition, points, active flag and position. Returns (rule, changed)."""
    row = await session.scalar(select(ScoringRule).where(ScoringRule.id == rule_id).with_for_update())
    if row is None:
        raise NotFound(N_("No such rule."))
    before = _snapshot(_view(row))
    unchanged_condition = row.kind == p.kind.value and row.params == p.params
    if not unchanged_condition:  # a condition kept as it was may name a product deactivated since
        await check_references(session, p)
    row.name, row.kind, row.params, row.points = p.name, p.kind.value, p.params, p.points
    row.active = p.active
    if p.position is not None:
        row.position = p.position
    await session.flush()
    session.info.pop(_CACHE, None)
    rule = _view(row)
    changes = audit.diff(before, _snapshot(rule))
    if changes:
        await audit.record_change(
            session,
            actor,
            module="scoring",
            action=AuditAction.UPDATE,
            record_type="scoring_rule",
            record_id=rule_id,
            changes=changes,
        )
    return rule, bool(changes)


async def seed_defaults(session: AsyncSession) -> int:
    """The day-one rules (`crm_core.defaults.SCORING_RULES`) when there are no rules at all; returns how
    many were added. Migration 0017 seeds a new database; this restores them after someone emptied it."""
    if await session.scalar(select(func.count(ScoringRule.id))):
        return 0
    for i, (name, kind, params, points) in enumerate(defaults.SCORING_RULES):
        session.add(
            ScoringRule(name=name, kind=kind, params=dict(params), points=points, position=(i + 1) * 10)
        )
    await session.flush()
    session.info.pop(_CACHE, None)
    return len(defaults.SCORING_RULES)
