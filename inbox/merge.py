"""One customer on several channels: an agent links two contacts from the contact panel, and their
conversations become one customer's (`merge_customers`); `search_customers` finds whom to link.

The inbox owns conversations and messages, so it moves those itself and then hands the contact rows to
`crm_core.merge`, all in one transaction. A customer has at most one open conversation (a partial unique
index): when both have one, the merged customer's messages move into the kept customer's open
conversation and the emptied conversation is deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, exists, select, update
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
    statement = statement.order_by(Contact.updated_at.desc(), Contact.id.desc()).limit(min(limit, MAX_RESULTS))
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
        keep_open = _open_of(threads, keep_id)
        merge_open = _open_of(threads, merge_id)
        messages_moved = 0
        emptied: dict[str, Any] | None = None
        if keep_open is not None and merge_open is not None:
            messages_moved = await _join(session, keep_open, merge_open)
            emptied = {**_event(merge_open), "status": MERGED_STATUS, "merged_into": keep_open.id}
            threads.remove(merge_open)
        moved = [c for c in threads if c.contact_id == merge_id]
        await session.execute(
            update(Conversation).where(Conversation.contact_id == merge_id).values(contact_id=keep_id)
        )
        await session.execute(
            update(Message).where(Message.author_contact_id == merge_id).values(author_contact_id=keep_id)
        )
        merged = await crm_merge.merge_contacts(session, actor, keep_id, merge_id)
        for conversation in threads:
            await session.refresh(conversation)
        survivor = keep_open or merge_open
        changed = sorted(
            [c for c in threads if c is survivor or c in moved], key=lambda c: c.id, reverse=True
        )
        events = [_event(c) for c in changed[:MAX_EVENTS]]
        if emptied is not None:
            events.insert(0, emptied)
        result = CustomersMerged(
            keep_id,
            merge_id,
            survivor.id if survivor is not None else None,
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


def _open_of(threads: list[Conversation], contact_id: int) -> Conversation | None:
    return next((c for c in threads if c.contact_id == contact_id and c.status in OPEN_STATUSES), None)


async def _join(session: AsyncSession, keep: Conversation, gone: Conversation) -> int:
    """Move `gone`'s messages (and the notifications pointing at it) into `keep`, fold its state in, and
    delete it — before its contact changes, or the one-open-conversation index would refuse."""
    moved = await session.execute(
        update(Message).where(Message.conversation_id == gone.id).values(conversation_id=keep.id)
    )
    await session.execute(
        update(Notification).where(Notification.conversation_id == gone.id).values(conversation_id=keep.id)
    )
    if gone.last_activity_at > keep.last_activity_at:  # where the customer was last heard from
        keep.last_inbound_channel = gone.last_inbound_channel or keep.last_inbound_channel
        keep.last_inbound_account = gone.last_inbound_account or keep.last_inbound_account
        keep.last_activity_at = gone.last_activity_at
    keep.waiting_since = _earliest(keep.waiting_since, gone.waiting_since)
    keep.first_response_at = _earliest(keep.first_response_at, gone.first_response_at)
    keep.unread = keep.unread + gone.unread
    keep.priority = max(keep.priority, gone.priority)
    keep.labels = list(dict.fromkeys([*(keep.labels or []), *(gone.labels or [])]))[:MAX_LABELS]
    if keep.assignee_id is None:
        keep.assignee_id = gone.assignee_id
    if keep.branch_id is None:
        keep.branch_id = gone.branch_id
    if _ACTIVITY.get(gone.status, 0) < _ACTIVITY.get(keep.status, 0):
        keep.status, keep.snoozed_until = gone.status, gone.snoozed_until
    elif keep.status == gone.status == "snoozed":
        keep.snoozed_until = _earliest(keep.snoozed_until, gone.snoozed_until)
    await session.execute(delete(Conversation).where(Conversation.id == gone.id))
    await session.flush()
    count: int = getattr(moved, "rowcount", 0)
    return count


def _earliest(a: Any, b: Any) -> Any:
    present = [x for x in (a, b) if x is not None]
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
