"""`crm_core.leads` and `crm_core.funnel`: each lead field is validated with a readable reason, statuses
move only along the allowed paths (junk needs a reason, "converted" only by converting), score and owner
are locked for agents, the inbox's first reply stamps the lead, converting makes exactly one deal in the
default pipeline's first stage (however often it is asked), deals move, win and lose with a reason, and
every change leaves an audit row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import Channel, InboundMessage
from crm_core import classifiers, funnel, leads
from crm_core.funnel_model import Deal
from crm_core.models import Contact, Lead
from inbox.service import Inbox, Viewer
from switchboard.accounts_model import Branch, User
from switchboard.audit import SYSTEM
from switchboard.audit_model import AuditEntry
from switchboard.bus import InMemoryBus
from switchboard.db import utcnow
from switchboard.errors import Conflict, DomainError, Invalid, NotFound
from switchboard.permissions import Role

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class World:
    north: int
    south: int
    agent: int
    supervisor: int
    marketer: int
    contact: int
    lead: int


@pytest.fixture
async def world(sessions: Sessions) -> World:
    async with sessions() as db, db.begin():
        await classifiers.seed_defaults(db)
        north, south = Branch(name="North"), Branch(name="South")
        db.add_all([north, south])
        await db.flush()
        people = [
            User(username=name, role=role, branch_id=north.id, password_hash="-")
            for name, role in (("ana", "agent"), ("sam", "supervisor"), ("mia", "marketer"))
        ]
        maria = Contact(first_name="Maria", phone="+37369000001", branch_id=north.id)
        db.add_all([*people, maria])
        await db.flush()
        lead = Lead(contact_id=maria.id, source_channel="telegram", utm_source="facebook")
        db.add(lead)
        await db.flush()
        return World(north.id, south.id, *(p.id for p in people), maria.id, lead.id)


async def _update(sessions: Sessions, w: World, role: Role = Role.ADMIN, **changes: Any) -> leads.LeadView:
    async with sessions() as db, db.begin():
        return await leads.update_lead(db, SYSTEM, role, w.lead, changes)


async def _refused(sessions: Sessions, w: World, role: Role = Role.ADMIN, **changes: Any) -> DomainError:
    with pytest.raises(DomainError) as caught:
        await _update(sessions, w, role, **changes)
    return caught.value


async def test_a_lead_takes_its_request_fields(sessions: Sessions, world: World) -> None:
    lead = await _update(
        sessions,
        world,
        product="mortgage",
        amount="250000.5",
        term_months="240",
        branch_id=world.south,
        campaign="Spring 2027",
        score=70,
        owner_id=world.agent,
    )
    assert (lead.product, lead.amount, lead.term_months) == ("mortgage", Decimal("250000.50"), 240)
    assert (lead.branch_id, lead.branch_name, lead.campaign) == (world.south, "South", "Spring 2027")
    assert (lead.score, lead.owner_id, lead.owner_name, lead.currency) == (70, world.agent, "ana", "MDL")
    assert lead.updated_at is not None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"product": "yacht"}, "product"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "10000000.01"}, "amount"),
        ({"amount": "12.345"}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"term_months": 0}, "term_months"),
        ({"term_months": 361}, "term_months"),
        ({"term_months": "ten"}, "term_months"),
        ({"currency": "BTC"}, "currency"),
        ({"branch_id": 999999}, "branch_id"),
        ({"score": 101}, "score"),
        ({"campaign": "x" * 201}, "campaign"),
        ({"utm_source": "google"}, "utm_source"),
        ({"page_url": "https://x.md"}, "page_url"),
        ({"colour": "red"}, "colour"),
        ({"status": "won"}, "status"),
    ],
)
async def test_each_field_refuses_bad_values_with_its_name(
    sessions: Sessions, world: World, changes: dict[str, Any], field: str
) -> None:
    error = await _refused(sessions, world, **changes)
    assert error.status == 422 and error.field == field


async def test_the_amount_limits_themselves_are_accepted(sessions: Sessions, world: World) -> None:
    assert (await _update(sessions, world, amount="10000000")).amount == Decimal("10000000.00")
    assert (await _update(sessions, world, amount=0.01, term_months=1)).amount == Decimal("0.01")
    assert (await _update(sessions, world, amount="", term_months=360)).amount is None


async def test_an_inactive_product_cannot_be_chosen(sessions: Sessions, world: World) -> None:
    async with sessions() as db, db.begin():
        entry = (await classifiers.list_kind(db, "product"))[0]
        await classifiers.set_active(db, SYSTEM, entry.id, False)
    assert (await _refused(sessions, world, product=entry.code)).field == "product"


async def test_the_owner_must_be_an_active_agent_or_supervisor(sessions: Sessions, world: World) -> None:
    assert (await _refused(sessions, world, owner_id=world.marketer)).field == "owner_id"
    assert (await _refused(sessions, world, owner_id=999999)).field == "owner_id"
    assert (await _update(sessions, world, owner_id=world.supervisor)).owner_id == world.supervisor


async def test_agents_may_not_change_score_or_owner_but_may_echo_them(
    sessions: Sessions, world: World
) -> None:
    for changes in ({"score": 50}, {"owner_id": world.agent}):
        error = await _refused(sessions, world, Role.AGENT, **changes)
        assert error.status == 403
    lead = await _update(sessions, world, Role.AGENT, score="0", product="consumer")
    assert (lead.score, lead.product) == (0, "consumer")
    assert (await _update(sessions, world, Role.SUPERVISOR, score=40)).score == 40


async def test_status_moves_along_the_allowed_paths_and_junk_needs_a_reason(
    sessions: Sessions, world: World
) -> None:
    assert (await _update(sessions, world, status="in_work")).status == "in_work"
    assert (await _refused(sessions, world, status="junk")).field == "junk_reason"
    assert (await _refused(sessions, world, status="junk", junk_reason="bored")).field == "junk_reason"
    junk = await _update(sessions, world, status="junk", junk_reason="spam")
    assert (junk.status, junk.junk_reason) == ("junk", "spam")
    assert (await _refused(sessions, world, status="qualified")).status == 409  # junk → new / in work only
    back = await _update(sessions, world, status="new")
    assert (back.status, back.junk_reason) == ("new", None)
    refused = await _refused(sessions, world, status="converted")
    assert (refused.status, refused.field) == (409, "status")


async def test_the_first_agent_reply_is_stamped_once_on_open_leads(sessions: Sessions, world: World) -> None:
    first = utcnow()
    async with sessions() as db, db.begin():
        stamped = await leads.note_first_response(db, world.contact, first)
        again = await leads.note_first_response(db, world.contact, first + dt.timedelta(hours=1))
        view = await leads.get_lead(db, world.lead)
    assert (stamped, again) == (1, 0)
    assert view is not None and view.first_response_at == first


async def test_converting_makes_one_deal_in_the_first_stage_of_the_default_pipeline(
    sessions: Sessions, world: World
) -> None:
    await _update(sessions, world, product="car_loan", amount=90000, branch_id=world.south)
    async with sessions() as db, db.begin():
        deal = await funnel.convert_lead(db, world.lead, by_user_id=world.agent)
        again = await funnel.convert_lead(db, world.lead, by_user_id=world.supervisor)
        pipeline = await funnel.default_pipeline(db)
        count = await db.scalar(select(func.count(Deal.id)))
        lead = await leads.get_lead(db, world.lead)
    assert again == deal and count == 1
    assert (pipeline.name, deal.pipeline_id, deal.stage_id) == ("Credit", pipeline.id, pipeline.stages[0].id)
    assert (deal.stage_name, deal.probability, deal.status) == ("New application", 10, "open")
    assert (deal.product, deal.amount, deal.branch_id, deal.owner_id) == (
        "car_loan",
        Decimal("90000.00"),
        world.south,
        world.agent,
    )
    assert lead is not None and (lead.status, lead.deal_id, lead.owner_id) == (
        "converted",
        deal.id,
        world.agent,
    )
    assert (await _refused(sessions, world, status="in_work")).status == 409


async def test_junk_and_missing_leads_do_not_convert(sessions: Sessions, world: World) -> None:
    await _update(sessions, world, status="junk", junk_reason="duplicate")
    async with sessions() as db, db.begin():
        with pytest.raises(Conflict):
            await funnel.convert_lead(db, world.lead, by_user_id=None)
        with pytest.raises(NotFound):
            await funnel.convert_lead(db, 999999, by_user_id=None)


async def test_a_deal_moves_wins_and_is_lost_with_a_reason(sessions: Sessions, world: World) -> None:
    async with sessions() as db, db.begin():
        deal = await funnel.convert_lead(db, world.lead, by_user_id=world.agent)
        stages = {s.name: s for s in (await funnel.default_pipeline(db)).stages}
        moved = await funnel.move_deal(db, SYSTEM, deal.id, stages["Bank review"].id)
        assert (moved.stage_name, moved.probability, moved.status) == ("Bank review", 60, "open")
        with pytest.raises(Invalid):
            await funnel.move_deal(db, SYSTEM, deal.id, stages["Lost"].id)  # needs a reason: lose()
        with pytest.raises(Invalid):
            await funnel.move_deal(db, SYSTEM, deal.id, 999999)
        won = await funnel.win(db, SYSTEM, deal.id)
        assert (won.status, won.stage_name, won.probability) == ("won", "Won", 100) and won.closed_at
        with pytest.raises(Invalid):
            await funnel.lose(db, SYSTEM, deal.id, "")
        with pytest.raises(Invalid):
            await funnel.lose(db, SYSTEM, deal.id, "bored")
        lost = await funnel.lose(db, SYSTEM, deal.id, "bank_refused")
        assert (lost.status, lost.stage_name, lost.lost_reason) == ("lost", "Lost", "bank_refused")
        reopened = await funnel.move_deal(db, SYSTEM, deal.id, stages["Documents"].id)
        assert (reopened.status, reopened.lost_reason, reopened.closed_at) == ("open", None, None)


async def test_deal_edits_validate_and_lock_the_owner_for_agents(sessions: Sessions, world: World) -> None:
    async with sessions() as db, db.begin():
        deal = await funnel.convert_lead(db, world.lead, by_user_id=world.agent)
        edited = await funnel.update_deal(
            db, SYSTEM, Role.AGENT, deal.id, {"amount": "5000", "product": "consumer"}
        )
        assert (edited.amount, edited.product) == (Decimal("5000.00"), "consumer")
        with pytest.raises(DomainError) as caught:
            await funnel.update_deal(db, SYSTEM, Role.AGENT, deal.id, {"owner_id": world.supervisor})
        assert caught.value.status == 403
        with pytest.raises(Invalid):
            await funnel.update_deal(db, SYSTEM, Role.ADMIN, deal.id, {"amount": "20000000"})
        assert (
            await funnel.update_deal(db, SYSTEM, Role.SUPERVISOR, deal.id, {"owner_id": world.supervisor})
        ).owner_id == world.supervisor


async def test_lead_and_deal_changes_are_audited(sessions: Sessions, world: World) -> None:
    await _update(sessions, world, product="mortgage", amount=1000)
    async with sessions() as db, db.begin():
        deal = await funnel.convert_lead(db, world.lead, by_user_id=world.agent)
        await funnel.win(db, SYSTEM, deal.id)
        rows = (
            await db.execute(
                select(
                    AuditEntry.module, AuditEntry.action, AuditEntry.record_id, AuditEntry.changes
                ).order_by(AuditEntry.id)
            )
        ).all()
    assert [(r.module, r.action) for r in rows] == [
        ("leads", "update"),
        ("leads", "update"),
        ("deals", "create"),
        ("deals", "update"),
    ]
    assert rows[0].changes == {"amount": [None, "1000.00"], "product": [None, "mortgage"]}
    assert rows[1].changes == {"status": ["new", "converted"]}
    assert rows[3].changes["status"] == ["open", "won"] and rows[3].record_id == str(deal.id)


def test_branch_rule_for_leads() -> None:
    see = leads.may_see
    assert see(Role.ADMIN, 1, None, None, 5)
    assert see(Role.SUPERVISOR, 1, 5, None, 5) and not see(Role.SUPERVISOR, 1, 6, None, 5)
    assert see(Role.AGENT, 1, 6, 1, 5)  # their own lead in another branch
    assert not see(Role.AGENT, 1, 6, 2, 5) and see(Role.AGENT, 1, 6, 2, None)
    assert not see(Role.MARKETER, 1, 5, None, 5)


async def test_the_inbox_first_reply_stamps_the_new_customers_lead(sessions: Sessions, world: World) -> None:
    bus = InMemoryBus()
    await bus.start()
    inbox = Inbox(sessions, bus)
    try:
        got = await inbox.ingest(
            InboundMessage(
                channel=Channel.WEBCHAT, account_id="site", external_id="m-1", sender_id="v-1", body="Credit?"
            )
        )
        async with sessions() as db:
            lead_id = await db.scalar(select(Lead.id).join(Contact).where(Contact.id != world.contact))
        before = utcnow()
        await inbox.send(Viewer(world.agent, Role.AGENT, None), got.conversation_id, "Bună ziua!", note=False)
        async with sessions() as db:
            assert lead_id is not None
            lead = await leads.get_lead(db, lead_id)
    finally:
        await inbox.close()
        await bus.close()
    assert lead is not None and lead.first_response_at is not None and lead.first_response_at >= before
