"""The script engine's tables. A version holds its whole graph as one JSON document (`ScriptDraft.as_data`):
publishing freezes one row, so immutability is a state check rather than a copy of many step rows, and a
run keeps working on its version whatever happens to the script later. Runs point at conversations,
calls, contacts, leads and deals by plain integers: those rows belong to other rooms.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow


class ScriptRow(Base):
    __tablename__ = "scripts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class VersionRow(Base):
    __tablename__ = "script_versions"
    __table_args__ = (
        UniqueConstraint("script_id", "number"),
        # at most one published version per script, whatever races
        Index(
            "ix_script_versions_one_published",
            "script_id",
            unique=True,
            sqlite_where=text("state = 'published'"),
            postgresql_where=text("state = 'published'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    script_id: Mapped[int] = mapped_column(ForeignKey("scripts.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10))  # draft, published, archived
    graph: Mapped[dict[str, Any]]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    published_at: Mapped[dt.datetime | None]
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class RunRow(Base):
    __tablename__ = "script_runs"
    __table_args__ = (Index("ix_script_runs_version_status", "version_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("script_versions.id", ondelete="RESTRICT"))
    conversation_id: Mapped[int | None] = mapped_column(Integer, index=True)
    call_id: Mapped[int | None] = mapped_column(Integer, index=True)
    contact_id: Mapped[int | None] = mapped_column(Integer)
    lead_id: Mapped[int | None] = mapped_column(Integer)
    deal_id: Mapped[int | None] = mapped_column(Integer)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10))  # running, ended, left
    outcome: Mapped[str | None] = mapped_column(String(10))  # success, refusal, callback, handover
    reason: Mapped[str | None] = mapped_column(String(200))  # a refusal's reason, why the agent left
    current_step: Mapped[str | None] = mapped_column(String(50))
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)  # step id -> {"type", "value"}
    trail: Mapped[list[str]] = mapped_column(default=list)  # the agent steps passed, for "back"
    outbox: Mapped[list[str]] = mapped_column(default=list)  # texts suggested for the reply box
    handover_run_id: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RunStepRow(Base):
    __tablename__ = "script_run_steps"
    __table_args__ = (UniqueConstraint("run_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("script_runs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # 0, 1, 2… in the order the run entered steps
    step_id: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(10))
    entered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    left_at: Mapped[dt.datetime | None]
    answer: Mapped[dict[str, Any] | None]  # the answer given, a capture's value, an action's result
    edge: Mapped[str | None] = mapped_column(String(60))  # the step it went to, or "back" / "leave"
