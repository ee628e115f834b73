"""Notifications: a colleague @mentioned in a private note hears about it; an agent hears of a call they
missed (`inbox.calls` makes those, with the callback task).

`notify_mentions()` runs inside the note's own transaction (`Inbox.send`), so the note and its
notifications commit together; `publish()` then puts one `inbox.notification` event per person on the
bus, carrying `user_id`, and the live feed forwards it to that person's sockets only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import service as inbox_service
from inbox.models import Conversation, Message
from inbox.notifications_model import Notification
from switchboard.accounts_model import User
from switchboard.bus import EventBus
from switchboard.db import utcnow
from switchboard.permissions import Role

TOPIC = "inbox.notification"
MENTION = "mention"
MISSED_CALL = "missed_call"
# `@ion.popescu` but not `ion@example.com`; usernames are `[a-z0-9][a-z0-9._-]{2,63}`.
MENTION_RE = re.compile(r"(?<![\w@.])@([A-Za-z0-9][A-Za-z0-9._-]{2,63})")
MAX_MENTIONS = 20
EXCERPT = 200
LIST_LIMIT = 20


def mentioned_usernames(body: str) -> list[str]:
    """The usernames a note @mentions, in order, each once (a trailing `.` ends the sentence, not the
    name, unless the name really has it: both spellings are tried)."""
    found: dict[str, None] = {}
    for match in MENTION_RE.finditer(body):
        name = match.group(1).lower()
        found[name] = None
        stripped = name.rstrip("._-")
        if stripped != name and len(stripped) >= 3:
            found[stripped] = None
        if len(found) >= MAX_MENTIONS:
            break
    return list(found)


def as_json(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "kind": n.kind,
        "conversation_id": n.conversation_id,
        "message_id": n.message_id,
        "text": n.text,
        "created_at": n.created_at.isoformat(),
        "read_at": n.read_at.isoformat() if n.read_at else None,
    }


async def notify_mentions(
    session: AsyncSession, conversation: Conversation, message: Message
) -> list[dict[str, Any]]:
    """Store a notification for each active person the note @mentions who may see the conversation
    (never its author); returns the bus events to publish after the commit."""
    names = mentioned_usernames(message.body)
    if not names:
        return []
    users = list(
        await session.scalars(
            select(User).where(User.username.in_(names), User.active.is_(True)).order_by(User.id)
        )
    )
    author = await session.get(User, message.author_user_id) if message.author_user_id else None
    author_name = (author.full_name or author.username) if author else ""
    excerpt = " ".join(message.body.split())[:EXCERPT]
    where = {"branch_id": conversation.branch_id, "assignee_id": conversation.assignee_id}
    events: list[dict[str, Any]] = []
    for user in users:
        if user.id == message.author_user_id:
            continue
        try:
            role = Role(user.role)
        except ValueError:
            continue
        if not inbox_service.Viewer(user.id, role, user.branch_id).can_see(where):
            continue
        notification = Notification(
            user_id=user.id,
            kind=MENTION,
            conversation_id=conversation.id,
            message_id=message.id,
            text=f"{author_name}: {excerpt}" if author_name else excerpt,
            created_at=utcnow(),
        )
        session.add(notification)
        await session.flush()
        events.append({"user_id": user.id, "notification": as_json(notification)})
    return events


async def publish(bus: EventBus, events: Sequence[dict[str, Any]]) -> None:
    for event in events:
        await bus.publish(TOPIC, event)


async def recent(session: AsyncSession, user_id: int, limit: int = LIST_LIMIT) -> dict[str, Any]:
    """The bell's dropdown: the latest notifications and how many are unread."""
    rows = await session.scalars(
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.id.desc())
        .limit(limit)
    )
    unread = await session.scalar(
        select(func.count()).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )
    return {"notifications": [as_json(n) for n in rows], "unread": int(unread or 0)}


async def mark_read(session: AsyncSession, user_id: int, ids: Sequence[int] | None = None) -> int:
    """Mark the person's notifications read (all of them, or those in `ids`); returns how many changed."""
    query = (
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    if ids is not None:
        if not ids:
            return 0
        query = query.where(Notification.id.in_(list(ids)))
    result = await session.execute(query)
    return int(getattr(result, "rowcount", 0) or 0)
