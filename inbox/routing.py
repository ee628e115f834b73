"""The inbox's side of routing: a new conversation asks `router.engine.Router` who answers it, and the
router's decisions (now, or later when capacity frees up, an offer times out or an agent goes away) become the
conversation's assignee.

The question is a job (`inbox.route`) written in the same transaction as the customer's first message, so a
crash between storing and routing loses nothing; the answer is applied by `apply()`, which the composition
root also gives the router as its decision hook.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Select, select

from crm_core import tasks
from crm_core.models import Contact
from inbox.models import Conversation, Message
from inbox.service import ROUTE_JOB, Inbox
from router.engine import Router
from router.model import Decision, ItemKind, Reason, RoutingRequest
from switchboard.jobs import JobContext, JobRegistry

log = logging.getLogger(__name__)
OFF_HOURS = "off_hours"
NOTE_EXCERPT = 300


def _with_contact(conversation_id: int) -> Select[Conversation, Contact]:
    return (
        select(Conversation, Contact)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(Conversation.id == conversation_id)
    )


def callback_key(conversation_id: int) -> str:
    """One off-hours callback task per conversation, however often its routing job runs."""
    return f"off-hours:{conversation_id}"


class Routing:
    def __init__(self, inbox: Inbox, router: Router) -> None:
        self.inbox = inbox
        self.router = router

    def register(self, registry: JobRegistry) -> None:
        registry.add(ROUTE_JOB, self.run)

    async def run(self, context: JobContext, payload: dict[str, Any]) -> None:
        request = await self.request_for(int(payload["conversation_id"]))
        if request is None:
            return  # gone, resolved or already taken by someone meanwhile
        await self.apply(await self.router.assign(request))

    async def request_for(self, conversation_id: int) -> RoutingRequest | None:
        """What the router needs to know about a conversation: channel, branch, the customer's language and
        responsible expert, the last agent who wrote to them, and its priority."""
        async with self.inbox.sessions() as session:
            row = (await session.execute(_with_contact(conversation_id))).first()
            if row is None:
                return None
            conversation, contact = row
            if conversation.status == "resolved" or conversation.assignee_id is not None:
                return None
            last_agent = await session.scalar(
                select(Message.author_user_id)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(
                    Conversation.contact_id == contact.id,
                    Message.direction == "out",
                    Message.author_user_id.is_not(None),
                )
                .order_by(Message.id.desc())
                .limit(1)
            )
        return RoutingRequest(
            kind="chat",
            item_id=str(conversation.id),
            channel=conversation.last_inbound_channel or "webchat",
            branch_id=conversation.branch_id or contact.branch_id,
            language=contact.language,
            owner_id=contact.owner_id,
            last_agent_id=last_agent,
            priority=conversation.priority,
        )

    async def apply(self, decision: Decision) -> None:
        """Give the conversation to the agent the router chose (a queued item waits unassigned); outside
        working hours, answer the customer and leave a callback task for the morning."""
        if decision.request.kind != ItemKind.CHAT:
            return
        try:
            conversation_id = int(decision.request.item_id)
        except ValueError:
            return
        if decision.agent_id is None:
            if decision.reason == Reason.OFF_HOURS:
                await self.off_hours(conversation_id, decision.request)
            return
        applied = await self.inbox.assign_routed(conversation_id, decision.agent_id)
        if not applied:  # resolved meanwhile: give the capacity back at once
            await self.router.release("chat", decision.request.item_id)
            return
        await self._hand_over_callback(conversation_id, decision.agent_id)
        log.info(
            "conversation %s routed to agent %s (%s)", conversation_id, decision.agent_id, decision.reason
        )

    async def off_hours(self, conversation_id: int, request: RoutingRequest) -> None:
        """The branch is closed: a callback task due at the next opening (for the branch's queue until the
        router gives the conversation to someone) and the admin's off-hours reply, each at most once."""
        opens = await self.router.opens_at(request.branch_id)
        async with self.inbox.sessions() as session, session.begin():
            row = (await session.execute(_with_contact(conversation_id))).first()
            if row is None:
                return
            conversation, contact = row
            first = await session.scalar(
                select(Message.body)
                .where(Message.conversation_id == conversation_id, Message.direction == "in")
                .order_by(Message.id)
                .limit(1)
            )
            await tasks.create_task(
                session,
                title=contact.display_name,
                kind="callback",
                branch_id=request.branch_id,
                due_at=opens,
                contact_id=contact.id,
                conversation_id=conversation.id,
                note=(first or "")[:NOTE_EXCERPT],
                source_key=callback_key(conversation_id),
            )
        reply = await self.router.off_hours_reply(request.branch_id, request.language)
        if reply:
            await self.inbox.send_automatic(conversation_id, reply, OFF_HOURS, once=True)
        log.info("conversation %s arrived off hours; callback due %s", conversation_id, opens)

    async def _hand_over_callback(self, conversation_id: int, agent_id: int) -> None:
        """The off-hours callback task follows the conversation to the agent it was routed to."""
        async with self.inbox.sessions() as session, session.begin():
            await tasks.assign_by_key(session, callback_key(conversation_id), agent_id)
