"""A table row as plain JSON and back, typed by the table's own columns: what an undoable operation
(a contact merge) stores of the rows it moved or deleted, so that undoing it can put them back as they
were — dates, times and amounts included, on either database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, DateTime, Float, Numeric, RowMapping, Table
from sqlalchemy.types import TypeDecorator, TypeEngine


def encode(value: Any) -> Any:
    """One value as JSON: dates and times in ISO 8601, amounts as decimal strings, the rest as is."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _base(kind: TypeEngine[Any]) -> TypeEngine[Any]:
    return kind.impl_instance if isinstance(kind, TypeDecorator) else kind


def decode_value(table: Table, column: str, value: Any) -> Any:
    """A JSON value back into what the column holds."""
    if value is None:
        return None
    kind = _base(table.c[column].type)
    if isinstance(kind, DateTime):
        return dt.datetime.fromisoformat(value)
    if isinstance(kind, Date):
        return dt.date.fromisoformat(value)
    if isinstance(kind, Numeric) and not isinstance(kind, Float):
        return Decimal(str(value))
    return value


def to_json(table: Table, row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
    """Every column of `table` that `row` (a Core row mapping) holds, encoded."""
    return {column.key: encode(row[column.key]) for column in table.columns if column.key in row}


def from_json(table: Table, data: Mapping[str, Any]) -> dict[str, Any]:
    """Insertable values from `to_json`'s output; keys the table no longer has are left out."""
    return {key: decode_value(table, key, value) for key, value in data.items() if key in table.c}
