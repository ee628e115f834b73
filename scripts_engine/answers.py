"""Typed answers: what the agent typed or clicked, read as the ask step's answer type (text, number, money
as an exact Decimal, date, phone in E.164, choice among the options); their JSON form in a run; and which
answers fit which CRM field kinds (validation refuses a `text` answer captured into a `money` field).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import phonenumbers

from scripts_engine.model import AnswerSpec, AnswerType, Scalar
from scripts_engine.ports import FieldKind, FieldSpec
from switchboard.errors import N_, Invalid

MAX_TEXT_ANSWER = 2000
MAX_NUMBER = Decimal("1e15")
_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y")

Typed = str | int | Decimal | dt.date


def _decimal(raw: Any) -> Decimal:
    if isinstance(raw, bool):
        raise Invalid(N_("Enter a number."), field="answer")
    if isinstance(raw, int | float | Decimal):
        number = Decimal(str(raw))
    elif isinstance(raw, str):
        cleaned = raw.strip().replace("\u00a0", "").replace(" ", "")
        cleaned = cleaned.replace(",", "" if "," in cleaned and "." in cleaned else ".")
        try:
            number = Decimal(cleaned)
        except InvalidOperation:
            raise Invalid(N_("Enter a number."), field="answer") from None
    else:
        raise Invalid(N_("Enter a number."), field="answer")
    if not number.is_finite() or abs(number) >= MAX_NUMBER:
        raise Invalid(N_("Enter a number."), field="answer")
    return number


def _bounds(spec: AnswerSpec, number: Decimal) -> None:
    if spec.min is not None and number < spec.min:
        raise Invalid(N_("Enter at least %(min)s."), field="answer", min=str(spec.min))
    if spec.max is not None and number > spec.max:
        raise Invalid(N_("Enter at most %(max)s."), field="answer", max=str(spec.max))


def parse_date(raw: Any) -> dt.date:
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if isinstance(raw, str):
        for fmt in _DATE_FORMATS:
            try:
                day = dt.datetime.strptime(raw.strip(), fmt).date()
            except ValueError:
                continue
            if dt.date(1900, 1, 1) <= day <= dt.date(2200, 12, 31):
                return day
    raise Invalid(N_("Enter a date such as 1985-04-23."), field="answer")


def parse_answer(spec: AnswerSpec, raw: Any, region: str = "MD") -> Typed:
    """The answer as its type stores it; `Invalid` (field "answer") with a readable reason otherwise."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise Invalid(N_("Enter an answer."), field="answer")
    kind = spec.type
    if kind is AnswerType.TEXT:
        if not isinstance(raw, str):
            raise Invalid(N_("This field must be text."), field="answer")
        text = " ".join(raw.split()) if "\n" not in raw else raw.strip()
        if len(text) > MAX_TEXT_ANSWER:
            raise Invalid(N_("At most %(n)s characters."), field="answer", n=MAX_TEXT_ANSWER)
        return text
    if kind is AnswerType.NUMBER:
        number = _decimal(raw)
        _bounds(spec, number)
        if spec.integer:
            if number != number.to_integral_value():
                raise Invalid(N_("Enter a whole number."), field="answer")
            return int(number)
        return number.normalize() if number == number.to_integral_value() else number
    if kind is AnswerType.MONEY:
        number = _decimal(raw)
        if number < 0:
            raise Invalid(N_("The amount cannot be negative."), field="answer")
        _bounds(spec, number)
        return number.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if kind is AnswerType.DATE:
        return parse_date(raw)
    if kind is AnswerType.PHONE:
        if not isinstance(raw, str):
            raise Invalid(N_("Not a phone number: %(phone)s."), field="answer", phone=str(raw)[:40])
        try:
            number_ = phonenumbers.parse(raw.strip(), region)
        except phonenumbers.NumberParseException:
            number_ = None
        if number_ is None or not phonenumbers.is_valid_number(number_):
            raise Invalid(N_("Not a phone number: %(phone)s."), field="answer", phone=raw.strip()[:40])
        return phonenumbers.format_number(number_, phonenumbers.PhoneNumberFormat.E164)
    # choice: the option's value, or its label as typed
    if not isinstance(raw, str):
        raise Invalid(N_("Choose one of the answers."), field="answer")
    wanted = raw.strip()
    for option in spec.options:
        if wanted == option.value:
            return option.value
    for option in spec.options:
        if wanted.casefold() in (option.value.casefold(), option.label.casefold()):
            return option.value
    raise Invalid(N_("Choose one of the answers."), field="answer")


def to_json(value: Typed) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def from_json(kind: AnswerType | str, value: Any) -> Typed:
    kind = AnswerType(kind)
    if kind is AnswerType.MONEY or (kind is AnswerType.NUMBER and isinstance(value, str)):
        return Decimal(str(value))
    if kind is AnswerType.DATE:
        return dt.date.fromisoformat(str(value))
    return value  # type: ignore[no-any-return]


# --- which answers fit which fields -------------------------------------------------------------------------


def answer_fits(spec: AnswerSpec, target: FieldSpec) -> bool:
    """Whether every answer of `spec` can be written into `target` as it is (without a `map`)."""
    kind = target.kind
    if spec.type is AnswerType.TEXT:
        return kind is FieldKind.TEXT
    if spec.type is AnswerType.NUMBER:
        allowed = {FieldKind.NUMBER, FieldKind.MONEY} | ({FieldKind.INTEGER} if spec.integer else set())
        return kind in allowed
    if spec.type is AnswerType.MONEY:
        return kind in (FieldKind.MONEY, FieldKind.NUMBER)
    if spec.type is AnswerType.DATE:
        return kind is FieldKind.DATE
    if spec.type is AnswerType.PHONE:
        return kind in (FieldKind.PHONE, FieldKind.TEXT)
    # choice: as text, or into a choice field that has each of the option values
    if kind is FieldKind.TEXT:
        return True
    if kind in (FieldKind.CHOICE, FieldKind.MULTI_CHOICE):
        return not target.options or all(o.value in target.options for o in spec.options)
    return False


def literal_value(target: FieldSpec, value: Scalar | None) -> Any:
    """A literal from the script (a `value`, a `map` entry) as the field's typed value; ValueError when it
    does not fit the field's kind."""
    kind = target.kind
    if value is None:
        raise ValueError("no value")
    if kind is FieldKind.BOOLEAN:
        if isinstance(value, bool):
            return value
        raise ValueError("not a boolean")
    if isinstance(value, bool):
        raise ValueError("a boolean for a field that is not one")
    if kind is FieldKind.TEXT or kind is FieldKind.PHONE:
        if isinstance(value, str):
            return value
        raise ValueError("not text")
    if kind is FieldKind.INTEGER:
        if isinstance(value, int):
            return value
        raise ValueError("not a whole number")
    if kind in (FieldKind.NUMBER, FieldKind.MONEY):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise ValueError("not a number") from None
        if not number.is_finite() or (kind is FieldKind.MONEY and number < 0):
            raise ValueError("not an amount")
        return number.quantize(Decimal("0.01")) if kind is FieldKind.MONEY else number
    if kind is FieldKind.DATE:
        if not isinstance(value, str):
            raise ValueError("not a date")
        return dt.date.fromisoformat(value)
    if kind in (FieldKind.CHOICE, FieldKind.MULTI_CHOICE):
        if not isinstance(value, str) or (target.options and value not in target.options):
            raise ValueError("not one of the field's options")
        return [value] if kind is FieldKind.MULTI_CHOICE else value
    raise ValueError("unknown kind")


def capture_value(target: FieldSpec, answer: Typed) -> Any:
    """An answer as the value written into `target` (a choice into a multi-choice becomes a list)."""
    if target.kind is FieldKind.MULTI_CHOICE and isinstance(answer, str):
        return [answer]
    return answer
