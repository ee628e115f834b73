"""The router's statements (Core, built for the hot path): agent snapshots and row locks, items, the log.

Load changes always happen under the agent's row lock (`SELECT … FOR UPDATE [SKIP LOCKED]`, or the
`UPDATE` itself), in the caller's transaction, together with one `routing_decisions` row.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from sqlalchemy import Row, Text, and_, case, cast, false, func, insert, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

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

_AGENT_COLUMNS = (
    agents_t.c.user_id,
    agents_t.c.presence,
    agents_t.c.capacity,
    agents_t.c.chats_during_call,
    cast(agents_t.c.skills, Text).label("skills_raw"),  # text, parsed once per distinct value
    agents_t.c.chats,
    agents_t.c.on_call,
    agents_t.c.last_assigned_at,
    agents_t.c.assignments_today,
    agents_t.c.assignments_day,
)


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
    )


def _fits_sql(kind: str) -> Any:
    """`strategy.fits` as SQL, so that a decision reads only the agents who could take the item."""
    c = agents_t.c
    if kind == ItemKind.CALL:
        return and_(c.on_call == false(), or_(c.chats == 0, c.chats_during_call == true()))
    return and_(c.chats < c.capacity, or_(c.on_call == false(), c.chats_during_call == true()))


async def fitting_agents(
    session: AsyncSession, kind: str, today: dt.date, also: Iterable[int] = ()
) -> list[strategy.Agent]:
    """Online, active agents who could take one more item of `kind`, plus the agents in `also`
    (a sticky agent, who may be busy), without locks."""
    fit = and_(agents_t.c.presence == Presence.ONLINE, _fits_sql(kind))
    extra = list(also)
    where = or_(fit, agents_t.c.user_id.in_(extra)) if extra else fit
    statement = (
        select(*_AGENT_COLUMNS)
        .join(users_t, users_t.c.id == agents_t.c.user_id)
        .where(users_t.c.active == true(), where)
    )
    return [_agent(row, today) for row in await session.execute(statement)]


async def agent(
    session: AsyncSession, user_id: int, today: dt.date, lock: Lock = "none"
) -> strategy.Agent | None:
    """One agent's state; with `skip`, None when another transaction holds the row."""
    statement = select(*_AGENT_COLUMNS).where(agents_t.c.user_id == user_id)
    if lock != "none":
        statement = statement.with_for_update(skip_locked=lock == "skip")
    row = (await session.execute(statement)).first()
    return _agent(row, today) if row is not None else None


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
    statement = insert(log_t).returning(log_t.c.id)
    return int(
        (
            await session.execute(
                statement,
                {
                    "kind": kind,
                    "item_id": item_id,
                    "agent_id": agent_id,
                    "reason": str(reason),
                    "skipped": list(skipped),
                    "load_before": before,
                    "load_after": after,
                    "capacity": capacity,
                    "at": at,
                },
            )
        ).scalar_one()
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
) -> int:
    """Give `item` to the (locked, re-checked) agent: their load, the item's status and the log row."""
    if item.kind == ItemKind.CALL:
        load = (1 if locked.on_call else 0, 1, 1)
        change: dict[str, Any] = {"on_call": True}
    else:
        load = (locked.chats, locked.chats + 1, locked.capacity)
        change = {"chats": locked.chats + 1}
    await session.execute(
        update(agents_t)
        .where(agents_t.c.user_id == locked.user_id)
        .values(
            **change,
            last_assigned_at=now,
            assignments_today=locked.assignments_today + 1,
            assignments_day=today,
        )
    )
    await session.execute(
        update(items_t)
        .where(items_t.c.id == item.id)
        .values(
            status=status,
            reason=str(reason),
            agent_id=locked.user_id,
            offered_at=now,
            accepted_at=now if status == Status.ACCEPTED else None,
            hold_agent_id=None,
            hold_until=None,
            skipped=list(skipped),
        )
    )
    return await log(
        session,
        kind=item.kind,
        item_id=item.item_id,
        agent_id=locked.user_id,
        reason=reason,
        at=now,
        skipped=skipped,
        load=load,
    )


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
    c = agents_t.c
    change = (
        {"on_call": False} if kind == ItemKind.CALL else {"chats": case((c.chats > 0, c.chats - 1), else_=0)}
    )
    statement = update(agents_t).where(c.user_id == agent_id).values(**change).returning(*_AGENT_COLUMNS)
    after = _agent((await session.execute(statement)).one(), today)
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
        "enqueued_at": now,
        "queued_at": queued_at,
        "status": Status.QUEUED.value,
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
        inserted = (await session.execute(statement, values)).first()
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
    c = items_t.c
    held = (
        await session.execute(
            update(items_t)
            .where(c.kind == kind, c.item_id == item_id, c.status.in_([Status.OFFERED, Status.ACCEPTED]))
            .values(status=Status.ENDED)
            .returning(c.id, c.kind, c.item_id, c.agent_id, c.accepted_at)
        )
    ).first()
    if held is None:
        await session.execute(
            update(items_t)
            .where(c.kind == kind, c.item_id == item_id, c.status == Status.QUEUED)
            .values(status=Status.ENDED)
        )
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
    c = items_t.c
    kinds = [k.value for k in ItemKind if strategy.fits(locked, k)]
    if not kinds:
        return []
    skills = locked.skills
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
    open_ = or_(c.branch_id.is_(None), c.branch_id.not_in(closed_branches)) if closed_branches else true()
    statement = (
        select(items_t)
        .where(
            c.status == Status.QUEUED.value,
            c.kind.in_(kinds),
            open_,
            or_(
                c.pinned_agent_id == locked.user_id,
                and_(c.pinned_agent_id.is_(None), c.hold_agent_id == locked.user_id, c.hold_until > now),
                and_(c.pinned_agent_id.is_(None), not_held, *conditions),
            ),
        )
        .order_by(c.priority.desc(), c.enqueued_at, c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(statement)).all())


async def queued_count(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(items_t).where(items_t.c.status == Status.QUEUED.value)
        )
        or 0
    )
