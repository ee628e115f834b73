"""`crm_core.search` and `inbox.search` on the run's backend: the grammar (AND, OR, phrases, minus,
diacritics, phone tails) finds contacts, companies, leads, deals and messages through the full-text
indexes of migration 0015, which follow inserts, updates and deletes; every kind is scoped to its viewer."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import funnel
from crm_core.contacts_model import Company
from crm_core.funnel_model import Deal
from crm_core.models import Contact, Lead
from crm_core.search import Kind, Scope, search
from crm_core.search_index import DOCUMENTS
from crm_core.search_query import parse
from inbox.models import Conversation, Message
from inbox.search import search_messages
from inbox.service import Viewer
from switchboard.accounts_model import Branch, User
from switchboard.permissions import Role

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class World:
    north: int
    south: int
    admin: Scope
    agent: Scope  # of the North branch
    ion: int
    vasile: int
    elena: int


@pytest.fixture
async def world(sessions: Sessions) -> World:
    async with sessions() as db, db.begin():
        north, south = Branch(name="North"), Branch(name="South")
        db.add_all([north, south])
        await db.flush()
        admin = User(username="root", role="admin", branch_id=None, password_hash="-")
        agent = User(username="ana", role="agent", branch_id=north.id, password_hash="-")
        db.add_all([admin, agent])
        ion = Contact(
            first_name="Ion",
            last_name="Rusu",
            phone="+37369123456",
            email="ion.rusu@mail.md",
            address="Bălți, str. Independenței 5",
            tags=["vip"],
            branch_id=north.id,
        )
        vasile = Contact(first_name="Vasile", last_name="Rusu", phone="+37379000111", branch_id=north.id)
        elena = Contact(first_name="Elena", last_name="Ionescu", address="Cahul", branch_id=south.id)
        db.add_all([ion, vasile, elena])
        await db.flush()
        db.add(Company(name="Agro Credit SRL", industry="agriculture", address="Balti", branch_id=north.id))
        db.add_all(
            [
                Lead(contact_id=ion.id, source_channel="viber", campaign="credit-auto Balti", product="auto"),
                Lead(contact_id=elena.id, source_channel="telegram", campaign="ipoteca", product="mortgage"),
            ]
        )
        pipeline = (await funnel.default_pipeline(db)).id
        stage = (await funnel.get_pipeline(db, pipeline)).stages[0].id  # type: ignore[union-attr]
        db.add(
            Deal(
                contact_id=elena.id,
                pipeline_id=pipeline,
                stage_id=stage,
                product="mortgage",
                branch_id=south.id,
                amount=Decimal("50000"),
            )
        )
        north_conv = Conversation(contact_id=ion.id, branch_id=north.id)
        south_conv = Conversation(contact_id=elena.id, branch_id=south.id, status="resolved")
        db.add_all([north_conv, south_conv])
        await db.flush()
        db.add_all(
            [
                Message(
                    conversation_id=north_conv.id,
                    direction="in",
                    body="Vreau un credit de consum, sunt din Bălți",
                ),
                Message(conversation_id=north_conv.id, direction="in", body="junk spam credit offer"),
                Message(conversation_id=south_conv.id, direction="in", body="Un credit ipotecar în Cahul"),
            ]
        )
        await db.flush()
        return World(
            north.id,
            south.id,
            Scope(admin.id, Role.ADMIN, None),
            Scope(agent.id, Role.AGENT, north.id),
            ion.id,
            vasile.id,
            elena.id,
        )


async def _ids(sessions: Sessions, q: str, scope: Scope, kind: Kind) -> set[int]:
    async with sessions() as db:
        return {hit.id for hit in await search(db, parse(q), scope, kinds=[kind]) if hit.kind is kind}


async def test_a_surname_finds_every_contact_with_it(sessions: Sessions, world: World) -> None:
    assert await _ids(sessions, "rusu", world.admin, Kind.CONTACT) == {world.ion, world.vasile}


async def test_a_quoted_phrase_needs_its_words_side_by_side(sessions: Sessions, world: World) -> None:
    assert await _ids(sessions, '"Ion Rusu"', world.admin, Kind.CONTACT) == {world.ion}
    assert await _ids(sessions, '"Rusu Ion"', world.admin, Kind.CONTACT) == set()


async def test_or_and_and_and_minus(sessions: Sessions, world: World) -> None:
    assert await _ids(sessions, "Vasile OR Elena", world.admin, Kind.CONTACT) == {world.vasile, world.elena}
    assert await _ids(sessions, "rusu AND vasile", world.admin, Kind.CONTACT) == {world.vasile}
    assert await _ids(sessions, "rusu -vasile", world.admin, Kind.CONTACT) == {world.ion}
    assert await _ids(sessions, "-rusu", world.admin, Kind.CONTACT) == set()  # only exclusions: nothing


async def test_diacritics_are_folded_both_ways(sessions: Sessions, world: World) -> None:
    assert await _ids(sessions, "Balti", world.admin, Kind.CONTACT) == {world.ion}
    assert await _ids(sessions, "independentei", world.admin, Kind.CONTACT) == {world.ion}
    assert await _ids(sessions, "Bălți", world.admin, Kind.COMPANY) != set()


async def test_a_phone_tail_finds_the_number(sessions: Sessions, world: World) -> None:
    assert await _ids(sessions, "123456", world.admin, Kind.CONTACT) == {world.ion}
    assert await _ids(sessions, "69123456", world.admin, Kind.CONTACT) == {world.ion}
    assert await _ids(sessions, "+373 69 123 456", world.admin, Kind.CONTACT) == set()  # words, not a number
    assert await _ids(sessions, "37369123456", world.admin, Kind.CONTACT) == {world.ion}
    assert await _ids(sessions, "12345", world.admin, Kind.CONTACT) == set()  # a middle is not an end


async def test_e_mails_and_tags_are_searchable(sessions: Sessions, world: World) -> None:
    assert await _ids(sessions, "ion.rusu@mail.md", world.admin, Kind.CONTACT) == {world.ion}
    assert await _ids(sessions, "vip", world.admin, Kind.CONTACT) == {world.ion}


async def test_leads_deals_and_companies(sessions: Sessions, world: World) -> None:
    assert len(await _ids(sessions, "credit AND Balti", world.admin, Kind.LEAD)) == 1
    assert len(await _ids(sessions, "viber OR telegram", world.admin, Kind.LEAD)) == 2
    assert len(await _ids(sessions, "mortgage", world.admin, Kind.DEAL)) == 1
    assert len(await _ids(sessions, "agro credit", world.admin, Kind.COMPANY)) == 1


async def test_messages_match_by_body_within_the_viewers_conversations(
    sessions: Sessions, world: World
) -> None:
    admin = Viewer(world.admin.user_id, Role.ADMIN, None)
    agent = Viewer(world.agent.user_id, Role.AGENT, world.north)
    async with sessions() as db:
        everything = await search_messages(db, parse("credit"), admin)
        mine = await search_messages(db, parse("credit"), agent)
        balti = await search_messages(db, parse("credit AND Balti"), admin)
        clean = await search_messages(db, parse("credit -junk"), admin)
    assert len(everything) == 3
    assert len(mine) == 2
    assert [hit.snippet for hit in balti] == ["Vreau un credit de consum, sunt din Bălți"]
    assert len(clean) == 2
    assert all(hit.link.startswith("/contacts/") for hit in everything)
    assert sorted(hit.title for hit in balti) == ["Ion Rusu"]
    async with sessions() as db:
        unnamed = await search_messages(
            db, parse("credit AND Balti"), admin, hidden=frozenset({"name", "phone"})
        )
    assert [hit.title for hit in unnamed] == ["ion.rusu@mail.md"]  # what the reader may see of the customer


async def test_an_agent_finds_only_what_their_branch_may_see(sessions: Sessions, world: World) -> None:
    assert await _ids(sessions, "Elena", world.admin, Kind.CONTACT) == {world.elena}
    assert await _ids(sessions, "Elena", world.agent, Kind.CONTACT) == set()
    assert await _ids(sessions, "mortgage", world.agent, Kind.DEAL) == set()
    assert await _ids(sessions, "ipoteca", world.agent, Kind.LEAD) == set()
    assert len(await _ids(sessions, "viber OR telegram", world.agent, Kind.LEAD)) == 1


async def test_the_index_follows_updates_and_deletes(sessions: Sessions, world: World) -> None:
    async with sessions() as db, db.begin():
        await db.execute(update(Contact).where(Contact.id == world.vasile).values(last_name="Ciobanu"))
        await db.execute(delete(Contact).where(Contact.id == world.elena))
    assert await _ids(sessions, "rusu", world.admin, Kind.CONTACT) == {world.ion}
    assert await _ids(sessions, "ciobanu", world.admin, Kind.CONTACT) == {world.vasile}
    assert await _ids(sessions, "elena", world.admin, Kind.CONTACT) == set()


@pytest.mark.parametrize(("recent", "rare"), [(2, 2), (3, 1), (100, 100)])
async def test_the_newest_hits_are_the_same_whichever_path_finds_them(
    sessions: Sessions, world: World, monkeypatch: pytest.MonkeyPatch, recent: int, rare: int
) -> None:
    """On PostgreSQL a search looks through the newest rows first, then asks the index for the newest
    matches, then for all of them (`newest_matching`); each path gives the same page, newest first, and
    an agent's page never holds what the agent may not see."""
    from crm_core import search as search_module

    async with sessions() as db, db.begin():
        for i in range(6):
            branch = world.south if i % 2 else world.north
            db.add(Contact(first_name=f"Client{i}", last_name="Lungu", branch_id=branch))
    monkeypatch.setattr(search_module, "RECENT", recent)
    monkeypatch.setattr(search_module, "RARE", rare)
    async with sessions() as db:
        every = await search(db, parse("Lungu"), world.admin, kinds=[Kind.CONTACT], limit=4)
        mine = await search(db, parse("Lungu"), world.agent, kinds=[Kind.CONTACT], limit=2)
        rusu = await search(db, parse("Rusu"), world.admin, kinds=[Kind.CONTACT], limit=5)
    assert [h.title for h in every] == ["Client5 Lungu", "Client4 Lungu", "Client3 Lungu", "Client2 Lungu"]
    assert [h.title for h in mine] == ["Client4 Lungu", "Client2 Lungu"]
    assert [h.title for h in rusu] == ["Vasile Rusu", "Ion Rusu"]


QUERIES = (
    "rusu",
    '"Ion Rusu"',
    "Vasile OR Elena",
    "rusu -vasile",
    "Balti",
    "independentei",
    "123456",
    "37369123456",
    "12345",
    "ion.rusu@mail.md",
    "vip",
    "cahul OR 000111",
)


async def test_the_check_on_what_a_reader_sees_agrees_with_the_index(
    sessions: Sessions, world: World
) -> None:
    """`Query.found_in` over a contact's whole document finds what the engine's index finds."""
    async with sessions() as db:
        contacts = {c.id: c for c in (await db.scalars(select(Contact))).all()}
    for q in QUERIES:
        query = parse(q)
        expected = {
            c.id
            for c in contacts.values()
            if query.found_in(
                " ".join(str(getattr(c, col) or "") for col in DOCUMENTS["contacts"]), [c.phone or ""]
            )
        }
        assert await _ids(sessions, q, world.admin, Kind.CONTACT) == expected, q


async def test_a_field_hidden_from_the_reader_neither_finds_nor_excludes(
    sessions: Sessions, world: World
) -> None:
    hides_phone = replace(world.admin, hidden={"contact": frozenset({"phone", "name", "email"})})
    assert await _ids(sessions, "123456", hides_phone, Kind.CONTACT) == set()
    assert await _ids(sessions, "rusu", hides_phone, Kind.CONTACT) == set()
    assert await _ids(sessions, "balti", hides_phone, Kind.CONTACT) == {world.ion}
    assert await _ids(sessions, "balti -rusu", hides_phone, Kind.CONTACT) == {world.ion}
    assert await _ids(sessions, "vip -123456", hides_phone, Kind.CONTACT) == {world.ion}
    assert await _ids(sessions, "vip -123456", world.admin, Kind.CONTACT) == set()
    hides_campaign = replace(world.admin, hidden={"lead": frozenset({"campaign"})})
    assert await _ids(sessions, "balti", hides_campaign, Kind.LEAD) == set()
    assert await _ids(sessions, "viber", hides_campaign, Kind.LEAD) != set()
