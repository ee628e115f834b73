"""The real CRM adapter against the database: captured values land in a real lead and contact with the
right types (amount Decimal, term int, birth date a date, a custom money field), audited by crm_core; the
demo script validates, publishes and runs from greeting to the next step, objections loop included."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import classifiers, custom_fields, funnel, leads
from crm_core.models import Contact, Lead
from crm_core.tasks_model import Task
from inbox.models import Conversation
from scripts_engine.demo import demo_draft
from scripts_engine.service import ScriptsService, VersionState
from switchboard.audit import Actor
from switchboard.audit_model import AuditEntry
from switchboard.db import transaction
from switchboard.errors import Invalid
from switchboard.scripts_crm import CrmAdapter, seed_demo_script
from tests.conftest import MakeUser
from tests.scripts_engine.fakes import draft

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class World:
    actor: Actor
    contact: int
    lead: int
    conversation: int


@pytest.fixture
async def world(sessions: Sessions, make_user: MakeUser) -> World:
    person = await make_user("agent", username="victor")
    async with transaction(sessions) as db:
        await classifiers.seed_defaults(db)
        await funnel.default_pipeline(db)
        await custom_fields.create_definition(
            db,
            Actor(None, "system"),
            "lead",
            custom_fields.FieldInput("income", "Venit", custom_fields.FieldKind.MONEY),
        )
        maria = Contact(first_name="Maria", last_name="Rusu", phone="+37369000001", consents={"phone": False})
        db.add(maria)
        await db.flush()
        lead = Lead(contact_id=maria.id, source_channel="viber")
        conversation = Conversation(contact_id=maria.id, last_inbound_channel="viber")
        db.add_all([lead, conversation])
        await db.flush()
        return World(Actor(person.id, person.username), maria.id, lead.id, conversation.id)


CAPTURING = draft(
    {"id": "hello", "kind": "ask", "answer": {"type": "money"}, "next": "c_amount"},
    {
        "id": "c_amount",
        "kind": "capture",
        "entity": "lead",
        "field": "amount",
        "answer": "hello",
        "next": "term",
    },
    {"id": "term", "kind": "ask", "answer": {"type": "number", "integer": True}, "next": "c_term"},
    {
        "id": "c_term",
        "kind": "capture",
        "entity": "lead",
        "field": "term_months",
        "answer": "term",
        "next": "income",
    },
    {"id": "income", "kind": "ask", "answer": {"type": "money"}, "next": "c_income"},
    {
        "id": "c_income",
        "kind": "capture",
        "entity": "lead",
        "field": "custom.income",
        "answer": "income",
        "next": "born",
    },
    {"id": "born", "kind": "ask", "answer": {"type": "date"}, "next": "c_born"},
    {
        "id": "c_born",
        "kind": "capture",
        "entity": "contact",
        "field": "birth_date",
        "answer": "born",
        "next": "idnp",
    },
    {"id": "idnp", "kind": "ask", "answer": {"type": "text"}, "next": "c_idnp"},
    {
        "id": "c_idnp",
        "kind": "capture",
        "entity": "contact",
        "field": "idnp",
        "answer": "idnp",
        "next": "c_consent",
    },
    {
        "id": "c_consent",
        "kind": "capture",
        "entity": "contact",
        "field": "consent.sms",
        "value": True,
        "next": "done",
    },
    {"id": "done", "kind": "end", "outcome": "success", "text": "Mulțumesc, {{ contact.first_name }}!"},
)


async def test_captured_values_reach_the_lead_and_contact_with_the_right_types(
    sessions: Sessions, world: World
) -> None:
    service = ScriptsService(CrmAdapter())
    async with transaction(sessions) as db:
        version = await service.save_draft(db, world.actor, CAPTURING)
        version = await service.publish(db, world.actor, version.id)
        run = await service.start(db, world.actor, version.id, conversation_id=world.conversation)
    assert run.run_id and run.step_id == "hello"
    answers = [("hello", "50 000"), ("term", "24"), ("income", "12500,5"), ("born", "23.04.1985")]
    async with transaction(sessions) as db:
        for step, value in answers:
            await service.answer(db, world.actor, run.run_id, step, value)
    with pytest.raises(Invalid) as caught:  # crm_core checks the IDNP's check digit: the answer is refused
        async with transaction(sessions) as db:
            await service.answer(db, world.actor, run.run_id, "idnp", "2000000000005")
    assert caught.value.field == "answer" and "IDNP" in caught.value.message
    async with transaction(sessions) as db:
        end = await service.answer(db, world.actor, run.run_id, "idnp", "2000000000004")
    assert (end.status.value, end.outcome, end.text) == ("ended", "success", "Mulțumesc, Maria!")
    async with sessions() as db:
        lead = await leads.get_lead(db, world.lead)
        contact = await db.get(Contact, world.contact)
        audited = list(
            await db.scalars(select(AuditEntry.module).where(AuditEntry.record_type.in_(("lead", "contact"))))
        )
    assert lead is not None and contact is not None
    assert lead.amount == Decimal("50000.00") and isinstance(lead.amount, Decimal)
    assert lead.term_months == 24 and type(lead.term_months) is int
    assert lead.custom == {"income": "12500.50"}  # a custom money field stores its exact decimal text
    assert contact.birth_date == dt.date(1985, 4, 23) and contact.idnp == "2000000000004"
    assert contact.consents["sms"] is True and contact.consents["phone"] is False
    assert contact.phone == "+37369000001" and contact.first_name == "Maria"  # the rest of the profile stays
    assert audited.count("leads") == 3 and audited.count("contacts") == 3


async def test_the_demo_script_validates_publishes_and_runs(sessions: Sessions, world: World) -> None:
    service = ScriptsService(CrmAdapter())
    async with transaction(sessions) as db:
        assert await service.check(db, demo_draft()) == []
        version_id = await seed_demo_script(db, world.actor)
        assert await seed_demo_script(db, world.actor) == version_id  # a second demo start changes nothing
        version = await service.get_version(db, version_id)
        assert version.state is VersionState.PUBLISHED and version.key == "credit_consultation"
        deal = await funnel.convert_lead(db, world.lead, by_user_id=world.actor.user_id)
        (suggested,) = await service.suggest_for(db, conversation_id=world.conversation)
        assert suggested.version_id == version_id
        view = await service.start(db, world.actor, version_id, conversation_id=world.conversation)
        assert view.text.startswith("Bună ziua, Maria! Mă numesc Victor") and view.step_id == "greeting"
        path = [
            ("greeting", None),
            ("need", "car"),
            ("amount", "80000"),
            ("term", "36"),
            ("income", "9000"),
            ("idnp", "1008600038413"),
            ("birth_date", "1990-02-01"),
            ("consent", "yes"),
            ("offer", None),
            ("offer_reaction", "expensive"),
            ("objection_price", None),
            ("offer_reaction", "accept"),
            ("next_step", "online"),
        ]
        for step, value in path:
            assert view.step_id == step
            view = await service.answer(db, world.actor, view.run_id, step, value)
        assert (view.status.value, view.step_id, view.outcome) == ("ended", "end_success", "success")
        steps = [s.step_id for s in await service.run_steps(db, view.run_id)]
        lead = await leads.get_lead(db, world.lead)
        moved = await funnel.get_deal(db, deal.id)
        task = await db.scalar(select(Task).where(Task.lead_id == world.lead))
    assert steps.count("offer_reaction") == 2 and steps[-3:] == [
        "move_documents",
        "task_documents",
        "end_success",
    ]
    assert lead is not None and (lead.product, lead.amount, lead.term_months) == (
        "car_loan",
        Decimal("80000.00"),
        36,
    )
    assert lead.custom == {"income": "9000.00"}
    assert moved is not None and moved.stage_name == "Documents"
    assert (
        task is not None and task.title == "Verifică actele trimise: Maria Rusu" and task.kind == "follow_up"
    )


async def test_the_catalog_lists_core_and_custom_fields_with_their_kinds(
    sessions: Sessions, world: World
) -> None:
    async with sessions() as db:
        catalog = await CrmAdapter().catalog(db)
    kinds = {(e, n): f.kind.value for e, fields in catalog.fields.items() for n, f in fields.items()}
    assert kinds[("lead", "amount")] == "money" and kinds[("lead", "term_months")] == "integer"
    assert kinds[("lead", "custom.income")] == "money" and kinds[("contact", "birth_date")] == "date"
    assert "car_loan" in catalog.fields["lead"]["product"].options
    assert {"Documents", "Won"} <= catalog.stages and "callback" in catalog.task_kinds
