"""Conversations and messages. One open conversation per contact across all channels is enforced by a
partial unique index, so two webhooks for the same customer can never open two threads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow

OPEN_STATUSES = ("open", "pending", "snoozed")


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10), default="open")
    snoozed_until: Mapped[dt.datetime | None]
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="SET NULL"), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    labels: Mapped[list[str]] = mapped_column(default=list)
    last_inbound_channel: Mapped[str | None] = mapped_column(String(20))
    last_inbound_account: Mapped[str | None] = mapped_column(String(100))
    waiting_since: Mapped[dt.datetime | None]  # the oldest customer message not yet answered
    unread: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    first_response_at: Mapped[dt.datetime | None]
    last_activity_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index(
            "uq_conversations_one_open_per_contact",
            "contact_id",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
        Index("ix_conversations_contact_id", "contact_id"),
        Index("ix_conversations_last_activity_at", "last_activity_at"),
    )


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3))  # in, out
    kind: Mapped[str] = mapped_column(String(10), default="text")
    body: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    channel: Mapped[str | None] = mapped_column(String(20))
    account_id: Mapped[str | None] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    read_at: Mapped[dt.datetime | None]
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    published_at: Mapped[dt.datetime | None]  # NULL until the bus event went out: re-sent after a crash

    __table_args__ = (
        UniqueConstraint("channel", "account_id", "external_id"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        Index(
            "ix_messages_unpublished",
            "id",
            sqlite_where=text("published_at IS NULL"),
            postgresql_where=text("published_at IS NULL"),
        ),
    )
