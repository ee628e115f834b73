"""The audit log: every room writes its entries through `record()`, inside its own transaction, so an
action and its audit row commit or roll back together."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.audit_model import AuditEntry


class Category(StrEnum):
    AUTH = "auth"
    RECORD = "record"
    REPORT = "report"
    ADMIN = "admin"


class AuditAction(StrEnum):
    LOGIN = "login"
    LOGOUT = "logout"
    LOGIN_FAILED = "login_failed"
    SESSION_EXPIRED = "session_expired"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    READ = "read"
    REPORT = "report"
    RETRY = "retry"


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    username: str | None
    ip: str | None = None


SYSTEM = Actor(user_id=None, username="system")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """`{field: [old, new]}` for each field whose value changed; secrets are passed in already masked."""
    changes: dict[str, list[Any]] = {}
    for key in sorted(set(before) | set(after)):
        old, new = _jsonable(before.get(key)), _jsonable(after.get(key))
        if old != new:
            changes[key] = [old, new]
    return changes


async def record(
    session: AsyncSession,
    actor: Actor,
    *,
    category: Category,
    module: str,
    action: AuditAction,
    record_type: str | None = None,
    record_id: object | None = None,
    changes: dict[str, Any] | None = None,
    detail: str | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        user_id=actor.user_id,
        username=(actor.username or "")[:64] or None,
        ip=actor.ip,
        category=str(category),
        module=module,
        action=str(action),
        record_type=record_type,
        record_id=None if record_id is None else str(record_id),
        changes=changes or None,
        detail=detail[:2000] if detail else None,
    )
    session.add(entry)
    await session.flush()
    return entry


async def record_change(
    session: AsyncSession,
    actor: Actor,
    *,
    module: str,
    action: AuditAction,
    record_type: str,
    record_id: object,
    changes: dict[str, Any] | None = None,
    detail: str | None = None,
) -> AuditEntry:
    """A create / read / update / delete of one record: the most common entry, in one call."""
    return await record(
        session,
        actor,
        category=Category.RECORD,
        module=module,
        action=action,
        record_type=record_type,
        record_id=record_id,
        changes=changes,
        detail=detail,
    )


@dataclass(frozen=True)
class Change:
    """One record's create / update for `record_changes`."""

    record_type: str
    record_id: object
    changes: dict[str, Any]
    detail: str | None = None


async def record_changes(
    session: AsyncSession, actor: Actor, *, module: str, action: AuditAction, entries: list[Change]
) -> int:
    """`record_change` for many records in one multi-row insert (a bulk import): still one entry each."""
    if not entries:
        return 0
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "at": now,
            "user_id": actor.user_id,
            "username": (actor.username or "")[:64] or None,
            "ip": actor.ip,
            "category": str(Category.RECORD),
            "module": module,
            "action": str(action),
            "record_type": e.record_type,
            "record_id": None if e.record_id is None else str(e.record_id),
            "changes": e.changes or None,
            "detail": e.detail[:2000] if e.detail else None,
        }
        for e in entries
    ]
    await session.execute(insert(AuditEntry), rows)
    return len(rows)


@dataclass(frozen=True)
class AuditFilter:
    username: str | None = None
    category: str | None = None
    module: str | None = None
    action: str | None = None
    record_type: str | None = None
    record_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def _apply(query: Select[Any], f: AuditFilter) -> Select[Any]:
    exact = {
        AuditEntry.category: f.category,
        AuditEntry.module: f.module,
        AuditEntry.action: f.action,
        AuditEntry.record_type: f.record_type,
        AuditEntry.record_id: f.record_id,
    }
    for column, value in exact.items():
        if value:
            query = query.where(column == value)
    if f.username:
        query = query.where(func.lower(AuditEntry.username) == f.username.lower())
    if f.since:
        query = query.where(AuditEntry.at >= f.since)
    if f.until:
        query = query.where(AuditEntry.at < f.until)
    return query


async def search(
    session: AsyncSession, f: AuditFilter, *, limit: int = 50, offset: int = 0
) -> tuple[list[AuditEntry], int]:
    """One page of matching entries, newest first, and the total count."""
    total = await session.scalar(_apply(select(func.count(AuditEntry.id)), f))
    rows = await session.scalars(
        _apply(select(AuditEntry), f)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def distinct_values(session: AsyncSession) -> dict[str, list[str]]:
    """Values for the filter drop-downs of the admin page."""
    out: dict[str, list[str]] = {}
    for name, column in (("module", AuditEntry.module), ("action", AuditEntry.action)):
        out[name] = [v for v in await session.scalars(select(column).distinct().order_by(column)) if v]
    return out
