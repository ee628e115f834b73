"""A contact merge moves everything and its undo restores everything: two customers with every kind of row
that points at a contact or a conversation (identities, both open threads, a resolved one, messages,
notifications, calls, tasks, leads, a deal, phones, e-mails, company links, relations both ways,
duplicate pairs, tags and custom values) become one — nothing is left pointing at the merged one, the
chosen values win — and undoing it gives back every row of every table as it was before, ids included.
What the undo refuses (twice, too late, a kept contact merged again) and what it reports (a moved row
deleted since, a field edited since) is checked apart."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import Channel, InboundMessage
from crm_core import custom_fields, funnel, scoring
from crm_core.contacts_model import (
    Company,
    ContactCompany,
    ContactEmail,
    ContactPhone,
    ContactRelation,
    DuplicateCandidate,
)
from crm_core.merge_model import ContactMerge
from crm_core.models import Contact, ContactIdentity, Lead
from crm_core.tasks_model import Task
from inbox import merge as inbox_merge
from inbox.calls_model import Call
from inbox.models import Conversation, Message
from inbox.notifications_model import Notification
from inbox.service import Viewer
from switchboard.audit import Actor
from switchboard.audit_model import AuditEntry
from switchboard.db import utcnow
from switchboard.errors import Conflict
from switchboard.models import metadata
from switchboard.permissions import Role
from tests.conftest import MakeUser
from webui import keys

WINDOW = dt.timedelta(days=30)
IGNORED_TABLES = {"audit_log", "jobs", "contact_merges", "alembic_version"}
# touched by the undo itself / derived by the database / set by the bus relay in the background
IGNORED_COLUMNS = {"updated_at", "search_vector", "published_at"}
_ids = itertools.count(1)


def _inbound(channel: Channel, sender: str, body: str, **kw: Any) -> InboundMessage:
    return InboundMessage(
        channel=channel, account_id="acc", external_id=f"m-{next(_ids)}", sender_id=sender, body=body, **kw
    )


async def _everything(sessions: async_sessionmaker[AsyncSession]) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table (but the logs), by table, ordered by primary key."""
    found: dict[str, list[dict[str, Any]]] = {}
    async with sessions() as db:
        for table in metadata.sorted_tables:
            if table.name in IGNORED_TABLES:
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            rows = await db.execute(select(table).order_by(*order))
            found[table.name] = [
                {k: v for k, v in row.items() if k not in IGNORED_COLUMNS} for row in rows.mappings()
            ]
    return found


def _pointing_at(everything: dict[str, list[dict[str, Any]]], contact_id: int) -> list[str]:
    """`table.column` of every row still pointing at the contact, by any foreign key to contacts."""
    found = []
    for table in metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == "contacts" and table.name in everything:
                found += [
                    f"{table.name}.{fk.parent.name}"
                    for row in everything[table.name]
                    if row[fk.parent.name] == contact_id
                ]
    return found


class World:
    """Two customers of one person, each with something of every kind."""

    keep_id: int
    gone_id: int
    third_id: int
    keep_thread: int
    gone_thread: int
    gone_old_thread: int
    third_thread: int


async def _world(app: web.Application, sessions: async_sessionmaker[AsyncSession], agent_id: int) -> World:
    inbox = app[keys.INBOX]
    w = World()
    web_1 = await inbox.ingest(_inbound(Channel.WEBCHAT, "visitor-1", "Bună ziua", sender_name="Maria"))
    viber_1 = await inbox.ingest(
        _inbound(Channel.VIBER, "vb-1", "Salut", sender_name="Maria Rusu", sender_phone="069 123 456")
    )
    await inbox.ingest(_inbound(Channel.VIBER, "vb-1", "Aștept un răspuns"))
    third = await inbox.ingest(_inbound(Channel.TELEGRAM, "tg-9", "Sunt soțul", sender_name="Ion Rusu"))
    async with sessions() as db, db.begin():
        contact_of = {
            c.id: c.contact_id
            for c in await db.scalars(
                select(Conversation).where(
                    Conversation.id.in_(
                        [web_1.conversation_id, viber_1.conversation_id, third.conversation_id]
                    )
                )
            )
        }
        w.keep_id, w.gone_id = contact_of[web_1.conversation_id], contact_of[viber_1.conversation_id]
        w.third_id = contact_of[third.conversation_id]
        w.keep_thread, w.gone_thread = web_1.conversation_id, viber_1.conversation_id
        w.third_thread = third.conversation_id
        income = await custom_fields.create_definition(
            db,
            Actor(user_id=None, username="admin"),
            "contact",
            custom_fields.parse_definition({"key": "income", "label": "Income", "kind": "money"}),
        )
        keep = await db.get(Contact, w.keep_id)
        gone = await db.get(Contact, w.gone_id)
        assert keep is not None and gone is not None
        keep.email, keep.tags, keep.custom = "maria@example.md", ["vip"], {income.key: "1000.00"}
        keep.owner_id = agent_id
        gone.idnp, gone.birth_date = "2000000000013", dt.date(1990, 5, 17)
        gone.tags, gone.custom, gone.address = ["ipoteca", "vip"], {income.key: "2500.00"}, "str. Ștefan 1"
        db.add(ContactEmail(contact_id=w.keep_id, email="maria@example.md", is_primary=True))
        db.add(ContactEmail(contact_id=w.gone_id, email="rusu@example.md", is_primary=True))
        db.add(ContactPhone(contact_id=w.gone_id, e164="+37379000111", tail="000111", is_primary=False))
        company = Company(name="Agro SRL")
        db.add(company)
        await db.flush()
        db.add(ContactCompany(contact_id=w.gone_id, company_id=company.id, role="contabil"))
        db.add(ContactRelation(contact_id=w.gone_id, related_id=w.third_id, kind="spouse"))
        db.add(ContactRelation(contact_id=w.third_id, related_id=w.gone_id, kind="spouse"))
        low, high = sorted((w.keep_id, w.gone_id))
        db.add(DuplicateCandidate(contact_id=low, other_id=high, reason="phone_tail"))
        low, high = sorted((w.gone_id, w.third_id))
        db.add(DuplicateCandidate(contact_id=low, other_id=high, reason="name"))
        old = Conversation(contact_id=w.gone_id, status="resolved")
        db.add(old)
        await db.flush()
        w.gone_old_thread = old.id
        db.add(
            Message(
                conversation_id=old.id,
                direction="in",
                channel="viber",
                body="Anul trecut",
                author_contact_id=w.gone_id,
                external_id="old-1",
            )
        )
        last = await db.scalar(
            select(Message.id).where(Message.conversation_id == w.gone_thread).order_by(Message.id.desc())
        )
        db.add(Notification(user_id=agent_id, kind="mention", conversation_id=w.gone_thread, message_id=last))
        db.add(
            Call(
                linkedid="1700000000.1",
                direction="in",
                customer_number="+37369123456",
                contact_id=w.gone_id,
                conversation_id=w.gone_thread,
                started_at=utcnow(),
                result="answered",
            )
        )
        db.add(Task(title="Sună înapoi", kind="callback", contact_id=w.gone_id, assignee_id=agent_id))
        db.add(Task(title="Trimite oferta", kind="follow_up", conversation_id=w.gone_thread))
        lead_id = await db.scalar(select(Lead.id).where(Lead.contact_id == w.gone_id))
        assert lead_id is not None
        await db.execute(Lead.__table__.update().where(Lead.id == lead_id).values(amount=Decimal("50000")))
        await funnel.convert_lead(db, lead_id, by_user_id=agent_id)
        for contact_id in (w.keep_id, w.gone_id, w.third_id):  # as the profile form would after these edits
            await scoring.recompute_contact(db, contact_id)
    return w


@pytest.fixture
async def world(
    client: TestClient, app: web.Application, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser
) -> tuple[World, Actor]:
    agent = await make_user(Role.AGENT)
    actor = Actor(user_id=agent.id, username=agent.username, ip="10.0.0.7")
    return await _world(app, sessions, agent.id), actor


async def _merge(app: web.Application, actor: Actor, w: World, **choices: str) -> int:
    viewer = Viewer(actor.user_id or 0, Role.ADMIN, None)
    merged = await inbox_merge.merge_customers(
        app[keys.INBOX], viewer, actor, w.keep_id, w.gone_id, choices=choices or None
    )
    return merged.merged.record_id


async def test_a_merge_moves_everything_and_its_undo_restores_everything(
    app: web.Application, sessions: async_sessionmaker[AsyncSession], world: tuple[World, Actor]
) -> None:
    w, actor = world
    before = await _everything(sessions)
    assert len(_pointing_at(before, w.gone_id)) >= 12  # every kind of row is there to move

    record_id = await _merge(app, actor, w, last_name="merge", idnp="merge", address="keep")

    after = await _everything(sessions)
    assert _pointing_at(after, w.gone_id) == []
    assert not [c for c in after["contacts"] if c["id"] == w.gone_id]
    kept = next(c for c in after["contacts"] if c["id"] == w.keep_id)
    assert (kept["first_name"], kept["last_name"], kept["idnp"]) == ("Maria", "Rusu", "2000000000013")
    assert kept["address"] == ""  # "keep" chosen: the kept contact's (empty) value stays
    assert kept["birth_date"] == dt.date(1990, 5, 17)  # unchosen and empty: filled
    assert kept["tags"] == ["vip", "ipoteca"] and kept["custom"] == {"income": "1000.00"}
    by_contact = {t: [r for r in after[t] if r.get("contact_id") == w.keep_id] for t in after}
    assert len(by_contact["contact_identities"]) == 2
    assert len(by_contact["leads"]) == 2 and len(by_contact["deals"]) == 1
    assert len(by_contact["calls"]) == 1 and len(by_contact["tasks"]) == 1
    assert {r["email"] for r in by_contact["contact_emails"]} == {"maria@example.md", "rusu@example.md"}
    assert len(by_contact["contact_companies"]) == 1
    # One thread: the latest of the two customers' (here the resolved one), holding every message.
    threads = {r["id"]: r for r in after["conversations"] if r["contact_id"] == w.keep_id}
    assert set(threads) == {w.gone_old_thread} and threads[w.gone_old_thread]["status"] == "open"
    assert {m["conversation_id"] for m in after["messages"]} == {w.gone_old_thread, w.third_thread}
    assert {n["conversation_id"] for n in after["notifications"]} == {w.gone_old_thread}
    assert {r["related_id"] for r in after["contact_relations"] if r["contact_id"] == w.keep_id} == {
        w.third_id
    }
    pairs = {(r["contact_id"], r["other_id"]) for r in after["duplicate_candidates"]}
    assert pairs == {tuple(sorted((w.keep_id, w.third_id)))}

    async with sessions() as db:
        record = await db.get(ContactMerge, record_id)
    assert record is not None and record.status == "active"
    undone = await inbox_merge.undo_customers_merge(app[keys.INBOX], actor, record_id, window=WINDOW)

    assert undone.complete, undone.as_json()
    restored = await _everything(sessions)
    for table, rows in before.items():
        changed = [
            (k, a[k], b[k]) for a, b in zip(rows, restored[table], strict=False) for k in a if a[k] != b[k]
        ]
        assert restored[table] == rows, (table, changed)
    async with sessions() as db:
        entries = list(
            await db.scalars(
                select(AuditEntry)
                .where(AuditEntry.module == "contacts")
                .order_by(AuditEntry.id.desc())
                .limit(2)
            )
        )
        record = await db.get(ContactMerge, record_id)
    assert {(e.action, e.record_id) for e in entries} == {
        ("create", str(w.gone_id)),
        ("update", str(w.keep_id)),
    }
    assert all(e.username == actor.username for e in entries)
    assert record is not None and record.status == "undone" and record.undone_by_name == actor.username


async def test_the_undo_is_refused_twice_too_late_and_after_a_later_merge_of_the_kept_contact(
    app: web.Application, sessions: async_sessionmaker[AsyncSession], world: tuple[World, Actor]
) -> None:
    w, actor = world
    record_id = await _merge(app, actor, w)
    inbox = app[keys.INBOX]
    with pytest.raises(Conflict, match="older than"):
        await inbox_merge.undo_customers_merge(inbox, actor, record_id, window=dt.timedelta(0))
    # The kept contact merged into the third one since: that merge has to be undone first.
    viewer = Viewer(actor.user_id or 0, Role.ADMIN, None)
    later = await inbox_merge.merge_customers(inbox, viewer, actor, w.third_id, w.keep_id)
    with pytest.raises(Conflict, match="undo that merge first"):
        await inbox_merge.undo_customers_merge(inbox, actor, record_id, window=WINDOW)
    await inbox_merge.undo_customers_merge(inbox, actor, later.merged.record_id, window=WINDOW)
    result = await inbox_merge.undo_customers_merge(inbox, actor, record_id, window=WINDOW)
    assert result.complete, result.as_json()
    with pytest.raises(Conflict, match="undone already"):
        await inbox_merge.undo_customers_merge(inbox, actor, record_id, window=WINDOW)
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(Contact)) == 3


async def test_the_undo_reports_what_changed_since_and_keeps_the_later_edits(
    app: web.Application, sessions: async_sessionmaker[AsyncSession], world: tuple[World, Actor]
) -> None:
    w, actor = world
    record_id = await _merge(app, actor, w, last_name="merge")
    async with sessions() as db, db.begin():
        kept = await db.get(Contact, w.keep_id)
        assert kept is not None
        kept.last_name = "Rusu-Popa"  # edited after the merge: the undo leaves it
        task = await db.scalar(select(Task).where(Task.title == "Sună înapoi"))
        assert task is not None
        await db.delete(task)  # a moved row deleted since: reported, not invented
    result = await inbox_merge.undo_customers_merge(app[keys.INBOX], actor, record_id, window=WINDOW)
    assert not result.complete
    assert result.fields_kept == ("last_name",)
    assert result.not_restored == {"tasks": 1}
    async with sessions() as db:
        kept = await db.get(Contact, w.keep_id)
        gone = await db.get(Contact, w.gone_id)
        identities = set(
            await db.scalars(select(ContactIdentity.channel).where(ContactIdentity.contact_id == w.gone_id))
        )
    assert kept is not None and kept.last_name == "Rusu-Popa"
    assert gone is not None and gone.last_name == "Rusu" and identities == {"viber"}
