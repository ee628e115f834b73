"""Transferring a conversation to another agent or to another branch's queue.

Who may: an agent their own conversations (assigned to them); a supervisor any conversation they see,
to anyone or any branch; an admin anything. To an agent, the conversation follows them into their
branch; to a branch, it loses its assignee so that the branch's queue picks it up. Either way the thread
gets a system message ("Transferred to X by Y"), the change is audited, and the live feed hears of it
(the message as `inbox.message`, then `inbox.conversation`), so whoever no longer may see it is told.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from channels.model import MessageKind
from inbox.models import Conversation, Message
from inbox.service import Inbox, Viewer, event_payload, visible_to
from switchboard import audit
from switchboard.accounts_model import Branch, User
from switchboard.db import utcnow
from switchboard.errors import N_, DomainError, Invalid, NotFound
from switchboard.permissions import Action, Role, can


class NotAllowed(DomainError):
    status = 403


@dataclass(frozen=True)
class Transferred:
    conversation_id: int
    assignee_id: int | None
    branch_id: int | None
    message_id: int


def _name(user: User) -> str:
    return user.full_name or user.username


async def transfer(
    inbox: Inbox,
    viewer: Viewer,
    actor: audit.Actor,
    conversation_id: int,
    *,
    assignee_id: int | None = None,
    branch_id: int | None = None,
) -> Transferred:
    if assignee_id is None and branch_id is None:
        raise Invalid(N_("Choose a person or a branch."), field="assignee_id")
    async with inbox.sessions() as session, session.begin():
        conversation = await session.scalar(
            select(Conversation).where(Conversation.id == conversation_id, visible_to(viewer))
        )
        if conversation is None:
            raise NotFound(N_("No such conversation."))
        if viewer.role is Role.AGENT and conversation.assignee_id != viewer.user_id:
            raise NotAllowed(N_("You may only transfer your own conversations."))
        if viewer.role not in (Role.AGENT, Role.SUPERVISOR, Role.ADMIN):
            raise NotAllowed(N_("You may only transfer your own conversations."))
        me = await session.get(User, viewer.user_id)
        branch: Branch | None = None
        if branch_id is not None:
            branch = await session.get(Branch, branch_id)
            if branch is None or not branch.active:
                raise Invalid(N_("No such branch."), field="branch_id")
        target: User | None = None
        if assignee_id is not None:
            target = await session.get(User, assignee_id)
            if target is None or not target.active or not can(target.role, Action.INBOX_VIEW):
                raise Invalid(N_("You cannot give this conversation to that person."), field="assignee_id")
            if branch is not None and target.branch_id != branch.id:
                raise Invalid(N_("That person works in another branch."), field="branch_id")
            if branch is None and target.branch_id is not None:
                branch = await session.get(Branch, target.branch_id)
        new_branch = branch.id if branch is not None else conversation.branch_id
        new_assignee = target.id if target is not None else None
        if new_branch == conversation.branch_id and new_assignee == conversation.assignee_id:
            raise Invalid(N_("The conversation is already there."), field="assignee_id")
        before = {"assignee_id": conversation.assignee_id, "branch_id": conversation.branch_id}
        conversation.assignee_id, conversation.branch_id = new_assignee, new_branch
        now = utcnow()
        conversation.last_activity_at = now
        by = _name(me) if me else actor.username or "?"
        to = _name(target) if target is not None else (branch.name if branch is not None else "?")
        message = Message(
            conversation_id=conversation.id,
            direction="out",
            kind=MessageKind.SYSTEM.value,
            body=f"Transferred to {to} by {by}",
            author_user_id=viewer.user_id,
            status="sent",
            created_at=now,
        )
        session.add(message)
        await session.flush()
        await audit.record_change(
            session,
            actor,
            module="inbox",
            action=audit.AuditAction.UPDATE,
            record_type="conversation",
            record_id=conversation.id,
            changes=audit.diff(before, {"assignee_id": new_assignee, "branch_id": new_branch}),
            detail="transfer",
        )
        payload = event_payload(message, conversation)
        data = {
            "id": conversation.id,
            "status": conversation.status,
            "assignee_id": new_assignee,
            "branch_id": new_branch,
        }
        result = Transferred(conversation.id, new_assignee, new_branch, message.id)
    await inbox._publish("inbox.message", payload, [result.message_id])  # same room: its publisher
    await inbox.bus.publish("inbox.conversation", {"conversation": data})
    return result
