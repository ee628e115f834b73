"""Validation before publishing catches each kind of broken graph, naming the step and a stable code."""

from __future__ import annotations

from typing import Any, cast

import pytest
from pydantic import ValidationError

from scripts_engine.model import ScriptDraft
from scripts_engine.ports import Catalog
from scripts_engine.validation import MESSAGES, Problem, validate
from tests.scripts_engine.fakes import FakeCrm, draft, simple

END = {"id": "done", "kind": "end", "outcome": "success"}


async def _catalog() -> Catalog:
    return await FakeCrm().catalog(cast(Any, None))


async def _problems(d: ScriptDraft, published: dict[str, bool] | None = None) -> set[tuple[str, str | None]]:
    problems = validate(d, await _catalog(), published or {})
    for p in problems:
        assert p.code in MESSAGES and p.message  # every code has its readable message
    return {(p.code, p.step_id) for p in problems}


def _say(step_id: str, next_: str | None = "done", **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "kind": "say", "text": "…", "next": next_, **extra}


async def test_a_sound_script_has_no_problems() -> None:
    assert await _problems(simple()) == set()


async def test_an_empty_script_and_a_missing_start_are_reported() -> None:
    assert await _problems(draft(start=None)) == {("empty_script", None)}
    assert ("missing_start", None) in await _problems(draft(_say("hello"), END, start="nowhere"))
    assert ("missing_start", None) in await _problems(draft(_say("hello"), END, start=None))


async def test_duplicate_step_ids_are_reported() -> None:
    assert ("duplicate_step", "hello") in await _problems(draft(_say("hello"), _say("hello"), END))


async def test_a_dangling_edge_and_a_missing_edge_are_reported() -> None:
    found = await _problems(draft(_say("hello", "ghost"), END))
    assert ("dangling_edge", "hello") in found
    assert ("missing_edge", "hello") in await _problems(draft(_say("hello", None), END))


async def test_an_unreachable_step_is_reported() -> None:
    found = await _problems(draft(_say("hello"), _say("island"), END))
    assert found == {("unreachable_step", "island")}


async def test_a_path_that_never_reaches_an_end_is_reported() -> None:
    # a loop with no exit: hello → again → hello; the end exists but nothing leads to it
    found = await _problems(draft(_say("hello", "again"), _say("again", "hello"), END))
    assert {("no_end_reachable", "hello"), ("no_end_reachable", "again")} <= found


async def test_a_loop_that_can_exit_is_allowed() -> None:
    ask = {
        "id": "again",
        "kind": "ask",
        "answer": {"type": "choice", "options": [{"value": "more", "label": "More", "next": "hello"}]},
        "next": "done",
    }
    assert await _problems(draft(_say("hello", "again"), ask, END)) == set()


async def test_a_loop_of_automatic_steps_only_is_reported() -> None:
    spin = {
        "id": "spin",
        "kind": "branch",
        "rules": [{"when": {"field": "lead.amount", "op": "empty"}, "next": "spin"}],
        "default": "done",
    }
    assert ("auto_loop", "spin") in await _problems(draft(_say("hello", "spin"), spin, END))


async def test_asks_without_an_answer_type_or_options_are_reported() -> None:
    found = await _problems(
        draft(
            _say("hello", "q1"),
            {"id": "q1", "kind": "ask", "text": "?", "next": "q2"},
            {"id": "q2", "kind": "ask", "text": "?", "answer": {"type": "choice"}, "next": "q3"},
            {
                "id": "q3",
                "kind": "ask",
                "answer": {
                    "type": "money",
                    "min": "10",
                    "max": "1",
                    "options": [{"value": "a", "label": "A"}],
                },
                "next": "q4",
            },
            {
                "id": "q4",
                "kind": "ask",
                "answer": {
                    "type": "choice",
                    "options": [{"value": "a", "label": "A"}, {"value": "a", "label": "B"}],
                },
                "next": "done",
            },
            END,
        )
    )
    assert {
        ("ask_without_answer", "q1"),
        ("ask_without_options", "q2"),
        ("bad_bounds", "q3"),
        ("options_without_choice", "q3"),
        ("duplicate_option", "q4"),
    } <= found


async def test_branch_problems_are_reported() -> None:
    pick = {
        "id": "pick",
        "kind": "ask",
        "answer": {"type": "choice", "options": [{"value": "yes", "label": "Da"}]},
        "next": "b1",
    }
    no_default = {
        "id": "b1",
        "kind": "branch",
        "rules": [{"when": {"field": "lead.amount", "op": "empty"}, "next": "b2"}],
    }
    unknown = {
        "id": "b2",
        "kind": "branch",
        "rules": [
            {
                "when": {"field": "answer.hello", "op": "eq", "value": "x"},
                "next": "done",
            },  # a say, not a question
            {"when": {"field": "answer.pick", "op": "eq", "value": "maybe"}, "next": "done"},  # not an option
            {"when": {"field": "lead.salary", "op": "gt", "value": 1}, "next": "done"},  # no such field
            {"when": {"all": [{"field": "lead.amount", "op": "gt"}]}, "next": "done"},  # gt needs a value
        ],
        "default": "done",
    }
    found = await _problems(draft(_say("hello", "pick"), pick, no_default, unknown, END))
    assert {
        ("branch_without_default", "b1"),
        ("branch_unknown_answer", "b2"),
        ("branch_unknown_option", "b2"),
        ("branch_unknown_field", "b2"),
        ("bad_condition", "b2"),
    } <= found


async def test_branch_may_read_read_only_fields_and_answers() -> None:
    ok = {
        "id": "b",
        "kind": "branch",
        "rules": [
            {"when": {"any": [{"field": "deal.stage", "op": "eq", "value": "Documents"}]}, "next": "done"}
        ],
        "default": "done",
    }
    assert await _problems(draft(_say("hello", "b"), ok, END)) == set()


async def test_capture_into_a_missing_field_or_with_a_type_mismatch_is_reported() -> None:
    steps = [
        _say("hello", "name"),
        {"id": "name", "kind": "ask", "answer": {"type": "text"}, "next": "c1"},
        {"id": "c1", "kind": "capture", "entity": "lead", "field": "salary", "answer": "name", "next": "c2"},
        # a text answer into a money field
        {"id": "c2", "kind": "capture", "entity": "lead", "field": "amount", "answer": "name", "next": "c3"},
        # a number that may have decimals into whole months
        {"id": "term", "kind": "ask", "answer": {"type": "number"}, "next": "c4"},
        {
            "id": "c3",
            "kind": "capture",
            "entity": "lead",
            "field": "term_months",
            "value": "twelve",
            "next": "term",
        },
        {
            "id": "c4",
            "kind": "capture",
            "entity": "lead",
            "field": "term_months",
            "answer": "term",
            "next": "c5",
        },
        {
            "id": "c5",
            "kind": "capture",
            "entity": "lead",
            "field": "amount",
            "next": "c6",
        },  # nothing to write
        {"id": "c6", "kind": "capture", "entity": "lead", "field": "amount", "answer": "ghost", "next": "c7"},
        {
            "id": "yes_no",
            "kind": "ask",
            "answer": {
                "type": "choice",
                "options": [{"value": "y", "label": "Da"}, {"value": "n", "label": "Nu"}],
            },
            "next": "c8",
        },
        {
            "id": "c7",
            "kind": "capture",
            "entity": "lead",
            "field": "product",
            "answer": "yes_no",
            "next": "yes_no",
        },
        {
            "id": "c8",
            "kind": "capture",
            "entity": "contact",
            "field": "consent.phone",
            "answer": "yes_no",
            "map": {"y": True},
            "next": "done",
        },
        END,
    ]
    found = await _problems(draft(*steps))
    assert {
        ("capture_unknown_field", "c1"),
        ("capture_type_mismatch", "c2"),
        ("capture_type_mismatch", "c3"),
        ("capture_type_mismatch", "c4"),
        ("capture_without_value", "c5"),
        ("capture_unknown_answer", "c6"),
        ("capture_type_mismatch", "c7"),  # y / n are not product codes
        ("capture_bad_map", "c8"),  # n has no value
    } <= found
    mismatch = next(
        p
        for p in validate(draft(*steps), await _catalog())
        if p.step_id == "c2" and p.code == "capture_type_mismatch"
    )
    assert dict(mismatch.params) == {"answer": "text", "name": "amount", "kind": "money"}


async def test_a_whole_number_answer_fits_months_and_a_mapped_choice_fits_a_boolean() -> None:
    steps = [
        _say("hello", "term"),
        {"id": "term", "kind": "ask", "answer": {"type": "number", "integer": True}, "next": "c1"},
        {
            "id": "c1",
            "kind": "capture",
            "entity": "lead",
            "field": "term_months",
            "answer": "term",
            "next": "ok",
        },
        {
            "id": "ok",
            "kind": "ask",
            "answer": {
                "type": "choice",
                "options": [{"value": "y", "label": "Da"}, {"value": "n", "label": "Nu"}],
            },
            "next": "c2",
        },
        {
            "id": "c2",
            "kind": "capture",
            "entity": "contact",
            "field": "consent.phone",
            "answer": "ok",
            "map": {"y": True, "n": False},
            "next": "done",
        },
        END,
    ]
    assert await _problems(draft(*steps)) == set()


async def test_actions_naming_unknown_things_and_bad_hand_overs_are_reported() -> None:
    steps = [
        _say("hello", "a1"),
        {"id": "a1", "kind": "action", "do": {"type": "move_deal", "stage": "Heaven"}, "next": "a2"},
        {"id": "a2", "kind": "action", "do": {"type": "send_template", "template": "nope"}, "next": "a3"},
        {
            "id": "a3",
            "kind": "action",
            "do": {"type": "create_task", "title": "x", "task_kind": "party"},
            "next": "a4",
        },
        {
            "id": "a4",
            "kind": "ask",
            "answer": {
                "type": "choice",
                "options": [
                    {"value": "a", "label": "A", "next": "h1"},
                    {"value": "b", "label": "B", "next": "h2"},
                    {"value": "c", "label": "C", "next": "h3"},
                    {"value": "d", "label": "D", "next": "done"},
                ],
            },
        },
        {"id": "h1", "kind": "action", "do": {"type": "handover", "script": "sales"}},
        {"id": "h2", "kind": "action", "do": {"type": "handover", "script": "nobody"}},
        {"id": "h3", "kind": "action", "do": {"type": "handover", "script": "drafty"}},
        END,
    ]
    found = await _problems(draft(*steps), {"drafty": False, "other": True})
    assert {
        ("unknown_stage", "a1"),
        ("unknown_template", "a2"),
        ("unknown_task_kind", "a3"),
        ("handover_self", "h1"),
        ("handover_unknown_script", "h2"),
        ("handover_not_published", "h3"),
    } <= found
    assert not any(code in ("missing_edge", "no_end_reachable") for code, _ in found)  # a hand-over ends


async def test_template_syntax_errors_and_refusals_without_reason_are_reported() -> None:
    found = await _problems(
        draft(
            _say("hello", "done", text="Bună {{ contact.first_name "),
            {"id": "done", "kind": "end", "outcome": "refusal", "text": "{% if %}"},
        )
    )
    assert {
        ("template_syntax", "hello"),
        ("template_syntax", "done"),
        ("refusal_without_reason", "done"),
    } <= found
    problem = next(p for p in validate(draft(_say("hello", text="{{ x "), END), await _catalog()))
    assert (
        problem == Problem("template_syntax", "hello", "text", problem.params) and problem.params["line"] == 1
    )


def test_the_model_refuses_wrong_shapes_before_validation() -> None:
    with pytest.raises(ValidationError):
        draft({"id": "Hello World", "kind": "say"})  # not a step id
    with pytest.raises(ValidationError):
        draft({"id": "hello", "kind": "sing"})  # no such kind
    with pytest.raises(ValidationError):
        draft({"id": "hello", "kind": "say", "colour": "red"})  # unknown key
    with pytest.raises(ValidationError):
        draft(
            {
                "id": "b",
                "kind": "branch",
                "rules": [{"when": {"field": "lead.amount", "op": "eq", "any": []}, "next": "b"}],
            }
        )  # a comparison and an any at once
