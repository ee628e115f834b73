"""The router's statements, built once at import with bound parameters (the hot path then only looks up
SQLAlchemy's compiled cache): agent snapshots and row locks, load changes, items and the log.

Load changes always happen under the agent's row lock — `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL,
or the `UPDATE` itself — in the caller's transaction, together with one `routing_decisions` row.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from sqlalchemy import (
    Float,
    Integer,
    Row,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    false,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from router import strategy
from router.model import ACTIVE, ItemKind, Presence, RouterSettings, RoutingRequest, Skills, Status
from router.tables import AgentState, RoutingDecision, RoutingItem
from switchboard.accounts_model import User
from switchboard.db import cast_table, insert_ignoring_duplicates
from switchboard.errors import N_, NotFound

agents_t = cast_table(AgentState)
items_t = cast_table(RoutingItem)
log_t = cast_table(RoutingDecision)
users_t = cast_table(User)

Lock = Literal["none", "skip", "wait"]
_a = agents_t.c
_i = items_t.c

_AGENT_COLUMNS = (
    _a.user_id,
    _a.presence,
    _a.capacity,
    _a.chats_during_call,
    cast(_a.skills, Text).label("skills_raw"),  # text, parsed once per distinct value
    _a.chats,
    _a.on_call,
    _a.last_assigned_at,
    _a.assignments_today,
    _a.assignments_day,
    _a.phone_endpoint.is_not(None).label("takes_calls"),
)


async def _execute(session: AsyncSession, statement: Executable, params: Any = None) -> Result[Any]:
    """Core statements on the session's connection: the same transaction, without the ORM's layers."""
    connection = await session.connection()
    return await connection.execute(statement, params)


@functools.lru_cache(maxsize=4096)
def _skills(raw: str | None) -> Skills:
    return Skills.from_json(json.loads(raw)) if raw else Skills()


def _agent(row: Row[Any], today: dt.date) -> strategy.Agent:
    return strategy.Agent(
        user_id=row.user_id,
        presence=row.presence,
        capacity=row.capacity,
        chats_during_call=row.chats_during_call,
        skills=_skills(row.skills_raw),
        chats=row.chats,
        on_call=row.on_call,
        last_assigned_at=row.last_assigned_at,
        assignments_today=row.assignments_today if row.assignments_day == today else 0,
        takes_calls=bool(row.takes_calls),
    )


def _fits_sql(kind: str) -> Any:
    """`strategy.fits` as SQL: a snapshot reads only agents who could take the item, and the lock
    re-checks it on the row's latest version."""
    online = _a.presence == Presence.ONLINE.value
    if kind == ItemKind.CALL:  # and a phone endpoint to dial
        return and_(
            online,
            _a.phone_endpoint.is_not(None),
            _a.on_call == false(),
            or_(_a.chats == 0, _a.chats_during_call == true()),
        )
    return and_(online, _a.chats < _a.capacity, or_(_a.on_call == false(), _a.chats_during_call == true()))


def _fitting(kind: str, with_also: bool) -> Any:
    where = _fits_sql(kind)
    if with_also:
        where = or_(where, _a.user_id.in_(bindparam("also", expanding=True)))
    return (
        select(*_AGENT_COLUMNS)
        .join(users_t, users_t.c.id == _a.user_id)
        .where(users_t.c.active == true(), where)
    )


_FITTING = {(kind.value, also): _fitting(kind, also) for kind in ItemKind for also in (False, True)}


def skill_tags(skills: Skills) -> str:
    """Skills as one string, `|b:3|l:ro|l:ru|p:*|c:*|` (`*`: any), for a portable SQL pre-filter."""
    parts: list[str] = []
    for key, values in (
        ("b", skills.branches),
        ("l", skills.languages),
        ("p", skills.products),
        ("c", skills.channels),
    ):
        parts += [f"{key}:{value}" for value in values] or [f"{key}:*"]
    return "|" + "|".join(parts) + "|"


def _wanted_tags(item: strategy.Item) -> dict[str, str]:
    """The LIKE patterns an agent's tags must match for `item` at its overflow level."""
    wanted: dict[str, str] = {}
    if item.overflow >= 2:
        return wanted
    if item.branch_id is not None and item.overflow < 1:
        wanted["b"] = str(item.branch_id)
    for key, value in (("l", item.language), ("p", item.product), ("c", item.channel)):
        if value:
            wanted[key] = value.lower()
    return {key: f"%|{key}:{value}|%" for key, value in wanted.items()}


@functools.lru_cache(maxsize=64)
def _ranked(kind: str, dimensions: tuple[str, ...]) -> Any:
    """Fitting agents whose skills (probably) match, best first as `strategy.rank` orders them. The tag
    match is a pre-filter (`_` in a value matches any character): the caller re-checks with `strategy`."""
    load = cast(_a.chats, Float) / func.nullif(_a.capacity, 0)
    today = case((_a.assignments_day == bindparam("today"), _a.assignments_today), else_=0)
    skills = [
        or_(_a.skill_tags.like(f"%|{key}:*|%"), _a.skill_tags.like(bindparam(f"tag_{key}")))
        for key in dimensions
    ]
    return (
        _fitting(kind, False)
        .where(*skills)
        .order_by(load.asc().nulls_last(), _a.last_assigned_at.asc().nulls_first(), today, _a.user_id)
        .limit(bindparam("lim", type_=Integer))
        .offset(bindparam("off", type_=Integer))
    )


_BY_IDS = (
    select(*_AGENT_COLUMNS)
    .join(users_t, users_t.c.id == _a.user_id)
    .where(users_t.c.active == true(), _a.user_id.in_(bindparam("ids", expanding=True)))
)
_BY_ID = select(*_AGENT_COLUMNS).where(_a.user_id == bindparam("uid"))
_LOCK = {
    "none": _BY_ID,
    "skip": _BY_ID.with_for_update(skip_locked=True),
    "wait": _BY_ID.with_for_update(),
}


def _took(kind: str) -> dict[str, Any]:
    """The agent's columns after taking one item of `kind` (computed from the locked row itself)."""
    load = {"on_call": True} if kind == ItemKind.CALL else {"chats": _a.chats + 1}
    return {
        **load,
        "last_assigned_at": bindparam("now"),
        "assignments_today": case(
            (_a.assignments_day == bindparam("today"), _a.assignments_today + 1), else_=1
        ),
        "assignments_day": bindparam("today"),
    }


_TAKE = {
    kind.value: update(agents_t)
    .where(_a.user_id == bindparam("uid"))
    .values(**_took(kind))
    .returning(*_AGENT_COLUMNS)
    for kind in ItemKind
}


def _pick_and_take(kind: str) -> Any:
    """PostgreSQL: lock the first candidate, in preference order, that nobody else holds and that still
    fits on its latest version (`FOR UPDATE SKIP LOCKED` re-checks the WHERE after locking), and take
    it — one round trip for "lock, re-check, else the next candidate"."""
    ids = bindparam("ids", type_=ARRAY(Integer))
    pick = (
        select(_a.user_id)
        .where(_a.user_id == any_(ids), _fits_sql(kind))
        .order_by(func.array_position(ids, _a.user_id))
        .limit(1)
        .with_for_update(skip_locked=True)
        .cte("pick")
    )
    return (
        update(agents_t).where(_a.user_id == pick.c.user_id).values(**_took(kind)).returning(*_AGENT_COLUMNS)
    )


_PICK_AND_TAKE = {kind.value: _pick_and_take(kind) for kind in ItemKind}
_DROP = {
    ItemKind.CALL.value: update(agents_t)
    .where(_a.user_id == bindparam("uid"))
    .values(on_call=False)
    .returning(*_AGENT_COLUMNS),
    ItemKind.CHAT.value: update(agents_t)
    .where(_a.user_id == bindparam("uid"))
    .values(chats=case((_a.chats > 0, _a.chats - 1), else_=0))
    .returning(*_AGENT_COLUMNS),
}
_LOG = insert(log_t).returning(log_t.c.id)
_ITEM_TAKEN = (
    update(items_t)
    .where(_i.id == bindparam("row_id"))
    .values(
        status=bindparam("b_status"),
        reason=bindparam("b_reason"),
        agent_id=bindparam("agent"),
        offered_at=bindparam("now"),
        accepted_at=bindparam("accepted"),
        hold_agent_id=None,
        hold_until=None,
        skipped=bindparam("skipped_ids", type_=items_t.c.skipped.type),
    )
)
_END_HELD = (
    update(items_t)
    .where(
        _i.kind == bindparam("b_kind"),
        _i.item_id == bindparam("item"),
        _i.status.in_([Status.OFFERED.value, Status.ACCEPTED.value]),
    )
    .values(status=Status.ENDED.value)
    .returning(_i.id, _i.kind, _i.item_id, _i.agent_id, _i.accepted_at)
)
_END_QUEUED = (
    update(items_t)
    .where(_i.kind == bindparam("b_kind"), _i.item_id == bindparam("item"), _i.status == Status.QUEUED.value)
    .values(status=Status.ENDED.value)
)


async def fitting_agents(
    session: AsyncSession, kind: str, today: dt.date, also: Iterable[int] = ()
) -> list[strategy.Agent]:
    """Online, active agents who could take one more item of `kind`, plus the agents in `also`
    (a sticky agent, who may be busy), without locks."""
    extra = list(also)
    statement = _FITTING[(str(kind), bool(extra))]
    rows = await _execute(session, statement, {"also": extra} if extra else None)
    return [_agent(row, today) for row in rows]


async def ranked_agents(
    session: AsyncSession, item: strategy.Item, today: dt.date, *, offset: int, limit: int | None
) -> list[strategy.Agent]:
    """The agents who could take `item`, least busy first, from `offset` (`limit` None: all of them)."""
    tags = _wanted_tags(item)
    statement = _ranked(str(item.kind), tuple(sorted(tags)))
    params: dict[str, Any] = {"today": today, "lim": limit if limit is not None else 1_000_000, "off": offset}
    params.update({f"tag_{key}": pattern for key, pattern in tags.items()})
    return [_agent(row, today) for row in await _execute(session, statement, params)]


async def agents_by_id(session: AsyncSession, ids: Sequence[int], today: dt.date) -> list[strategy.Agent]:
    """These agents whatever their state (the pinned or sticky agent of an item), without locks."""
    if not ids:
        return []
    return [_agent(row, today) for row in await _execute(session, _BY_IDS, {"ids": list(ids)})]


async def agent(
    session: AsyncSession, user_id: int, today: dt.date, lock: Lock = "none"
) -> strategy.Agent | None:
    """One agent's state; with `skip`, None when another transaction holds the row."""
    row = (await _execute(session, _LOCK[lock], {"uid": user_id})).first()
    return _agent(row, today) if row is not None else None


async def take_agent(
    session: AsyncSession, user_id: int, kind: str, *, now: dt.datetime, today: dt.date
) -> strategy.Agent:
    """One more item on an agent this transaction holds (locked, or SQLite's only writer)."""
    params = {"uid": user_id, "now": now, "today": today}
    return _agent((await _execute(session, _TAKE[str(kind)], params)).one(), today)


async def pick_and_take(
    session: AsyncSession, candidates: Sequence[int], kind: str, *, now: dt.datetime, today: dt.date
) -> strategy.Agent | None:
    """PostgreSQL: the first free, still fitting candidate, locked and loaded; None when there is none."""
    params = {"ids": list(candidates), "now": now, "today": today}
    row = (await _execute(session, _PICK_AND_TAKE[str(kind)], params)).first()
    return _agent(row, today) if row is not None else None


async def record_take(
    session: AsyncSession,
    after: strategy.Agent,
    item: Row[Any],
    *,
    reason: str,
    now: dt.datetime,
    skipped: Sequence[int] = (),
    status: Status = Status.OFFERED,
    was_on_call: bool = False,
) -> int:
    """The item's new status and the log row of a take (`after` is the agent once loaded)."""
    await _execute(
        session,
        _ITEM_TAKEN,
        {
            "row_id": item.id,
            "b_status": status.value,
            "b_reason": str(reason),
            "agent": after.user_id,
            "now": now,
            "accepted": now if status == Status.ACCEPTED else None,
            "skipped_ids": list(skipped),
        },
    )
    if item.kind == ItemKind.CALL:
        load = (1 if was_on_call else 0, 1, 1)
    else:
        load = (after.chats - 1, after.chats, after.capacity)
    return await log(
        session,
        kind=item.kind,
        item_id=item.item_id,
        agent_id=after.user_id,
        reason=reason,
        at=now,
        skipped=skipped,
        load=load,
    )


async def take(
    session: AsyncSession,
    locked: strategy.Agent,
    item: Row[Any],
    *,
    reason: str,
    now: dt.datetime,
    today: dt.date,
    skipped: Sequence[int] = (),
    status: Status = Status.OFFERED,
) -> tuple[int, strategy.Agent]:
    """Give `item` to an agent this transaction holds: their load, the item's status and the log row."""
    after = await take_agent(session, locked.user_id, item.kind, now=now, today=today)
    decision_id = await record_take(
        session,
        after,
        item,
        reason=reason,
        now=now,
        skipped=skipped,
        status=status,
        was_on_call=locked.on_call,
    )
    return decision_id, after


async def ensure_agent(
    session: AsyncSession, user_id: int, settings: RouterSettings, now: dt.datetime
) -> None:
    """The agent's state row, created with the defaults when missing (any user can be an agent)."""
    if await session.scalar(select(agents_t.c.user_id).where(agents_t.c.user_id == user_id)) is not None:
        return
    if await session.scalar(select(users_t.c.id).where(users_t.c.id == user_id)) is None:
        raise NotFound(N_("No such agent."), field="agent_id")
    await session.execute(
        insert_ignoring_duplicates(session, agents_t),
        {
            "user_id": user_id,
            "presence": Presence.OFFLINE.value,
            "presence_since": now,
            "capacity": settings.default_capacity,
            "chats_during_call": settings.default_chats_during_call,
            "skills": Skills().to_json(),
            "skill_tags": skill_tags(Skills()),
            "chats": 0,
            "on_call": False,
            "assignments_today": 0,
            "consecutive_timeouts": 0,
        },
    )


async def log(
    session: AsyncSession,
    *,
    kind: str,
    item_id: str,
    agent_id: int | None,
    reason: str,
    at: dt.datetime,
    skipped: Sequence[int] = (),
    load: tuple[int, int, int] | None = None,
) -> int:
    """One `routing_decisions` row; `load` is (before, after, capacity) when the agent's load changed."""
    before, after, capacity = load if load is not None else (None, None, None)
    params = {
        "kind": kind,
        "item_id": item_id,
        "agent_id": agent_id,
        "reason": str(reason),
        "skipped": list(skipped),
        "load_before": before,
        "load_after": after,
        "capacity": capacity,
        "at": at,
    }
    return int((await _execute(session, _LOG, params)).scalar_one())


async def drop(
    session: AsyncSession,
    agent_id: int,
    kind: str,
    item_id: str,
    *,
    reason: str,
    now: dt.datetime,
    today: dt.date,
) -> strategy.Agent:
    """Take one item of `kind` off the agent's load (the `UPDATE` waits for and takes the row lock);
    returns the agent as they are now."""
    after = _agent((await _execute(session, _DROP[str(kind)], {"uid": agent_id})).one(), today)
    load = (1, 0, 1) if kind == ItemKind.CALL else (after.chats + 1, after.chats, after.capacity)
    await log(session, kind=kind, item_id=item_id, agent_id=agent_id, reason=reason, at=now, load=load)
    return after


# --- items -------------------------------------------------------------------------------------------


def item_values(request: RoutingRequest, now: dt.datetime, queued_at: dt.datetime) -> dict[str, Any]:
    return {
        "kind": str(request.kind),
        "item_id": request.item_id,
        "request": request.to_json(),
        "channel": request.channel.lower(),
        "branch_id": request.branch_id,
        "language": request.language.lower() if request.language else None,
        "product": request.product.lower() if request.product else None,
        "priority": request.priority,
        "urgency": -request.priority,
        "enqueued_at": now,
        "queued_at": queued_at,
        "status": Status.ROUTING.value,  # never "queued" unless it really waits: see `Status.ROUTING`
        "reason": "queued",
        "agent_id": None,
        "offered_at": None,
        "accepted_at": None,
        "pinned_agent_id": request.pinned_agent_id,
        "hold_agent_id": None,
        "hold_until": None,
        "away_from_id": None,
        "skipped": [],
        "overflow": 0,
        "off_hours": False,
    }


_ITEM_NAMES = tuple(items_t.c.keys())


async def open_item(
    session: AsyncSession, request: RoutingRequest, now: dt.datetime, queued_at: dt.datetime
) -> tuple[Row[Any], bool]:
    """The item's row locked, and True when it is new (or a finished item coming back); an item still
    active is returned as it is, so routing it again changes nothing."""
    values = item_values(request, now, queued_at)
    for _ in range(3):
        statement = insert_ignoring_duplicates(session, items_t, *_ITEM_NAMES)
        inserted = (await _execute(session, statement, values)).first()
        if inserted is not None:
            return inserted, True
        existing = await item(session, str(request.kind), request.item_id, lock="wait")
        if existing is None:
            continue  # deleted meanwhile: insert again
        if existing.status in ACTIVE:
            return existing, False
        values.pop("kind")
        values.pop("item_id")
        await session.execute(update(items_t).where(items_t.c.id == existing.id).values(**values))
        return await reread(session, existing.id), True
    raise RuntimeError("routing item could not be created")


async def item(session: AsyncSession, kind: str, item_id: str, *, lock: Lock = "none") -> Row[Any] | None:
    statement = select(items_t).where(items_t.c.kind == kind, items_t.c.item_id == item_id)
    if lock != "none":
        statement = statement.with_for_update(skip_locked=lock == "skip")
    return (await session.execute(statement)).first()


async def item_by_id(session: AsyncSession, row_id: int, *, lock: Lock = "none") -> Row[Any] | None:
    statement = select(items_t).where(items_t.c.id == row_id)
    if lock != "none":
        statement = statement.with_for_update(skip_locked=lock == "skip")
    return (await session.execute(statement)).first()


async def reread(session: AsyncSession, row_id: int) -> Row[Any]:
    """An item this transaction holds, as it is now."""
    row = await item_by_id(session, row_id)
    assert row is not None
    return row


def traits(row: Row[Any]) -> strategy.Item:
    request = row.request or {}
    return strategy.Item(
        kind=row.kind,
        channel=row.channel,
        branch_id=row.branch_id,
        language=row.language,
        product=row.product,
        owner_id=request.get("owner_id"),
        last_agent_id=request.get("last_agent_id"),
        pinned_agent_id=row.pinned_agent_id,
        overflow=row.overflow,
        skipped=tuple(row.skipped or ()),
        hold_agent_id=row.hold_agent_id,
        hold_until=row.hold_until,
    )


def traits_of(request: RoutingRequest) -> strategy.Item:
    """A new item's traits straight from its request (for the dry run, which stores nothing)."""
    return strategy.Item(
        kind=str(request.kind),
        channel=request.channel.lower(),
        branch_id=request.branch_id,
        language=request.language.lower() if request.language else None,
        product=request.product.lower() if request.product else None,
        owner_id=request.owner_id,
        last_agent_id=request.last_agent_id,
        pinned_agent_id=request.pinned_agent_id,
    )


def request_of(row: Row[Any]) -> RoutingRequest:
    return RoutingRequest.from_json(row.request)


async def end_item(session: AsyncSession, kind: str, item_id: str) -> Row[Any] | None:
    """Marks the item ended; returns it when an agent held it (the guarded `UPDATE` is also the lock, so
    two releases of one item free the agent once)."""
    params = {"b_kind": kind, "item": item_id}
    held = (await _execute(session, _END_HELD, params)).first()
    if held is None:
        await _execute(session, _END_QUEUED, params)
    return held


async def set_item(session: AsyncSession, row_id: int, **values: Any) -> None:
    await session.execute(update(items_t).where(items_t.c.id == row_id).values(**values))


async def queue_for(
    session: AsyncSession,
    locked: strategy.Agent,
    *,
    now: dt.datetime,
    closed_branches: Sequence[int],
    limit: int,
) -> list[Row[Any]]:
    """Queued items this agent may take, in queue order (priority, then arrival), locked with SKIP
    LOCKED so that two processes pulling at once take different items. A SQL pre-filter: the caller
    re-checks each with `strategy`."""
    kinds = tuple(k.value for k in ItemKind if strategy.fits(locked, k))
    if not kinds:
        return []
    statement = _queue_statement(kinds, locked.skills, tuple(closed_branches))
    params = {"uid": locked.user_id, "now": now, "lim": limit}
    return list((await _execute(session, statement, params)).all())


@functools.lru_cache(maxsize=256)
def _queue_statement(kinds: tuple[str, ...], skills: Skills, closed: tuple[int, ...]) -> Any:
    c = _i
    me = bindparam("uid", type_=Integer)
    now = bindparam("now", type_=c.hold_until.type)
    conditions: list[Any] = []
    if skills.branches:
        conditions.append(or_(c.branch_id.is_(None), c.branch_id.in_(skills.branches), c.overflow >= 1))
    for column, have in (
        (c.language, skills.languages),
        (c.product, skills.products),
        (c.channel, skills.channels),
    ):
        if have:
            conditions.append(or_(column.is_(None), column.in_(have), c.overflow >= 2))
    not_held = or_(c.hold_agent_id.is_(None), c.hold_until <= now)
    open_ = or_(c.branch_id.is_(None), c.branch_id.not_in(closed)) if closed else true()
    return (
        select(items_t)
        .where(
            c.status == Status.QUEUED.value,
            c.kind.in_(kinds),
            open_,
            or_(
                c.pinned_agent_id == me,
                and_(c.pinned_agent_id.is_(None), c.hold_agent_id == me, c.hold_until > now),
                and_(c.pinned_agent_id.is_(None), not_held, *conditions),
            ),
        )
        .order_by(c.urgency, c.enqueued_at, c.id)
        .limit(bindparam("lim", type_=Integer))
        .with_for_update(skip_locked=True)
    )


async def queued_count(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(items_t).where(items_t.c.status == Status.QUEUED.value)
        )
        or 0
    )
