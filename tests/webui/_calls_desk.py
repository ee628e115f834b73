"""Helpers shared by the call-desk tests: calls written straight into the `calls` table (with the customer's
contact and conversation in a branch), as the inbox's CallLog leaves them, and the real recording."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.models import Contact
from inbox.calls_model import Call
from inbox.models import Conversation
from switchboard import accounts

FIXTURES = Path(__file__).resolve().parent.parent / "channels" / "asterisk" / "fixtures"
RECORDING_FIXTURE = FIXTURES / "inbound_answered.1795431712.4.wav"
RECORDING_NAME = "1795431712.4.wav"  # as MixMonitor(${UNIQUEID}.wav) names it on the PBX


def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its cheapest for these tests: they log in many people and check calls, not hashing."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def put_recording(directory: Path, name: str = RECORDING_NAME) -> bytes:
    """The real MixMonitor recording copied into the shared recordings directory; returns its bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RECORDING_FIXTURE, directory / name)
    return (directory / name).read_bytes()


async def add_call(
    sessions: async_sessionmaker[AsyncSession],
    *,
    first_name: str = "Ion",
    last_name: str = "Popescu",
    number: str | None = "+37369123456",
    branch: str | None = "Chișinău",
    agent_id: int | None = None,
    agent_endpoint: str | None = None,
    direction: str = "in",
    result: str | None = "answered",
    started_at: dt.datetime | None = None,
    live: bool = False,
    answered: bool = True,
    wait_seconds: float | None = 4.0,
    talk_seconds: float = 65.0,
    recording_file: str | None = None,
    conversation: bool = True,
    **extra: Any,
) -> int:
    """One call of a customer (a new contact, with an open conversation in `branch`); returns its id."""
    started = started_at or dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    answered_at = started + dt.timedelta(seconds=wait_seconds or 0) if answered else None
    async with sessions() as db, db.begin():
        branch_id = (await accounts.get_or_create_branch(db, branch)).id if branch else None
        contact = Contact(first_name=first_name, last_name=last_name, phone=number, branch_id=branch_id)
        db.add(contact)
        await db.flush()
        conversation_id = None
        if conversation:
            row = Conversation(contact_id=contact.id, branch_id=branch_id, status="open")
            db.add(row)
            await db.flush()
            conversation_id = row.id
        call = Call(
            linkedid=extra.pop("linkedid", f"{uuid.uuid4().hex[:10]}.{uuid.uuid4().int % 1000}"),
            direction=direction,
            customer_number=number,
            customer_number_raw=number.lstrip("+") if number else None,
            result=None if live and not answered else result,
            agent_id=agent_id,
            agent_endpoint=agent_endpoint,
            contact_id=contact.id,
            conversation_id=conversation_id,
            started_at=started,
            answered_at=answered_at,
            ended_at=None if live else started + dt.timedelta(seconds=(wait_seconds or 0) + talk_seconds),
            wait_seconds=wait_seconds,
            talk_seconds=talk_seconds if answered else 0.0,
            recording_file=recording_file,
            ended=not live,
            **extra,
        )
        db.add(call)
        await db.flush()
        return call.id
