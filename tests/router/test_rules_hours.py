"""Routing rules (validation, the most specific wins) and working hours (time zones across DST, holidays),
and what the router does outside them."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from router.engine import Router
from router.hours import WorkingHours
from router.rules import RoutingRule, resolve
from router.tables import RoutingItem
from switchboard.errors import Invalid
from tests.router.conftest import Clock, Sessions, add_agents, add_branch, call, chat

WEEKDAYS = {day: [["09:00", "13:00"], ["14:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def hours(branch_id: int = 1, holidays: tuple[str, ...] = ("2026-12-25",)) -> WorkingHours:
    return WorkingHours.parse(branch_id, "Europe/Chisinau", WEEKDAYS, holidays)


# --- rules -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"sticky_mode": "random"}, "sticky_mode"),
        ({"accept_timeout_seconds": 2}, "accept_timeout_seconds"),
        ({"sticky_wait_seconds": -1}, "sticky_wait_seconds"),
        (
            {"overflow_branch_after_seconds": 600, "overflow_any_after_seconds": 60},
            "overflow_any_after_seconds",
        ),
        ({"timeouts_before_away": 99}, "timeouts_before_away"),
        ({"channel": "Tele gram"}, "channel"),
    ],
)
def test_rules_are_checked(fields: dict[str, object], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        RoutingRule(**fields)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_a_rule_from_a_form_reads_blanks_as_any_and_never() -> None:
    rule = RoutingRule.from_form(
        {
            "branch_id": "",
            "channel": "Viber",
            "accept_timeout_seconds": "45",
            "overflow_any_after_seconds": "",
        }
    )
    assert (rule.branch_id, rule.channel, rule.accept_timeout_seconds) == (None, "viber", 45)
    assert rule.overflow_any_after_seconds is None
    with pytest.raises(Invalid) as caught:
        RoutingRule.from_form({"sticky_wait_seconds": "soon"})
    assert caught.value.field == "sticky_wait_seconds"


def test_the_most_specific_rule_wins() -> None:
    default = RoutingRule(accept_timeout_seconds=60)
    rules = [
        RoutingRule(accept_timeout_seconds=10),
        RoutingRule(channel="phone", accept_timeout_seconds=20),
        RoutingRule(branch_id=1, accept_timeout_seconds=30),
        RoutingRule(branch_id=1, channel="phone", accept_timeout_seconds=40),
    ]

    def timeout(branch: int | None, channel: str) -> int:
        return resolve(rules, branch, channel, default).accept_timeout_seconds

    assert (timeout(1, "phone"), timeout(1, "viber"), timeout(2, "phone"), timeout(None, "viber")) == (
        40,
        30,
        20,
        10,
    )
    assert resolve([], 1, "phone", default) is default


async def test_rules_are_stored_replaced_and_deleted(router: Router, sessions: Sessions) -> None:
    branch = await add_branch(sessions)
    await router.save_rule(RoutingRule(branch_id=branch, channel="phone", accept_timeout_seconds=20))
    await router.save_rule(RoutingRule(branch_id=branch, channel="phone", accept_timeout_seconds=25))
    assert [r.accept_timeout_seconds for r in await router.rules()] == [25]
    with pytest.raises(Invalid):
        await router.save_rule(RoutingRule(branch_id=branch + 100))  # no such branch
    await router.delete_rule(branch, "phone")
    assert await router.rules() == []


# --- hours -------------------------------------------------------------------------------------------


def test_opening_hours_follow_the_local_clock_in_winter_and_summer() -> None:
    week = hours()
    # Monday 12 January 2026, UTC+2: 09:00 local is 07:00 UTC
    assert not week.is_open(utc(2026, 1, 12, 6, 59)) and week.is_open(utc(2026, 1, 12, 7, 0))
    assert not week.is_open(utc(2026, 1, 12, 11, 30))  # 13:30 local, lunch
    assert week.is_open(utc(2026, 1, 12, 15, 59)) and not week.is_open(utc(2026, 1, 12, 16, 0))
    # Monday 15 June 2026, UTC+3: 09:00 local is 06:00 UTC
    assert not week.is_open(utc(2026, 6, 15, 5, 59)) and week.is_open(utc(2026, 6, 15, 6, 0))
    assert not week.is_open(utc(2026, 6, 13, 8, 0))  # Saturday


def test_holidays_close_the_whole_local_day() -> None:
    week = hours()
    assert not week.is_open(utc(2026, 12, 25, 10, 0))  # a Friday
    assert week.is_open(utc(2026, 12, 24, 10, 0))
    # 23:30 UTC on the 24th is already the 25th in Chișinău: the day after is what counts
    assert week.opens_at(utc(2026, 12, 24, 22, 30)) == utc(2026, 12, 28, 7, 0)


def test_the_next_opening_across_the_spring_clock_change() -> None:
    # Friday 27 March 2026 after closing; clocks go forward on Sunday the 29th: Monday 09:00 is 06:00 UTC
    assert hours().opens_at(utc(2026, 3, 27, 17, 0)) == utc(2026, 3, 30, 6, 0)
    assert hours().opens_at(utc(2026, 3, 30, 7, 0)) == utc(2026, 3, 30, 7, 0)  # open now


@pytest.mark.parametrize(
    ("timezone", "week", "holidays", "field"),
    [
        ("Mars/Olympus", WEEKDAYS, (), "timezone"),
        ("Europe/Chisinau", {"mon": [["9am", "18:00"]]}, (), "mon"),
        ("Europe/Chisinau", {"tue": [["18:00", "09:00"]]}, (), "tue"),
        ("Europe/Chisinau", {"wed": [["09:00", "14:00"], ["13:00", "18:00"]]}, (), "wed"),
        ("Europe/Chisinau", {"thu": [["24:30", "24:00"]]}, (), "thu"),
        ("Europe/Chisinau", WEEKDAYS, ("25.12.2026",), "holidays"),
    ],
)
def test_working_hours_are_checked(
    timezone: str, week: dict[str, list[list[str]]], holidays: tuple[str, ...], field: str
) -> None:
    with pytest.raises(Invalid) as caught:
        WorkingHours.parse(1, timezone, week, holidays)
    assert caught.value.field == field


def test_working_hours_round_trip_through_json() -> None:
    week = hours()
    again = WorkingHours.parse(1, week.timezone, week.week_json(), week.holidays_json())
    assert again == week
    assert week.week_json()["mon"] == [["09:00", "13:00"], ["14:00", "18:00"]]
    assert WorkingHours.parse(1, "UTC", {"sun": [["00:00", "24:00"]]}).is_open(utc(2026, 11, 22, 23, 59))


# --- the router outside working hours ----------------------------------------------------------------


async def test_off_hours_chat_waits_for_the_morning_and_a_call_gets_the_fallback(
    router: Router, sessions: Sessions, clock: Clock
) -> None:
    branch = await add_branch(sessions)
    await router.save_hours(hours(branch))
    (agent,) = await add_agents(router, sessions, 1)
    await router.save_rule(RoutingRule(overflow_branch_after_seconds=60))
    clock.now = utc(2026, 11, 27, 19, 0)  # Friday 21:00 in Chișinău
    assert not await router.is_open(branch) and await router.is_open(None)
    assert await router.opens_at(branch) == utc(2026, 11, 30, 7, 0)
    waiting = await router.assign(chat(1, branch_id=branch))
    assert (waiting.agent_id, waiting.reason) == (None, "off_hours")
    phone = await router.assign(call("c1", branch_id=branch))
    assert (phone.agent_id, phone.reason) == (None, "off_hours")
    async with sessions() as db:
        stored = {row.kind: row for row in await db.scalars(select(RoutingItem))}
    assert set(stored) == {"chat"} and stored["chat"].queued_at == utc(2026, 11, 30, 7, 0)
    clock.now = utc(2026, 11, 28, 10, 0)  # Saturday: still closed, the agent online — nothing moves
    await router.heartbeat(agent)
    assert await router.tick() == []
    clock.now = utc(2026, 11, 30, 7, 0, 30)  # Monday 09:00:30: the wait (overflow clock) starts now
    await router.heartbeat(agent)
    (morning,) = await router.tick()
    assert (morning.request.item_id, morning.agent_id, morning.reason) == ("1", agent, "least_busy")
    await router.delete_hours(branch)
    assert await router.working_hours(branch) is None


# --- the off-hours reply -----------------------------------------------------------------------------


def test_off_hours_reply_speaks_the_customers_language_and_falls_back() -> None:
    week = WorkingHours.parse(
        1,
        "Europe/Chisinau",
        WEEKDAYS,
        replies={"en": "We are closed. We open at {opens}.", "ru": "Мы закрыты.", "ro": "  "},
    )
    friday_night = utc(2026, 11, 27, 19, 0)  # Friday 21:00 local; Monday 09:00 local is 07:00 UTC
    assert week.replies == {"en": "We are closed. We open at {opens}.", "ru": "Мы закрыты."}  # blank dropped
    assert week.reply("ru", friday_night) == "Мы закрыты."
    assert week.reply("en", friday_night) == "We are closed. We open at 30.11 09:00."
    assert week.reply("ro", friday_night) == week.reply(None, friday_night)  # no Romanian: English next
    assert week.reply("de", friday_night) == "We are closed. We open at 30.11 09:00."
    assert hours().reply("ro", friday_night) is None  # the admin wrote none: nothing is sent


@pytest.mark.parametrize(
    ("replies", "field"),
    [
        ({"de": "Geschlossen"}, "replies"),
        ({"ro": "x" * 1001}, "reply_ro"),
        ({"en": 42}, "reply_en"),
    ],
)
def test_off_hours_replies_are_checked(replies: dict[str, object], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        WorkingHours.parse(1, "Europe/Chisinau", WEEKDAYS, replies=replies)
    assert caught.value.field == field


async def test_off_hours_replies_are_stored_with_the_hours(
    router: Router, sessions: Sessions, clock: Clock
) -> None:
    branch = await add_branch(sessions)
    texts = {"ro": "Revenim la {opens}.", "en": "Back at {opens}."}
    await router.save_hours(WorkingHours.parse(branch, "Europe/Chisinau", WEEKDAYS, replies=texts))
    stored = await router.working_hours(branch)
    assert stored is not None and stored.replies == texts
    clock.now = utc(2026, 11, 27, 19, 0)
    assert await router.off_hours_reply(branch, "ro") == "Revenim la 30.11 09:00."
    assert await router.off_hours_reply(None, "ro") is None  # no branch, no hours: always open
