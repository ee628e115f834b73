"""The contact profile's own tables (issue 7): several phones and e-mails per person, companies and the
links between people and companies and between people (spouse, guarantor…), and the likely duplicates that
ingest noticed but must not stop for.

`Contact.phone` / `Contact.email` stay the primary phone and e-mail (the inbox, routing and merge read
them); `contact_phones` / `contact_emails` hold every one, the primary included, so a duplicate check looks
in one place."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow

PHONE_TAIL = 6  # the last digits a likely duplicate may share instead of a birth date


class ContactPhone(Base):
    __tablename__ = "contact_phones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    e164: Mapped[str] = mapped_column(String(20), index=True)
    tail: Mapped[str] = mapped_column(String(PHONE_TAIL), index=True)  # last digits, for likely duplicates
    label: Mapped[str] = mapped_column(String(40), default="", server_default=text("''"))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    __table_args__ = (UniqueConstraint("contact_id", "e164"),)


class ContactEmail(Base):
    __tablename__ = "contact_emails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254), index=True)  # lower-cased
    label: Mapped[str] = mapped_column(String(40), default="", server_default=text("''"))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    __table_args__ = (UniqueConstraint("contact_id", "email"),)


class Company(Base):
    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    fiscal_code: Mapped[str | None] = mapped_column(String(13), unique=True)  # IDNO, unique when known
    industry: Mapped[str] = mapped_column(String(100), default="", server_default=text("''"))
    size: Mapped[str] = mapped_column(String(20), default="", server_default=text("''"))
    address: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="SET NULL"), index=True)
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ContactCompany(Base):
    """A person working at (or owning, or representing) a company."""

    __tablename__ = "contact_companies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(100), default="", server_default=text("''"))

    __table_args__ = (UniqueConstraint("contact_id", "company_id"),)


class ContactRelation(Base):
    """One person's tie to another, stored once from the side it was entered on; read both ways."""

    __tablename__ = "contact_relations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    related_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # spouse, guarantor, relative, other

    __table_args__ = (UniqueConstraint("contact_id", "related_id", "kind"),)


class DuplicateCandidate(Base):
    """A likely (or exact but unlinked) pair noticed on a write that could not stop to ask — ingest, an
    import, a save the user confirmed. `contact_id` < `other_id`; the duplicates page lists the open ones."""

    __tablename__ = "duplicate_candidates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    other_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    score: Mapped[float] = mapped_column(Float, default=100.0)
    dismissed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("contact_id", "other_id"),)
