"""The learned score: naive Bayes with Laplace smoothing over a lead's properties (product, source channel,
UTM source, branch, amount and term buckets, profile completeness, engagement buckets), trained on the
leads whose deal was won or lost. Counts only add up, so learning is incremental — each deal that closes
adds its lead's values, one that reopens or flips takes them back (`scoring_examples` remembers what was
added) — and `retrain` rebuilds the same counts from the history itself.

The probability is shown only once the history is large enough (`ScoringModel.min_closed`, `min_won`,
`min_lost`); with it come the factors that moved it most (each property's log-odds contribution)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.funnel_model import Deal
from crm_core.models import Lead
from crm_core.scoring_facts import Facts, load
from crm_core.scoring_model import MAX_FEATURE_VALUE, ScoringCount, ScoringExample, ScoringModel
from switchboard.db import insert_ignoring_duplicates, is_postgres, utcnow
from switchboard.errors import N_, Invalid

ALPHA = 1.0  # Laplace smoothing
TOP_FACTORS = 5
MIN_FACTOR = 0.05  # |log-odds| below this says nothing worth showing
OUTCOMES = ("won", "lost")
FEATURES = (
    "product",
    "source_channel",
    "utm_source",
    "branch",
    "amount",
    "term",
    "has_phone",
    "has_email",
    "has_idnp",
    "has_birth_date",
    "replies",
    "answered_calls",
)
_AMOUNTS = (
    (Decimal(20000), "<20k"),
    (Decimal(50000), "20k-50k"),
    (Decimal(100000), "50k-100k"),
    (Decimal(250000), "100k-250k"),
    (Decimal(500000), "250k-500k"),
)
_TERMS = ((12, "<=12"), (36, "13-36"), (60, "37-60"), (120, "61-120"))
_CACHE = "crm_core.scoring_learned.state"
MODEL_ID = 1


def _bucket(value: Any, edges: Iterable[tuple[Any, str]], last: str, *, inclusive: bool) -> str:
    """The label of the first edge `value` is below (or at, when `inclusive`)."""
    for edge, label in edges:
        if value < edge or (inclusive and value == edge):
            return label
    return last


def features_of(facts: Facts) -> dict[str, str]:
    """The property values naive Bayes counts for a lead; "none" where nothing is known."""
    amount = "none"
    if facts.amount is not None:  # buckets are in the lead's currency: no exchange rate is guessed
        amount = _bucket(facts.amount, _AMOUNTS, ">=500k", inclusive=False)
        amount = amount if facts.currency == "MDL" else f"{facts.currency} {amount}"
    term = "none" if facts.term_months is None else _bucket(facts.term_months, _TERMS, ">120", inclusive=True)
    replies = (
        "0" if facts.replies <= 0 else "1" if facts.replies == 1 else "2-4" if facts.replies < 5 else "5+"
    )
    calls = "0" if facts.answered_calls <= 0 else "1" if facts.answered_calls == 1 else "2+"
    values = {
        "product": facts.product or "none",
        "source_channel": facts.source_channel or "none",
        "utm_source": (facts.utm_source or "none").strip().lower() or "none",
        "branch": str(facts.branch_id) if facts.branch_id is not None else "none",
        "amount": amount,
        "term": term,
        "has_phone": "yes" if facts.has_phone else "no",
        "has_email": "yes" if facts.has_email else "no",
        "has_idnp": "yes" if facts.has_idnp else "no",
        "has_birth_date": "yes" if facts.has_birth_date else "no",
        "replies": replies,
        "answered_calls": calls,
    }
    return {k: v[:MAX_FEATURE_VALUE] for k, v in values.items()}


# --- predicting (pure) --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Factor:
    feature: str
    value: str
    weight: float  # log-odds contribution: > 0 towards won, < 0 towards lost

    def as_json(self) -> dict[str, Any]:
        return {"feature": self.feature, "value": self.value, "weight": round(self.weight, 3)}


@dataclass(frozen=True)
class ModelState:
    won: int
    lost: int
    min_closed: int
    min_won: int
    min_lost: int
    counts: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    retrained_at: Any = None

    @property
    def closed(self) -> int:
        return self.won + self.lost

    @property
    def ready(self) -> bool:
        return self.closed >= self.min_closed and self.won >= self.min_won and self.lost >= self.min_lost


def predict(state: ModelState, values: Mapping[str, str]) -> tuple[float, list[Factor]]:
    """P(won | values) by naive Bayes with Laplace smoothing, and each property's contribution to the
    log-odds, strongest first."""
    seen: dict[str, set[str]] = {}
    for feature, value in state.counts:
        seen.setdefault(feature, set()).add(value)
    log_odds = math.log((state.won + ALPHA) / (state.lost + ALPHA))
    factors: list[Factor] = []
    for feature, value in values.items():
        known = seen.get(feature, set())
        k = len(known | {value})  # an unseen value still gets its smoothed share
        won, lost = state.counts.get((feature, value), (0, 0))
        p_won = (won + ALPHA) / (state.won + ALPHA * k)
        p_lost = (lost + ALPHA) / (state.lost + ALPHA * k)
        weight = math.log(p_won / p_lost)
        log_odds += weight
        factors.append(Factor(feature, value, weight))
    factors.sort(key=lambda f: (-abs(f.weight), f.feature))
    probability = 1.0 / (1.0 + math.exp(-max(min(log_odds, 50.0), -50.0)))
    return probability, factors


@dataclass(frozen=True)
class Learned:
    """What the lead page shows beside the rules' score."""

    ready: bool
    probability: float | None  # 0..1, None until the history is large enough
    factors: list[Factor]
    closed: int
    won: int
    lost: int
    min_closed: int
    min_won: int
    min_lost: int

    @property
    def percent(self) -> int | None:
        return None if self.probability is None else round(self.probability * 100)

    def as_json(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "probability": None if self.probability is None else round(self.probability, 4),
            "percent": self.percent,
            "factors": [f.as_json() for f in self.factors],
            "history": {"closed": self.closed, "won": self.won, "lost": self.lost},
            "needs": {"closed": self.min_closed, "won": self.min_won, "lost": self.min_lost},
        }


def learned_for(state: ModelState, facts: Facts) -> Learned:
    probability: float | None = None
    factors: list[Factor] = []
    if state.ready:
        probability, ranked = predict(state, features_of(facts))
        factors = [f for f in ranked if abs(f.weight) >= MIN_FACTOR][:TOP_FACTORS]
    return Learned(
        state.ready,
        probability,
        factors,
        state.closed,
        state.won,
        state.lost,
        state.min_closed,
        state.min_won,
        state.min_lost,
    )


# --- the stored state ---------------------------------------------------------------------------------------


async def _model_row(session: AsyncSession, *, lock: bool = False) -> ScoringModel:
    """The model's one row, made with the default thresholds if someone emptied the table."""
    query = select(ScoringModel).where(ScoringModel.id == MODEL_ID).execution_options(populate_existing=True)
    row = await session.scalar(query.with_for_update() if lock else query)
    if row is None:
        await session.execute(
            insert_ignoring_duplicates(session, ScoringModel.__table__),  # type: ignore[arg-type]
            {
                "id": MODEL_ID,
                "won": 0,
                "lost": 0,
                "min_closed": 30,
                "min_won": 5,
                "min_lost": 5,
                "updated_at": utcnow(),
            },
        )
        row = await session.scalar(query.with_for_update() if lock else query)
        assert row is not None
    return row


async def state(session: AsyncSession) -> ModelState:
    """The model as this transaction sees it (read once per transaction)."""
    cached = session.info.get(_CACHE)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    row = await _model_row(session)
    counts = {
        (c.feature, c.value): (c.won, c.lost)
        for c in await session.execute(
            select(ScoringCount.feature, ScoringCount.value, ScoringCount.won, ScoringCount.lost)
        )
    }
    result = ModelState(
        row.won, row.lost, row.min_closed, row.min_won, row.min_lost, counts, row.retrained_at
    )
    session.info[_CACHE] = result
    return result


def _forget(session: AsyncSession) -> None:
    session.info.pop(_CACHE, None)


async def set_thresholds(
    session: AsyncSession, *, min_closed: Any, min_won: Any, min_lost: Any
) -> ModelState:
    """How much history the learned score needs before it is shown."""
    values = {}
    for name, value in (("min_closed", min_closed), ("min_won", min_won), ("min_lost", min_lost)):
        if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 7:
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100000:
            raise Invalid(N_("Enter a number from %(min)s to %(max)s."), field=name, min=1, max=100000)
        values[name] = value
    row = await _model_row(session, lock=True)
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    await session.flush()
    _forget(session)
    return await state(session)


async def _add_counts(session: AsyncSession, values: Mapping[str, str], outcome: str, sign: int) -> None:
    dw, dl = (sign, 0) if outcome == "won" else (0, sign)
    table = ScoringCount.__table__
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    statement = insert(table)  # type: ignore[arg-type]
    statement = statement.on_conflict_do_update(
        index_elements=["feature", "value"],
        set_={"won": table.c.won + statement.excluded.won, "lost": table.c.lost + statement.excluded.lost},
    )
    await session.execute(
        statement, [{"feature": f, "value": v, "won": dw, "lost": dl} for f, v in sorted(values.items())]
    )
    await session.execute(
        update(ScoringModel)
        .where(ScoringModel.id == MODEL_ID)
        .values(won=ScoringModel.won + dw, lost=ScoringModel.lost + dl, updated_at=utcnow())
    )


async def note_outcome(session: AsyncSession, lead_id: int, status: str) -> bool:
    """A lead's deal is now `status` (won, lost or open again): take back what it taught the model
    before, and teach it the lead's values with the new outcome. Returns whether anything changed."""
    await _model_row(session, lock=True)  # one learner at a time: counts and totals move together
    example = await session.scalar(
        select(ScoringExample).where(ScoringExample.lead_id == lead_id).with_for_update()
    )
    changed = False
    if example is not None:
        if example.outcome == status:
            return False
        await _add_counts(session, example.features, example.outcome, -1)
        await session.delete(example)
        changed = True
    if status in OUTCOMES:
        rows = await load(session, Lead.id == lead_id)
        if rows:
            values = features_of(rows[0].facts)
            session.add(ScoringExample(lead_id=lead_id, outcome=status, features=values))
            await _add_counts(session, values, status, +1)
            changed = True
    await session.execute(delete(ScoringCount).where(ScoringCount.won <= 0, ScoringCount.lost <= 0))
    await session.flush()
    _forget(session)
    return changed


async def retrain(session: AsyncSession) -> ModelState:
    """Rebuild the counts from every lead whose deal is won or lost, with the leads' values as they are
    now (the admin's "retrain from history")."""
    row = await _model_row(session, lock=True)
    await session.execute(delete(ScoringExample))
    await session.execute(delete(ScoringCount))
    outcomes: dict[int, str] = {
        lead_id: status
        for lead_id, status in await session.execute(
            select(Deal.lead_id, Deal.status).where(Deal.lead_id.is_not(None), Deal.status.in_(OUTCOMES))
        )
        if lead_id is not None
    }
    counts: Counter[tuple[str, str, str]] = Counter()
    examples: list[dict[str, Any]] = []
    ids = sorted(outcomes)
    for start in range(0, len(ids), 500):
        for r in await load(session, Lead.id.in_(ids[start : start + 500])):
            values = features_of(r.facts)
            outcome = outcomes[r.lead_id]
            examples.append(
                {"lead_id": r.lead_id, "outcome": outcome, "features": values, "created_at": utcnow()}
            )
            counts.update((f, v, outcome) for f, v in values.items())
    if examples:
        await session.execute(ScoringExample.__table__.insert(), examples)  # type: ignore[attr-defined]
        merged: dict[tuple[str, str], list[int]] = {}
        for (f, v, outcome), n in counts.items():
            merged.setdefault((f, v), [0, 0])[0 if outcome == "won" else 1] += n
        await session.execute(
            ScoringCount.__table__.insert(),  # type: ignore[attr-defined]
            [{"feature": f, "value": v, "won": w, "lost": lo} for (f, v), (w, lo) in sorted(merged.items())],
        )
    row.won = sum(1 for e in examples if e["outcome"] == "won")
    row.lost = len(examples) - row.won
    row.retrained_at = row.updated_at = utcnow()
    await session.flush()
    _forget(session)
    return await state(session)


async def history(session: AsyncSession) -> dict[str, int]:
    """How many won and lost deals with a lead there are now (what a retrain would learn from)."""
    out = {"won": 0, "lost": 0}
    for status, n in await session.execute(
        select(Deal.status, func.count(Deal.id))
        .where(Deal.lead_id.is_not(None), Deal.status.in_(OUTCOMES))
        .group_by(Deal.status)
    ):
        out[status] = int(n)
    return out
