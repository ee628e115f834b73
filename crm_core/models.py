"""Contacts, their channel identities and leads: the minimal customer model the inbox resolves into.
Later issues deepen it (companies, custom fields, dedupe, deals)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164
    email: Mapped[str | None] = mapped_column(String(254))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="SET NULL"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    language: Mapped[str | None] = mapped_column(String(5))
    # The profile (issue 7): IDNP is the 13-digit personal code, unique when known (NULLs never collide).
    idnp: Mapped[str | None] = mapped_column(String(13), unique=True)
    birth_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    address: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    tags: Mapped[list[str]] = mapped_column(default=list, server_default=text("'[]'"))  # segment tags
    consents: Mapped[dict[str, Any]] = mapped_column(
        default=dict, server_default=text("'{}'")
    )  # channel: bool
    custom: Mapped[dict[str, Any]] = mapped_column(
        default=dict, server_default=text("'{}'")
    )  # custom fields (crm_core.custom_fields)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def display_name(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.phone or self.email or f"#{self.id}"


class ContactIdentity(Base):
    """A contact's address on one channel account: a Telegram user id, a Viber id, a widget visitor…"""

    __tablename__ = "contact_identities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(200))
    unsubscribed_at: Mapped[dt.datetime | None]  # opted out (Viber unsubscribe, SMS STOP): send nothing
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("channel", "account_id", "external_id"),)


class Lead(Base):
    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    source_channel: Mapped[str] = mapped_column(String(20))
    page_url: Mapped[str | None] = mapped_column(Text)
    referrer: Mapped[str | None] = mapped_column(Text)
    utm_source: Mapped[str | None] = mapped_column(String(200))
    utm_medium: Mapped[str | None] = mapped_column(String(200))
    utm_campaign: Mapped[str | None] = mapped_column(String(200))
    utm_content: Mapped[str | None] = mapped_column(String(200))
    utm_term: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="new")  # new, in_work, qualified, converted, junk
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    first_contact_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # What the customer asked for and how the lead is worked (crm_core.leads; migration 0014).
    campaign: Mapped[str | None] = mapped_column(String(200))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="SET NULL"), index=True)
    product: Mapped[str | None] = mapped_column(String(50))  # a `product` classifier code
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="MDL", server_default=text("'MDL'"))
    term_months: Mapped[int | None] = mapped_column(Integer)
    junk_reason: Mapped[str | None] = mapped_column(String(50))  # a `junk_reason` classifier code
    score: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Scoring (crm_core.scoring; migration 0017): the rules that gave the score, a manager's correction,
    # and the engagement the inbox reports.
    score_breakdown: Mapped[list[dict[str, Any]]] = mapped_column(default=list, server_default=text("'[]'"))
    score_adjustment: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    customer_replies: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    answered_calls: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    first_response_at: Mapped[dt.datetime | None]
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    updated_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_leads_status", "status"),)
