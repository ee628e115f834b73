"""The `tasks` table: a thing someone has to do about a customer — call back after a missed call, answer
a chat that came in at night, follow up. `assignee_id` NULL is the branch's queue; `source_key` makes a
task made by an event (a missed call's Linkedid, an off-hours conversation) exist once however often the
event is replayed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow

MAX_TITLE = 200
MAX_SOURCE_KEY = 120


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(MAX_TITLE))
    kind: Mapped[str] = mapped_column(String(12))  # callback, call, follow_up, meeting, other
    status: Mapped[str] = mapped_column(String(10), default="open")  # open, done, cancelled
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="SET NULL"))
    due_at: Mapped[dt.datetime | None]
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    note: Mapped[str] = mapped_column(Text, default="")
    source_key: Mapped[str | None] = mapped_column(String(MAX_SOURCE_KEY), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    done_at: Mapped[dt.datetime | None]  # when it was closed: done or cancelled
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    outcome: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # "my open tasks by due time" and "the open queue of a branch by due time"
        Index("ix_tasks_assignee_status_due", "assignee_id", "status", "due_at"),
        Index("ix_tasks_branch_status_due", "branch_id", "status", "due_at"),
        Index("ix_tasks_contact_status", "contact_id", "status"),
    )
