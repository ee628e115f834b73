"""The tables of lead scoring (issue 7): the admin's rules, and the learned model's state — its settings
and class totals (one row), its naive-Bayes counts per property value, and the closed leads it has learned
from (so a deal that reopens or flips from won to lost can be taken back out exactly).

A lead's own score, its breakdown and its engagement counters live on `leads` (crm_core.models.Lead)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow

MAX_RULE_NAME = 120
MAX_FEATURE = 40
MAX_FEATURE_VALUE = 120


class ScoringRule(Base):
    """One rule: when the lead matches `kind` with `params` (crm_core.scoring.RuleKind), add `points`."""

    __tablename__ = "scoring_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_RULE_NAME))  # shown in the lead's breakdown
    kind: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    points: Mapped[int] = mapped_column(Integer)  # may be negative
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    position: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ScoringModel(Base):
    """The learned model's one row (id 1): how much history it needs before it is shown, how many won and
    lost leads it has counted, and when it was last rebuilt from history."""

    __tablename__ = "scoring_model"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    min_closed: Mapped[int] = mapped_column(Integer, default=30, server_default=text("30"))
    min_won: Mapped[int] = mapped_column(Integer, default=5, server_default=text("5"))
    min_lost: Mapped[int] = mapped_column(Integer, default=5, server_default=text("5"))
    won: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    lost: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    retrained_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ScoringCount(Base):
    """How many won and lost leads had `feature` = `value` (e.g. product = mortgage)."""

    __tablename__ = "scoring_counts"

    feature: Mapped[str] = mapped_column(String(MAX_FEATURE), primary_key=True)
    value: Mapped[str] = mapped_column(String(MAX_FEATURE_VALUE), primary_key=True)
    won: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    lost: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class ScoringExample(Base):
    """A closed lead as the model counted it: its outcome and the property values it added."""

    __tablename__ = "scoring_examples"

    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(4))  # won, lost
    features: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
