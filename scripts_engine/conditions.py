"""Branch conditions, evaluated without `eval`: a field reference (`answer.<ask step>`, `lead.amount`,
`contact.custom.income`, `deal.stage`), an operator and a literal, combined with all / any. A small model
rather than Jinja2 expressions because the editor can build and show it as a form, validation can name
each field it reads, and it cannot do anything but compare.

Values compare by the type they have: numbers (and numeric text such as a custom money "12500.00") as
exact decimals, dates and ISO dates as dates, the rest as text; a missing value is only `empty`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from scripts_engine.model import Condition, Op

ANSWER = "answer"


def split_ref(ref: str) -> tuple[str, str]:
    """ "lead.custom.income" → ("lead", "custom.income"); "answer.amount" → ("answer", "amount")."""
    head, _, rest = ref.partition(".")
    return head, rest


def lookup(ref: str, answers: Mapping[str, Any], records: Mapping[str, Mapping[str, Any]]) -> Any:
    head, rest = split_ref(ref)
    if head == ANSWER:
        return answers.get(rest)
    value: Any = records.get(head, {})
    for part in rest.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _pair(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Both sides as one comparable type, or None when they cannot be compared."""
    if isinstance(left, bool) or isinstance(right, bool):
        return (left, right) if isinstance(left, bool) and isinstance(right, bool) else None
    if isinstance(left, dt.date) or isinstance(right, dt.date):
        a, b = _date(left), _date(right)
        return (a, b) if a is not None and b is not None else None
    if isinstance(left, int | float | Decimal) or isinstance(right, int | float | Decimal):
        x, y = _number(left), _number(right)
        return (x, y) if x is not None and y is not None else None
    return str(left), str(right)


def _equal(left: Any, right: Any) -> bool:
    pair = _pair(left, right)
    return pair is not None and pair[0] == pair[1]


def compare(op: Op, actual: Any, literal: Any) -> bool:
    if op is Op.EMPTY:
        return _empty(actual)
    if op is Op.NOT_EMPTY:
        return not _empty(actual)
    if _empty(actual):
        return op in (Op.NE, Op.NOT_IN)
    if op is Op.CONTAINS:
        if isinstance(actual, list | tuple):
            return any(_equal(item, literal) for item in actual)
        return str(literal).casefold() in str(actual).casefold()
    if op in (Op.IN, Op.NOT_IN):
        items = literal if isinstance(literal, list) else [literal]
        found = any(_equal(actual, item) for item in items)
        return found if op is Op.IN else not found
    if op is Op.EQ:
        return _equal(actual, literal)
    if op is Op.NE:
        return not _equal(actual, literal)
    pair = _pair(actual, literal)
    if pair is None:
        return False
    a, b = pair
    try:
        if op is Op.GT:
            return bool(a > b)
        if op is Op.GTE:
            return bool(a >= b)
        if op is Op.LT:
            return bool(a < b)
        return bool(a <= b)
    except TypeError:
        return False


def evaluate(
    condition: Condition, answers: Mapping[str, Any], records: Mapping[str, Mapping[str, Any]]
) -> bool:
    if condition.all is not None:
        return all(evaluate(c, answers, records) for c in condition.all)
    if condition.any is not None:
        return any(evaluate(c, answers, records) for c in condition.any)
    assert condition.field is not None and condition.op is not None
    return compare(condition.op, lookup(condition.field, answers, records), condition.value)


def references(condition: Condition) -> list[str]:
    """Every field reference in the condition, for validation."""
    if condition.all is not None or condition.any is not None:
        return [ref for c in (condition.all or condition.any or []) for ref in references(c)]
    return [condition.field] if condition.field else []


def comparisons(condition: Condition) -> list[Condition]:
    if condition.all is not None or condition.any is not None:
        return [leaf for c in (condition.all or condition.any or []) for leaf in comparisons(c)]
    return [condition]
