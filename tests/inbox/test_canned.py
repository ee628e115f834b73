"""Canned replies: safe placeholder filling, branch scoping, prefix search, validation and audit."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from inbox import canned
from inbox.canned_model import CannedReply
from switchboard.accounts_model import User
from switchboard.audit import Actor
from switchboard.audit_model import AuditEntry
from switchboard.errors import Invalid, NotFound
from switchboard.permissions import Role
from tests.conftest import MakeUser

ACTOR = Actor(user_id=None, username="tester")


@dataclass
class Card:
    first_name: str
    last_name: str
    phone: str | None


@dataclass
class Agent:
    full_name: str
    username: str = "agent"


def test_fill_replaces_known_placeholders_and_leaves_everything_else_as_written() -> None:
    values = {"first_name": "Ion", "agent_name": "Maria"}
    assert canned.fill("Bună, {first_name}! Sunt {agent_name}.", values) == "Bună, Ion! Sunt Maria."
    for untouched in [
        "{price} lei",
        "{0.__class__.__mro__}",
        "{first_name.__class__}",
        "{first_name!r}",
        "{first_name:>10}",
        "{}",
        "{ first_name }",
        "{FIRST_NAME}",
    ]:
        assert canned.fill(untouched, values) == untouched
    assert canned.fill("{first_name}{first_name}", values) == "IonIon"


def test_render_uses_the_contact_and_the_agent() -> None:
    reply = CannedReply(
        shortcut="hi", title="Hi", body="{first_name} {last_name}, {phone} — {agent_name} {x}"
    )
    text = canned.render(reply, Card("Ion", "Popescu", "+37369000001"), Agent("Maria Rusu"))
    assert text == "Ion Popescu, +37369000001 — Maria Rusu {x}"
    assert canned.render(reply, None, None) == " ,  —  {x}"
    assert canned.render(reply, Card("Ion", "", None), Agent("", "mrusu")).endswith("— mrusu {x}")


async def _branch(sessions: async_sessionmaker[AsyncSession], user_id: int) -> int:
    async with sessions() as db:
        branch = await db.scalar(select(User.branch_id).where(User.id == user_id))
    assert branch is not None
    return branch


async def test_create_list_search_update_delete_with_audit(
    sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    north = await _branch(sessions, (await make_user(Role.AGENT, branch="Bălți")).id)
    south = await _branch(sessions, (await make_user(Role.AGENT, branch="Cahul")).id)
    async with sessions() as db, db.begin():
        shared = await canned.create(
            db, ACTOR, Role.ADMIN, None, canned.CannedInput("/Hello", " Hello ", "Bună, {first_name}!")
        )
        await canned.create(db, ACTOR, Role.ADMIN, None, canned.CannedInput("help", "Help", "Cu ce vă ajut?"))
        await canned.create(
            db, ACTOR, Role.ADMIN, None, canned.CannedInput("hours", "Hours", "9-18", "ro", north)
        )
        await canned.create(
            db, ACTOR, Role.ADMIN, None, canned.CannedInput("addr", "Address", "Cahul", None, south)
        )
    assert shared.shortcut == "hello" and shared.title == "Hello"
    async with sessions() as db:
        assert [r.shortcut for r in await canned.for_branch(db, north)] == ["hello", "help", "hours"]
        assert [r.shortcut for r in await canned.for_branch(db, north, prefix="h")] == [
            "hello",
            "help",
            "hours",
        ]
        assert [r.shortcut for r in await canned.for_branch(db, north, prefix="hel")] == ["hello", "help"]
        assert [r.shortcut for r in await canned.for_branch(db, south, prefix="h")] == ["hello", "help"]
        assert [r.shortcut for r in await canned.for_branch(db, None)] == ["hello", "help"]
        assert await canned.for_branch(db, north, prefix="h%") == []  # not a shortcut: no LIKE tricks
        assert len(await canned.manageable(db, Role.ADMIN, None)) == 4
    async with sessions() as db, db.begin():
        updated = await canned.update(
            db, ACTOR, Role.ADMIN, None, shared.id, canned.CannedInput("salut", "Salut", "Salut {first_name}")
        )
        assert updated.shortcut == "salut"
        await canned.delete(db, ACTOR, Role.ADMIN, None, shared.id)
    async with sessions() as db:
        assert await db.get(CannedReply, shared.id) is None
        actions = list(
            await db.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.record_type == "canned_reply", AuditEntry.record_id == str(shared.id))
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["create", "update", "delete"]
    del admin


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (canned.CannedInput("", "T", "B"), "shortcut"),
        (canned.CannedInput("two words", "T", "B"), "shortcut"),
        (canned.CannedInput("ünïcode", "T", "B"), "shortcut"),
        (canned.CannedInput("x" * 31, "T", "B"), "shortcut"),
        (canned.CannedInput("ok", "  ", "B"), "title"),
        (canned.CannedInput("ok", "T" * 121, "B"), "title"),
        (canned.CannedInput("ok", "T", ""), "body"),
        (canned.CannedInput("ok", "T", "B" * 5001), "body"),
        (canned.CannedInput("ok", "T", "B", "de"), "language"),
        (canned.CannedInput("ok", "T", "B", None, 999999), "branch_id"),
    ],
)
async def test_invalid_input_names_the_field(
    sessions: async_sessionmaker[AsyncSession], data: canned.CannedInput, field: str
) -> None:
    async with sessions() as db, db.begin():
        with pytest.raises(Invalid) as caught:
            await canned.create(db, ACTOR, Role.ADMIN, None, data)
    assert caught.value.field == field


async def test_shortcuts_are_unique_and_supervisors_manage_only_their_branch(
    sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> None:
    sup = await make_user(Role.SUPERVISOR, branch="Bălți")
    own = await _branch(sessions, sup.id)
    other = await _branch(sessions, (await make_user(Role.AGENT, branch="Cahul")).id)
    async with sessions() as db, db.begin():
        mine = await canned.create(
            db, ACTOR, Role.SUPERVISOR, own, canned.CannedInput("a", "A", "a", None, own)
        )
        theirs = await canned.create(
            db, ACTOR, Role.ADMIN, None, canned.CannedInput("b", "B", "b", None, other)
        )
        shared = await canned.create(db, ACTOR, Role.ADMIN, None, canned.CannedInput("c", "C", "c"))
    async with sessions() as db, db.begin():
        with pytest.raises(Invalid) as caught:
            await canned.create(db, ACTOR, Role.ADMIN, None, canned.CannedInput("A", "dup", "x"))
        assert caught.value.field == "shortcut"
    for branch in (None, other):  # everyone's, or another branch's: not a supervisor's to add
        async with sessions() as db, db.begin():
            with pytest.raises(Invalid) as caught:
                await canned.create(
                    db, ACTOR, Role.SUPERVISOR, own, canned.CannedInput("d", "D", "d", None, branch)
                )
            assert caught.value.field == "branch_id"
    for reply_id in (theirs.id, shared.id):
        async with sessions() as db, db.begin():
            with pytest.raises(NotFound):
                await canned.delete(db, ACTOR, Role.SUPERVISOR, own, reply_id)
    async with sessions() as db, db.begin():
        await canned.update(
            db, ACTOR, Role.SUPERVISOR, own, mine.id, canned.CannedInput("a2", "A", "a", None, own)
        )
        with pytest.raises(NotFound):
            await canned.delete(db, ACTOR, Role.AGENT, own, mine.id)
        assert {r.shortcut for r in await canned.manageable(db, Role.SUPERVISOR, own)} == {"a2", "c"}
