"""The composition root's telephony: with `ami_host` set, the hub logs in to the PBX (here the fake AMI
server replaying a real Asterisk 20 recording), leads the AMI stream (SQLite: always; PostgreSQL: by the
advisory lock) and writes the call into the caller's conversation; FastAGI listens when enabled."""

from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.asterisk.ami import AmiConnection
from inbox.calls_model import Call
from inbox.models import Message
from switchboard.app import build_app
from switchboard.settings import Settings
from tests.fakes.ami_server import FakeAmi, load_fixture
from webui import keys


async def test_a_call_on_the_pbx_becomes_a_call_item_through_the_app(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with FakeAmi() as fake:
        app = build_app(
            settings.model_copy(
                update={
                    "run_worker": True,
                    "ami_host": fake.host,
                    "ami_port": fake.port,
                    "ami_secret": SecretStr(fake.secret),
                    "agi_enabled": True,
                    "agi_port": 0,
                }
            )
        )
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            assert isinstance(app[keys.AMI], AmiConnection)
            await fake.wait_for_login()  # events before the leadership is won are written on takeover
            await fake.replay(load_fixture("inbound_answered"))
            async with asyncio.timeout(10):
                while True:
                    async with sessions() as db:
                        call = await db.scalar(select(Call).where(Call.ended.is_(True)))
                    if call is not None:
                        break
                    await asyncio.sleep(0.05)
            async with sessions() as db:
                item = await db.scalar(select(Message).where(Message.kind == "call"))
            assert (call.linkedid, call.result, call.customer_number) == (
                "1795431712.4",
                "answered",
                "+79161234501",
            )
            assert item is not None and item.id == call.message_id
            assert item.conversation_id == call.conversation_id and item.meta["call"]["ended"] is True
            assert app[keys.CALL_LOG].leading  # SQLite: always; PostgreSQL: the advisory lock was free
        finally:
            await runner.cleanup()
