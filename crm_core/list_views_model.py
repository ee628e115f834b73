"""Tables of the list pages (issue 7): saved list views (a named filter, columns and sort over contacts,
companies, leads or deals), each user's default view per list, and the admin's field hiding by role.

A view stores its filters as the JSON conditions `crm_core.list_views` reads back through the same checks
as a request's, so a view saved before a field was hidden or removed simply stops matching that field."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow

MAX_VIEW_NAME = 100
MAX_FIELD_NAME = 60  # "custom." + a custom field's key, or a core field's name


class SavedView(Base):
    __tablename__ = "saved_views"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))  # contact, company, lead, deal
    name: Mapped[str] = mapped_column(String(MAX_VIEW_NAME))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    filters: Mapped[list[dict[str, Any]]] = mapped_column(default=list, server_default=text("'[]'"))
    columns: Mapped[list[str]] = mapped_column(default=list, server_default=text("'[]'"))
    sort: Mapped[str] = mapped_column(String(MAX_FIELD_NAME + 1), default="", server_default=text("''"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("owner_id", "entity", "name"),)


class DefaultView(Base):
    """The view a user's list opens with (their own or a shared one)."""

    __tablename__ = "default_views"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    entity: Mapped[str] = mapped_column(String(20), primary_key=True)
    view_id: Mapped[int] = mapped_column(ForeignKey("saved_views.id", ondelete="CASCADE"), index=True)


class HiddenField(Base):
    """A field (core name or `custom.<key>`) a role may not see on lists, filters, exports and pages."""

    __tablename__ = "hidden_fields"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    role: Mapped[str] = mapped_column(String(20))
    field: Mapped[str] = mapped_column(String(MAX_FIELD_NAME))

    __table_args__ = (UniqueConstraint("entity", "role", "field"),)
