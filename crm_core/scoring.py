"""Lead scoring, the front door: a lead's score is the points of the admin's rules it meets
(`crm_core.scoring_rules`) plus a manager's correction, kept within 0-100, with the breakdown stored on the
lead; beside it the learned win probability (`crm_core.scoring_learned`) once the history allows.

The score is recomputed, one lead at a time, whenever something it depends on changes — the lead
(`leads.update_lead`), its contact's profile (`profile.save_contact`, `contacts.update_contact`), a new
lead from ingest (`contacts.resolve_contact`) — and whenever the inbox reports engagement through
`note_engagement` (a customer's reply, an answered call: crm_core never imports the inbox). A changed rule
rescores every open lead in the background (`RESCORE_JOB`). A deal won, lost or reopened teaches the
learned model (`note_outcome`, from `funnel`).

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import scoring_learned, scoring_rules
from crm_core.models import Lead
from crm_core.scoring_facts import LeadScoreRow, load
from crm_core.scoring_learned import Learned
from crm_core.scoring_rules import Rule
from switchboard import jobs
from switchboard.jobs import JobContext, JobRegistry
from switchboard.jobs_model import Job

log = logging.getLogger(__name__)

MAX_SCORE = 100
RESCORE_JOB = "scoring.rescore"
RESCORE_BATCH = 500
CONVERTED = "converted"  # crm_core.leads.LeadStatus.CONVERTED (leads imports this module)


class Engagement(StrEnum):
    REPLY = "reply"  # the customer wrote back after an agent's answer
    ANSWERED_CALL = "answered_call"  # a call with the customer was answered (either way)


_COUNTERS = {Engagement.REPLY: Lead.customer_replies, Engagement.ANSWERED_CALL: Lead.answered_calls}


def clamp(total: int) -> int:
    return max(0, min(MAX_SCORE, total))


@dataclass(frozen=True)
class ScoreCard:
    """A lead's score explained: the rules that gave points, a manager's correction, and the learned
    probability with its strongest factors."""

    score: int
    rules: list[dict[str, Any]]  # [{rule_id, name, points}]
    adjustment: int
    total: int  # the points plus the correction, before keeping within 0-100
    replies: int
    answered_calls: int
    learned: Learned

    def as_json(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "breakdown": self.rules,
            "adjustment": self.adjustment,
            "total": self.total,
            "engagement": {"replies": self.replies, "answered_calls": self.answered_calls},
            "learned": self.learned.as_json(),
        }


async def _apply(session: AsyncSession, row: LeadScoreRow, rules: list[Rule], target: int | None) -> int:
    """Score one lead and write it only when something changed. `target`: the score a manager set — the
    correction becomes whatever makes the rules' points reach it."""
    total, breakdown = scoring_rules.evaluate(rules, row.facts)
    if target is None and not row.breakdown and not row.adjustment and row.score:
        target = row.score  # a score no rule explains was set by hand before scoring (or in the DB): kept
    adjustment = row.adjustment if target is None else target - total
    score = clamp(total + adjustment)
    if (score, breakdown, adjustment) != (row.score, row.breakdown, row.adjustment):
        await session.execute(
            update(Lead)
            .where(Lead.id == row.lead_id)
            .values(score=score, score_breakdown=breakdown, score_adjustment=adjustment)
            .execution_options(synchronize_session=False)
        )
    return score


async def _rescore(session: AsyncSession, where: ColumnElement[bool]) -> int:
    rules = await scoring_rules.active_rules(session)
    rows = await load(session, where)
    for row in rows:
        await _apply(session, row, rules, None)
    return len(rows)


async def recompute(session: AsyncSession, lead_id: int, *, target: int | None = None) -> int | None:
    """The lead's score now (None: no such lead); `target` sets it by hand (see `_apply`)."""
    rows = await load(session, Lead.id == lead_id)
    if not rows:
        return None
    return await _apply(session, rows[0], await scoring_rules.active_rules(session), target)


async def recompute_many(session: AsyncSession, lead_ids: list[int]) -> int:
    """Score several new or changed leads at once (an import's batch), reading the rules once."""
    return await _rescore(session, Lead.id.in_(lead_ids)) if lead_ids else 0


async def recompute_contact(session: AsyncSession, contact_id: int) -> int:
    """Rescore the contact's leads (their profile changed); returns how many."""
    return await _rescore(session, Lead.contact_id == contact_id)


async def note_engagement(session: AsyncSession, contact_id: int, kind: Engagement | str) -> int:
    """The inbox saw the customer engage (`Engagement`): count it on their leads not yet converted and
    rescore those. Returns how many leads counted it."""
    counter = _COUNTERS[Engagement(kind)]
    result = await session.execute(
        update(Lead)
        .where(Lead.contact_id == contact_id, Lead.status != CONVERTED)
        .values({counter: counter + 1})
        .returning(Lead.id)
        .execution_options(synchronize_session=False)
    )
    ids = list(result.scalars())
    if ids:
        await _rescore(session, Lead.id.in_(ids))
    return len(ids)


async def note_outcome(session: AsyncSession, lead_id: int, status: str) -> bool:
    """The lead's deal is now won, lost or open again: the learned model learns or unlearns it."""
    return await scoring_learned.note_outcome(session, lead_id, status)


async def learned(session: AsyncSession, lead_id: int) -> Learned | None:
    rows = await load(session, Lead.id == lead_id)
    if not rows:
        return None
    return scoring_learned.learned_for(await scoring_learned.state(session), rows[0].facts)


async def score_card(session: AsyncSession, lead_id: int) -> ScoreCard | None:
    rows = await load(session, Lead.id == lead_id)
    if not rows:
        return None
    row = rows[0]
    points = sum(int(e.get("points") or 0) for e in row.breakdown)
    return ScoreCard(
        score=row.score,
        rules=row.breakdown,
        adjustment=row.adjustment,
        total=points + row.adjustment,
        replies=row.facts.replies,
        answered_calls=row.facts.answered_calls,
        learned=scoring_learned.learned_for(await scoring_learned.state(session), row.facts),
    )


# --- rescoring everything after a rule changed ------------------------------------------------------------


async def request_rescore(session: AsyncSession) -> None:
    """Rescore every open lead in the background (after a rule changed), unless a rescore is already
    waiting to start — it will read the rules as they are when it runs."""
    waiting = await session.scalar(
        select(Job.id).where(Job.kind == RESCORE_JOB, Job.dead.is_(False), Job.locked_by.is_(None)).limit(1)
    )
    if waiting is None:
        await jobs.enqueue(session, RESCORE_JOB, {})


async def rescore_all(sessions: async_sessionmaker[AsyncSession], *, batch: int = RESCORE_BATCH) -> int:
    """Rescore the leads not yet converted, a batch per transaction; returns how many were scored."""
    after, done = 0, 0
    while True:
        async with sessions() as session, session.begin():
            rules = await scoring_rules.active_rules(session)
            rows = await load(session, (Lead.id > after) & (Lead.status != CONVERTED), limit=batch)
            for row in rows:
                await _apply(session, row, rules, None)
        if not rows:
            return done
        done += len(rows)
        after = rows[-1].lead_id


async def _rescore_job(ctx: JobContext, _payload: dict[str, Any]) -> None:
    count = await rescore_all(ctx.sessions)
    log.info("scoring: %d lead(s) rescored", count)


def register(registry: JobRegistry) -> None:
    registry.add(RESCORE_JOB, _rescore_job)
