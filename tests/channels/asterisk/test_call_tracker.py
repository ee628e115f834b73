"""CallTracker fed the real Asterisk 20 recordings (`fixtures/*.ami`) event by event, at their recorded times:
the result each scenario must give, the numbers, the agent, ring / wait / talk times, the recording."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from channels.asterisk.calls import CallTracker
from channels.asterisk.model import CallEvent, CallRecord, endpoint_of, normalise_number
from tests.fakes.ami_server import SCENARIOS, load_fixture

BASE = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
MONITOR = "/var/spool/asterisk/monitor/"
TOLERANCE = 0.05


def replay(name: str, tracker: CallTracker | None = None, stop: int | None = None) -> list[CallEvent]:
    """Feed a recording's events to a tracker; every call event it answered."""
    tracker = tracker if tracker is not None else CallTracker()
    out: list[CallEvent] = []
    for t, event in load_fixture(name).messages()[:stop]:
        out += tracker.feed(event, BASE + timedelta(seconds=t))
    return out


def ended(events: list[CallEvent]) -> list[CallRecord]:
    return [event.record for event in events if event.kind == "ended"]


@dataclass(frozen=True)
class Expected:
    linkedid: str
    result: str
    direction: str = "in"
    customer: str = ""
    agent: str | None = "PJSIP/1001"
    ring: float | None = 1.0
    wait: float | None = 1.0
    talk: float = 0.0
    cause: int | None = 16
    hung_up_by: str | None = None
    recorded: bool = True


EXPECTED = {
    "inbound_answered": Expected(
        "1795431712.4", "answered", customer="+79161234501", talk=3.0, hung_up_by="customer"
    ),
    "inbound_agent_hangup": Expected(
        "1795431733.7", "answered", customer="+79161234502", talk=3.0, hung_up_by="agent"
    ),
    "inbound_missed": Expected(
        "1795431741.10",
        "missed",
        customer="+79161234503",
        ring=6.0,
        wait=6.0,
        cause=127,
        hung_up_by="customer",
    ),
    "inbound_ring_timeout": Expected(
        "1795432006.30", "missed", customer="+79161234514", ring=20.0, wait=20.0
    ),
    "inbound_busy": Expected("1795431750.13", "busy", customer="+79161234504", ring=0.0, wait=0.0, cause=17),
    "inbound_unreachable": Expected(
        "1795431756.17",
        "unreachable",
        customer="+79161234505",
        agent="PJSIP/1003",
        ring=None,
        wait=0.0,
        cause=3,
    ),
    "inbound_no_agent": Expected(
        "1795431761.19", "no_agent", customer="+79161234506", agent=None, ring=None, wait=0.0, recorded=False
    ),
    "click_to_call": Expected(
        "c2c-16a407d0c479",
        "answered",
        direction="out",
        customer="+79161234507",
        wait=2.0,
        talk=3.0,
        hung_up_by="customer",
    ),
    "click_to_call_agent_no_answer": Expected(
        "c2c-3f637199b43d",
        "failed",
        direction="out",
        customer="+79161234508",
        ring=None,
        wait=8.0,
        cause=19,
        recorded=False,
    ),
    "blind_transfer": Expected(
        "1795431797.25", "answered", customer="+79161234509", talk=9.0, hung_up_by="customer"
    ),
    "queue_answered": Expected(
        "1795431849.34", "answered", customer="+79161234510", talk=3.0, hung_up_by="customer"
    ),
    "queue_missed": Expected(
        "1795431857.39",
        "missed",
        customer="+79161234511",
        ring=9.0,
        wait=10.0,
        cause=0,
        hung_up_by="customer",
    ),
    "chanspy": Expected(
        "1795431886.78", "answered", customer="+79161234513", talk=8.0, hung_up_by="customer"
    ),
}


def close(value: float | None, expected: float | None) -> bool:
    if expected is None:
        return value is None
    return value is not None and abs(value - expected) <= TOLERANCE


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_recorded_call_gets_its_result_numbers_agent_and_times(name: str) -> None:
    want = EXPECTED[name]
    records = ended(replay(name))
    assert len(records) == 1, [r.linkedid for r in records]
    call = records[0]
    assert call.ended and not call.reconciled
    assert (call.linkedid, call.result, call.direction) == (want.linkedid, want.result, want.direction)
    assert call.customer_number == want.customer
    assert call.customer_number_raw == want.customer.lstrip("+")
    assert call.agent_endpoint == want.agent
    assert call.agent_extension == (want.agent.split("/")[1] if want.agent else None)
    assert close(call.ring_seconds, want.ring), call.ring_seconds
    assert close(call.wait_seconds, want.wait), call.wait_seconds
    assert close(call.talk_seconds, want.talk), call.talk_seconds
    assert call.hangup_cause == want.cause
    assert call.hung_up_by == want.hung_up_by
    expected_file = f"{MONITOR}{call.linkedid if name != 'queue_answered' else '1795431849.34'}.wav"
    assert call.recording_path == (expected_file if want.recorded else None)
    assert call.region == "Russia"
    assert call.started_at >= BASE and call.ended_at is not None and call.ended_at > call.started_at
    assert (call.answered_at is not None) == (want.result == "answered")


def test_every_scenario_leaves_no_call_behind() -> None:
    tracker = CallTracker()
    for name in SCENARIOS:
        replay(name, tracker)
    assert len(tracker) == 0


def test_inbound_call_names_the_did_and_the_caller() -> None:
    (call,) = ended(replay("inbound_answered"))
    assert (call.caller_number, call.caller_number_raw) == ("+79161234501", "79161234501")
    assert (call.called_number, call.called_number_raw) == ("+74951234567", "74951234567")
    assert call.caller_name == "Ivan Petrov"
    assert call.variables == {"SWITCHBOARD_TARGET": "PJSIP/1001", "SWITCHBOARD_REASON": "available-agent"}


def test_ringing_then_answered_then_ended_with_the_agent_for_the_screen_pop() -> None:
    events = replay("inbound_answered")
    assert [(e.kind, e.endpoint) for e in events] == [
        ("ringing", "PJSIP/1001"),
        ("answered", "PJSIP/1001"),
        ("ended", None),
    ]
    ringing = events[0]
    assert ringing.extension == "1001"
    assert ringing.record.result is None and not ringing.record.ended
    assert ringing.record.caller_number == "+79161234501"
    assert events[1].record.result == "answered" and events[1].record.ended_at is None


def test_ten_calls_in_one_second_stay_ten_calls_with_their_utf8_names() -> None:
    events = replay("concurrent_10")
    records = ended(events)
    assert len(records) == 10
    assert len({r.linkedid for r in records}) == 10
    assert sum(r.linkedid.startswith("1795431953.") for r in records) == 8  # same epoch second
    assert all(r.result == "answered" and close(r.talk_seconds, 3.0) for r in records)
    by_number = {r.caller_number or "": r for r in records}
    assert sorted(by_number) == [f"+791655500{n:02d}" for n in range(1, 11)]
    assert {by_number[f"+791655500{n:02d}"].caller_name for n in (2, 4, 6, 8)} == {
        "Иван Петров",
        "Ольга Смирнова",
        "José Núñez",
        "Анна Волкова",
    }
    for n, record in sorted((int(k[-2:]), r) for k, r in by_number.items()):
        assert record.agent_endpoint == ("PJSIP/1001" if n % 2 else "PJSIP/1002"), n
        assert record.recording_path == f"{MONITOR}{record.linkedid}.wav"
    assert sum(e.kind == "ringing" for e in events) == 10


def test_a_missed_queue_call_is_one_missed_call_not_four_cdrs() -> None:
    events = replay("queue_missed")
    (call,) = ended(events)
    assert call.result == "missed"
    assert call.queue == "support"
    assert call.rung_endpoints == ("PJSIP/1002", "PJSIP/1001")
    assert [e.endpoint for e in events if e.kind == "ringing"] == ["PJSIP/1002", "PJSIP/1001"] * 2


def test_queue_answered_by_one_member_while_the_other_rang() -> None:
    events = replay("queue_answered")
    (call,) = ended(events)
    assert call.result == "answered" and call.agent_endpoint == "PJSIP/1001"
    assert [e.endpoint for e in events if e.kind == "answered"] == ["PJSIP/1001"]
    assert call.called_number == "+74951230000"


def test_unreachable_agent_is_found_without_any_dial_event() -> None:
    events = replay("inbound_unreachable")
    assert [e.kind for e in events] == ["ended"]
    assert events[0].record.variables["SWITCHBOARD_FALLBACK"] == "CHANUNAVAIL"


def test_blind_transfer_keeps_one_call_and_names_the_target() -> None:
    events = replay("blind_transfer")
    (call,) = ended(events)
    assert call.transfer_target == "1002"
    assert call.rung_endpoints == ("PJSIP/1001", "PJSIP/1002")
    assert [(e.kind, e.endpoint) for e in events if e.kind != "ended"] == [
        ("ringing", "PJSIP/1001"),
        ("answered", "PJSIP/1001"),
        ("ringing", "PJSIP/1002"),
        ("answered", "PJSIP/1002"),
    ]
    assert call.hung_up_by == "customer"  # the transferred agent leg's hangup is not "the agent hung up"


def test_click_to_call_carries_the_task_variable_and_both_numbers() -> None:
    tracker = CallTracker()
    tracker.note_originate(
        "c2c-16a407d0c479",
        agent_endpoint="PJSIP/1001",
        number="79161234507",
        at=BASE + timedelta(seconds=1.6),
    )
    events = replay("click_to_call", tracker)
    (call,) = ended(events)
    assert call.variables == {"SWITCHBOARD_TASK": "42"}
    assert (call.caller_number, call.called_number) == ("+74951234567", "+79161234507")
    assert call.caller_name == "Contact Center"
    assert [(e.kind, e.endpoint) for e in events][:2] == [
        ("ringing", "PJSIP/1001"),
        ("answered", "PJSIP/1001"),
    ]
    assert close(call.ring_seconds, 1.0)  # the customer's phone rang for about a second


def test_click_to_call_that_never_got_a_channel_still_ends_as_failed() -> None:
    tracker = CallTracker()
    tracker.note_originate(
        "c2c-0000000000aa",
        agent_endpoint="PJSIP/1009",
        number="79161234599",
        variables={"SWITCHBOARD_TASK": "7"},
    )
    events = tracker.feed(
        {"Event": "OriginateResponse", "Response": "Failure", "Uniqueid": "c2c-0000000000aa", "Reason": "0"}
    )
    (call,) = ended(events)
    assert (call.result, call.direction, call.customer_number) == ("failed", "out", "+79161234599")
    assert call.agent_endpoint == "PJSIP/1009" and call.variables == {"SWITCHBOARD_TASK": "7"}
    assert len(tracker) == 0


def test_chanspy_supervisor_channel_is_not_a_customer_call() -> None:
    events = replay("chanspy")
    assert {e.record.linkedid for e in events} == {"1795431886.78"}
    unprefixed = CallTracker(ignore_prefixes=())  # a ChanSpy channel the hub did not originate
    assert {r.linkedid for r in ended(replay("chanspy", unprefixed))} == {"1795431886.78"}
    assert len(unprefixed) == 0


def test_recording_file_under_the_shared_directory(tmp_path: Path) -> None:
    (call,) = ended(replay("inbound_answered", CallTracker(recordings_dir=tmp_path)))
    assert call.recording_file == tmp_path / "1795431712.4.wav"


def test_ids_reused_after_an_asterisk_restart_start_a_new_call() -> None:
    tracker = CallTracker()
    first = ended(replay("inbound_answered", tracker))
    second = ended(replay("inbound_answered", tracker))
    assert [r.linkedid for r in first + second] == ["1795431712.4", "1795431712.4"]


def test_reconcile_closes_only_the_calls_asterisk_no_longer_has() -> None:
    fixture = load_fixture("inbound_answered")
    answered_at = fixture.index("BridgeEnter", nth=2) + 1
    tracker = CallTracker()
    replay("inbound_answered", tracker, stop=answered_at)
    assert tracker.live_linkedids() == {"1795431712.4"}
    assert tracker.reconcile({"1795431712.4"}) == []
    assert tracker.reconcile([], candidates=set()) == []
    (event,) = tracker.reconcile([], BASE + timedelta(seconds=9), candidates={"1795431712.4"})
    assert event.kind == "ended"
    assert event.record.reconciled and event.record.result == "answered"
    assert close(event.record.talk_seconds, 9 - 2.464)
    assert len(tracker) == 0


def test_unknown_and_malformed_events_are_skipped_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    tracker = CallTracker()
    junk: list[dict[str, object]] = [
        {},
        {"Event": "SomethingNew", "Linkedid": "1.1"},
        {"Event": "Newchannel"},  # no Uniqueid
        {"Event": "Hangup", "Linkedid": "nope", "Uniqueid": "nope"},
        {"Event": "DialEnd", "DestUniqueid": "x"},
        {"Event": "Newchannel", "Uniqueid": "9.9", "Linkedid": "9.9", "ChannelStateDesc": 4, "Channel": None},
        {"event": "hangup", "uniqueid": "9.9", "linkedid": "9.9", "cause": "not-a-number"},
    ]
    with caplog.at_level(logging.WARNING, logger="channels.asterisk.calls"):
        results = [tracker.feed(event) for event in junk]
    assert [len(r) for r in results] == [0, 0, 0, 0, 0, 0, 1]
    assert results[-1][0].record.hangup_cause is None
    assert any("skipped" in record.message for record in caplog.records)


def test_memory_stays_bounded() -> None:
    tracker = CallTracker(max_live_calls=3)
    closed = []
    for n in range(10):
        closed += tracker.feed(
            {
                "Event": "Newchannel",
                "Uniqueid": f"1.{n}",
                "Linkedid": f"1.{n}",
                "Channel": f"PJSIP/trunk-{n:08x}",
            },
            BASE + timedelta(seconds=n),
        )
    assert len(tracker) == 3 and len(closed) == 7 and all(e.record.reconciled for e in closed)
    late = tracker.feed({"Event": "FullyBooted"}, BASE + timedelta(hours=5))
    assert len(tracker) == 0 and len(late) == 3


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("79161234501", "+79161234501"),
        ("069123456", "+37369123456"),
        ("37369123456", "+37369123456"),
        ("+12025550123", "+12025550123"),
        ("1001", None),
        ("<unknown>", None),
        ("", None),
    ],
)
def test_numbers_become_e164_in_the_default_region(raw: str, e164: str | None) -> None:
    assert normalise_number(raw, "MD") == e164


def test_endpoints_are_channel_names_without_their_sequence() -> None:
    assert endpoint_of("PJSIP/1001-0000000c") == "PJSIP/1001"
    assert endpoint_of("Local/1001@agents-00000001;1") == "Local/1001@agents"
    assert endpoint_of("PJSIP/1001") == "PJSIP/1001"
    assert endpoint_of("") is None
