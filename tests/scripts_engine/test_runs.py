"""Running scripts on the fake CRM: versions stay as they were published and runs keep theirs, answers are
typed and move the run through automatic steps, captures land with the right types, back / leave /
concurrent double clicks, actions and hand-overs, and which script is suggested."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scripts_engine.service import ScriptProblems, ScriptsService, SuggestContext, VersionState
from scripts_engine.tables import RunRow, RunStepRow
from switchboard.audit import Actor
from switchboard.audit_model import AuditEntry
from switchboard.db import transaction
from switchboard.errors import Conflict, Invalid
from tests.conftest import MakeUser
from tests.scripts_engine.fakes import FakeCrm, draft, simple

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def crm() -> FakeCrm:
    return FakeCrm()


@pytest.fixture
def service(crm: FakeCrm) -> ScriptsService:
    return ScriptsService(crm)


@pytest.fixture
async def agent(make_user: MakeUser) -> Actor:
    person = await make_user("agent", username="elena")
    return Actor(person.id, person.username)


async def _published(sessions: Sessions, service: ScriptsService, actor: Actor, d=None) -> int:
    async with transaction(sessions) as db:
        version = await service.save_draft(db, actor, d or simple())
        return (await service.publish(db, actor, version.id)).id


async def test_publishing_freezes_a_version_and_editing_makes_the_next_one(
    sessions: Sessions, service: ScriptsService, agent: Actor
) -> None:
    v1 = await _published(sessions, service, agent)
    async with transaction(sessions) as db:
        with pytest.raises(Conflict):
            await service.publish(db, agent, v1)  # published already
        v2 = await service.save_draft(db, agent, simple(greeting="Salut!"))
        assert (v2.number, v2.state) == (2, VersionState.DRAFT)
        again = await service.save_draft(db, agent, simple(greeting="Salut din nou!"))
        assert again.id == v2.id  # the open draft is replaced, not multiplied
        assert (await service.get_version(db, v1)).draft == simple()  # the published one is untouched
        await service.publish(db, agent, v2.id)
        assert (await service.get_version(db, v1)).state is VersionState.ARCHIVED
        (summary,) = await service.list_scripts(db)
        assert summary.published is not None and summary.published.id == v2.id and summary.draft is None
        entries = await db.scalars(select(AuditEntry.detail).where(AuditEntry.module == "scripts"))
        assert any("v2 published, v1 archived" in (d or "") for d in entries)


async def test_a_script_with_problems_is_not_published(
    sessions: Sessions, service: ScriptsService, agent: Actor
) -> None:
    broken = draft({"id": "hello", "kind": "say", "next": "ghost"})
    async with transaction(sessions) as db:
        version = await service.save_draft(db, agent, broken)
        with pytest.raises(ScriptProblems) as caught:
            await service.publish(db, agent, version.id)
    codes = {(p.code, p.step_id) for p in caught.value.problems}
    assert ("dangling_edge", "hello") in codes and ("no_end_reachable", "hello") in codes


async def test_a_run_on_an_old_version_keeps_working_after_a_new_version_is_published(
    sessions: Sessions, service: ScriptsService, crm: FakeCrm, agent: Actor
) -> None:
    v1 = await _published(sessions, service, agent)
    async with transaction(sessions) as db:
        run = await service.start(db, agent, v1, conversation_id=7)
    assert (run.step_id, run.text, run.version_number) == ("hello", "Bună ziua, Ion!", 1)
    v2_draft = draft(
        {"id": "hello", "kind": "say", "text": "Versiunea doi", "next": "done"},
        {"id": "done", "kind": "end", "outcome": "callback"},
    )
    v2 = await _published(sessions, service, agent, v2_draft)
    async with transaction(sessions) as db:
        view = await service.answer(db, agent, run.run_id, "hello", None)
        assert (view.step_id, view.answer_type, view.version_id) == ("amount", "money", v1)
        view = await service.answer(db, agent, run.run_id, "amount", "12 500,50")
        assert (view.status.value, view.step_id, view.outcome, view.text) == (
            "ended",
            "yes",
            "success",
            "Mulțumesc!",
        )
        fresh = await service.start(db, agent, v2, conversation_id=8)
        assert (fresh.version_number, fresh.text) == (2, "Versiunea doi")
    assert crm.lead["amount"] == Decimal("12500.50")
    assert crm.writes == [("lead", 10, "amount", Decimal("12500.50"))]


async def test_answers_are_typed_and_a_wrong_one_leaves_the_run_where_it_was(
    sessions: Sessions, service: ScriptsService, crm: FakeCrm, agent: Actor
) -> None:
    steps = [
        {
            "id": "hello",
            "kind": "ask",
            "answer": {"type": "number", "integer": True, "min": "1", "max": "360"},
            "next": "c1",
        },
        {
            "id": "c1",
            "kind": "capture",
            "entity": "lead",
            "field": "term_months",
            "answer": "hello",
            "next": "born",
        },
        {"id": "born", "kind": "ask", "answer": {"type": "date"}, "next": "c2"},
        {
            "id": "c2",
            "kind": "capture",
            "entity": "contact",
            "field": "birth_date",
            "answer": "born",
            "next": "ok",
        },
        {
            "id": "ok",
            "kind": "ask",
            "answer": {
                "type": "choice",
                "options": [{"value": "y", "label": "Da"}, {"value": "n", "label": "Nu"}],
            },
            "next": "c3",
        },
        {
            "id": "c3",
            "kind": "capture",
            "entity": "contact",
            "field": "consent.phone",
            "answer": "ok",
            "map": {"y": True, "n": False},
            "next": "phone",
        },
        {"id": "phone", "kind": "ask", "answer": {"type": "phone"}, "next": "done"},
        {"id": "done", "kind": "end", "outcome": "success"},
    ]
    version = await _published(sessions, service, agent, draft(*steps))
    async with transaction(sessions) as db:
        run = await service.start(db, agent, version)
    for step, bad in (("hello", "12.5"), ("hello", "0"), ("hello", "abc"), ("hello", "")):
        with pytest.raises(Invalid) as caught:
            async with transaction(sessions) as db:
                await service.answer(db, agent, run.run_id, step, bad)
        assert caught.value.field == "answer"
    async with transaction(sessions) as db:
        assert (await service.current(db, run.run_id)).step_id == "hello"
        await service.answer(db, agent, run.run_id, "hello", "24")
        await service.answer(db, agent, run.run_id, "born", "23.04.1985")
        view = await service.answer(db, agent, run.run_id, "ok", "da")  # a label is understood too
        assert view.step_id == "phone"
        view = await service.answer(db, agent, run.run_id, "phone", "069 123 456")
    assert view.answers == {"hello": 24, "born": "1985-04-23", "ok": "y", "phone": "+37369123456"}
    assert crm.lead["term_months"] == 24 and type(crm.lead["term_months"]) is int
    assert str(crm.contact["birth_date"]) == "1985-04-23" and crm.contact["consent.phone"] is True


async def test_a_value_the_crm_refuses_refuses_the_answer(
    sessions: Sessions, service: ScriptsService, crm: FakeCrm, agent: Actor
) -> None:
    crm.refuse.add("amount")
    version = await _published(sessions, service, agent)
    async with transaction(sessions) as db:
        run = await service.start(db, agent, version)
        await service.answer(db, agent, run.run_id, "hello", None)
    with pytest.raises(Invalid) as caught:
        async with transaction(sessions) as db:
            await service.answer(db, agent, run.run_id, "amount", "5000")
    assert caught.value.field == "answer" and "IDNP" in caught.value.message
    async with transaction(sessions) as db:
        assert (await service.current(db, run.run_id)).step_id == "amount"


async def test_back_and_leave_are_recorded_with_their_times(
    sessions: Sessions, service: ScriptsService, agent: Actor
) -> None:
    version = await _published(sessions, service, agent)
    async with transaction(sessions) as db:
        run = await service.start(db, agent, version, conversation_id=7)
        assert not run.can_go_back
        with pytest.raises(Conflict):
            await service.back(db, agent, run.run_id, "hello")
        view = await service.answer(db, agent, run.run_id, "hello", None)
        assert view.can_go_back
        view = await service.back(db, agent, run.run_id, "amount")
        assert (view.step_id, view.can_go_back) == ("hello", False)
        await service.answer(db, agent, run.run_id, "hello", None)
        left = await service.leave(db, agent, run.run_id, "  clientul   a închis  ")
        assert (left.status.value, left.reason) == ("left", "clientul a închis")
        with pytest.raises(Conflict):
            await service.answer(db, agent, run.run_id, "amount", "100")
        steps = await service.run_steps(db, run.run_id)
    assert [(s.step_id, s.edge) for s in steps] == [
        ("hello", "amount"),
        ("amount", "back"),
        ("hello", "amount"),
        ("amount", "leave"),
    ]
    assert all(s.left_at is not None and s.left_at >= s.entered_at for s in steps)


async def test_two_clicks_at_once_advance_the_run_once(
    sessions: Sessions, service: ScriptsService, agent: Actor
) -> None:
    version = await _published(sessions, service, agent)
    async with transaction(sessions) as db:
        run = await service.start(db, agent, version)

    async def click() -> str:
        try:
            async with transaction(sessions) as db:
                return (await service.answer(db, agent, run.run_id, "hello", None)).step_id or ""
        except Conflict:
            return "conflict"

    results = sorted(await asyncio.gather(click(), click()))
    assert results == ["amount", "conflict"]
    async with sessions() as db:
        rows = list(await db.scalars(select(RunStepRow.step_id).where(RunStepRow.run_id == run.run_id)))
    assert rows == ["hello", "amount"]


async def test_starting_another_script_in_the_same_conversation_leaves_the_first(
    sessions: Sessions, service: ScriptsService, agent: Actor
) -> None:
    version = await _published(sessions, service, agent)
    async with transaction(sessions) as db:
        first = await service.start(db, agent, version, conversation_id=7)
        second = await service.start(db, agent, version, conversation_id=7)
        assert (await service.current(db, first.run_id)).status.value == "left"
        active = await service.active_run(db, conversation_id=7)
        assert active is not None and active.run_id == second.run_id


async def test_actions_run_and_a_hand_over_continues_in_the_other_script(
    sessions: Sessions, service: ScriptsService, crm: FakeCrm, agent: Actor
) -> None:
    other = draft(
        {"id": "hello", "kind": "ask", "text": "Alt script", "answer": {"type": "text"}, "next": "done"},
        {"id": "done", "kind": "end", "outcome": "success"},
        key="other",
    )
    await _published(sessions, service, agent, other)
    main = draft(
        {"id": "hello", "kind": "say", "next": "task"},
        {
            "id": "task",
            "kind": "action",
            "next": "move",
            "do": {
                "type": "create_task",
                "title": "Sună-l pe {{ contact.first_name }}",
                "task_kind": "callback",
                "due_in_hours": 2,
            },
        },
        {"id": "move", "kind": "action", "do": {"type": "move_deal", "stage": "Documents"}, "next": "send"},
        {
            "id": "send",
            "kind": "action",
            "do": {"type": "send_template", "template": "hello"},
            "next": "pass",
        },
        {"id": "pass", "kind": "action", "do": {"type": "handover", "script": "other"}},
    )
    version = await _published(sessions, service, agent, main)
    async with transaction(sessions) as db:
        run = await service.start(db, agent, version, conversation_id=7)
        view = await service.answer(db, agent, run.run_id, "hello", None)
        old = await service.current(db, run.run_id)
    assert (view.script_key, view.step_id, view.text) == ("other", "hello", "Alt script")
    assert view.outbox == ["Bună, Ion!"] and view.run_id != run.run_id
    assert (old.status.value, old.outcome, old.handover_run_id) == ("ended", "handover", view.run_id)
    (task,) = crm.tasks
    assert (task.title, task.kind, task.assignee_id, task.conversation_id) == (
        "Sună-l pe Ion",
        "callback",
        agent.user_id,
        7,
    )
    assert crm.moves == [(100, "Documents")]


async def test_the_best_matching_published_script_is_suggested_first(
    sessions: Sessions, service: ScriptsService, agent: Actor
) -> None:
    await _published(sessions, service, agent, simple("general"))
    await _published(
        sessions, service, agent, simple("phone_ro", applies={"channels": ["phone"], "languages": ["ro"]})
    )
    await _published(sessions, service, agent, simple("phone", applies={"channels": ["phone"]}))
    await _published(
        sessions, service, agent, simple("vip", applies={"segments": ["vip"], "channels": ["telegram"]})
    )
    async with sessions() as db:
        found = await service.suggest(db, SuggestContext(channel="phone", language="ro"))
        assert [s.key for s in found] == ["phone_ro", "phone", "general"]
        found = await service.suggest(db, SuggestContext(channel="telegram", segments=("VIP", "x")))
        assert [s.key for s in found] == ["vip", "general"]
        found = await service.suggest_for(db, conversation_id=7)  # the fake says telegram, no tags
        assert [s.key for s in found] == ["general"]


async def test_a_draft_cannot_be_started(sessions: Sessions, service: ScriptsService, agent: Actor) -> None:
    async with transaction(sessions) as db:
        version = await service.save_draft(db, agent, simple())
        with pytest.raises(Conflict):
            await service.start(db, agent, version.id)
        assert await db.scalar(select(RunRow.id)) is None
