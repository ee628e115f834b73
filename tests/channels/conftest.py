"""Helpers every provider's tests use: the stored messages of an account, one stored message, an admin to
reply as, and running the jobs worker until nothing is due."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.accounts_model import ChannelAccount
from inbox.models import Message
from inbox.service import Viewer
from switchboard.permissions import Role
from tests.conftest import MakeUser
from webui import keys


async def messages_of(sessions: async_sessionmaker[AsyncSession], account: ChannelAccount) -> list[Message]:
    """The account's stored messages, oldest first."""
    async with sessions() as db:
        rows = await db.scalars(
            select(Message).where(Message.account_id == str(account.id)).order_by(Message.id)
        )
        return list(rows)


async def stored_message(sessions: async_sessionmaker[AsyncSession], message_id: int) -> Message:
    async with sessions() as db:
        found = await db.get(Message, message_id)
    assert found is not None
    return found


async def admin_viewer(make_user: MakeUser) -> Viewer:
    admin = await make_user(Role.ADMIN)
    return Viewer(admin.id, Role.ADMIN, None)


async def drain(app: web.Application, rounds: int = 60) -> None:
    """Run the jobs worker until nothing is due (retries back off for a few milliseconds here)."""
    worker = app[keys.WORKER]
    idle = 0
    for _ in range(rounds):
        if await worker.run_once():
            idle = 0
        else:
            idle += 1
            if idle > 3:
                return
            await asyncio.sleep(0.03)


async def run_until_sent(
    app: web.Application, sessions: async_sessionmaker[AsyncSession], message_id: int, rounds: int = 50
) -> Message:
    """Run the jobs worker until the message is sent (or `rounds` are spent): the message as stored then."""
    worker = app[keys.WORKER]
    for _ in range(rounds):
        await worker.run_once()
        if (await stored_message(sessions, message_id)).status == "sent":
            break
        await asyncio.sleep(0.05)
    return await stored_message(sessions, message_id)


async def reply_as_admin(
    app: web.Application,
    sessions: async_sessionmaker[AsyncSession],
    account: ChannelAccount,
    make_user: MakeUser,
    text: str,
) -> int:
    """An admin answers the conversation of the account's first message through the inbox; the reply's id."""
    conversation = (await messages_of(sessions, account))[0].conversation_id
    reply = await app[keys.INBOX].send(await admin_viewer(make_user), conversation, text)
    return int(reply.id)
