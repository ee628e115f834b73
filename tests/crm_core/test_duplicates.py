"""Duplicate detection on every write path: exact by phone (any of a contact's numbers), e-mail, IDNP and
channel identity; likely by a diacritics-blind name plus a birth date or phone tail; never by a name alone.
Forms and the API stop (`DuplicatesFound`) until confirmed; ingest never stops and only records the pair."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import profile
from crm_core.contacts import DuplicatesFound, resolve_contact, update_contact
from crm_core.contacts_model import ContactPhone, DuplicateCandidate
from crm_core.duplicates import EXACT, LIKELY, Candidate, find_duplicates, fold_name
from crm_core.merge import merge_contacts
from crm_core.models import Contact
from switchboard.audit import Actor
from switchboard.errors import Invalid

AGENT = Actor(user_id=None, username="ana")
BIRTH = dt.date(1985, 4, 23)
IDNP = "2002001234563"


async def _create(sessions: async_sessionmaker[AsyncSession], **data: object) -> int:
    async with sessions() as db, db.begin():
        return await profile.create_contact(db, AGENT, profile.parse_profile(data), confirm_duplicate=True)


async def _find(
    sessions: async_sessionmaker[AsyncSession], candidate: Candidate
) -> list[tuple[int, str, list[str]]]:
    async with sessions() as db:
        return [(m.contact_id, m.kind, m.reasons) for m in await find_duplicates(db, candidate)]


def test_names_fold_diacritics_case_and_spaces() -> None:
    assert fold_name("Ștefan", "  RUSU ") == "stefan rusu"
    assert fold_name("Şţefan Ţurcanu") == fold_name("Stefan Turcanu")


async def test_exact_by_any_phone_of_a_contact(sessions: async_sessionmaker[AsyncSession]) -> None:
    ion = await _create(sessions, first_name="Ion", phones=["069123456", "+40 721 234 567"])
    assert await _find(sessions, Candidate(phones=["+40721234567"])) == [(ion, EXACT, ["phone"])]
    assert await _find(sessions, Candidate(phones=["+37369123456"])) == [(ion, EXACT, ["phone"])]


async def test_exact_by_email_whatever_its_case(sessions: async_sessionmaker[AsyncSession]) -> None:
    ion = await _create(sessions, first_name="Ion", emails=["Ion.Popescu@Mail.md"])
    assert await _find(sessions, Candidate(emails=["ion.popescu@mail.MD"])) == [(ion, EXACT, ["email"])]


async def test_exact_by_idnp(sessions: async_sessionmaker[AsyncSession]) -> None:
    ion = await _create(sessions, first_name="Ion", idnp=IDNP)
    assert await _find(sessions, Candidate(first_name="Other", idnp=IDNP)) == [(ion, EXACT, ["idnp"])]


async def test_exact_by_channel_identity(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as db, db.begin():
        known = await resolve_contact(db, channel="telegram", account_id="bot", external_id="42", name="Ion")
    found = await _find(sessions, Candidate(identities=[("telegram", "bot", "42")]))
    assert found == [(known.contact_id, EXACT, ["identity"])]


async def test_likely_by_diacritics_blind_name_and_birth_date(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    stefan = await _create(sessions, first_name="Ștefan", last_name="Rusu", birth_date="1985-04-23")
    found = await _find(sessions, Candidate(first_name="Stefan", last_name="Rusu", birth_date=BIRTH))
    assert found == [(stefan, LIKELY, ["name+birth_date"])]
    reordered = await _find(sessions, Candidate(first_name="Rusu", last_name="Stefan", birth_date=BIRTH))
    assert [m[0] for m in reordered] == [stefan]


async def test_likely_by_name_and_the_last_six_phone_digits(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    stefan = await _create(sessions, first_name="Ștefan", last_name="Rusu", phones=["069123456"])
    found = await _find(sessions, Candidate(first_name="Stefan", last_name="Rusu", phones=["+40721123456"]))
    assert found == [(stefan, LIKELY, ["name+phone_tail"])]


async def test_same_name_with_other_birth_date_and_phone_is_no_duplicate(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _create(
        sessions, first_name="Ștefan", last_name="Rusu", birth_date="1985-04-23", phones=["069123456"]
    )
    other = Candidate(
        first_name="Stefan", last_name="Rusu", birth_date=dt.date(1990, 1, 1), phones=["+37379555000"]
    )
    assert await _find(sessions, other) == []
    assert await _find(sessions, Candidate(first_name="Stefan", last_name="Rusu")) == []


async def test_a_different_name_with_the_same_birth_date_is_no_duplicate(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _create(sessions, first_name="Ștefan", last_name="Rusu", birth_date="1985-04-23")
    assert await _find(sessions, Candidate(first_name="Maria", last_name="Ciobanu", birth_date=BIRTH)) == []


async def test_create_stops_for_a_duplicate_until_confirmed_then_records_the_pair(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ion = await _create(sessions, first_name="Ion", phones=["069123456"])
    data = profile.parse_profile({"first_name": "Ion P", "phones": ["+373 69 123 456"]})
    async with sessions() as db, db.begin():
        with pytest.raises(DuplicatesFound) as stopped:
            await profile.create_contact(db, AGENT, data)
    assert [m.contact_id for m in stopped.value.matches] == [ion]
    async with sessions() as db:
        assert await db.scalar(select(Contact.id).where(Contact.first_name == "Ion P")) is None
    async with sessions() as db, db.begin():
        second = await profile.create_contact(db, AGENT, data, confirm_duplicate=True)
    async with sessions() as db:
        pair = (await db.scalars(select(DuplicateCandidate))).one()
    assert (pair.contact_id, pair.other_id, pair.reason) == (ion, second, "phone")


async def test_profile_edit_stops_for_a_duplicate(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _create(sessions, first_name="Ion", emails=["ion@mail.md"])
    maria = await _create(sessions, first_name="Maria")
    async with sessions() as db, db.begin():
        with pytest.raises(DuplicatesFound):
            await profile.save_contact(
                db, AGENT, maria, profile.parse_profile({"first_name": "Maria", "emails": ["ION@mail.md"]})
            )
    async with sessions() as db, db.begin():  # her own values never count as a duplicate of herself
        await profile.save_contact(db, AGENT, maria, profile.parse_profile({"first_name": "Maria B"}))


async def test_quick_edit_stops_for_a_duplicate_and_keeps_the_phone_list_in_step(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _create(sessions, first_name="Ion", phones=["069123456"])
    maria = await _create(sessions, first_name="Maria", phones=["069000111"])
    async with sessions() as db, db.begin():
        with pytest.raises(DuplicatesFound):
            await update_contact(
                db,
                AGENT,
                maria,
                first_name="Maria",
                last_name="",
                phone="069123456",
                email="",
                confirm_duplicate=False,
            )
    async with sessions() as db, db.begin():
        await update_contact(
            db,
            AGENT,
            maria,
            first_name="Maria",
            last_name="",
            phone="069222333",
            email="",
            confirm_duplicate=False,
        )
    async with sessions() as db:
        phones = list(await db.scalars(select(ContactPhone.e164).where(ContactPhone.contact_id == maria)))
    assert phones == ["+37369222333"]


async def test_ingest_never_stops_links_by_exact_phone_and_records_likely_pairs(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    stefan = await _create(sessions, first_name="Ștefan", last_name="Rusu", phones=["069123456", "079000111"])
    async with sessions() as db, db.begin():  # his second number: the same contact, as today
        same = await resolve_contact(
            db, channel="viber", account_id="v", external_id="a", name="Stefan", phone="+37379000111"
        )
        # a new number ending like his, same name: a new contact, and a likely pair on the page
        new = await resolve_contact(
            db, channel="telegram", account_id="t", external_id="b", name="Stefan Rusu", phone="+40721123456"
        )
    assert same.contact_id == stefan and not same.created
    assert new.created and new.contact_id != stefan
    async with sessions() as db:
        pair = (await db.scalars(select(DuplicateCandidate))).one()
        phone = await db.scalar(select(ContactPhone.e164).where(ContactPhone.contact_id == new.contact_id))
    assert (pair.contact_id, pair.other_id, pair.reason) == (stefan, new.contact_id, "name+phone_tail")
    assert phone == "+40721123456"
    async with sessions() as db:
        pairs = await contacts_pairs(db)
    assert pairs == [(stefan, new.contact_id)]


async def contacts_pairs(db: AsyncSession) -> list[tuple[int, int]]:
    from crm_core.duplicates import open_pairs

    return [(p.first.id, p.second.id) for p in await open_pairs(db)]


async def test_merge_moves_the_other_phones_so_the_kept_contact_still_matches(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ion = await _create(sessions, first_name="Ion", phones=["069123456"])
    other = await _create(sessions, first_name="Ion", phones=["079555666", "069123456"])
    async with sessions() as db, db.begin():
        await merge_contacts(db, AGENT, ion, other)
    assert await _find(sessions, Candidate(phones=["+37379555666"])) == [(ion, EXACT, ["phone"])]


async def test_a_second_contact_with_the_same_idnp_is_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _create(sessions, first_name="Ion", idnp=IDNP)
    async with sessions() as db, db.begin():
        with pytest.raises(Invalid) as refused:
            await profile.create_contact(
                db, AGENT, profile.parse_profile({"first_name": "Ana", "idnp": IDNP}), confirm_duplicate=True
            )
    assert refused.value.field == "idnp"
