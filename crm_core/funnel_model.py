"""Tables of the vocabularies every form picks from (`classifiers`) and of the minimal sales funnel a
converted lead lands in: pipelines, their ordered stages with a win probability, and deals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow

MAX_CODE = 50
MAX_LABEL = 200


class Classifier(Base):
    """One entry of an admin-editable vocabulary (`kind`: product, region, loss_reason…). Records keep
    the `code`, so renaming a label never rewrites history; entries are deactivated, never deleted."""

    __tablename__ = "classifiers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    code: Mapped[str] = mapped_column(String(MAX_CODE))
    label_ro: Mapped[str] = mapped_column(String(MAX_LABEL))
    label_en: Mapped[str] = mapped_column(String(MAX_LABEL))
    label_ru: Mapped[str] = mapped_column(String(MAX_LABEL))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("classifiers.id", ondelete="SET NULL"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("kind", "code"),
        Index("ix_classifiers_kind_position", "kind", "position"),
    )


class Pipeline(Base):
    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Stage(Base):
    """A step of a pipeline; `kind` won / lost marks the closing stages a deal's win / loss moves it to."""

    __tablename__ = "stages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)
    probability: Mapped[int] = mapped_column(Integer, default=0)  # 0 to 100 %
    kind: Mapped[str] = mapped_column(String(10), default="open")  # open, won, lost

    __table_args__ = (Index("ix_stages_pipeline_position", "pipeline_id", "position"),)


class Deal(Base):
    """A credit application on its way through a pipeline. `lead_id` is unique: a lead converts once."""

    __tablename__ = "deals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"), unique=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id"))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="MDL")
    product: Mapped[str | None] = mapped_column(String(MAX_CODE))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default="open")  # open, won, lost
    lost_reason: Mapped[str | None] = mapped_column(String(MAX_CODE))
    closed_at: Mapped[dt.datetime | None]
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_deals_branch_status", "branch_id", "status"),
        Index("ix_deals_owner_status", "owner_id", "status"),
        Index("ix_deals_stage", "stage_id"),
    )
