"""Custom fields: the fields an admin adds to contacts, companies, leads and deals (text, number, money,
date, choice, multi-choice, boolean), in the order and with the required rule the admin sets.

Every write path — the forms, the API, an import — runs the record's `custom` values through
`validate(defs, raw, current=…)` with the entity's definitions (`definitions`): it parses what a form, a
JSON body or a spreadsheet cell sent (`"1 250,50"`, `"23.04.1985"`, `"da"`, `"a; b"`), refuses what does
not fit with an `Invalid` naming the field as `custom.<key>`, and returns the JSON the record stores:
numbers as numbers, money as a decimal string with two places ("1250.50", exact, unlike a float), dates
as ISO strings, choices as their codes, booleans as booleans. A field left empty is removed; a required
one may not be.

Definitions are never deleted (old values still read); deactivating hides a field from forms and
checks. Functions take the caller's session and never commit; definition changes are audited.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.custom_fields_model import MAX_KEY, MAX_LABEL, CustomField
from switchboard import audit
from switchboard.audit import Actor, AuditAction
from switchboard.errors import N_, Conflict, Invalid, NotFound

ENTITIES = ("contact", "company", "lead", "deal")
MAX_TEXT = 2000
MAX_OPTIONS = 100
MAX_FIELDS = 100  # per entity
MAX_NUMBER = Decimal("1e15")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_TRUE = frozenset({"1", "true", "yes", "y", "on", "da", "x", "✓", "да"})
_FALSE = frozenset({"0", "false", "no", "n", "off", "nu", "нет"})
_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y")
AUDITED = ("label", "kind", "options", "required", "position", "active")


class FieldKind(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    MONEY = "money"
    DATE = "date"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class Option:
    code: str
    label: str


@dataclass(frozen=True)
class FieldDef:
    id: int
    entity: str
    key: str
    label: str
    kind: FieldKind
    options: tuple[Option, ...]
    required: bool
    position: int
    active: bool

    @property
    def path(self) -> str:
        """The name an error, a form input and a filter use for this field."""
        return f"custom.{self.key}"

    def option_label(self, code: str) -> str:
        return next((o.label for o in self.options if o.code == code), code)

    def display(self, value: Any) -> str:
        """A stored value as a person reads it (choices by label, booleans as ✓ or nothing)."""
        if value is None or value == "" or value == []:
            return ""
        if self.kind is FieldKind.BOOLEAN:
            return "✓" if value else ""
        if self.kind is FieldKind.CHOICE:
            return self.option_label(str(value))
        if self.kind is FieldKind.MULTI_CHOICE and isinstance(value, list):
            return ", ".join(self.option_label(str(v)) for v in value)
        return str(value)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entity": self.entity,
            "key": self.key,
            "label": self.label,
            "kind": self.kind.value,
            "options": [{"code": o.code, "label": o.label} for o in self.options],
            "required": self.required,
            "position": self.position,
            "active": self.active,
        }


def _view(row: CustomField) -> FieldDef:
    return FieldDef(
        id=row.id,
        entity=row.entity,
        key=row.key,
        label=row.label,
        kind=FieldKind(row.kind),
        options=tuple(Option(str(o.get("code", "")), str(o.get("label", ""))) for o in row.options or []),
        required=row.required,
        position=row.position,
        active=row.active,
    )


def check_entity(entity: str) -> str:
    if entity not in ENTITIES:
        raise Invalid(N_("Unknown kind of record."), field="entity")
    return entity


async def definitions(
    session: AsyncSession, entity: str, *, include_inactive: bool = False
) -> list[FieldDef]:
    """The entity's fields in form order (position, then label)."""
    query = select(CustomField).where(CustomField.entity == check_entity(entity))
    if not include_inactive:
        query = query.where(CustomField.active.is_(True))
    rows = await session.scalars(query.order_by(CustomField.position, CustomField.label, CustomField.id))
    return [_view(row) for row in rows]


async def get_definition(session: AsyncSession, field_id: int) -> FieldDef | None:
    row = await session.get(CustomField, field_id)
    return _view(row) if row is not None else None


# --- values -------------------------------------------------------------------------------------------------


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _decimal(value: Any, path: str) -> Decimal:
    if isinstance(value, bool):
        raise Invalid(N_("Enter a number."), field=path)
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value))
    elif isinstance(value, str):
        # "1 250,50", "1,250.50", "1250.5": spaces and a thousands separator go, a lone comma is a decimal
        cleaned = value.strip().replace("\u00a0", "").replace(" ", "")
        separator = "" if "," in cleaned and "." in cleaned else "."
        cleaned = cleaned.replace(",", separator)
        try:
            number = Decimal(cleaned)
        except InvalidOperation:
            raise Invalid(N_("Enter a number."), field=path) from None
    else:
        raise Invalid(N_("Enter a number."), field=path)
    if not number.is_finite() or abs(number) >= MAX_NUMBER:
        raise Invalid(N_("Enter a number."), field=path)
    return number


def _date(value: Any, path: str) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        day = value
    elif isinstance(value, str):
        for fmt in _DATE_FORMATS:
            try:
                day = dt.datetime.strptime(value.strip(), fmt).date()
                break
            except ValueError:
                continue
        else:
            raise Invalid(N_("Enter a date such as 1985-04-23."), field=path)
    else:
        raise Invalid(N_("Enter a date such as 1985-04-23."), field=path)
    if not dt.date(1900, 1, 1) <= day <= dt.date(2200, 12, 31):
        raise Invalid(N_("Enter a date such as 1985-04-23."), field=path)
    return day.isoformat()


def _code(field: FieldDef, value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(N_("Choose one from the list."), field=field.path)
    wanted = value.strip()
    for option in field.options:
        if wanted == option.code:
            return option.code
    folded = wanted.casefold()
    for option in field.options:  # a spreadsheet names the choice by its label
        if folded in (option.code.casefold(), option.label.casefold()):
            return option.code
    raise Invalid(N_("Choose one from the list."), field=field.path)


def parse_value(field: FieldDef, value: Any) -> Any:
    """`value` (JSON, form text or a spreadsheet cell) as the field stores it; None when empty."""
    if _empty(value):
        return None
    path = field.path
    if field.kind is FieldKind.TEXT:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise Invalid(N_("This field must be text."), field=path)
        text = str(value).strip()
        if len(text) > MAX_TEXT:
            raise Invalid(N_("At most %(n)s characters."), field=path, n=MAX_TEXT)
        return text
    if field.kind is FieldKind.NUMBER:
        number = _decimal(value, path)
        return int(number) if number == number.to_integral_value() else float(number)
    if field.kind is FieldKind.MONEY:
        money = _decimal(value, path)
        if money < 0:
            raise Invalid(N_("The amount cannot be negative."), field=path)
        return str(money.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    if field.kind is FieldKind.DATE:
        return _date(value, path)
    if field.kind is FieldKind.CHOICE:
        return _code(field, value)
    if field.kind is FieldKind.MULTI_CHOICE:
        items = re.split(r"[;,\n]", value) if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise Invalid(N_("Choose one from the list."), field=path)
        codes: list[str] = []
        for item in items:
            if _empty(item):
                continue
            code = _code(field, item)
            if code not in codes:
                codes.append(code)
        return codes or None
    # boolean
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise Invalid(N_("Choose yes or no."), field=path)


def validate(
    defs: Sequence[FieldDef],
    raw: Mapping[str, Any] | None,
    *,
    current: Mapping[str, Any] | None = None,
    partial: bool = False,
) -> dict[str, Any]:
    """The record's new `custom` JSON: `current` (what it stores now) with the fields in `raw` replaced.

    With `partial` (an API PATCH, an import that updates), a field absent from `raw` keeps its value;
    otherwise (a whole form) an absent field is cleared. Values of fields that were deactivated or are
    unknown to `defs` are kept as they are, never checked; a key in `raw` that names no active field is
    refused. Required fields must end up with a value."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise Invalid(N_("Custom fields must be an object."), field="custom")
    active = {d.key: d for d in defs if d.active}
    unknown = [key for key in raw if key not in active]
    if unknown:
        raise Invalid(
            N_("Unknown field: %(name)s."), field=f"custom.{unknown[0]}", name=str(unknown[0])[:MAX_KEY]
        )
    out = {k: v for k, v in (current or {}).items() if k not in active}
    for key, field in active.items():
        if key in raw:
            value = parse_value(field, raw[key])
        elif partial:
            value = (current or {}).get(key)
        else:
            value = None
        if value is None:
            if field.required:
                raise Invalid(N_("This field is required."), field=field.path)
            continue
        out[key] = value
    return out


def form_values(form: Mapping[str, Any], defs: Sequence[FieldDef]) -> dict[str, Any]:
    """The `custom.<key>` inputs of an HTML form as `validate`'s `raw`: a multi-choice may come as several
    values (`getall`), an unchecked boolean box sends nothing (false)."""
    raw: dict[str, Any] = {}
    for field in defs:
        if not field.active:
            continue
        name = field.path
        if field.kind is FieldKind.MULTI_CHOICE:
            getall = getattr(form, "getall", None)
            raw[field.key] = list(getall(name, [])) if getall is not None else form.get(name)
        elif field.kind is FieldKind.BOOLEAN:
            raw[field.key] = form.get(name) not in (None, "", "0", "false", "off")
        else:
            raw[field.key] = form.get(name)
    return raw


# --- definitions -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldInput:
    key: str
    label: str
    kind: FieldKind
    options: tuple[Option, ...] = ()
    required: bool = False
    position: int = 0


def _options(raw: Any) -> tuple[Option, ...]:
    """Options from a list of {code, label} or of labels, or from text with one option per line
    (`code = label`, or a label whose code is made from it)."""
    if raw is None or raw == "":
        return ()
    items: list[Any] = raw.splitlines() if isinstance(raw, str) else raw
    if not isinstance(items, list):
        raise Invalid(N_("Give the options as a list."), field="options")
    options: list[Option] = []
    for item in items:
        if isinstance(item, dict):
            code, label = str(item.get("code") or ""), str(item.get("label") or item.get("code") or "")
        elif isinstance(item, str):
            if not item.strip():
                continue
            code, _, label = item.partition("=") if "=" in item else ("", "", item)
        else:
            raise Invalid(N_("Give the options as a list."), field="options")
        label = " ".join(label.split())[:MAX_LABEL]
        code = code.strip() or re.sub(r"[^a-z0-9]+", "_", label.casefold()).strip("_")
        if not label or not re.fullmatch(r"[A-Za-z0-9_-]{1,50}", code):
            raise Invalid(
                N_("Each option needs a code of letters, digits, - or _ and a label."), field="options"
            )
        if code in {o.code for o in options}:
            raise Invalid(N_("Two options have the code %(code)s."), field="options", code=code)
        options.append(Option(code, label))
    if len(options) > MAX_OPTIONS:
        raise Invalid(N_("At most %(n)s options."), field="options", n=MAX_OPTIONS)
    return tuple(options)


def parse_definition(data: Mapping[str, Any]) -> FieldInput:
    """A definition from the admin form or the API."""
    key = str(data.get("key") or "").strip()
    if not _KEY.fullmatch(key) or len(key) > MAX_KEY:
        raise Invalid(
            N_("A key is a lower-case letter then letters, digits or _ (at most %(n)s)."),
            field="key",
            n=MAX_KEY,
        )
    label = " ".join(str(data.get("label") or "").split())
    if not label or len(label) > MAX_LABEL:
        raise Invalid(N_("A label must have 1 to %(n)s characters."), field="label", n=MAX_LABEL)
    try:
        kind = FieldKind(str(data.get("kind") or ""))
    except ValueError:
        raise Invalid(N_("Choose one from the list."), field="kind") from None
    options = _options(data.get("options"))
    if kind in (FieldKind.CHOICE, FieldKind.MULTI_CHOICE) and not options:
        raise Invalid(N_("A choice needs at least one option."), field="options")
    if kind not in (FieldKind.CHOICE, FieldKind.MULTI_CHOICE):
        options = ()
    position = data.get("position") or 0
    if isinstance(position, str) and position.strip().lstrip("-").isdigit():
        position = int(position)
    if not isinstance(position, int) or isinstance(position, bool) or not -10_000 <= position <= 10_000:
        raise Invalid(N_("Enter a whole number."), field="position")
    required = data.get("required") in (True, "1", "on", "true", "yes")
    return FieldInput(key, label, kind, options, required, position)


def _row_values(p: FieldInput) -> dict[str, Any]:
    return {
        "label": p.label,
        "kind": p.kind.value,
        "options": [{"code": o.code, "label": o.label} for o in p.options],
        "required": p.required,
        "position": p.position,
    }


async def create_definition(session: AsyncSession, actor: Actor, entity: str, p: FieldInput) -> FieldDef:
    check_entity(entity)
    taken = await session.scalar(
        select(CustomField.id).where(CustomField.entity == entity, CustomField.key == p.key)
    )
    if taken is not None:
        raise Conflict(N_("A field with this key exists."), field="key")
    count = await session.scalar(
        select(func.count()).select_from(CustomField).where(CustomField.entity == entity)
    )
    if (count or 0) >= MAX_FIELDS:
        raise Invalid(N_("At most %(n)s fields."), field="key", n=MAX_FIELDS)
    row = CustomField(entity=entity, key=p.key, active=True, **_row_values(p))
    session.add(row)
    await session.flush()
    await audit.record_change(
        session,
        actor,
        module="admin",
        action=AuditAction.CREATE,
        record_type="custom_field",
        record_id=row.id,
        changes=audit.diff({}, {"entity": entity, "key": p.key, **_row_values(p)}),
    )
    return _view(row)


async def update_definition(
    session: AsyncSession, actor: Actor, field_id: int, p: FieldInput, *, active: bool = True
) -> FieldDef:
    """Change a field's label, options, rules or order, or (de)activate it. Its key and kind stay: stored
    values were written for them (a new kind is a new field)."""
    row = await session.get(CustomField, field_id)
    if row is None:
        raise NotFound(N_("No such field."))
    if p.key != row.key or p.kind.value != row.kind:
        raise Invalid(N_("A field's key and kind cannot change; add a new field instead."), field="kind")
    before = {name: getattr(row, name) for name in AUDITED}
    for name, value in {**_row_values(p), "active": active}.items():
        setattr(row, name, value)
    await session.flush()
    changes = audit.diff(before, {name: getattr(row, name) for name in AUDITED})
    if changes:
        await audit.record_change(
            session,
            actor,
            module="admin",
            action=AuditAction.UPDATE,
            record_type="custom_field",
            record_id=row.id,
            changes=changes,
        )
    return _view(row)
