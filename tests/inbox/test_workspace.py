"""The workspace queries of `inbox.service` that the list pane's badges rely on."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import Channel, InboundMessage
from inbox.models import Conversation
from inbox.service import Inbox, Viewer
from switchboard.permissions import Role
from tests.conftest import MakeUser


def chat(external_id: str, sender: str) -> InboundMessage:
    return InboundMessage(Channel.WEBCHAT, "site", external_id, sender, body="Bună")


async def test_unread_counts_per_scope_follow_visibility_status_and_reading(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    agent, other = await make_user(Role.AGENT), await make_user(Role.AGENT)
    mine = await inbox.ingest(chat("m-1", "a"))
    await inbox.ingest(chat("m-2", "a"))  # the same conversation: still one conversation with unread
    queue = await inbox.ingest(chat("m-3", "b"))
    theirs = await inbox.ingest(chat("m-4", "c"))
    resolved = await inbox.ingest(chat("m-5", "d"))
    async with sessions() as db, db.begin():
        for result, assignee in [(mine, agent.id), (theirs, other.id)]:
            await db.execute(
                update(Conversation)
                .where(Conversation.id == result.conversation_id)
                .values(assignee_id=assignee)
            )
    viewer = Viewer(agent.id, Role.AGENT, None)
    await inbox.set_status(viewer, resolved.conversation_id, "resolved")
    assert await inbox.unread_counts(viewer) == {"mine": 1, "unassigned": 1, "all": 2}
    admin = Viewer(0, Role.ADMIN, None)
    assert await inbox.unread_counts(admin) == {"mine": 0, "unassigned": 1, "all": 3}
    await inbox.thread(viewer, queue.conversation_id)  # reading it clears its unread
    assert await inbox.unread_counts(viewer) == {"mine": 1, "unassigned": 0, "all": 1}
    assert await inbox.unread_counts(Viewer(agent.id, Role.MARKETER, None)) == {
        "mine": 0,
        "unassigned": 0,
        "all": 0,
    }
