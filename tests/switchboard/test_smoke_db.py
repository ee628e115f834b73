from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard.accounts_model import Branch


async def test_a_branch_round_trips(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        s.add(Branch(name="Chișinău"))
    async with sessions() as s:
        b = (await s.execute(select(Branch))).scalar_one()
    assert b.name == "Chișinău" and b.created_at.tzinfo is not None
