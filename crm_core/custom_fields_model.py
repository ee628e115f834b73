"""The admin-defined fields of contacts, companies, leads and deals (issue 7). A definition lives here;
the values live in each record's JSON column `custom` (key → value), so a new field needs no migration and
a list view can filter on it with the engines' JSON operators."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow

MAX_KEY = 40
MAX_LABEL = 120


class CustomField(Base):
    __tablename__ = "custom_fields"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))  # contact, company, lead, deal
    key: Mapped[str] = mapped_column(String(MAX_KEY))  # the JSON key: lower-case letters, digits, _
    label: Mapped[str] = mapped_column(String(MAX_LABEL))
    kind: Mapped[str] = mapped_column(String(20))  # crm_core.custom_fields.FieldKind
    options: Mapped[list[dict[str, Any]]] = mapped_column(
        default=list, server_default=text("'[]'")
    )  # choices: [{"code", "label"}]
    required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    position: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("entity", "key"),)
