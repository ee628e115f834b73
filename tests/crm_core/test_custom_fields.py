"""`crm_core.custom_fields`: definitions an admin makes, and the values every write path stores through
`validate` — parsed from JSON, form text or a spreadsheet cell, refused with the field named."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import custom_fields as cf
from switchboard.audit import Actor
from switchboard.audit_model import AuditEntry
from switchboard.errors import Conflict, Invalid

ADMIN = Actor(user_id=None, username="root")


def _field(kind: cf.FieldKind, key: str = "f", *, required: bool = False, active: bool = True) -> cf.FieldDef:
    options = (cf.Option("auto", "Auto loan"), cf.Option("home", "Mortgage"))
    return cf.FieldDef(1, "lead", key, key.title(), kind, options, required, 0, active)


@pytest.mark.parametrize(
    ("kind", "raw", "stored"),
    [
        (cf.FieldKind.TEXT, "  salariat  ", "salariat"),
        (cf.FieldKind.TEXT, 42, "42"),
        (cf.FieldKind.NUMBER, "3", 3),
        (cf.FieldKind.NUMBER, "2,5", 2.5),
        (cf.FieldKind.NUMBER, 7.0, 7),
        (cf.FieldKind.MONEY, "1 250,50", "1250.50"),
        (cf.FieldKind.MONEY, "1,250.5", "1250.50"),
        (cf.FieldKind.MONEY, 99, "99.00"),
        (cf.FieldKind.DATE, "1985-04-23", "1985-04-23"),
        (cf.FieldKind.DATE, "23.04.1985", "1985-04-23"),
        (cf.FieldKind.DATE, "23/04/1985", "1985-04-23"),
        (cf.FieldKind.CHOICE, "auto", "auto"),
        (cf.FieldKind.CHOICE, "mortgage", "home"),  # a spreadsheet names the choice by its label
        (cf.FieldKind.MULTI_CHOICE, "auto; Mortgage", ["auto", "home"]),
        (cf.FieldKind.MULTI_CHOICE, ["home", "home"], ["home"]),
        (cf.FieldKind.BOOLEAN, "da", True),
        (cf.FieldKind.BOOLEAN, "nu", False),
        (cf.FieldKind.BOOLEAN, "нет", False),
        (cf.FieldKind.BOOLEAN, True, True),
        (cf.FieldKind.BOOLEAN, 1, True),
        (cf.FieldKind.TEXT, "   ", None),
        (cf.FieldKind.MULTI_CHOICE, "", None),
    ],
)
def test_a_value_is_stored_in_its_kinds_form(kind: cf.FieldKind, raw: Any, stored: Any) -> None:
    assert cf.parse_value(_field(kind), raw) == stored


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (cf.FieldKind.NUMBER, "abc"),
        (cf.FieldKind.NUMBER, True),
        (cf.FieldKind.NUMBER, "1e400"),
        (cf.FieldKind.NUMBER, "NaN"),
        (cf.FieldKind.MONEY, "-5"),
        (cf.FieldKind.DATE, "1985-02-30"),
        (cf.FieldKind.DATE, "1850-01-01"),
        (cf.FieldKind.DATE, 19850423),
        (cf.FieldKind.CHOICE, "boat"),
        (cf.FieldKind.CHOICE, ["auto"]),
        (cf.FieldKind.MULTI_CHOICE, "auto, boat"),
        (cf.FieldKind.BOOLEAN, "maybe"),
        (cf.FieldKind.BOOLEAN, 2),
        (cf.FieldKind.TEXT, {"a": 1}),
        (cf.FieldKind.TEXT, "x" * (cf.MAX_TEXT + 1)),
    ],
)
def test_a_bad_value_is_refused_naming_the_field(kind: cf.FieldKind, raw: Any) -> None:
    with pytest.raises(Invalid) as caught:
        cf.parse_value(_field(kind, "income"), raw)
    assert caught.value.field == "custom.income"


def test_validate_clears_an_absent_field_on_a_whole_form_and_keeps_it_on_a_partial_write() -> None:
    defs = [_field(cf.FieldKind.TEXT, "employer"), _field(cf.FieldKind.NUMBER, "children")]
    current = {"employer": "Moldcell", "children": 2}
    assert cf.validate(defs, {"children": "3"}, current=current) == {"children": 3}
    assert cf.validate(defs, {"children": "3"}, current=current, partial=True) == {
        "employer": "Moldcell",
        "children": 3,
    }
    assert cf.validate(defs, {"employer": ""}, current=current, partial=True) == {"children": 2}


def test_a_required_field_must_end_up_with_a_value() -> None:
    defs = [_field(cf.FieldKind.TEXT, "employer", required=True)]
    with pytest.raises(Invalid) as caught:
        cf.validate(defs, {})
    assert caught.value.field == "custom.employer"
    with pytest.raises(Invalid):
        cf.validate(defs, {"employer": " "}, current={"employer": "Orange"}, partial=True)
    assert cf.validate(defs, {}, current={"employer": "Orange"}, partial=True) == {"employer": "Orange"}


def test_an_unknown_key_is_refused_and_a_deactivated_fields_value_is_kept_unchecked() -> None:
    defs = [_field(cf.FieldKind.TEXT, "employer"), _field(cf.FieldKind.NUMBER, "old", active=False)]
    with pytest.raises(Invalid) as caught:
        cf.validate(defs, {"salary": "1"})
    assert caught.value.field == "custom.salary"
    with pytest.raises(Invalid):
        cf.validate(defs, {"old": "2"})  # no longer on any form
    assert cf.validate(defs, {"employer": "Apa-Canal"}, current={"old": "not a number"}) == {
        "old": "not a number",
        "employer": "Apa-Canal",
    }
    with pytest.raises(Invalid):
        cf.validate(defs, ["employer"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"key": "Income", "label": "Income", "kind": "number"}, "key"),
        ({"key": "income", "label": "", "kind": "number"}, "label"),
        ({"key": "income", "label": "Income", "kind": "float"}, "kind"),
        ({"key": "product", "label": "Product", "kind": "choice"}, "options"),
        ({"key": "product", "label": "Product", "kind": "choice", "options": "a = A\na = B"}, "options"),
        ({"key": "income", "label": "Income", "kind": "number", "position": "x"}, "position"),
    ],
)
def test_a_bad_definition_is_refused_naming_what_is_wrong(data: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        cf.parse_definition(data)
    assert caught.value.field == field


async def test_definitions_are_listed_in_form_order_audited_and_keep_their_key_and_kind(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as db, db.begin():
        income = await cf.create_definition(
            db,
            ADMIN,
            "lead",
            cf.parse_definition({"key": "income", "label": "Income", "kind": "money", "position": "20"}),
        )
        product = await cf.create_definition(
            db,
            ADMIN,
            "lead",
            cf.parse_definition(
                {
                    "key": "goal",
                    "label": "Goal",
                    "kind": "choice",
                    "options": "car = Car\nHouse repair",
                    "position": 10,
                }
            ),
        )
        with pytest.raises(Conflict):
            await cf.create_definition(
                db, ADMIN, "lead", cf.parse_definition({"key": "goal", "label": "G", "kind": "text"})
            )
    assert product.options == (cf.Option("car", "Car"), cf.Option("house_repair", "House repair"))
    async with sessions() as db, db.begin():
        assert [d.key for d in await cf.definitions(db, "lead")] == ["goal", "income"]
        assert await cf.definitions(db, "contact") == []
        with pytest.raises(Invalid):
            await cf.update_definition(
                db,
                ADMIN,
                income.id,
                cf.parse_definition({"key": "income", "label": "Income", "kind": "number"}),
            )
        await cf.update_definition(
            db,
            ADMIN,
            income.id,
            cf.parse_definition({"key": "income", "label": "Net income", "kind": "money", "required": "on"}),
            active=False,
        )
    async with sessions() as db:
        assert [d.key for d in await cf.definitions(db, "lead")] == ["goal"]
        every = await cf.definitions(db, "lead", include_inactive=True)
        assert {d.key: (d.label, d.required, d.active) for d in every}["income"] == (
            "Net income",
            True,
            False,
        )
        entries = list(await db.scalars(select(AuditEntry).where(AuditEntry.record_type == "custom_field")))
    assert len(entries) == 3  # two creations and one change
