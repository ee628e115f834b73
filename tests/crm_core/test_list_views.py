"""`crm_core.list_views`: every operator on core and custom fields of each kind (the same SQL on SQLite and
PostgreSQL), related facts (a lead's contact, a deal's stage), sorting and columns, the visibility rule
always ANDed in, hidden fields refused as filters and columns, hostile filters refused naming the field,
and saved views: round trip, sharing rules, the default view, audit."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import custom_fields, field_visibility, funnel, list_fields, list_views
from crm_core.custom_fields import FieldInput, FieldKind, Option
from crm_core.funnel_model import Deal, Stage
from crm_core.models import Contact, Lead
from crm_core.search import Scope
from switchboard.accounts_model import Branch, User
from switchboard.audit import SYSTEM
from switchboard.audit_model import AuditEntry
from switchboard.errors import Conflict, Invalid, NotFound
from switchboard.permissions import Role

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class World:
    tag: str  # unique to the test: custom keys end with it
    north: int
    south: int
    admin: Scope
    supervisor: Scope
    agent: Scope
    south_agent: Scope
    contacts: dict[str, int]
    leads: dict[str, int]
    deal_stage: int


def _key(world: World, name: str) -> str:
    return f"custom.{name}_{world.tag}"


@pytest.fixture
async def world(sessions: Sessions) -> World:
    tag = uuid.uuid4().hex[:6]
    async with sessions() as db, db.begin():
        north, south = Branch(name=f"North {tag}"), Branch(name=f"South {tag}")
        db.add_all([north, south])
        await db.flush()
        people = {
            name: User(username=f"{name}{tag}", role=role, branch_id=branch, password_hash="-")
            for name, role, branch in (
                ("adm", "admin", north.id),
                ("sup", "supervisor", north.id),
                ("ana", "agent", north.id),
                ("sud", "agent", south.id),
            )
        }
        db.add_all(people.values())
        await db.flush()
        kinds = {
            "num": (FieldKind.NUMBER, ()),
            "amt": (FieldKind.MONEY, ()),
            "day": (FieldKind.DATE, ()),
            "pick": (FieldKind.CHOICE, (Option("a", "Alpha"), Option("b", "Beta"))),
            "many": (FieldKind.MULTI_CHOICE, (Option("x", "Ex"), Option("y_z", "Why"), Option("q", "Cue"))),
            "flag": (FieldKind.BOOLEAN, ()),
            "note": (FieldKind.TEXT, ()),
        }
        for name, (kind, options) in kinds.items():
            await custom_fields.create_definition(
                db, SYSTEM, "contact", FieldInput(f"{name}_{tag}", name.title(), kind, options)
            )
        await custom_fields.create_definition(
            db, SYSTEM, "lead", FieldInput(f"score2_{tag}", "Score two", FieldKind.NUMBER)
        )

        def custom(**values: Any) -> dict[str, Any]:
            return {f"{k}_{tag}": v for k, v in values.items()}

        rows = {
            "ion": Contact(
                first_name="Ion",
                last_name="Popescu",
                phone="+37369000001",
                idnp="2002001234563",
                birth_date=dt.date(1985, 4, 23),
                tags=["vip", "ipotecă"],
                branch_id=north.id,
                custom=custom(
                    num=5, amt="1250.50", day="2026-01-15", pick="a", many=["x", "y_z"], flag=True, note="Șef"
                ),
            ),
            "ana": Contact(
                first_name="Ana",
                last_name="Rusu",
                phone="+37369000002",
                birth_date=dt.date(1990, 1, 1),
                tags=["nou"],
                branch_id=north.id,
                custom=custom(num=12.5, amt="99.99", day="2026-03-01", pick="b", many=["q"], flag=False),
            ),
            "dan": Contact(
                first_name="Dan",
                last_name="Ursu",
                branch_id=north.id,
                custom=custom(num=100, amt="100000.00"),
            ),
            "sud": Contact(first_name="Sudic", branch_id=south.id, custom=custom(num=5, pick="a", flag=True)),
        }
        db.add_all(rows.values())
        await db.flush()
        lead_rows = {
            "ion": Lead(
                contact_id=rows["ion"].id, source_channel="telegram", amount=Decimal("5000"), score=70
            ),
            "sud": Lead(contact_id=rows["sud"].id, source_channel="viber", amount=Decimal("700"), score=10),
        }
        db.add_all(lead_rows.values())
        await db.flush()
        lead_rows["ion"].custom = {f"score2_{tag}": 3}
        deal = await funnel.convert_lead(db, lead_rows["ion"].id, by_user_id=people["ana"].id)
        stage = await db.scalar(select(Deal.stage_id).where(Deal.id == deal.id))

    def scope(name: str, role: Role) -> Scope:
        return Scope(people[name].id, role, people[name].branch_id)

    return World(
        tag,
        north.id,
        south.id,
        scope("adm", Role.ADMIN),
        scope("sup", Role.SUPERVISOR),
        scope("ana", Role.AGENT),
        scope("sud", Role.AGENT),
        {name: c.id for name, c in rows.items()},
        {name: lead.id for name, lead in lead_rows.items()},
        int(stage or 0),
    )


async def _names(
    sessions: Sessions,
    world: World,
    filters: list[dict[str, Any]],
    *,
    scope: Scope | None = None,
    entity: str = "contact",
    sort: str = "",
    hidden: tuple[str, ...] = (),
) -> list[str]:
    """The test's own rows (by first name / contact name) the filter finds, in the list's order."""
    async with sessions() as db:
        catalog = await list_fields.catalog(db, entity, hidden=hidden)
        query = list_views.parse_query(catalog, filters, ["id"], sort)
        table = list_fields.root(entity)
        own = list(world.contacts.values()) if entity == "contact" else list(world.leads.values())
        extra = table.id.in_(own) if entity in ("contact", "lead") else Deal.lead_id.in_(own)
        rows = await list_views.fetch(db, catalog, query, scope or world.admin, limit=100, extra=extra)
    by_id = {v: k for k, v in world.contacts.items()}
    if entity == "lead":
        by_id = {v: k for k, v in world.leads.items()}
    if entity == "deal":
        return [str(r.id) for r in rows]
    return [by_id[r.id] for r in rows]


def _c(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


CORE_CASES: list[tuple[list[dict[str, Any]], set[str]]] = [
    ([_c("first_name", "eq", "ion")], {"ion"}),
    ([_c("first_name", "ne", "Ion")], {"ana", "dan", "sud"}),
    ([_c("name", "contains", "rus")], {"ana"}),
    ([_c("last_name", "starts", "Po")], {"ion"}),
    ([_c("first_name", "in", ["Ana", "Dan"])], {"ana", "dan"}),
    ([_c("idnp", "empty")], {"ana", "dan", "sud"}),
    ([_c("idnp", "not_empty")], {"ion"}),
    ([_c("birth_date", "lt", "1986-01-01")], {"ion"}),
    ([_c("birth_date", "between", ["01.01.1980", "1990-01-01"])], {"ion", "ana"}),
    ([_c("birth_date", "gte", "1990-01-01")], {"ana"}),
    ([_c("tags", "contains", "ipotecă")], {"ion"}),
    ([_c("tags", "empty")], {"dan", "sud"}),
    ([_c("phone", "contains", "0002")], {"ana"}),
    ([_c("created_at", "gte", "2000-01-01"), _c("first_name", "eq", "Dan")], {"dan"}),
    ([_c("created_at", "lt", "2000-01-01")], set()),
]


@pytest.mark.parametrize(("filters", "expected"), CORE_CASES)
async def test_core_field_operators(
    sessions: Sessions, world: World, filters: list[dict[str, Any]], expected: set[str]
) -> None:
    assert set(await _names(sessions, world, filters)) == expected


CUSTOM_CASES: list[tuple[str, str, Any, set[str]]] = [
    ("num", "eq", 5, {"ion", "sud"}),
    ("num", "ne", "5", {"ana", "dan"}),
    ("num", "gt", "12", {"ana", "dan"}),
    ("num", "gte", 12.5, {"ana", "dan"}),
    ("num", "lt", "12,5", {"ion", "sud"}),
    ("num", "lte", 12.5, {"ion", "ana", "sud"}),
    ("num", "between", [5, 12.5], {"ion", "ana", "sud"}),
    ("num", "empty", None, set()),
    ("amt", "gt", "1000", {"ion", "dan"}),  # numerically: "99.99" < "1000" < "1250.50" < "100000.00"
    ("amt", "lt", "1 250,50", {"ana"}),
    ("amt", "eq", "1250.5", {"ion"}),
    ("amt", "between", ["99.99", "1250.50"], {"ion", "ana"}),
    ("amt", "empty", None, {"sud"}),
    ("day", "gt", "2026-01-15", {"ana"}),
    ("day", "lte", "15.01.2026", {"ion"}),
    ("day", "between", ["2026-01-01", "2026-12-31"], {"ion", "ana"}),
    ("day", "not_empty", None, {"ion", "ana"}),
    ("pick", "eq", "a", {"ion", "sud"}),
    ("pick", "ne", "a", {"ana", "dan"}),
    ("pick", "in", ["a", "b"], {"ion", "ana", "sud"}),
    ("pick", "empty", None, {"dan"}),
    ("many", "contains", "y_z", {"ion"}),
    ("many", "contains", "q", {"ana"}),
    ("many", "empty", None, {"dan", "sud"}),
    ("flag", "eq", True, {"ion", "sud"}),
    ("flag", "eq", "false", {"ana", "dan"}),
    ("note", "contains", "EF", {"ion"}),  # case-folding: ASCII on SQLite, full on PostgreSQL
    ("note", "empty", None, {"ana", "dan", "sud"}),
]


@pytest.mark.parametrize(("name", "op", "value", "expected"), CUSTOM_CASES)
async def test_custom_field_operators_compare_by_type(
    sessions: Sessions, world: World, name: str, op: str, value: Any, expected: set[str]
) -> None:
    assert set(await _names(sessions, world, [_c(_key(world, name), op, value)])) == expected


async def test_sorting_by_a_custom_number_and_a_core_field(sessions: Sessions, world: World) -> None:
    assert await _names(sessions, world, [], sort=_key(world, "amt")) == ["ana", "ion", "dan", "sud"]
    assert (await _names(sessions, world, [], sort="-" + _key(world, "num")))[:2] == ["dan", "ana"]
    assert await _names(sessions, world, [], sort="first_name") == ["ana", "dan", "ion", "sud"]


async def test_related_facts_of_leads_and_deals(sessions: Sessions, world: World) -> None:
    assert await _names(sessions, world, [_c("contact_name", "contains", "popescu")], entity="lead") == [
        "ion"
    ]
    assert await _names(sessions, world, [_c("contact_phone", "eq", "+37369000001")], entity="lead") == [
        "ion"
    ]
    assert await _names(sessions, world, [_c("amount", "gte", 1000)], entity="lead") == ["ion"]
    assert await _names(sessions, world, [_c("status", "eq", "converted")], entity="lead") == ["ion"]
    assert await _names(sessions, world, [_c(f"custom.score2_{world.tag}", "eq", 3)], entity="lead") == [
        "ion"
    ]
    deals = await _names(sessions, world, [_c("stage", "eq", str(world.deal_stage))], entity="deal")
    assert len(deals) == 1
    assert await _names(sessions, world, [_c("contact_name", "starts", "Sud")], entity="deal") == []


async def test_visibility_is_always_anded(sessions: Sessions, world: World) -> None:
    everyone = [_c("first_name", "not_empty")]
    assert set(await _names(sessions, world, everyone, scope=world.agent)) == {"ion", "ana", "dan"}
    assert set(await _names(sessions, world, everyone, scope=world.supervisor)) == {"ion", "ana", "dan"}
    assert await _names(sessions, world, everyone, scope=world.south_agent) == ["sud"]
    assert await _names(sessions, world, [_c("first_name", "eq", "Ion")], scope=world.south_agent) == []
    assert await _names(sessions, world, [], entity="lead", scope=world.south_agent) == ["sud"]
    assert await _names(sessions, world, [], entity="deal", scope=world.south_agent) == []


async def test_the_rows_carry_the_chosen_columns(sessions: Sessions, world: World) -> None:
    async with sessions() as db:
        catalog = await list_fields.catalog(db, "contact")
        query = list_views.parse_query(
            catalog, [], ["name", "tags", "branch", _key(world, "pick"), _key(world, "amt")]
        )
        rows = await list_views.fetch(
            db, catalog, query, world.admin, limit=5, extra=Contact.id == world.contacts["ion"]
        )
    assert rows[0].cells == {
        "name": "Ion Popescu",
        "tags": "vip, ipotecă",
        "branch": f"North {world.tag}",
        _key(world, "pick"): "Alpha",
        _key(world, "amt"): Decimal("1250.50"),
    }


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"filters": "not a list"}, "filters"),
        ({"filters": [{"field": "nope", "op": "eq", "value": 1}]}, "filters"),
        ({"filters": [{"field": "first_name", "op": "gt", "value": "a"}]}, "first_name"),
        ({"filters": [{"field": "birth_date", "op": "eq", "value": "yesterday"}]}, "birth_date"),
        ({"filters": [{"field": "first_name", "op": "eq", "value": {"$ne": 1}}]}, "first_name"),
        ({"filters": [{"field": "first_name", "op": "eq", "value": "x" * 500}]}, "first_name"),
        ({"filters": [{"field": "birth_date", "op": "between", "value": ["2020-01-01"]}]}, "birth_date"),
        ({"filters": [{"field": "first_name", "op": "in", "value": []}]}, "first_name"),
        ({"filters": [["first_name", "eq", "x"]]}, "filters"),
        ({"filters": [_c("first_name", "eq", "x")] * 21}, "filters"),
        ({"columns": ["name", "nope"]}, "columns"),
        ({"sort": "-nope"}, "sort"),
    ],
)
async def test_hostile_filters_are_refused_naming_the_field(
    sessions: Sessions, raw: dict[str, Any], field: str
) -> None:
    async with sessions() as db:
        catalog = await list_fields.catalog(db, "contact")
    with pytest.raises(Invalid) as caught:
        list_views.parse_query(catalog, raw.get("filters"), raw.get("columns"), raw.get("sort"))
    assert caught.value.field == field


async def test_custom_values_are_checked_by_kind(sessions: Sessions, world: World) -> None:
    async with sessions() as db:
        catalog = await list_fields.catalog(db, "contact")
    for name, op, value in (
        ("num", "eq", "five"),
        ("pick", "eq", "zzz"),
        ("flag", "eq", "maybe"),
        ("many", "eq", "x"),
        ("day", "gt", "2026-13-01"),
    ):
        with pytest.raises(Invalid) as caught:
            list_views.parse_filters(catalog, [_c(_key(world, name), op, value)])
        assert caught.value.field == _key(world, name)


async def test_hidden_fields_are_unknown_to_filters_and_columns(sessions: Sessions, world: World) -> None:
    async with sessions() as db, db.begin():
        await field_visibility.set_hidden(db, SYSTEM, "contact", Role.MARKETER, ["idnp", _key(world, "amt")])
        hidden = await field_visibility.hidden(db, "contact", Role.MARKETER)
        assert await field_visibility.hidden(db, "contact", Role.ADMIN) == frozenset()
        catalog = await list_fields.catalog(db, "contact", hidden=hidden)
        with pytest.raises(Invalid):
            await field_visibility.set_hidden(db, SYSTEM, "contact", Role.MARKETER, ["nope"])
        with pytest.raises(Invalid):
            await field_visibility.set_hidden(db, SYSTEM, "contact", Role.ADMIN, ["idnp"])
        await field_visibility.set_hidden(db, SYSTEM, "contact", Role.MARKETER, [])
    assert {"idnp", _key(world, "amt")} <= hidden
    assert "idnp" not in catalog.names and _key(world, "amt") not in catalog.names
    for raw in ([_c("idnp", "empty")], [_c(_key(world, "amt"), "gt", 1)]):
        with pytest.raises(Invalid):
            list_views.parse_filters(catalog, raw)
    with pytest.raises(Invalid):
        list_views.parse_columns(catalog, ["name", "idnp"])
    assert list_views.parse_columns(catalog, ["name", "idnp"], strict=False) == ("name",)
    assert list_views.parse_filters(catalog, [_c("idnp", "empty")], strict=False) == ()
    assert field_visibility.redact(
        {"idnp": "1", "branch_id": 2, "custom": {"amt": 1, "b": 2}}, ["idnp", "branch", "custom.amt"]
    ) == {"custom": {"b": 2}}


async def test_saved_views_round_trip_share_and_default(sessions: Sessions, world: World) -> None:
    actor = SYSTEM
    data = {
        "name": "  VIP  clients ",
        "filters": [_c(_key(world, "flag"), "eq", True), _c("birth_date", "lt", "01.01.2000")],
        "columns": ["name", _key(world, "amt")],
        "sort": "-name",
    }
    async with sessions() as db, db.begin():
        catalog = await list_fields.catalog(db, "contact")
        mine = await list_views.create_view(
            db, actor, world.agent, "contact", list_views.parse_view(catalog, world.agent, data)
        )
        with pytest.raises(Conflict):
            await list_views.create_view(
                db, actor, world.agent, "contact", list_views.parse_view(catalog, world.agent, data)
            )
        with pytest.raises(Invalid):
            list_views.parse_view(catalog, world.agent, {**data, "shared": True})
        shared = await list_views.create_view(
            db,
            actor,
            world.supervisor,
            "contact",
            list_views.parse_view(catalog, world.supervisor, {**data, "shared": True}),
        )
        await list_views.set_default(db, world.agent, "contact", shared.id)
    assert (
        mine.name == "VIP clients" and mine.sort == "-name" and mine.columns == ["name", _key(world, "amt")]
    )
    assert mine.filters[1] == {"field": "birth_date", "op": "lt", "value": "2000-01-01"}
    async with sessions() as db:
        seen = {v.id: v for v in await list_views.list_views(db, world.agent, "contact")}
        assert {mine.id, shared.id} <= set(seen) and seen[shared.id].is_default
        assert (await list_views.default_view(db, world.agent, "contact")).id == shared.id  # type: ignore[union-attr]
        assert mine.id not in {v.id for v in await list_views.list_views(db, world.supervisor, "contact")}
        with pytest.raises(NotFound):
            await list_views.get_view(db, world.south_agent, mine.id)
        catalog = await list_fields.catalog(db, "contact")
        query = seen[mine.id].query(catalog)
        rows = await list_views.fetch(
            db, catalog, query, world.agent, limit=10, extra=Contact.id.in_(world.contacts.values())
        )
        assert [r.id for r in rows] == [world.contacts["ion"]]
    async with sessions() as db, db.begin():
        with pytest.raises(NotFound):  # someone else's view
            await list_views.delete_view(db, actor, world.agent, shared.id)
        await list_views.update_view(
            db,
            actor,
            world.agent,
            mine.id,
            list_views.parse_view(catalog, world.agent, {**data, "name": "Renamed"}),
        )
        await list_views.delete_view(db, actor, world.supervisor, shared.id)
        assert await list_views.default_view(db, world.agent, "contact") is None
    async with sessions() as db:
        kinds = list(
            await db.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.record_type == "saved_view",
                    AuditEntry.record_id.in_([str(mine.id), str(shared.id)]),
                )
            )
        )
        assert sorted(kinds) == ["create", "create", "delete", "update"]
        assert await db.scalar(select(func.count()).select_from(Stage)) >= 1
