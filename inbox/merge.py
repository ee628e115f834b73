"""One customer on several channels: an agent links two contacts from the contact panel, and their
conversations become one customer's (`merge_customers`); `search_customers` finds whom to link.

The inbox owns conversations and messages, so it moves those itself and then hands the contact rows to
`crm_core.merge`, all in one transaction. A customer has at most one open conversation (a partial unique
index): when both have one, the merged customer's messages move into the kept customer's open
conversation and the emptied conversation is deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import merge as crm_merge
from crm_core.models import Contact, ContactIdentity
from inbox.labels import MAX_LABELS
from inbox.models import OPEN_STATUSES, Conversation, Message
from inbox.notifications_model import Notification
from inbox.service import Inbox, Viewer, visible_to
from switchboard.audit import Actor
from switchboard.errors import N_, NotFound
from switchboard.permissions import Role

log = logging.getLogger(__name__)

MAX_RESULTS = 20
MAX_EVENTS = 20  # conversations announced on the live feed after a merge; the lists reload anyway
MERGED_STATUS = "merged"  # what the live feed says of a conversation emptied into another
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


async def merge_customers(
    inbox: Inbox, viewer: Viewer, actor: Actor, keep_id: int, merge_id: int
) -> CustomersMerged:
    """Make `merge_id` part of `keep_id`: conversations, messages, channel identities and leads move to
    the kept customer, in one transaction. NotFound when either is missing or hidden from the viewer
    (the same answer, so hidden customers cannot be probed); the live feed hears of every conversation
    that changed after the commit, so open screens reload."""
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
        if target is not None:
            state = _joined(target, live)
            # Announced before they go: the feed tells whoever sees them where the thread went.
            events = [{**_event(c), "status": MERGED_STATUS, "merged_into": target.id} for c in gone]
            messages_moved = await _empty_into(session, target, gone)
        moved = [c for c in threads if c.contact_id == merge_id and c not in gone]
        await session.execute(
            update(Conversation).where(Conversation.contact_id == merge_id).values(contact_id=keep_id)
        )
        await session.execute(
            update(Message).where(Message.author_contact_id == merge_id).values(author_contact_id=keep_id)
        )
        for name, value in state.items():
            setattr(target, name, value)
        await session.flush()
        merged = await crm_merge.merge_contacts(session, actor, keep_id, merge_id)
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


async def _empty_into(session: AsyncSession, target: Conversation, gone: list[Conversation]) -> int:
    """Move the messages (and the notifications pointing at them) of `gone` into `target`, and delete
    the emptied conversations — before any contact changes, or the one-open-conversation index would
    refuse."""
    if not gone:
        return 0
    ids = [c.id for c in gone]
    moved = cast(
        CursorResult[Any],
        await session.execute(
            update(Message).where(Message.conversation_id.in_(ids)).values(conversation_id=target.id)
        ),
    )
    await session.execute(
        update(Notification).where(Notification.conversation_id.in_(ids)).values(conversation_id=target.id)
    )
    await session.execute(delete(Conversation).where(Conversation.id.in_(ids)))
    return moved.rowcount


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
