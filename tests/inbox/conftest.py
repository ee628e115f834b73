"""Fixtures of the inbox room's tests: an in-memory bus and the inbox service on the test database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from inbox.service import Inbox
from switchboard.bus import InMemoryBus


@pytest.fixture
async def bus() -> AsyncIterator[InMemoryBus]:
    bus = InMemoryBus()
    await bus.start()
    yield bus
    await bus.close()


@pytest.fixture
async def inbox(sessions: async_sessionmaker[AsyncSession], bus: InMemoryBus) -> AsyncIterator[Inbox]:
    inbox = Inbox(sessions, bus)
    yield inbox
    await inbox.close()
