"""YAML export → import → export is byte-identical and model-equal; hostile files are refused readably."""

from __future__ import annotations

import pytest

from scripts_engine.demo import demo_draft
from scripts_engine.yaml_io import MAX_BYTES, from_yaml, to_yaml
from switchboard.errors import Invalid, TooLarge
from tests.scripts_engine.fakes import draft, simple


def _rich():
    return draft(
        {
            "id": "hello",
            "kind": "say",
            "title": "Salut",
            "text": "Bună, {{ contact.first_name }}!\nCe faceți?",
            "next": "q",
        },
        {
            "id": "q",
            "kind": "ask",
            "answer": {
                "type": "choice",
                "options": [
                    {"value": "yes", "label": "Da", "next": "b"},
                    {"value": "no", "label": "Nu „nu”"},
                ],
            },
            "next": "c",
        },
        {
            "id": "b",
            "kind": "branch",
            "rules": [
                {
                    "when": {
                        "all": [
                            {"field": "lead.amount", "op": "gte", "value": 1500.5},
                            {"any": [{"field": "contact.tags", "op": "contains", "value": "vip"}]},
                            {"field": "lead.product", "op": "in", "value": ["mortgage", "consumer"]},
                            {"field": "contact.consent.phone", "op": "eq", "value": True},
                        ]
                    },
                    "next": "c",
                }
            ],
            "default": "c",
        },
        {
            "id": "c",
            "kind": "capture",
            "entity": "contact",
            "field": "consent.phone",
            "answer": "q",
            "map": {"yes": True, "no": False},
            "next": "t",
        },
        {
            "id": "t",
            "kind": "action",
            "do": {"type": "create_task", "title": "Sună", "task_kind": "callback", "due_in_hours": 24},
            "next": "end",
        },
        {"id": "end", "kind": "end", "outcome": "refusal", "reason": "no"},
        applies={"channels": ["phone"], "segments": ["vip"], "languages": ["ro"]},
        description="Linia 1\nLinia 2",
    )


@pytest.mark.parametrize("make", [simple, _rich, demo_draft])
def test_the_yaml_round_trip_is_lossless(make) -> None:
    original = make()
    text = to_yaml(original)
    again = from_yaml(text)
    assert again == original
    assert to_yaml(again) == text
    assert from_yaml(text.encode()) == original


def test_the_export_is_readable_text_with_defaults_left_out() -> None:
    text = to_yaml(simple())
    assert text.startswith("key: sales\nname: Sales\n")
    assert "Bună ziua, {{ contact.first_name }}!" in text  # no \u escapes
    assert "title: ''" not in text and "options: []" not in text


def test_an_alias_bomb_is_refused() -> None:
    bomb = (
        'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b]\n'
    )
    with pytest.raises(Invalid) as caught:
        from_yaml(bomb)
    assert "aliases" in str(caught.value.params["error"])


def test_a_huge_file_is_refused() -> None:
    with pytest.raises(TooLarge):
        from_yaml("key: x\nname: y\ndescription: '" + "a" * MAX_BYTES + "'\n")
    with pytest.raises(TooLarge):
        from_yaml(b"#" * (MAX_BYTES + 1))


def test_deep_nesting_python_tags_and_bad_syntax_are_refused() -> None:
    with pytest.raises(Invalid):
        from_yaml("[" * 5000 + "]" * 5000)
    with pytest.raises(Invalid):
        from_yaml("key: !!python/object/apply:os.system ['true']\nname: x\n")
    with pytest.raises(Invalid) as caught:
        from_yaml("key: x\n  name: : y\n")
    assert caught.value.params["line"] >= 1


def test_wrong_types_and_unknown_keys_are_refused_with_their_path() -> None:
    with pytest.raises(Invalid) as caught:
        from_yaml("- just\n- a list\n")
    assert caught.value.message.startswith("A script file holds one mapping")
    with pytest.raises(Invalid) as caught:
        from_yaml(
            "key: x\nname: y\nsteps:\n  - {id: a, kind: say, next: 5}\n  - {id: b, kind: end, outcome: x}\n"
        )
    detail = str(caught.value.params["error"])
    assert "steps.0.say.next" in detail and "steps.1.end.outcome" in detail
    with pytest.raises(Invalid) as caught:
        from_yaml("key: x\nname: y\ncolour: red\n")
    assert "colour" in str(caught.value.params["error"])
    with pytest.raises(Invalid):
        from_yaml(b"\xff\xfe not utf-8")
