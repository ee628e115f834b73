"""One customer on several channels: an agent links two contacts from the contact panel, and their
conversations become one customer's (`merge_customers`); `search_customers` finds whom to link.

The inbox owns conversations, messages, notifications and calls, so it moves those itself and then hands
the contact rows to `crm_core.merge`, all in one transaction, with a record of what it moved as its part
of the merge record. A customer has at most one open conversation (a partial unique index): when both
have one, the messages of one move into the other (the later one) and the emptied conversation is
deleted. `undo_customers_merge` puts it all back (`crm_core.merge_undo` restores the contact first, then
calls `_restore` here with the inbox's part).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from crm_core import merge as crm_merge
from crm_core import merge_undo as crm_undo
from crm_core import tasks
from crm_core.merge_model import ContactMerge
from crm_core.models import Contact, ContactIdentity
from inbox.calls_model import Call
from inbox.labels import MAX_LABELS
from inbox.models import OPEN_STATUSES, Conversation, Message
from inbox.notifications_model import Notification
from inbox.service import Inbox, Viewer, visible_to
from switchboard.audit import Actor
from switchboard.db import cast_table
from switchboard.errors import N_, NotFound
from switchboard.permissions import Role
from switchboard.row_json import decode_value, encode, from_json

log = logging.getLogger(__name__)

MAX_RESULTS = 20
MAX_EVENTS = 20  # conversations announced on the live feed after a merge; the lists reload anyway
MERGED_STATUS = "merged"  # what the live feed says of a conversation emptied into another
CHUNK = 500  # ids per IN (…)
PART = "inbox"  # this room's key in the merge record's parts
CONVERSATIONS = cast_table(Conversation)
_ACTIVITY = {"open": 0, "pending": 1, "snoozed": 2}  # the most active status wins when two threads join


@dataclass(frozen=True)
class CustomersMerged:
    kept_id: int
    merged_id: int
    conversation_id: int | None  # the kept customer's open conversation after the merge, if any
    conversations_moved: int
    messages_moved: int  # from the merged customer's open conversation into the kept one's
    merged: crm_merge.MergeResult


@dataclass(frozen=True)
class CustomerHit:
    """A search result in the link dialog: enough to tell two "Maria"s apart."""

    id: int
    name: str
    phone: str | None
    email: str | None
    channels: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "phone": self.phone,
            "email": self.email,
            "channels": self.channels,
        }


def _seen_by(viewer: Viewer, contact_id: Any) -> Any:
    """`contact_id` has a conversation the viewer may see: `Inbox.can_see_contact` as a clause."""
    return exists().where(Conversation.contact_id == contact_id, visible_to(viewer))


async def search_customers(
    inbox: Inbox, viewer: Viewer, query: str, *, exclude: int | None = None, limit: int = MAX_RESULTS
) -> list[CustomerHit]:
    """Contacts matching `query` (name, phone, e-mail, channel address) that the viewer may see by the
    inbox's rules (admins every contact, others those with a conversation visible to them), latest
    updated first."""
    matches = crm_merge.search_filter(query, inbox.region)
    if matches is None:
        return []
    statement = select(Contact).where(matches)
    if viewer.role is not Role.ADMIN:
        statement = statement.where(_seen_by(viewer, Contact.id))
    if exclude is not None:
        statement = statement.where(Contact.id != exclude)
    statement = statement.order_by(Contact.updated_at.desc(), Contact.id.desc()).limit(
        min(limit, MAX_RESULTS)
    )
    async with inbox.sessions() as session:
        found = list(await session.scalars(statement))
        channels: dict[int, list[str]] = {}
        if found:
            rows = await session.execute(
                select(ContactIdentity.contact_id, ContactIdentity.channel)
                .where(ContactIdentity.contact_id.in_([c.id for c in found]))
                .order_by(ContactIdentity.id)
            )
            for contact_id, channel in rows:
                known = channels.setdefault(contact_id, [])
                if channel not in known:
                    known.append(channel)
    return [CustomerHit(c.id, c.display_name, c.phone, c.email, channels.get(c.id, [])) for c in found]


async def what_moves(session: AsyncSession, merge_id: int) -> dict[str, int]:
    """What merging the customer away would move, by kind: its conversations, their messages and its calls,
    then crm_core's rows (`crm_core.merge.rows_to_move`)."""
    threads = select(Conversation.id).where(Conversation.contact_id == merge_id)
    counts = {
        "conversations": await session.scalar(select(func.count()).select_from(threads.subquery())),
        "messages": await session.scalar(
            select(func.count()).select_from(Message).where(Message.conversation_id.in_(threads))
        ),
        "calls": await session.scalar(
            select(func.count()).select_from(Call).where(Call.contact_id == merge_id)
        ),
    }
    found = {kind: int(n) for kind, n in counts.items() if n}
    return {**found, **await crm_merge.rows_to_move(session, merge_id)}


async def merge_customers(
    inbox: Inbox,
    viewer: Viewer,
    actor: Actor,
    keep_id: int,
    merge_id: int,
    *,
    choices: Mapping[str, Any] | None = None,
) -> CustomersMerged:
    """Make `merge_id` part of `keep_id`: conversations, messages, calls, channel identities, leads, deals
    and the rest move to the kept customer, which takes the chosen values (`crm_core.merge_fields`), in
    one transaction. NotFound when either is missing or hidden from the viewer (the same answer, so hidden
    customers cannot be probed); the live feed hears of every conversation that changed after the
    commit, so open screens reload."""
    async with inbox.sessions() as session, session.begin():
        # The contacts first, locked: a second merge of either waits here, not halfway through.
        await crm_merge.lock_pair(session, keep_id, merge_id)
        if viewer.role is not Role.ADMIN:
            for contact_id in (keep_id, merge_id):
                if not await session.scalar(select(_seen_by(viewer, contact_id))):
                    raise NotFound(N_("No such contact."))
        threads = list(
            await session.scalars(
                select(Conversation)
                .where(Conversation.contact_id.in_((keep_id, merge_id)))
                .order_by(Conversation.id)
                .with_for_update()
            )
        )
        live = sorted(
            (c for c in threads if c.status in OPEN_STATUSES), key=lambda c: c.contact_id != keep_id
        )
        # The joined thread is the latest conversation of the two, open or not (see `_joined`).
        target = threads[-1] if live else None
        gone = [c for c in live if c is not target]
        events: list[dict[str, Any]] = []
        state: dict[str, Any] = {}
        messages_moved = 0
        part: dict[str, Any] = {}
        if target is not None:
            state = _joined(target, live)
            part["target"] = {
                "id": target.id,
                "before": {name: encode(getattr(target, name)) for name in state},
                "after": {name: encode(value) for name, value in state.items()},
            }
            part["deleted_conversations"] = [_row(c) for c in gone]
            # Announced before they go: the feed tells whoever sees them where the thread went.
            events = [{**_event(c), "status": MERGED_STATUS, "merged_into": target.id} for c in gone]
            messages_moved = await _empty_into(session, target, gone, part)
        moved = [c for c in threads if c.contact_id == merge_id and c not in gone]
        part["conversations"] = await _ids(
            session,
            update(Conversation).where(Conversation.contact_id == merge_id).values(contact_id=keep_id),
            Conversation.id,
        )
        part["authored"] = await _ids(
            session,
            update(Message).where(Message.author_contact_id == merge_id).values(author_contact_id=keep_id),
            Message.id,
        )
        part["calls"] = await _ids(  # a call's customer would otherwise become nobody
            session, update(Call).where(Call.contact_id == merge_id).values(contact_id=keep_id), Call.id
        )
        for name, value in state.items():
            setattr(target, name, value)
        await session.flush()
        merged = await crm_merge.merge_contacts(
            session, actor, keep_id, merge_id, choices=choices, parts={PART: part}
        )
        changed = sorted({*moved, *([target] if target is not None else [])}, key=lambda c: -c.id)
        events += [_event(c) for c in changed[:MAX_EVENTS]]
        result = CustomersMerged(
            keep_id,
            merge_id,
            target.id if target is not None else None,
            len(moved),
            messages_moved,
            merged,
        )
    for data in events:
        try:
            await inbox.bus.publish("inbox.conversation", {"conversation": data})
        except Exception:  # committed already: a screen that misses it catches up on its next reload
            log.exception("could not announce conversation %s after a merge", data["id"])
    return result


def _joined(target: Conversation, live: list[Conversation]) -> dict[str, Any]:
    """The state of the one thread after the merge, from the open conversations (the kept customer's
    first). The thread is the latest conversation of the two customers, even when that one is resolved
    and an older one is open: `Inbox.ingest` adds a customer's message to their latest conversation, so
    the open one has to be it."""
    everything = [target, *(c for c in live if c is not target)]
    last = max(everything, key=lambda c: c.last_activity_at)  # where the customer was last heard from
    status = min((c.status for c in live), key=lambda s: _ACTIVITY.get(s, 0))
    snoozed = [c.snoozed_until for c in live if c.status == "snoozed" and c.snoozed_until is not None]
    return {
        "status": status,
        "snoozed_until": min(snoozed) if status == "snoozed" and snoozed else None,
        "assignee_id": next((c.assignee_id for c in live if c.assignee_id is not None), None),
        "branch_id": next((c.branch_id for c in live if c.branch_id is not None), target.branch_id),
        "waiting_since": _earliest(c.waiting_since for c in live),
        "first_response_at": _earliest(c.first_response_at for c in live),
        "unread": sum(c.unread for c in everything),
        "priority": max(c.priority for c in everything),
        "labels": list(dict.fromkeys(label for c in everything for label in c.labels or []))[:MAX_LABELS],
        "last_activity_at": last.last_activity_at,
        "last_inbound_channel": last.last_inbound_channel or target.last_inbound_channel,
        "last_inbound_account": last.last_inbound_account or target.last_inbound_account,
    }


# What points at a conversation and moves with its messages when it is emptied into another: the part's
# key, and the column.
_FOLLOWERS: tuple[tuple[str, InstrumentedAttribute[Any]], ...] = (
    ("messages", Message.conversation_id),
    ("notifications", Notification.conversation_id),
    ("calls_conversation", Call.conversation_id),
)


async def _empty_into(
    session: AsyncSession, target: Conversation, gone: list[Conversation], part: dict[str, Any]
) -> int:
    """Move the messages of `gone` — and the notifications, calls and tasks about them — into `target`,
    recording which came from where, and delete the emptied conversations: before any contact changes,
    or the one-open-conversation index would refuse."""
    messages = 0
    for key, column in _FOLLOWERS:
        part[key] = {}
        for c in gone:
            ids = await _ids(
                session,
                update(column.class_).where(column == c.id).values({column.key: target.id}),
                column.class_.id,
            )
            part[key][str(c.id)] = ids
            messages += len(ids) if key == "messages" else 0
    part["tasks_conversation"] = {
        str(c.id): await tasks.move_conversation_tasks(session, c.id, target.id) for c in gone
    }
    await session.execute(delete(Conversation).where(Conversation.id.in_([c.id for c in gone])))
    return messages


async def _ids(session: AsyncSession, statement: Any, id_column: Any) -> list[int]:
    """Run an UPDATE and answer the ids of the rows it changed."""
    result = await session.execute(statement.returning(id_column))
    return sorted(result.scalars().all())


def _row(conversation: Conversation) -> dict[str, Any]:
    return {c.key: encode(getattr(conversation, c.key)) for c in CONVERSATIONS.columns}


# --- undo ---------------------------------------------------------------------------------------------------


async def undo_customers_merge(
    inbox: Inbox, actor: Actor, record_id: int, *, window: dt.timedelta
) -> crm_undo.UndoResult:
    """Undo merge `record_id` (`crm_core.merge_undo` says what is refused and what reported): the merged
    customer is back with its conversations, messages and calls as they were; the live feed hears of
    both customers' conversations after the commit, so open screens reload."""
    async with inbox.sessions() as session, session.begin():
        result = await crm_undo.undo_merge(
            session, actor, record_id, window=window, restorers={PART: _restore}
        )
        threads = list(
            await session.scalars(
                select(Conversation)
                .where(Conversation.contact_id.in_((result.kept_id, result.merged_id)))
                .order_by(Conversation.id.desc())
                .limit(MAX_EVENTS)
            )
        )
        events = [_event(c) for c in threads]
    for data in events:
        try:
            await inbox.bus.publish("inbox.conversation", {"conversation": data})
        except Exception:  # committed already: a screen that misses it catches up on its next reload
            log.exception("could not announce conversation %s after undoing a merge", data["id"])
    return result


async def _restore(session: AsyncSession, record: ContactMerge, part: Mapping[str, Any]) -> dict[str, int]:
    """The inbox's half of an undo, once the merged customer exists again: its conversations back, the
    emptied ones re-created (resolved when their customer has another open one by now), the messages,
    notifications, calls and tasks that moved between threads back where they were, the joined thread's
    state where nothing changed it since. Answers what could not be put back, by kind."""
    keep_id, merge_id = record.kept_id, record.merged_id
    lost: dict[str, int] = {}
    lost["conversations"] = await _back(
        session, Conversation.contact_id, part.get("conversations", []), keep_id, merge_id
    )
    target = part.get("target")
    if target is not None:  # first: its status decides whether a re-created thread may be open again
        lost["conversation_state"] = await _restore_state(session, target)
    remap: dict[int, int] = {}
    for data in part.get("deleted_conversations", []):
        old_id, new_id, resolved = await _recreate(session, data)
        remap[old_id] = new_id
        lost["conversations_resolved"] = lost.get("conversations_resolved", 0) + resolved
    if target is not None:
        for key, column in _FOLLOWERS:
            for old, ids in part.get(key, {}).items():
                lost[key] = lost.get(key, 0) + await _back(
                    session, column, ids, target["id"], remap[int(old)]
                )
        for old, ids in part.get("tasks_conversation", {}).items():
            back = await tasks.move_conversation_tasks(session, target["id"], remap[int(old)], ids)
            lost["tasks_conversation"] = lost.get("tasks_conversation", 0) + len(ids) - len(back)
    lost["authored"] = await _back(
        session, Message.author_contact_id, part.get("authored", []), keep_id, merge_id
    )
    lost["calls"] = await _back(session, Call.contact_id, part.get("calls", []), keep_id, merge_id)
    return {kind: count for kind, count in lost.items() if count}


async def _back(
    session: AsyncSession, column: InstrumentedAttribute[Any], ids: list[int], was: Any, back_to: Any
) -> int:
    """Set `column` back to `back_to` on the rows `ids` that still hold `was`; answers how many do not."""
    moved = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        moved += len(
            await _ids(
                session,
                update(column.class_)
                .where(column.class_.id.in_(chunk), column == was)
                .values({column.key: back_to}),
                column.class_.id,
            )
        )
    return len(ids) - moved


async def _recreate(session: AsyncSession, data: Mapping[str, Any]) -> tuple[int, int, int]:
    """An emptied conversation again, with its old id when still free; resolved when its customer has
    another open conversation by now (one open thread per customer). Answers (old id, id, 1 if resolved)."""
    values = from_json(CONVERSATIONS, data)
    old_id = values["id"]
    if await session.get(Conversation, old_id) is not None:
        values.pop("id")
    resolved = 0
    if values.get("status") in OPEN_STATUSES:
        open_one = await session.scalar(
            select(Conversation.id).where(
                Conversation.contact_id == values["contact_id"], Conversation.status.in_(OPEN_STATUSES)
            )
        )
        if open_one is not None:
            values.update(status="resolved", snoozed_until=None)
            resolved = 1
    new_id = await session.scalar(insert(CONVERSATIONS).values(values).returning(CONVERSATIONS.c.id))
    assert new_id is not None
    return old_id, new_id, resolved


async def _restore_state(session: AsyncSession, target: Mapping[str, Any]) -> int:
    """The joined thread's fields back to their values before the merge, each where it still holds what
    the merge set; answers how many had changed since (a new message, an assignment: kept)."""
    conversation = await session.get(Conversation, target["id"])
    if conversation is None:
        return 1
    changed = 0
    for name, after in target["after"].items():
        if encode(getattr(conversation, name)) == after:
            setattr(conversation, name, decode_value(CONVERSATIONS, name, target["before"][name]))
        else:
            changed += 1
    await session.flush()
    return changed


def _earliest(values: Iterable[dt.datetime | None]) -> dt.datetime | None:
    present = [x for x in values if x is not None]
    return min(present) if present else None


def _event(conversation: Conversation) -> dict[str, Any]:
    """A conversation as `inbox.conversation` events carry it (what the live feed filters on)."""
    return {
        "id": conversation.id,
        "contact_id": conversation.contact_id,
        "status": conversation.status,
        "assignee_id": conversation.assignee_id,
        "branch_id": conversation.branch_id,
        "labels": list(conversation.labels or []),
    }
