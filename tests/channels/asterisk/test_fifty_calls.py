"""Interleaved events of 50 simultaneous calls are not mixed up: copies of every real Asterisk 20 recording
(answered, agent hangup, missed, ring timeout, busy, unreachable, no agent, click-to-call answered and not,
blind transfer, queue answered and missed, the ten concurrent calls, ChanSpy), each with its own ids,
channels, numbers and names, many started in the same epoch second, merged into one stream
(`tests/fakes/ami_mix.py`). Every call must come out exactly as the same copy gives when replayed alone —
fed straight to a `CallTracker`, and through the fake AMI server and a real `AmiConnection`."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from channels.asterisk.ami import AmiConfig, AmiConnection
from channels.asterisk.calls import CallTracker
from channels.asterisk.model import CallEvent, CallRecord
from tests.fakes.ami_mix import Mix, build_mix
from tests.fakes.ami_server import FakeAmi, load_fixture

CALLS = 50
TOLERANCE = 0.01  # seconds: through AMI the times come from each event's `Timestamp` (microseconds)
RECORDED_TOLERANCE = 0.05  # a copy against its recording: the mix's jitter moves blocks by a few ms
MONITOR = "/var/spool/asterisk/monitor/"
EveryCall = dict[str, list[CallEvent]]


def at(mix: Mix, t: float) -> datetime:
    return datetime.fromtimestamp(mix.epoch, UTC) + timedelta(seconds=t)


def play(messages: Iterable[tuple[float, dict[str, str]]], mix: Mix) -> EveryCall:
    """Feed events to one fresh tracker at their mix times; the call events it answered, per call."""
    tracker = CallTracker()
    out: EveryCall = defaultdict(list)
    for t, fields in messages:
        for event in tracker.feed(fields, at(mix, t)):
            out[event.record.linkedid].append(event)
    assert len(tracker) == 0  # nothing left open
    return dict(out)


def alone(mix: Mix) -> EveryCall:
    """Each copy replayed on its own (same bytes, same times): what each call must look like in the mix."""
    out: EveryCall = {}
    for copy in mix.copies:
        played = play(copy.messages(), mix)
        assert sorted(played) == sorted(copy.linkedids), copy.scenario
        out.update(played)
    return out


def ended(events: list[CallEvent]) -> CallRecord:
    (last,) = [e for e in events if e.kind == "ended"]
    assert events[-1] is last
    return last.record


@pytest.fixture(scope="module")
def mix() -> Mix:
    return build_mix(CALLS, seed=7, timestamps=True)


def test_the_mix_holds_fifty_distinct_calls_of_every_outcome_many_in_one_epoch_second(mix: Mix) -> None:
    assert len(mix.linkedids) == len(set(mix.linkedids)) == CALLS
    assert {copy.scenario for copy in mix.copies} >= {
        "inbound_answered",
        "inbound_agent_hangup",
        "inbound_missed",
        "inbound_ring_timeout",
        "inbound_busy",
        "inbound_unreachable",
        "inbound_no_agent",
        "click_to_call",
        "click_to_call_agent_no_answer",
        "blind_transfer",
        "queue_answered",
        "queue_missed",
        "concurrent_10",
        "chanspy",
    }
    seconds = Counter(linkedid.split(".")[0] for linkedid in mix.linkedids if "." in linkedid)
    assert max(seconds.values()) >= 10, seconds  # panoramisk's CallManager would merge these
    starts = sorted(copy.start for copy in mix.copies)
    ends = sorted(copy.blocks[-1].t for copy in mix.copies)
    assert starts[-1] < ends[0]  # all of them are up at the same moment
    times = [block.t for block in mix.blocks]
    assert times == sorted(times)
    owner = {block: copy.index for copy in mix.copies for block in copy.blocks}
    switches = sum(owner[a] != owner[b] for a, b in zip(mix.blocks, mix.blocks[1:], strict=False))
    assert switches > len(mix.blocks) // 15  # interleaved block by block, not one burst after another
    assert mix.data() == build_mix(CALLS, seed=7, timestamps=True).data()  # seeded: the bench sees the same


def test_each_copy_alone_gives_its_recordings_outcome_with_its_own_numbers_and_names(mix: Mix) -> None:
    solo = alone(mix)
    originals: dict[str, dict[str, CallRecord]] = {}
    for name in {copy.scenario for copy in mix.copies}:
        played = play(load_fixture(name).messages(), mix)
        originals[name] = {linkedid: ended(events) for linkedid, events in played.items()}
    names, numbers = [], []
    for copy in mix.copies:
        for old_linkedid, want in originals[copy.scenario].items():
            got = ended(solo[copy.renamed[old_linkedid]])
            same = ("direction", "result", "agent_endpoint", "hangup_cause", "hung_up_by", "queue")
            assert [getattr(got, f) for f in same] == [getattr(want, f) for f in same], copy.scenario
            assert got.transfer_target == want.transfer_target
            for field in ("wait_seconds", "ring_seconds", "talk_seconds"):
                assert getattr(got, field) == pytest.approx(getattr(want, field), abs=RECORDED_TOLERANCE)
            assert got.customer_number_raw == copy.renamed[want.customer_number_raw or ""]
            assert got.customer_number == "+" + (got.customer_number_raw or "")
            assert got.region == want.region == "Russia"
            if want.recording_path:
                old = want.recording_path.removeprefix(MONITOR).removesuffix(".wav")
                assert got.recording_path == f"{MONITOR}{copy.renamed[old]}.wav"
            else:
                assert got.recording_path is None
            numbers.append(got.customer_number)
            if got.direction == "in":
                assert got.caller_name == copy.renamed[want.caller_name or ""]
                names.append(got.caller_name)
    assert len(set(numbers)) == CALLS
    assert len(set(names)) == len(names) > 40
    assert any(re.search("[\u0400-\u04ff]", name or "") for name in names)  # Cyrillic
    assert any(re.search("[șțăâîȘȚ]", name or "") for name in names)  # Romanian
    assert Counter(ended(events).result for events in solo.values()).keys() == {
        "answered",
        "missed",
        "busy",
        "unreachable",
        "failed",
        "no_agent",
    }


@pytest.mark.parametrize("seed", [7, 8])
def test_fifty_interleaved_calls_fed_to_the_tracker_are_each_as_if_alone(seed: int) -> None:
    mix = build_mix(CALLS, seed=seed)
    mixed = play(mix.messages(), mix)
    solo = alone(mix)
    assert sorted(mixed) == sorted(solo) == sorted(mix.linkedids)  # none missing, none extra
    for linkedid, events in solo.items():
        assert mixed[linkedid] == events  # every ringing / answered / ended, record and time
        assert ended(events).ended


class RecordedTime(CallTracker):
    """The real tracker, reading each event's time from its `Timestamp` header (Asterisk's
    `timestampevents = yes`): the fastest replay squeezes the recorded seconds into milliseconds, and the
    record's times must still be the calls' own."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.stamped = 0
        self.all_fed = asyncio.Event()

    def feed(self, event: Mapping[str, object], at: datetime | None = None) -> list[CallEvent]:
        stamp = event.get("Timestamp")
        if isinstance(stamp, str):
            at = datetime.fromtimestamp(float(stamp), UTC)
            self.stamped += 1
        out = super().feed(event, at)
        if self.stamped == self.expected:
            self.all_fed.set()
        return out


TIMES = ("at", "started_at", "answered_at", "ended_at", "wait_seconds", "ring_seconds", "talk_seconds")


def shape(event: CallEvent, mix: Mix) -> tuple[dict[str, Any], dict[str, float | None]]:
    """An event as plain values: what must be equal, and its times (as seconds into the mix), which are
    compared with a tolerance."""
    zero = at(mix, 0)
    values: dict[str, Any] = {"kind": event.kind, "endpoint": event.endpoint, "at": event.at}
    values.update(dataclasses.asdict(event.record))
    times = {}
    for name in TIMES:
        value = values.pop(name)
        times[name] = (value - zero).total_seconds() if isinstance(value, datetime) else value
    return values, times


async def test_fifty_interleaved_calls_through_the_fake_ami_and_a_real_connection_are_each_as_if_alone(
    mix: Mix,
) -> None:
    received: EveryCall = defaultdict(list)

    async def on_call_event(event: CallEvent) -> None:
        received[event.record.linkedid].append(event)

    tracker = RecordedTime(expected=len(mix.blocks))
    async with FakeAmi(speed=None) as fake:
        config = AmiConfig(host=fake.host, port=fake.port, secret="hubsecret", ping_seconds=2.0)
        connection = AmiConnection(config, on_call_event, tracker=tracker)
        await connection.start()
        try:
            async with asyncio.timeout(10):
                await connection.wait_connected()
                await fake.replay(mix.fixture())
                await tracker.all_fed.wait()
                await connection.drain()
            assert connection.logins == 1 and connection.dropped_events == 0
        finally:
            await connection.stop()
    solo = alone(mix)
    assert sorted(received) == sorted(solo) == sorted(mix.linkedids)  # none missing, none extra
    assert len(tracker) == 0
    for linkedid, events in solo.items():
        assert len(received[linkedid]) == len(events), linkedid
        for got_event, want_event in zip(received[linkedid], events, strict=True):
            got, got_times = shape(got_event, mix)
            want, want_times = shape(want_event, mix)
            assert got == want
            assert got_times == pytest.approx(want_times, abs=TOLERANCE)
