"""The router's tables: agent state, routing items (the queue and who holds what), the decision log,
routing rules and branch working hours.

An agent's load lives in its `agent_states` row and changes only while that row is locked, in the same
transaction as the item's status change and a `routing_decisions` row recording the load before and
after: the log alone is enough to replay every agent's load and prove it never went over capacity.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow

ANY_SKILL = "|b:*|l:*|p:*|c:*|"


class AgentState(Base):
    """One row per agent (created on first use); `chats` / `on_call` are the live load."""

    __tablename__ = "agent_states"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    presence: Mapped[str] = mapped_column(String(12), default="offline")
    presence_since: Mapped[dt.datetime] = mapped_column(default=utcnow)
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    chats_during_call: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    skills: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # `skills` flattened for SQL (`store.skill_tags`): lets the least-busy query filter on skills
    skill_tags: Mapped[str] = mapped_column(String(2000), default=ANY_SKILL, server_default=ANY_SKILL)
    chats: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    on_call: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    wrap_up_until: Mapped[dt.datetime | None]
    last_assigned_at: Mapped[dt.datetime | None]
    assignments_today: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    assignments_day: Mapped[dt.date | None] = mapped_column(Date)
    consecutive_timeouts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_heartbeat: Mapped[dt.datetime | None]
    # what the dialplan dials for this agent's calls (`PJSIP/1001`); NULL: the agent takes no calls
    phone_endpoint: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        Index("ix_agent_states_presence", "presence"),
        Index("uq_agent_states_phone_endpoint", "phone_endpoint", unique=True),
    )


class RoutingItem(Base):
    """A chat or call the router has seen; at most one row per (kind, item_id), reused when it returns."""

    __tablename__ = "routing_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    item_id: Mapped[str] = mapped_column(String(120))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    channel: Mapped[str] = mapped_column(String(20))
    branch_id: Mapped[int | None]
    language: Mapped[str | None] = mapped_column(String(40))
    product: Mapped[str | None] = mapped_column(String(40))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    urgency: Mapped[int] = mapped_column(Integer, default=0)  # -priority: one ascending index, queue order
    enqueued_at: Mapped[dt.datetime]  # arrival: the queue's order
    queued_at: Mapped[dt.datetime]  # the overflow clock (off-hours items: from the next opening)
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(20))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    offered_at: Mapped[dt.datetime | None]
    accepted_at: Mapped[dt.datetime | None]
    pinned_agent_id: Mapped[int | None]
    hold_agent_id: Mapped[int | None]  # a busy sticky agent the item waits for ...
    hold_until: Mapped[dt.datetime | None]  # ... until then
    # taken from this agent for absence (given back when they return)
    away_from_id: Mapped[int | None] = mapped_column(index=True)
    skipped: Mapped[list[int]] = mapped_column(JSON, default=list)
    overflow: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    off_hours: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    __table_args__ = (
        UniqueConstraint("kind", "item_id"),
        # the queue's order (urgency = -priority), so that a pull reads the head instead of sorting
        Index("ix_routing_items_queue", "status", "urgency", "enqueued_at", "id"),
    )


class RoutingDecision(Base):
    """The log: every decision, and every change of an agent's load, with the load around it."""

    __tablename__ = "routing_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    item_id: Mapped[str] = mapped_column(String(120))
    agent_id: Mapped[int | None]  # no foreign key: the log outlives a deleted user
    reason: Mapped[str] = mapped_column(String(20))
    skipped: Mapped[list[int]] = mapped_column(JSON, default=list)
    load_before: Mapped[int | None]  # the agent's chats before (calls: 0/1 on the phone)
    load_after: Mapped[int | None]
    capacity: Mapped[int | None]
    at: Mapped[dt.datetime]

    __table_args__ = (
        Index("ix_routing_decisions_item", "kind", "item_id"),
        Index("ix_routing_decisions_agent_at", "agent_id", "at"),
    )


class RoutingRuleRow(Base):
    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(40), unique=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="CASCADE"))
    channel: Mapped[str | None] = mapped_column(String(20))
    sticky_mode: Mapped[str] = mapped_column(String(10))
    sticky_wait_seconds: Mapped[int] = mapped_column(Integer)
    accept_timeout_seconds: Mapped[int] = mapped_column(Integer)
    overflow_branch_after_seconds: Mapped[int | None]
    overflow_any_after_seconds: Mapped[int | None]
    timeouts_before_away: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BranchHours(Base):
    __tablename__ = "branch_hours"

    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id", ondelete="CASCADE"), primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    week: Mapped[dict[str, Any]] = mapped_column(JSON)
    holidays: Mapped[list[str]] = mapped_column(JSON)
    replies: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
