"""The `calls` table: one row per phone call (Asterisk's Linkedid), the call detail record supervisors
filter and export, and the source of the call item shown in the customer's conversation (`message_id`).

A row is written when the call is first seen and updated as it rings, is answered and ends; `linkedid`
is unique, so a replayed event or another process taking over the AMI stream never makes a second row."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(3))  # in, out
    customer_number: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164
    customer_number_raw: Mapped[str | None] = mapped_column(String(40))
    caller_name: Mapped[str | None] = mapped_column(String(200))
    dialled: Mapped[str | None] = mapped_column(String(40))  # our number the customer called (DID)
    region: Mapped[str | None] = mapped_column(String(100))
    result: Mapped[str | None] = mapped_column(String(12))  # None while live and not answered
    routed_reason: Mapped[str | None] = mapped_column(String(20))  # what the router said (FastAGI)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    agent_endpoint: Mapped[str | None] = mapped_column(String(100))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))  # click-to-call
    started_at: Mapped[dt.datetime]
    answered_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    ring_seconds: Mapped[float | None] = mapped_column(Float)
    talk_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    hangup_cause: Mapped[int | None]
    hangup_cause_text: Mapped[str | None] = mapped_column(String(100))
    hung_up_by: Mapped[str | None] = mapped_column(String(10))  # customer, agent
    recording_file: Mapped[str | None] = mapped_column(String(255))  # a file name under `recordings_dir`
    transfer_target: Mapped[str | None] = mapped_column(String(40))
    queue: Mapped[str | None] = mapped_column(String(80))
    reconciled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    ended: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_calls_started_at", "started_at"),
        Index("ix_calls_agent_started", "agent_id", "started_at"),
        Index("ix_calls_result_started", "result", "started_at"),
    )
