"""Labels, transfers and @mentions in `inbox`: the rules, the stored records and the bus events."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import Channel, InboundMessage
from inbox import labels, notifications
from inbox.models import Conversation, Message
from inbox.notifications_model import Notification
from inbox.service import Inbox, Viewer
from inbox.transfer import NotAllowed, transfer
from switchboard import accounts
from switchboard.accounts_model import User
from switchboard.audit import SYSTEM, Actor
from switchboard.audit_model import AuditEntry
from switchboard.bus import Subscription
from switchboard.errors import Invalid, NotFound
from switchboard.permissions import Role
from tests.conftest import MakeUser, Person


def chat(external_id: str, sender: str) -> InboundMessage:
    return InboundMessage(Channel.WEBCHAT, "site", external_id, sender, body="Bună")


@dataclass
class Staff:
    a: Person  # agent, Chișinău
    b: Person  # agent, Chișinău
    c: Person  # agent, Bălți
    sup: Person  # supervisor, Chișinău
    admin: Person
    chisinau: int
    balti: int

    def viewer(self, person: Person, branch: int | None) -> Viewer:
        return Viewer(person.id, person.role, branch)


async def _branch_of(sessions: async_sessionmaker[AsyncSession], person: Person) -> int:
    async with sessions() as db:
        branch = await db.scalar(select(User.branch_id).where(User.id == person.id))
    assert branch is not None
    return branch


@pytest.fixture
async def staff(sessions: async_sessionmaker[AsyncSession], make_user: MakeUser) -> Staff:
    a, b = await make_user(Role.AGENT, "ana"), await make_user(Role.AGENT, "bogdan")
    c = await make_user(Role.AGENT, "costel", branch="Bălți")
    sup, admin = await make_user(Role.SUPERVISOR, "sabina"), await make_user(Role.ADMIN, "adi")
    return Staff(a, b, c, sup, admin, await _branch_of(sessions, a), await _branch_of(sessions, c))


async def _conversation(
    inbox: Inbox,
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    branch: int | None,
    assignee: int | None,
) -> int:
    result = await inbox.ingest(chat(f"{name}-1", name))
    async with sessions() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id == result.conversation_id)
            .values(branch_id=branch, assignee_id=assignee)
        )
    return result.conversation_id


async def _next(events: Subscription, topic: str) -> dict[str, Any]:
    async with asyncio.timeout(2):
        async for event in events:
            if event.topic == topic:
                return event.data
    raise AssertionError(f"no {topic}")


# --- labels --------------------------------------------------------------------------------------------


def test_labels_are_normalised_and_validated() -> None:
    assert labels.normalise(" Credit ") == "credit"
    assert labels.normalise("ипотека") == "ипотека"
    assert labels.normalise("rată_fixă-2") == "rată_fixă-2"
    for bad in ["", "two words", "a" * 31, "semi;colon", "<b>", 5]:
        with pytest.raises(Invalid):
            labels.normalise(bad)
    assert labels.normalise_all(["A", "a", "b"], "add") == ["a", "b"]
    with pytest.raises(Invalid):
        labels.normalise_all("a", "add")


async def test_labels_change_filter_and_are_capped(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], staff: Staff
) -> None:
    one = await _conversation(inbox, sessions, "one", staff.chisinau, staff.a.id)
    two = await _conversation(inbox, sessions, "two", staff.chisinau, None)
    viewer = staff.viewer(staff.a, staff.chisinau)
    async with inbox.bus.subscribe("inbox.*") as events:
        assert await labels.change_labels(inbox, viewer, one, add=["credit", "ипотека"], remove=[]) == [
            "credit",
            "ипотека",
        ]
        event = await _next(events, "inbox.conversation")
    assert event["conversation"]["labels"] == ["credit", "ипотека"]
    await labels.change_labels(inbox, viewer, two, add=["credit"], remove=[])
    await labels.change_labels(inbox, viewer, one, add=["vip"], remove=["credit"])

    def ids(items: list[dict[str, Any]]) -> set[int]:
        return {c["id"] for c in items}

    assert ids(await inbox.conversations(viewer, label="credit")) == {two}
    assert ids(await inbox.conversations(viewer, label="ИПОТЕКА")) == {one}
    assert ids(await inbox.conversations(viewer, label="cred")) == set()  # whole labels only
    assert ids(await inbox.conversations(viewer, label="credit%")) == set()
    listed = {c["id"]: c for c in await inbox.conversations(viewer)}
    assert listed[one]["labels"] == ["ипотека", "vip"]
    assert (await inbox.thread(viewer, one))["conversation"]["labels"] == ["ипотека", "vip"]

    with pytest.raises(Invalid):
        await labels.change_labels(inbox, viewer, one, add=[f"l{i}" for i in range(9)], remove=[])
    with pytest.raises(NotFound):  # another branch's agent cannot touch it
        await labels.change_labels(inbox, staff.viewer(staff.c, staff.balti), one, add=["x"], remove=[])


# --- transfers -----------------------------------------------------------------------------------------


def _actor(person: Person) -> Actor:
    return Actor(person.id, person.username)


async def test_an_agent_transfers_their_own_conversation_to_a_colleague(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], staff: Staff
) -> None:
    mine = await _conversation(inbox, sessions, "mine", staff.chisinau, staff.a.id)
    queue = await _conversation(inbox, sessions, "queue", staff.chisinau, None)
    a = staff.viewer(staff.a, staff.chisinau)
    with pytest.raises(NotAllowed):  # visible to them, but not theirs
        await transfer(inbox, a, _actor(staff.a), queue, assignee_id=staff.b.id)
    with pytest.raises(Invalid):
        await transfer(inbox, a, _actor(staff.a), mine)
    with pytest.raises(Invalid):
        await transfer(inbox, a, _actor(staff.a), mine, assignee_id=staff.a.id)  # already theirs
    async with inbox.bus.subscribe("inbox.*") as events:
        done = await transfer(inbox, a, _actor(staff.a), mine, assignee_id=staff.c.id)
        message = await _next(events, "inbox.message")
        conversation = await _next(events, "inbox.conversation")
    assert (done.assignee_id, done.branch_id) == (staff.c.id, staff.balti)  # follows them to Bălți
    assert message["message"]["kind"] == "system"
    assert message["message"]["body"] == "Transferred to Costel by Ana"
    assert conversation["conversation"] == {
        "id": mine,
        "status": "open",
        "assignee_id": staff.c.id,
        "branch_id": staff.balti,
    }
    with pytest.raises(NotFound):
        await inbox.thread(a, mine)
    thread = await inbox.thread(staff.viewer(staff.c, staff.balti), mine)
    assert [m["kind"] for m in thread["messages"]] == ["text", "system"]
    async with sessions() as db:
        entry = await db.scalar(
            select(AuditEntry).where(
                AuditEntry.record_type == "conversation", AuditEntry.record_id == str(mine)
            )
        )
    assert entry is not None and entry.detail == "transfer" and entry.username == "ana"
    assert entry.changes == {
        "assignee_id": [staff.a.id, staff.c.id],
        "branch_id": [staff.chisinau, staff.balti],
    }
    await inbox.flush_marks()  # the system message's event went out: it is not published again
    async with sessions() as db:
        published = await db.scalar(select(Message.published_at).where(Message.id == done.message_id))
    assert published is not None


async def test_a_transfer_to_a_branch_clears_the_assignee(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], staff: Staff
) -> None:
    conv = await _conversation(inbox, sessions, "x", staff.chisinau, staff.b.id)
    sup = staff.viewer(staff.sup, staff.chisinau)
    done = await transfer(inbox, sup, _actor(staff.sup), conv, branch_id=staff.balti)
    assert (done.assignee_id, done.branch_id) == (None, staff.balti)
    assert conv not in {c["id"] for c in await inbox.conversations(staff.viewer(staff.b, staff.chisinau))}
    assert conv in {c["id"] for c in await inbox.conversations(staff.viewer(staff.c, staff.balti))}
    with pytest.raises(NotFound):  # out of the supervisor's branch now
        await transfer(inbox, sup, _actor(staff.sup), conv, branch_id=staff.chisinau)
    admin = staff.viewer(staff.admin, None)
    await transfer(inbox, admin, _actor(staff.admin), conv, branch_id=staff.chisinau)
    for bad in [
        {"branch_id": 999999},
        {"assignee_id": 999999},
        {"assignee_id": staff.b.id, "branch_id": staff.balti},
    ]:
        with pytest.raises(Invalid):
            await transfer(inbox, admin, _actor(staff.admin), conv, **bad)


async def test_no_transfer_to_an_inactive_person_or_one_without_the_inbox(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], staff: Staff, make_user: MakeUser
) -> None:
    conv = await _conversation(inbox, sessions, "y", staff.chisinau, None)
    marketer = await make_user(Role.MARKETER)
    async with sessions() as db, db.begin():
        await accounts.update_user(db, SYSTEM, staff.b.id, active=False)
    admin = staff.viewer(staff.admin, None)
    for person in (staff.b, marketer):
        with pytest.raises(Invalid):
            await transfer(inbox, admin, _actor(staff.admin), conv, assignee_id=person.id)


# --- mentions ------------------------------------------------------------------------------------------


def test_mentions_are_found_once_and_never_in_email_addresses() -> None:
    body = "@Ana și @bogdan. vezi (@costel), nu ion@example.com, @ab prea scurt, @ana din nou"
    assert notifications.mentioned_usernames(body) == ["ana", "bogdan.", "bogdan", "costel"]


async def test_a_note_notifies_mentioned_colleagues_who_may_see_the_conversation(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], staff: Staff, make_user: MakeUser
) -> None:
    conv = await _conversation(inbox, sessions, "z", staff.chisinau, staff.a.id)
    await make_user(Role.MARKETER, "mara")
    gone = await make_user(Role.SUPERVISOR, "ghost")
    async with sessions() as db, db.begin():
        await accounts.update_user(db, SYSTEM, gone.id, active=False)
    a = staff.viewer(staff.a, staff.chisinau)
    body = "@sabina @costel @adi @bogdan @mara @ghost @ana @nobody: sună clientul"
    async with inbox.bus.subscribe("inbox.notification") as events:
        note = await inbox.send(a, conv, body, note=True)
        got = [await _next(events, "inbox.notification") for _ in range(2)]
    # Sabina (supervisor of the branch) and Adi (admin) may see it; Bogdan (another agent's conversation),
    # Costel (another branch), Mara (no inbox), Ghost (inactive), Ana (the author) and nobody may not.
    assert sorted(e["user_id"] for e in got) == sorted([staff.sup.id, staff.admin.id])
    first = got[0]["notification"]
    assert first["kind"] == "mention" and first["conversation_id"] == conv and first["message_id"] == note.id
    assert first["text"].startswith("Ana: @sabina") and first["read_at"] is None
    async with sessions() as db:
        stored = list(await db.scalars(select(Notification.user_id).order_by(Notification.user_id)))
        assert stored == sorted([staff.sup.id, staff.admin.id])
        assert (await notifications.recent(db, staff.sup.id))["unread"] == 1
    await inbox.send(a, conv, "@sabina a reply to the customer is no note")
    async with sessions() as db, db.begin():
        assert (await notifications.recent(db, staff.sup.id))["unread"] == 1
        assert await notifications.mark_read(db, staff.sup.id, [999999]) == 0
        assert await notifications.mark_read(db, staff.sup.id) == 1
        assert (await notifications.recent(db, staff.sup.id))["unread"] == 0
        assert (await notifications.recent(db, staff.admin.id))["unread"] == 1
