"""The inbox's side of routing a phone call: the FastAGI server (`channels.asterisk.agi`) asks
`CallRouting.route_call()` which endpoint to dial, and calls `release()` when the answer came too late or
never reached Asterisk.

The caller is resolved as any inbound message is (by E.164 phone; a new number gets a contact and a lead
with source `phone`), their one conversation found or opened, and the router asked for the call (sticky owner,
least busy; a call never waits in the hub's queue — the dialplan's fallback answers instead). The chosen
agent's phone endpoint is the answer; an agent without one is never chosen for a call by the router.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from sqlalchemy import select

from channels.asterisk.routing_model import CallReason, CallRequest, CallRoute
from channels.model import Channel
from crm_core.models import Contact
from inbox.models import Conversation, Message
from inbox.service import Inbox
from router.engine import Router
from router.model import Decision, ItemKind, Reason, RoutingRequest

log = logging.getLogger(__name__)

UNKNOWN_LINE = "asterisk"  # the channel account of a call whose dialled number Asterisk did not give


@dataclass(frozen=True)
class _Caller:
    contact_id: int | None = None
    conversation_id: int | None = None
    branch_id: int | None = None
    owner_id: int | None = None
    language: str | None = None
    last_agent_id: int | None = None


class CallRouting:
    def __init__(self, inbox: Inbox, router: Router) -> None:
        self.inbox = inbox
        self.router = router

    async def route_call(self, request: CallRequest) -> CallRoute:
        """Who answers this call: their endpoint and why, or an empty target and why not."""
        caller = await self._caller(request)
        wanted = RoutingRequest(
            kind=ItemKind.CALL,
            item_id=request.linkedid,
            channel=Channel.PHONE.value,
            branch_id=caller.branch_id,
            language=caller.language,
            owner_id=caller.owner_id,
            last_agent_id=caller.last_agent_id,
        )
        decision = await self._assign(wanted)
        ids = {"contact_id": caller.contact_id, "conversation_id": caller.conversation_id}
        if decision.agent_id is None:
            reason = CallReason.OFF_HOURS if decision.reason == Reason.OFF_HOURS else CallReason.QUEUED
            return CallRoute("", reason, **ids)
        endpoint = await self.router.endpoint(decision.agent_id)
        if not endpoint:  # cleared between the choice and now: never dial an empty target
            log.warning(
                "call %s: agent %s was chosen but has no phone endpoint; released",
                request.linkedid,
                decision.agent_id,
            )
            await self.release(request.linkedid)
            return CallRoute("", CallReason.NO_AGENT, **ids)
        return CallRoute(endpoint, str(decision.reason), decision.agent_id, **ids)

    async def release(self, linkedid: str) -> None:
        """Frees the agent a call was given to (the answer never reached the dialplan); idempotent."""
        await self.router.release(ItemKind.CALL, linkedid)

    async def _assign(self, wanted: RoutingRequest) -> Decision:
        """The router's choice. A caller cannot wait in the hub's queue, so a queued call is taken out at
        once; when it was waiting for a busy sticky agent, anyone free now is asked for instead."""
        decision = await self.router.assign(wanted)
        if decision.agent_id is not None or decision.reason != Reason.QUEUED:
            return decision
        await self.release(wanted.item_id)
        if wanted.owner_id is None and wanted.last_agent_id is None:
            return decision
        decision = await self.router.assign(dataclasses.replace(wanted, owner_id=None, last_agent_id=None))
        if decision.agent_id is None and decision.reason == Reason.QUEUED:
            await self.release(wanted.item_id)
        return decision

    async def _caller(self, request: CallRequest) -> _Caller:
        """The customer and their conversation; nobody for a withheld number."""
        if not request.caller_e164:
            return _Caller()
        found = await self.inbox.call_conversation(
            phone=request.caller_e164,
            account_id=(request.dialled or UNKNOWN_LINE)[:100],
            name=request.caller_name or None,
        )
        async with self.inbox.sessions() as session:
            contact = (
                await session.execute(
                    select(Contact.language, Contact.branch_id).where(Contact.id == found.contact_id)
                )
            ).one()
            last_agent = await session.scalar(
                select(Message.author_user_id)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(
                    Conversation.contact_id == found.contact_id,
                    Message.direction == "out",
                    Message.author_user_id.is_not(None),
                )
                .order_by(Message.id.desc())
                .limit(1)
            )
        return _Caller(
            contact_id=found.contact_id,
            conversation_id=found.conversation_id,
            branch_id=found.branch_id or contact.branch_id,
            owner_id=found.owner_id,
            language=contact.language,
            last_agent_id=last_agent,
        )
