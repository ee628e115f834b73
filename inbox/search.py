"""The search box's inbox half: messages whose text matches a query (`crm_core.search_query`), only in
the conversations the viewer may see (`inbox.service.visible_to`), newest first. The hit links to the
customer's page, whose timeline holds the message."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.field_visibility import contact_label_of
from crm_core.models import Contact
from crm_core.search import DEFAULT_LIMIT, MAX_LIMIT, Hit, Kind, newest_matching, snippet
from crm_core.search_query import Query
from inbox.models import Conversation, Message
from inbox.service import Viewer, visible_to


async def search_messages(
    session: AsyncSession,
    query: Query,
    viewer: Viewer,
    *,
    limit: int = DEFAULT_LIMIT,
    hidden: frozenset[str] = frozenset(),
) -> list[Hit]:
    """`hidden`: the contact fields the viewer's role may not see, left out of the hit's title."""
    if query.empty:
        return []
    statement = (
        select(Message.id, Message.body, Message.channel, Contact.id, Contact)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(visible_to(viewer))
    )
    limit = max(1, min(limit, MAX_LIMIT))
    rows = await newest_matching(session, "messages", Message.id, query, statement, limit)
    hits = []
    for message_id, body, channel, contact_id, contact in rows:
        who = contact_label_of(contact, hidden)
        hits.append(
            Hit(
                Kind.MESSAGE,
                message_id,
                f"{who} · {channel}" if channel else who,
                snippet(body or "", query),
                f"/contacts/{contact_id}#message-{message_id}",
            )
        )
    return hits
