"""`crm_core.merge`: one person's two contacts become one — identities and leads move, empty fields fill,
the merged contact goes and the audit log says where; a contact never merges with itself, and two agents
merging the same pair at once end with one merge and a "not found", never a corrupt pair."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.merge import merge_contacts, search_filter
from crm_core.models import Contact, ContactIdentity, Lead
from switchboard.audit import Actor
from switchboard.audit_model import AuditEntry
from switchboard.errors import Invalid, NotFound

AGENT = Actor(user_id=None, username="ana", ip="10.0.0.7")


async def _contact(
    sessions: async_sessionmaker[AsyncSession],
    channel: str,
    external_id: str,
    **fields: object,
) -> int:
    async with sessions() as db, db.begin():
        contact = Contact(**fields)
        db.add(contact)
        await db.flush()
        db.add(
            ContactIdentity(contact_id=contact.id, channel=channel, account_id="acc", external_id=external_id)
        )
        db.add(Lead(contact_id=contact.id, source_channel=channel))
        return contact.id


async def test_identities_and_leads_move_and_empty_fields_fill(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    keep = await _contact(
        sessions, "webchat", "visitor-1", first_name="", phone=None, email="maria@example.md"
    )
    gone = await _contact(
        sessions,
        "viber",
        "vb-1",
        first_name="Maria",
        last_name="Rusu",
        phone="+37369123456",
        email="other@example.md",
        language="ro",
    )
    async with sessions() as db, db.begin():
        result = await merge_contacts(db, AGENT, keep, gone)
    assert (result.kept_id, result.merged_id, result.identities_moved, result.leads_moved) == (
        keep,
        gone,
        1,
        1,
    )
    assert set(result.filled) == {"first_name", "last_name", "phone", "language"}
    async with sessions() as db:
        kept = await db.get(Contact, keep)
        assert await db.get(Contact, gone) is None
        channels = set(
            await db.scalars(select(ContactIdentity.channel).where(ContactIdentity.contact_id == keep))
        )
        leads = list(await db.scalars(select(Lead.source_channel).where(Lead.contact_id == keep)))
        entries = list(await db.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert kept is not None
    assert (kept.first_name, kept.last_name, kept.phone, kept.language) == (
        "Maria",
        "Rusu",
        "+37369123456",
        "ro",
    )
    assert kept.email == "maria@example.md"  # a value the kept contact has stays
    assert channels == {"webchat", "viber"} and sorted(leads) == ["viber", "webchat"]
    update, deletion = entries
    assert (update.category, update.module, update.action) == ("record", "contacts", "update")
    assert (update.record_type, update.record_id, update.username, update.ip) == (
        "contact",
        str(keep),
        "ana",
        "10.0.0.7",
    )
    assert update.changes is not None
    assert update.changes["phone"] == [None, "+37369123456"]
    assert update.changes["merged_contact_id"] == [None, gone]
    assert (deletion.action, deletion.record_id) == ("delete", str(gone))
    assert deletion.changes is not None and deletion.changes["merged_into"] == [None, keep]
    assert deletion.changes["first_name"] == ["Maria", None]


async def test_a_name_is_filled_whole_or_completed_never_mixed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    visitor = await _contact(sessions, "webchat", "v-1", first_name="Visitor")
    rusu = await _contact(sessions, "viber", "vb-1", first_name="Maria", last_name="Rusu")
    ion = await _contact(sessions, "webchat", "v-2", first_name="ion")
    popescu = await _contact(sessions, "telegram", "tg-1", first_name="Ion", last_name="Popescu")
    async with sessions() as db, db.begin():
        assert "last_name" not in (await merge_contacts(db, AGENT, visitor, rusu)).filled
        assert (await merge_contacts(db, AGENT, ion, popescu)).filled == ("last_name",)
    async with sessions() as db:
        first = await db.get(Contact, visitor)
        second = await db.get(Contact, ion)
    assert first is not None and first.display_name == "Visitor"
    assert second is not None and second.display_name == "ion Popescu"


async def test_a_contact_is_not_merged_with_itself_or_with_nobody(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    keep = await _contact(sessions, "webchat", "visitor-1", first_name="Ion")
    async with sessions() as db, db.begin():
        with pytest.raises(Invalid) as refused:
            await merge_contacts(db, AGENT, keep, keep)
        assert refused.value.field == "merge_id" and "itself" in refused.value.message
        with pytest.raises(NotFound):
            await merge_contacts(db, AGENT, keep, 424242)
        with pytest.raises(NotFound):
            await merge_contacts(db, AGENT, 424242, keep)
    async with sessions() as db:
        assert await db.get(Contact, keep) is not None
        assert list(await db.scalars(select(AuditEntry))) == []


async def test_two_agents_merging_the_same_pair_at_once_end_with_one_contact(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    a = await _contact(sessions, "webchat", "visitor-1", first_name="Ion")
    b = await _contact(sessions, "viber", "vb-1", first_name="Ion", last_name="Popescu")

    async def merge(keep: int, gone: int) -> str:
        try:
            async with sessions() as db, db.begin():
                await merge_contacts(db, AGENT, keep, gone)
                await asyncio.sleep(0.05)  # hold the locks while the other one tries
        except NotFound:
            return "not found"
        return "merged"

    outcomes = await asyncio.gather(merge(a, b), merge(b, a))
    assert sorted(outcomes) == ["merged", "not found"]
    async with sessions() as db:
        survivors = list(await db.scalars(select(Contact.id)))
        identities = list(await db.scalars(select(ContactIdentity.contact_id)))
        leads = list(await db.scalars(select(Lead.contact_id)))
    assert len(survivors) == 1 and identities == survivors * 2 and leads == survivors * 2


async def test_search_matches_names_phones_e_mails_and_channel_addresses(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    maria = await _contact(
        sessions, "webchat", "v-1", first_name="Maria", last_name="Rusu", phone="+37369123456"
    )
    ion = await _contact(sessions, "email", "ion.popescu@mail.md", first_name="Ion", email="ion@work.md")

    async def found(query: str) -> set[int]:
        matches = search_filter(query)
        assert matches is not None
        async with sessions() as db:
            return set(await db.scalars(select(Contact.id).where(matches)))

    assert await found("maria") == {maria}
    assert await found("RUSU mar") == {maria}
    assert await found("069 123 456") == {maria}
    assert await found("+373 69 12") == {maria}
    assert await found("ion@work") == {ion}
    assert await found("popescu@mail") == {ion}
    assert await found("maria ion") == set()
    assert await found("100%_") == set()  # LIKE wildcards are text
    assert search_filter("   ") is None
    with pytest.raises(Invalid):
        search_filter("x" * 101)
