"""`crm_core.scoring`: every rule kind scores as set and the breakdown adds up to the total; the score is
recomputed when the lead changes, when the profile gets more complete, when the customer replies (through
`Inbox.ingest` after an agent's answer) and when a call is answered (through `CallLog`); a manager's score
becomes a correction the rules keep. The learned naive-Bayes score stays hidden below the history
threshold, appears above it, ranks a lead like the won ones above one like the lost ones, and its
incremental counts equal a full retrain."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import Channel, InboundMessage
from crm_core import classifiers, funnel, leads, profile, scoring, scoring_learned, scoring_rules
from crm_core.custom_fields_model import CustomField
from crm_core.models import Contact, Lead
from crm_core.scoring_facts import Facts
from crm_core.scoring_model import ScoringCount, ScoringExample, ScoringRule
from crm_core.scoring_rules import Rule
from inbox.service import Inbox, Viewer
from switchboard.accounts_model import Branch, User
from switchboard.audit import SYSTEM
from switchboard.bus import InMemoryBus
from switchboard.errors import Invalid
from switchboard.permissions import Role
from tests.inbox.test_calls_log import Desk, desk, recorded, route  # noqa: F401 - `desk` is a fixture

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def bus() -> AsyncIterator[InMemoryBus]:
    bus = InMemoryBus()
    await bus.start()
    yield bus
    await bus.close()


def _rule(kind: str, points: int = 10, **params: Any) -> Rule:
    return Rule(1, f"{kind} rule", kind, params, points, True, 10)


@pytest.mark.parametrize(
    ("rule", "hit", "miss"),
    [
        (_rule("product", values=["mortgage"]), Facts(product="mortgage"), Facts(product="consumer")),
        (
            _rule("amount", min="50000.00", max="100000.00", currency="MDL"),
            Facts(amount=Decimal("100000")),
            Facts(amount=Decimal("100000"), currency="EUR"),
        ),
        (_rule("amount", min=None, max="4999.99"), Facts(amount=Decimal("10")), Facts(amount=None)),
        (_rule("term", min=12, max=60), Facts(term_months=12), Facts(term_months=61)),
        (
            _rule("source_channel", values=["phone"]),
            Facts(source_channel="phone"),
            Facts(source_channel="sms"),
        ),
        (_rule("utm_source", values=["Google"]), Facts(utm_source="google "), Facts(utm_source="facebook")),
        (_rule("campaign", values=["toamna"]), Facts(utm_campaign="Toamna"), Facts(campaign="vara")),
        (_rule("branch", values=[7]), Facts(branch_id=7), Facts(branch_id=None)),
        (_rule("completeness", item="phone"), Facts(has_phone=True), Facts()),
        (_rule("completeness", item="email"), Facts(has_email=True), Facts()),
        (_rule("completeness", item="idnp"), Facts(has_idnp=True), Facts()),
        (_rule("completeness", item="birth_date"), Facts(has_birth_date=True), Facts()),
        (
            _rule("completeness", item="custom", entity="contact", key="income"),
            Facts(contact_custom={"income": "12000.00"}),
            Facts(lead_custom={"income": "12000.00"}, contact_custom={"income": ""}),
        ),
        (
            _rule("completeness", item="custom", entity="lead", key="pledge"),
            Facts(lead_custom={"pledge": True}),
            Facts(lead_custom={"pledge": None}),
        ),
        (_rule("replies", min=2), Facts(replies=2), Facts(replies=1)),
        (_rule("answered_calls", points=-5, min=1), Facts(answered_calls=1), Facts()),
    ],
)
def test_each_rule_kind_scores_its_points_only_when_the_lead_meets_it(
    rule: Rule, hit: Facts, miss: Facts
) -> None:
    assert scoring_rules.evaluate([rule], hit) == (
        rule.points,
        [{"rule_id": rule.id, "name": rule.name, "points": rule.points}],
    )
    assert scoring_rules.evaluate([rule], miss) == (0, [])


def test_inactive_rules_never_count_and_the_breakdown_adds_up() -> None:
    rules = [
        _rule("product", 20, values=["mortgage"]),
        Rule(2, "phone", "completeness", {"item": "phone"}, 15, True, 20),
        Rule(3, "off", "completeness", {"item": "phone"}, 50, False, 30),
        Rule(4, "small", "amount", {"min": None, "max": "4999.99"}, -10, True, 40),
    ]
    total, breakdown = scoring_rules.evaluate(
        rules, Facts(product="mortgage", has_phone=True, amount=Decimal(10))
    )
    assert [e["rule_id"] for e in breakdown] == [1, 2, 4]
    assert total == sum(e["points"] for e in breakdown) == 25


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "product", "points": 5, "values": "mortgage"}, "name"),
        ({"name": "x" * 121, "kind": "product", "points": 5, "values": "mortgage"}, "name"),
        ({"name": "r", "kind": "colour", "points": 5}, "kind"),
        ({"name": "r", "kind": "product", "points": 101, "values": "mortgage"}, "points"),
        ({"name": "r", "kind": "product", "points": "ten", "values": "mortgage"}, "points"),
        ({"name": "r", "kind": "product", "points": 0, "values": "mortgage"}, "points"),
        ({"name": "r", "kind": "product", "points": 5, "values": ""}, "values"),
        ({"name": "r", "kind": "product", "points": 5, "values": "Ipotecă!"}, "values"),
        ({"name": "r", "kind": "branch", "points": 5, "values": "north"}, "values"),
        ({"name": "r", "kind": "amount", "points": 5}, "min"),
        ({"name": "r", "kind": "amount", "points": 5, "min": "lots"}, "min"),
        ({"name": "r", "kind": "amount", "points": 5, "min": "500", "max": "100"}, "max"),
        ({"name": "r", "kind": "amount", "points": 5, "min": "500", "currency": "BTC"}, "currency"),
        ({"name": "r", "kind": "term", "points": 5, "min": 0}, "min"),
        ({"name": "r", "kind": "replies", "points": 5}, "min"),
        ({"name": "r", "kind": "completeness", "points": 5, "item": "shoe_size"}, "item"),
        ({"name": "r", "kind": "completeness", "points": 5, "item": "custom", "entity": "deal"}, "entity"),
        ({"name": "r", "kind": "completeness", "points": 5, "item": "custom"}, "key"),
        ({"name": "r", "kind": "product", "points": 5, "values": "mortgage", "active": "maybe"}, "active"),
    ],
)
def test_bad_rules_are_refused_with_the_field_named(data: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        scoring_rules.parse_rule(data)
    assert caught.value.field == field


async def test_rules_must_name_real_products_branches_and_custom_fields(sessions: Sessions) -> None:
    await _rules(sessions)
    async with sessions() as db, db.begin():
        db.add(CustomField(entity="contact", key="income", label="Income", kind="money"))
        await db.flush()
        for data, field in (
            ({"kind": "product", "values": "yacht"}, "values"),
            ({"kind": "branch", "values": "999999"}, "values"),
            ({"kind": "completeness", "item": "custom", "entity": "contact", "key": "pets"}, "key"),
        ):
            with pytest.raises(Invalid) as caught:
                await scoring_rules.create_rule(
                    db, SYSTEM, scoring_rules.parse_rule({"name": "r", "points": 5, **data})
                )
            assert caught.value.field == field
        made = await scoring_rules.create_rule(
            db,
            SYSTEM,
            scoring_rules.parse_rule(
                {
                    "name": "Income known",
                    "points": 5,
                    "kind": "completeness",
                    "item": "custom",
                    "key": "income",
                }
            ),
        )
    assert made.params == {"item": "custom", "entity": "contact", "key": "income"} and made.position == 10


# --- through the database ---------------------------------------------------------------------------------


async def _rules(sessions: Sessions, *rules: dict[str, Any]) -> list[Rule]:
    """Exactly these rules (the first test of a run also sees the migration's day-one rules)."""
    async with sessions() as db, db.begin():
        await db.execute(delete(ScoringRule))
        await classifiers.seed_defaults(db)
        return [await scoring_rules.create_rule(db, SYSTEM, scoring_rules.parse_rule(r)) for r in rules]


async def _lead(sessions: Sessions, **lead: Any) -> tuple[int, int]:
    async with sessions() as db, db.begin():
        contact = Contact(first_name="Maria", phone=lead.pop("phone", None))
        db.add(contact)
        await db.flush()
        row = Lead(contact_id=contact.id, source_channel=lead.pop("source_channel", "telegram"), **lead)
        db.add(row)
        await db.flush()
        return contact.id, row.id


async def _card(sessions: Sessions, lead_id: int) -> scoring.ScoreCard:
    async with sessions() as db:
        card = await scoring.score_card(db, lead_id)
    assert card is not None
    return card


async def _update(
    sessions: Sessions, lead_id: int, role: Role = Role.ADMIN, **changes: Any
) -> leads.LeadView:
    async with sessions() as db, db.begin():
        return await leads.update_lead(db, SYSTEM, role, lead_id, changes)


MORTGAGE = {"name": "Mortgage", "kind": "product", "values": "mortgage", "points": 40}
BIG = {"name": "Big amount", "kind": "amount", "min": "100000", "points": 30}
PHONE = {"name": "Phone known", "kind": "completeness", "item": "phone", "points": 20}
BIRTH = {"name": "Birth date known", "kind": "completeness", "item": "birth_date", "points": 15}
MAIL = {"name": "E-mail known", "kind": "completeness", "item": "email", "points": 5}
REPLIES = {"name": "Replied", "kind": "replies", "min": 1, "points": 10}
CALLS = {"name": "Answered a call", "kind": "answered_calls", "min": 1, "points": 25}


async def test_a_lead_update_recomputes_the_score_and_its_breakdown(sessions: Sessions) -> None:
    await _rules(sessions, MORTGAGE, BIG, PHONE)
    _, lead_id = await _lead(sessions, phone="+37369000001")
    lead = await _update(sessions, lead_id, product="mortgage")
    card = await _card(sessions, lead_id)
    assert lead.score == card.score == card.total == 40 + 20
    assert [(e["name"], e["points"]) for e in card.rules] == [("Mortgage", 40), ("Phone known", 20)]
    lead = await _update(sessions, lead_id, amount="250000")
    card = await _card(sessions, lead_id)
    assert card.total == sum(e["points"] for e in card.rules) == 90 and lead.score == 90
    assert (await _update(sessions, lead_id, product="consumer")).score == 50


async def test_the_score_stays_within_0_and_100(sessions: Sessions) -> None:
    await _rules(
        sessions,
        MORTGAGE,
        BIG,
        PHONE,
        {**MAIL, "points": 30},
        {"name": "Tiny", "kind": "term", "max": 3, "points": -100},
    )
    _, lead_id = await _lead(sessions, phone="+37369000001")
    async with sessions() as db, db.begin():
        await db.execute(select(Contact))  # the contact gets an e-mail below
        contact = (await db.scalars(select(Contact))).one()
        contact.email = "maria@example.md"
    lead = await _update(sessions, lead_id, product="mortgage", amount="500000")
    card = await _card(sessions, lead_id)
    assert (card.total, lead.score) == (120, 100)
    assert (await _update(sessions, lead_id, product="", amount="", term_months=2)).score == 0


async def test_a_managers_score_becomes_a_correction_the_rules_keep(sessions: Sessions) -> None:
    await _rules(sessions, MORTGAGE, BIG)
    _, lead_id = await _lead(sessions)
    assert (await _update(sessions, lead_id, Role.SUPERVISOR, product="mortgage")).score == 40
    assert (await _update(sessions, lead_id, Role.SUPERVISOR, score=55)).score == 55
    card = await _card(sessions, lead_id)
    assert (card.adjustment, card.total) == (15, 55)
    # the form sends the score back unchanged with another change: the correction stays as it was
    assert (await _update(sessions, lead_id, Role.SUPERVISOR, amount="200000", score="55")).score == 85
    assert (await _card(sessions, lead_id)).adjustment == 15


async def test_a_score_set_before_the_rules_is_kept_as_a_correction(sessions: Sessions) -> None:
    await _rules(sessions, MORTGAGE)
    _, lead_id = await _lead(sessions, score=70)
    assert (await _update(sessions, lead_id, product="mortgage")).score == 70  # as the manager set it
    assert (await _card(sessions, lead_id)).adjustment == 30
    assert (await _update(sessions, lead_id, product="consumer")).score == 30


async def test_a_more_complete_profile_scores_more(sessions: Sessions) -> None:
    await _rules(sessions, BIRTH, MAIL)
    contact_id, lead_id = await _lead(sessions)
    async with sessions() as db, db.begin():
        await profile.save_contact(
            db,
            SYSTEM,
            contact_id,
            profile.ProfileInput(
                first_name="Maria", emails=("maria@example.md",), birth_date=dt.date(1985, 4, 23)
            ),
            confirm_duplicate=True,
        )
    card = await _card(sessions, lead_id)
    assert (card.score, [e["name"] for e in card.rules]) == (20, ["Birth date known", "E-mail known"])
    async with sessions() as db, db.begin():
        await profile.save_contact(db, SYSTEM, contact_id, profile.ProfileInput(first_name="Maria"))
    assert (await _card(sessions, lead_id)).score == 0


def _chat(external_id: str, sender: str = "visitor-9") -> InboundMessage:
    return InboundMessage(
        channel=Channel.WEBCHAT,
        account_id="site",
        external_id=external_id,
        sender_id=sender,
        body="Bună ziua",
    )


async def test_a_new_lead_from_ingest_is_scored_and_a_customer_reply_counts(
    sessions: Sessions, bus: InMemoryBus
) -> None:
    await _rules(
        sessions,
        REPLIES,
        {"name": "Website chat", "kind": "source_channel", "values": "webchat", "points": 5},
    )
    async with sessions() as db, db.begin():
        admin = User(username="root", role="admin", password_hash="-")
        db.add(admin)
        await db.flush()
    inbox = Inbox(sessions, bus)
    try:
        first = await inbox.ingest(_chat("m-1"))
        await inbox.ingest(_chat("m-2"))  # still waiting for an answer: not a reply
        async with sessions() as db:
            lead_id = (await db.scalars(select(Lead.id))).one()
        card = await _card(sessions, lead_id)
        assert (card.score, card.replies) == (5, 0)
        await inbox.send(
            Viewer(admin.id, Role.ADMIN, None), first.conversation_id, "Vă putem ajuta cu un credit"
        )
        await inbox.ingest(_chat("m-3"))  # the customer answers the agent
        await inbox.ingest(_chat("m-3"))  # the same webhook again changes nothing
        await inbox.ingest(_chat("m-4"))
    finally:
        await inbox.close()
    card = await _card(sessions, lead_id)
    assert (card.score, card.replies, [e["name"] for e in card.rules]) == (15, 1, ["Replied", "Website chat"])


async def test_an_answered_call_counts_on_the_callers_lead(desk: Desk) -> None:  # noqa: F811 - the fixture
    await _rules(desk.sessions, CALLS, PHONE)
    await desk.router.set_presence(desk.agents["PJSIP/1001"], "online")
    await route(desk, "1795431712.4", "79161234501", "Ivan Petrov")
    await desk.play(recorded("inbound_answered"))
    await desk.play(recorded("inbound_answered"))  # a replay counts nothing twice
    async with desk.sessions() as db:
        lead_id = (await db.scalars(select(Lead.id))).one()
    card = await _card(desk.sessions, lead_id)
    assert (card.answered_calls, card.score) == (1, 45)


async def test_a_changed_rule_rescores_the_open_leads_in_the_background(sessions: Sessions) -> None:
    _, lead_id = await _lead(sessions, product="mortgage")
    _, converted = await _lead(sessions, product="mortgage", status="converted")
    (rule,) = await _rules(sessions, MORTGAGE)
    async with sessions() as db:
        assert (await db.get(Lead, lead_id)).score == 0  # type: ignore[union-attr]
    assert await scoring.rescore_all(sessions, batch=1) == 1
    assert (await _card(sessions, lead_id)).score == 40
    assert (await _card(sessions, converted)).score == 0  # a converted lead keeps the score it had
    async with sessions() as db, db.begin():
        await scoring_rules.update_rule(
            db, SYSTEM, rule.id, scoring_rules.parse_rule({**MORTGAGE, "active": False})
        )
    await scoring.rescore_all(sessions)
    assert (await _card(sessions, lead_id)).score == 0


async def test_seeded_default_rules_score_a_typical_lead(sessions: Sessions) -> None:
    await _rules(sessions)
    async with sessions() as db, db.begin():
        assert await scoring_rules.seed_defaults(db) > 10
        assert await scoring_rules.seed_defaults(db) == 0
    _, lead_id = await _lead(sessions, phone="+37369000001", source_channel="phone")
    lead = await _update(sessions, lead_id, product="mortgage", amount="300000", term_months=48)
    card = await _card(sessions, lead_id)
    assert lead.score == card.total == sum(e["points"] for e in card.rules) > 50


# --- the learned score ------------------------------------------------------------------------------------


WON_LIKE = {"product": "mortgage", "utm_source": "referral", "phone": "+37369000001"}
LOST_LIKE = {"product": "consumer", "utm_source": "facebook"}


async def _close(sessions: Sessions, n: int, outcome: str, **lead: Any) -> list[int]:
    """`n` leads like `lead` whose deals were won or lost through the funnel."""
    deals = []
    for i in range(n):
        phone = lead.get("phone")
        _, lead_id = await _lead(sessions, **{**lead, "phone": phone and phone[:-3] + f"{i:03d}"})
        async with sessions() as db, db.begin():
            deal = await funnel.convert_lead(db, lead_id, by_user_id=None, actor=SYSTEM)
            if outcome == "won":
                await funnel.win(db, SYSTEM, deal.id)
            else:
                await funnel.lose(db, SYSTEM, deal.id, "bank_refused")
        deals.append(deal.id)
    return deals


async def _learned(sessions: Sessions, lead_id: int) -> scoring_learned.Learned:
    async with sessions() as db:
        found = await scoring.learned(db, lead_id)
    assert found is not None
    return found


async def _counts(sessions: Sessions) -> tuple[Any, ...]:
    async with sessions() as db:
        counts = sorted((c.feature, c.value, c.won, c.lost) for c in await db.scalars(select(ScoringCount)))
        examples = sorted(
            (e.lead_id, e.outcome, tuple(sorted(e.features.items())))
            for e in await db.scalars(select(ScoringExample))
        )
        state = await scoring_learned.state(db)
    return counts, examples, (state.won, state.lost)


async def test_the_learned_score_waits_for_history_then_ranks_leads_like_the_won_ones_higher(
    sessions: Sessions,
) -> None:
    await _rules(sessions)
    _, like_won = await _lead(sessions, **WON_LIKE)
    _, like_lost = await _lead(sessions, **LOST_LIKE)
    await _close(sessions, 12, "won", **WON_LIKE)
    await _close(sessions, 3, "lost", **WON_LIKE)
    await _close(sessions, 12, "lost", **LOST_LIKE)
    waiting = await _learned(sessions, like_won)
    assert (waiting.ready, waiting.probability, waiting.closed, waiting.min_closed) == (False, None, 27, 30)
    assert waiting.as_json()["history"] == {"closed": 27, "won": 12, "lost": 15}
    await _close(sessions, 2, "won", **LOST_LIKE)
    await _close(sessions, 1, "lost", **LOST_LIKE)
    high, low = await _learned(sessions, like_won), await _learned(sessions, like_lost)
    assert high.ready and high.closed == 30 and high.probability is not None and low.probability is not None
    assert high.probability > 0.8 > 0.2 > low.probability
    assert high.factors[0].weight > 0 and {f.feature for f in high.factors} >= {"product", "utm_source"}
    assert all(f.weight < 0 for f in low.factors if f.feature in ("product", "utm_source"))
    async with sessions() as db, db.begin():
        await scoring_learned.set_thresholds(db, min_closed=31, min_won=5, min_lost=5)
    assert not (await _learned(sessions, like_won)).ready


async def test_incremental_counts_equal_a_full_retrain_and_a_reopened_deal_is_unlearned(
    sessions: Sessions,
) -> None:
    await _rules(sessions)
    won = await _close(sessions, 4, "won", **WON_LIKE)
    lost = await _close(sessions, 3, "lost", **LOST_LIKE)
    async with sessions() as db, db.begin():
        await funnel.lose(db, SYSTEM, won[0], "too_expensive")  # won → lost
        await funnel.lose(db, SYSTEM, lost[0], "too_expensive")  # lost with another reason: no change
        pipeline = await funnel.default_pipeline(db)
        await funnel.move_deal(db, SYSTEM, lost[1], pipeline.stages[1].id)  # reopened
    incremental = await _counts(sessions)
    assert incremental[2] == (3, 3)
    assert ("product", "mortgage", 3, 1) in incremental[0]
    async with sessions() as db, db.begin():
        state = await scoring_learned.retrain(db)
        assert await scoring_learned.history(db) == {"won": 3, "lost": 3}
    assert state.retrained_at is not None
    assert await _counts(sessions) == incremental


def test_naive_bayes_smooths_unseen_values_and_gives_even_odds_without_evidence() -> None:
    state = scoring_learned.ModelState(won=5, lost=5, min_closed=1, min_won=1, min_lost=1, counts={})
    probability, factors = scoring_learned.predict(state, {"product": "mortgage"})
    assert probability == pytest.approx(0.5) and factors[0].weight == pytest.approx(0.0)
    state = scoring_learned.ModelState(
        won=4,
        lost=4,
        min_closed=1,
        min_won=1,
        min_lost=1,
        counts={("product", "mortgage"): (4, 0), ("product", "consumer"): (0, 4)},
    )
    p_mortgage, _ = scoring_learned.predict(state, {"product": "mortgage"})
    p_unseen, _ = scoring_learned.predict(state, {"product": "business"})
    # (4+1)/(4+3) against (0+1)/(4+3): odds 5 to 1
    assert p_mortgage == pytest.approx(5 / 6) and p_unseen == pytest.approx(0.5)


async def test_branch_rules_use_the_contacts_branch_when_the_lead_has_none(sessions: Sessions) -> None:
    async with sessions() as db, db.begin():
        north = Branch(name="North")
        db.add(north)
        await db.flush()
        contact = Contact(first_name="Ion", branch_id=north.id)
        db.add(contact)
        await db.flush()
        lead = Lead(contact_id=contact.id, source_channel="sms")
        db.add(lead)
        await db.flush()
        lead_id, branch_id = lead.id, north.id
    await _rules(sessions, {"name": "North", "kind": "branch", "values": str(branch_id), "points": 12})
    async with sessions() as db, db.begin():
        assert await scoring.recompute(db, lead_id) == 12
        assert await scoring.recompute(db, 999999) is None
