"""Undoing a contact merge for a while after it (`merge_undo_days`): the merged contact comes back with its
own id and row, every row the merge moved goes back where it was, what the merge deleted is re-created,
and the kept contact gets its old values back — all from the `contact_merges` record, in one transaction,
audited. Rooms that recorded a part of the merge (the inbox's conversations) restore it through the
`restorers` they pass in, after the merged contact exists again.

What the undo refuses, with the reason: a merge undone already or older than the window; a kept contact
deleted or merged into another one since (that merge has to be undone first); a merged contact's id or
IDNP taken by another contact since. Everything else is restored as far as it still can be, and reported:
a moved row deleted or moved elsewhere since stays as it is, so does a kept contact's field edited since
the merge (a later edit wins over the old value), and a re-created row that no longer fits (its company
deleted since) is left out. Nothing is guessed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import scoring
from crm_core.field_visibility import contact_label, contact_label_of
from crm_core.merge import CONTACTS, LINKS
from crm_core.merge_model import ACTIVE, UNDONE, ContactMerge
from crm_core.models import Contact
from switchboard import audit
from switchboard.audit import Actor
from switchboard.db import utcnow
from switchboard.errors import N_, Conflict, NotFound
from switchboard.permissions import Role
from switchboard.row_json import decode_value, from_json, to_json

CHUNK = 500  # ids per IN (…): far below either database's limit on bound parameters
LINK_COLUMNS = frozenset({"contact_id", "related_id", "other_id"})
TABLES: dict[str, Table] = {table.name: table for table, _ in LINKS}

# A room's part of the undo: given the session, the merge and what the room recorded, it puts its rows
# back and answers how many it could not, by kind.
Restorer = Callable[[AsyncSession, ContactMerge, Mapping[str, Any]], Awaitable[dict[str, int]]]


@dataclass(frozen=True)
class MergeView:
    id: int
    kept_id: int
    kept_name: str
    merged_id: int
    merged_name: str
    actor_id: int | None
    actor_name: str | None
    created_at: dt.datetime
    status: str
    undone_at: dt.datetime | None
    undone_by_name: str | None
    report: dict[str, Any] = field(default_factory=dict)  # after an undo: what could not be put back

    def undo_until(self, window: dt.timedelta) -> dt.datetime:
        return self.created_at + window

    def undoable(self, window: dt.timedelta, now: dt.datetime | None = None) -> bool:
        return self.status == ACTIVE and (now or utcnow()) <= self.undo_until(window)

    def as_json(self, window: dt.timedelta) -> dict[str, Any]:
        return {
            "id": self.id,
            "kept_id": self.kept_id,
            "kept_name": self.kept_name,
            "merged_id": self.merged_id,
            "merged_name": self.merged_name,
            "actor": self.actor_name,
            "created_at": self.created_at.isoformat(),
            "status": self.status,
            "undo_until": self.undo_until(window).isoformat(),
            "undone_at": self.undone_at.isoformat() if self.undone_at else None,
            "undone_by": self.undone_by_name,
            "report": self.report,
        }


@dataclass(frozen=True)
class UndoResult:
    record_id: int
    kept_id: int
    merged_id: int
    not_restored: dict[str, int] = field(default_factory=dict)  # table or kind → rows left as they are
    fields_kept: tuple[str, ...] = ()  # the kept contact's fields edited since the merge, left as they are

    @property
    def complete(self) -> bool:
        return not self.not_restored and not self.fields_kept

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.record_id,
            "kept_id": self.kept_id,
            "merged_id": self.merged_id,
            "complete": self.complete,
            "not_restored": self.not_restored,
            "fields_kept": list(self.fields_kept),
        }


def may_undo(role: Role | str, user_id: int, merged_by: int | None) -> bool:
    """Supervisors and admins may undo any merge they can see, everyone else only their own."""
    return Role(role) in (Role.ADMIN, Role.SUPERVISOR) or (merged_by is not None and merged_by == user_id)


def _name(row: Mapping[str, Any], contact_id: int, hidden: frozenset[str]) -> str:
    return contact_label(
        contact_id,
        row.get("first_name") or "",
        row.get("last_name") or "",
        row.get("phone"),
        row.get("email"),
        hidden,
    )


def _view(record: ContactMerge, kept: Contact | None, hidden: frozenset[str]) -> MergeView:
    """`hidden`: the contact fields the reader may not see, left out of the two names."""
    return MergeView(
        id=record.id,
        kept_id=record.kept_id,
        kept_name=contact_label_of(kept, hidden) if kept else _name(record.kept_row, record.kept_id, hidden),
        merged_id=record.merged_id,
        merged_name=_name(record.merged_row, record.merged_id, hidden),
        actor_id=record.actor_id,
        actor_name=record.actor_name,
        created_at=record.created_at,
        status=record.status,
        undone_at=record.undone_at,
        undone_by_name=record.undone_by_name,
        report=dict(record.undo_report or {}),
    )


async def get_merge(
    session: AsyncSession, record_id: int, hidden: frozenset[str] = frozenset()
) -> MergeView | None:
    record = await session.get(ContactMerge, record_id)
    if record is None:
        return None
    return _view(record, await session.get(Contact, record.kept_id), hidden)


async def recent_merges(
    session: AsyncSession,
    *,
    visible: ColumnElement[bool],
    since: dt.datetime,
    merged_by: int | None = None,
    limit: int = 20,
    hidden: frozenset[str] = frozenset(),
) -> list[MergeView]:
    """The merges since `since` whose kept contact the caller may see (only `merged_by`'s when given),
    newest first, undone ones included."""
    statement = (
        select(ContactMerge, Contact)
        .join(Contact, Contact.id == ContactMerge.kept_id)
        .where(ContactMerge.created_at >= since, visible)
        .order_by(ContactMerge.created_at.desc(), ContactMerge.id.desc())
        .limit(limit)
    )
    if merged_by is not None:
        statement = statement.where(ContactMerge.actor_id == merged_by)
    return [_view(record, kept, hidden) for record, kept in await session.execute(statement)]


async def undo_merge(
    session: AsyncSession,
    actor: Actor,
    record_id: int,
    *,
    window: dt.timedelta,
    restorers: Mapping[str, Restorer] | None = None,
    now: dt.datetime | None = None,
) -> UndoResult:
    """Undo merge `record_id` (see the module's docstring for what is refused and what is reported)."""
    now = now or utcnow()
    record = await session.scalar(select(ContactMerge).where(ContactMerge.id == record_id).with_for_update())
    if record is None:
        raise NotFound(N_("No such merge."))
    missing = [room for room in record.parts if room not in (restorers or {})]
    if missing:
        raise RuntimeError(f"merge #{record_id} has parts nobody restores: {missing}")
    await _check(session, record, window, now)
    fields_kept = await _restore_kept(session, record, now)
    idnp = record.merged_row.get("idnp")
    if idnp:
        holder = await session.scalar(select(Contact.id).where(Contact.idnp == idnp))
        if holder is not None:
            raise Conflict(
                N_("The IDNP %(idnp)s belongs to contact #%(id)s now: change it there first."),
                idnp=idnp,
                id=holder,
            )
    await session.execute(insert(CONTACTS).values(from_json(CONTACTS, record.merged_row)))
    lost: dict[str, int] = {}
    for name, rows in record.deleted.items():
        _add(lost, name, await _recreate(session, TABLES[name], rows))
    for name, entries in record.moved.items():
        _add(lost, name, await _move_back(session, TABLES[name], entries))
    for room, part in record.parts.items():
        for kind, count in (await (restorers or {})[room](session, record, part)).items():
            _add(lost, kind, count)
    for contact_id in (record.kept_id, record.merged_id):  # each scores on its own profile again
        await scoring.recompute_contact(session, contact_id)
    record.status = UNDONE
    record.undone_at = now
    record.undone_by_id = actor.user_id
    record.undone_by_name = actor.username
    record.undo_report = {"not_restored": lost, "fields_kept": fields_kept}
    await session.flush()
    await _audit(session, actor, record, lost, fields_kept)
    return UndoResult(record.id, record.kept_id, record.merged_id, lost, tuple(fields_kept))


def _add(lost: dict[str, int], kind: str, count: int) -> None:
    if count:
        lost[kind] = lost.get(kind, 0) + count


async def _check(session: AsyncSession, record: ContactMerge, window: dt.timedelta, now: dt.datetime) -> None:
    if record.status != ACTIVE:
        raise Conflict(N_("This merge has been undone already."))
    if now > record.created_at + window:
        raise Conflict(
            N_("This merge is older than %(days)s days and can no longer be undone."), days=window.days
        )
    kept = await session.scalar(
        select(Contact.id).where(Contact.id == record.kept_id).with_for_update(key_share=True)
    )
    if kept is None:
        later = await session.scalar(
            select(ContactMerge.kept_id).where(
                ContactMerge.merged_id == record.kept_id,
                ContactMerge.status == ACTIVE,
                ContactMerge.id > record.id,
            )
        )
        if later is not None:
            raise Conflict(
                N_("Contact #%(id)s was merged into contact #%(into)s since: undo that merge first."),
                id=record.kept_id,
                into=later,
            )
        raise Conflict(N_("Contact #%(id)s has been deleted since the merge."), id=record.kept_id)
    if await session.scalar(select(Contact.id).where(Contact.id == record.merged_id)) is not None:
        raise Conflict(
            N_("Contact number #%(id)s has been given to another contact since."), id=record.merged_id
        )


async def _restore_kept(session: AsyncSession, record: ContactMerge, now: dt.datetime) -> list[str]:
    """The kept contact's old values, for each field the merge set and nobody changed since; answers the
    fields left as they are (a later edit wins). Custom values are compared key by key."""
    row = (await session.execute(select(CONTACTS).where(CONTACTS.c.id == record.kept_id))).mappings().one()
    current = to_json(CONTACTS, row)
    restore: dict[str, Any] = {}
    kept: list[str] = []
    for name, after in record.kept_after.items():
        if name not in CONTACTS.c:
            continue
        before = record.kept_row.get(name)
        if name == "custom":
            custom, skipped = _restore_custom(before or {}, after or {}, current.get("custom") or {})
            kept += skipped
            if custom != (current.get("custom") or {}):
                restore["custom"] = custom
        elif current.get(name) == after:
            restore[name] = decode_value(CONTACTS, name, before)
        else:
            kept.append(name)
    if restore:
        await session.execute(
            update(CONTACTS).where(CONTACTS.c.id == record.kept_id).values(**restore, updated_at=now)
        )
    return kept


def _restore_custom(
    before: Mapping[str, Any], after: Mapping[str, Any], current: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    custom = dict(current)
    skipped = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) == after.get(key):
            continue
        if current.get(key) != after.get(key):
            skipped.append(f"custom.{key}")
        elif key in before:
            custom[key] = before[key]
        else:
            custom.pop(key, None)
    return custom, skipped


async def _recreate(session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert the rows the merge deleted, with their old ids when still free; answers how many no longer
    fit (a company or related contact deleted since, a value taken meanwhile)."""
    lost = 0
    for data in rows:
        values = from_json(table, data)
        if await session.scalar(select(table.c.id).where(table.c.id == values["id"])) is not None:
            values.pop("id")
        try:
            async with session.begin_nested():
                await session.execute(insert(table).values(values))
        except IntegrityError:
            lost += 1
    return lost


async def _move_back(session: AsyncSession, table: Table, entries: Sequence[Mapping[str, Any]]) -> int:
    """Point moved rows back at their old contact: only those still where the merge put them (a row
    deleted or moved elsewhere since counts as lost); a primary flag changed since stays as it is."""
    current: dict[int, dict[str, Any]] = {}
    for ids in _chunks([e["id"] for e in entries]):
        rows = await session.execute(select(table).where(table.c.id.in_(ids)))
        current.update({row["id"]: to_json(table, row) for row in rows.mappings()})
    groups: dict[tuple[tuple[str, Any], ...], list[int]] = {}
    lost = 0
    for entry in entries:
        now = current.get(entry["id"])
        after, before = entry["after"], entry["before"]
        if now is None or any(now.get(c) != v for c, v in after.items() if c in LINK_COLUMNS):
            lost += 1
            continue
        values = {c: v for c, v in before.items() if c in LINK_COLUMNS or now.get(c) == after.get(c)}
        if values:
            groups.setdefault(tuple(sorted(values.items())), []).append(entry["id"])
    for key, ids in groups.items():
        decoded = {c: decode_value(table, c, v) for c, v in key}
        for chunk in _chunks(ids):
            await session.execute(update(table).where(table.c.id.in_(chunk)).values(decoded))
    return lost


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    batch: list[int] = []
    for row_id in ids:
        batch.append(row_id)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


async def _audit(
    session: AsyncSession, actor: Actor, record: ContactMerge, lost: Mapping[str, int], fields_kept: list[str]
) -> None:
    shown = ("first_name", "last_name", "phone", "email", "idnp", "branch_id", "owner_id")
    report = "; not restored: " + ", ".join(f"{k} {v}" for k, v in sorted(lost.items())) if lost else ""
    edited = "; edited since, kept: " + ", ".join(fields_kept) if fields_kept else ""
    await audit.record_change(
        session,
        actor,
        module="contacts",
        action=audit.AuditAction.CREATE,
        record_type="contact",
        record_id=record.merged_id,
        changes=audit.diff({}, {name: record.merged_row.get(name) for name in shown}),
        detail=f"restored by undoing merge #{record.id} into contact #{record.kept_id}{report}",
    )
    restored = [name for name in record.kept_after if name not in fields_kept]
    await audit.record_change(
        session,
        actor,
        module="contacts",
        action=audit.AuditAction.UPDATE,
        record_type="contact",
        record_id=record.kept_id,
        changes={
            **audit.diff(
                {name: record.kept_after[name] for name in restored},
                {name: record.kept_row.get(name) for name in restored},
            ),
            "merged_contact_id": [record.merged_id, None],
        },
        detail=f"undid merge #{record.id}: contact #{record.merged_id} is apart again{edited}",
    )
