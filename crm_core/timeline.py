"""crm_core's part of a contact's timeline: their tasks and the changes to their record (the audit log),
newest first. The contact page merges it with the inbox's messages and calls (`inbox.timeline`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.tasks_model import Task
from switchboard.audit_model import AuditEntry


@dataclass(frozen=True)
class CrmEntry:
    at: dt.datetime
    kind: str  # "task" or "change"
    ref_id: int
    body: str  # the task's title, or the audit action (create, update, delete)
    status: str | None = None  # a task's
    who: str | None = None  # who changed the record
    changes: dict[str, Any] = field(default_factory=dict)  # {field: [old, new]}
    due_at: dt.datetime | None = None


async def contact_entries(session: AsyncSession, contact_id: int, *, limit: int) -> list[CrmEntry]:
    tasks = await session.scalars(
        select(Task)
        .where(Task.contact_id == contact_id)
        .order_by(Task.created_at.desc(), Task.id.desc())
        .limit(limit)
    )
    entries = [CrmEntry(t.created_at, "task", t.id, t.title, status=t.status, due_at=t.due_at) for t in tasks]
    changes = await session.scalars(
        select(AuditEntry)
        .where(AuditEntry.record_type == "contact", AuditEntry.record_id == str(contact_id))
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    entries += [
        CrmEntry(a.at, "change", a.id, a.action, who=a.username, changes=dict(a.changes or {}))
        for a in changes
    ]
    entries.sort(key=lambda e: (e.at, e.ref_id), reverse=True)
    return entries[:limit]
