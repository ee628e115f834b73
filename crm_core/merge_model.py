"""The `contact_merges` table: one row per merge of two contacts, holding everything needed to undo it
for a while (`crm_core.merge_undo`) — the merged contact's row, the kept contact's values before, every row
the merge moved (with its old parent) or deleted, and the parts other rooms recorded (the inbox's moved
conversations and messages), opaque to crm_core.

`kept_id` and `merged_id` are plain numbers, not foreign keys: the merged contact is gone while the merge
stands, and the record must outlive a later deletion of the kept one (the undo then refuses, the history
stays)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow

ACTIVE = "active"
UNDONE = "undone"


class ContactMerge(Base):
    __tablename__ = "contact_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kept_id: Mapped[int] = mapped_column(Integer, index=True)
    merged_id: Mapped[int] = mapped_column(Integer, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(10), default=ACTIVE, server_default=text("'active'"))
    merged_row: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the merged contact, every column
    kept_row: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the kept contact before the merge
    kept_after: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the fields the merge set, their values
    # {table: [{"id": …, "before": {column: old}, "after": {column: new}}]}: rows that now point elsewhere
    moved: Mapped[dict[str, Any]] = mapped_column(default=dict)
    deleted: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {table: [row]}: rows the merge removed
    parts: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {room: what it recorded}, e.g. "inbox"
    undone_at: Mapped[dt.datetime | None]
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    undone_by_name: Mapped[str | None] = mapped_column(String(64))
    undo_report: Mapped[dict[str, Any]] = mapped_column(default=dict)  # what could not be put back, if any

    __table_args__ = (Index("ix_contact_merges_created_at", "created_at"),)
