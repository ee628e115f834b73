"""The event bus: local fan-out semantics (memory) and cross-process delivery over Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from switchboard.bus import (
    BusError,
    BusUnavailableError,
    Event,
    InMemoryBus,
    RedisBus,
    Subscription,
    create_bus,
)

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0  # generous: CI machines stall, and a passing test never waits this long


async def next_event(sub: Subscription) -> Event:
    return await asyncio.wait_for(anext(sub), WAIT)


def drain(sub: Subscription) -> list[Event]:
    """Everything already queued, without waiting (memory dispatch is synchronous)."""
    events: list[Event] = []
    while sub.pending:
        events.append(sub._queue.get_nowait())  # type: ignore[arg-type]
    return events


@pytest_asyncio.fixture
async def memory_bus() -> AsyncIterator[InMemoryBus]:
    bus = InMemoryBus()
    await bus.start()
    yield bus
    await bus.close()


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("SWITCHBOARD_TEST_REDIS_URL")
    if not url:
        pytest.fail(
            "SWITCHBOARD_TEST_REDIS_URL is not set: Redis bus tests need a server and must not be skipped"
        )
    return url


@pytest.fixture
def prefix() -> str:
    """A channel namespace of our own, so parallel runs on the same Redis never see each other."""
    return f"sbtest-{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def redis_buses(redis_url: str, prefix: str) -> AsyncIterator[Callable[..., RedisBus]]:
    """Factory for RedisBus instances on the test prefix; all are closed at teardown."""
    made: list[RedisBus] = []

    def make(**kwargs: float) -> RedisBus:
        bus = RedisBus(redis_url, prefix, **kwargs)  # type: ignore[arg-type]
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.close()


# --- events ---------------------------------------------------------------------------------------


def test_event_round_trips_through_compact_unicode_json() -> None:
    event = Event(topic="inbox.message", data={"text": "Bună ziua, Chișinău", "n": [1, 2]})
    raw = event.to_json()
    assert "Chișinău" in raw and ": " not in raw and ", " not in raw.replace("Bună ziua, ", "")
    assert Event.from_json(raw) == event
    assert Event.from_json(raw.encode()) == event


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        "{",
        "[]",
        '"a string"',
        '{"topic": "x", "data": {}, "id": "a", "ts": 1.0}',  # no origin
        '{"topic": "", "data": {}, "id": "a", "ts": 1.0, "origin": "o"}',
        '{"topic": 1, "data": {}, "id": "a", "ts": 1.0, "origin": "o"}',
        '{"topic": "x", "data": [], "id": "a", "ts": 1.0, "origin": "o"}',
        '{"topic": "x", "data": {}, "id": 5, "ts": 1.0, "origin": "o"}',
        '{"topic": "x", "data": {}, "id": "a", "ts": "now", "origin": "o"}',
        '{"topic": "x", "data": {}, "id": "a", "ts": true, "origin": "o"}',
        '{"topic": "x", "data": {"v": NaN}, "id": "a", "ts": 1.0, "origin": "o"}',
        b"\xff\xfe\x00garbage",
    ],
)
def test_from_json_raises_value_error_on_malformed_input(raw: str | bytes) -> None:
    with pytest.raises(ValueError):
        Event.from_json(raw)


# --- memory bus -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_memory_bus_delivers_to_matching_pattern_subscribers_only(memory_bus: InMemoryBus) -> None:
    inbox = memory_bus.subscribe("inbox.*")
    everything = memory_bus.subscribe("*")
    agent42 = memory_bus.subscribe("presence.agent.42")
    agent4 = memory_bus.subscribe("presence.agent.4")

    sent_inbox = await memory_bus.publish("inbox.new", {"conversation": 7})
    sent_presence = await memory_bus.publish("presence.agent.42", {"status": "online"})

    assert [e.id for e in drain(inbox)] == [sent_inbox.id]
    assert [e.id for e in drain(everything)] == [sent_inbox.id, sent_presence.id]
    got = drain(agent42)
    assert [e.id for e in got] == [sent_presence.id]
    assert got[0].data == {"status": "online"} and got[0].origin == memory_bus.origin
    assert drain(agent4) == []


@pytest.mark.asyncio
async def test_publisher_data_is_not_shared_with_subscribers(memory_bus: InMemoryBus) -> None:
    sub = memory_bus.subscribe("t")
    payload = {"items": [1]}
    sent = await memory_bus.publish("t", payload)
    payload["items"].append(2)  # the publisher reuses its dict after publishing
    assert drain(sub)[0].data == {"items": [1]} and sent.data["items"] is payload["items"]


@pytest.mark.asyncio
async def test_memory_bus_rejects_data_redis_could_not_carry(memory_bus: InMemoryBus) -> None:
    with pytest.raises(TypeError):
        await memory_bus.publish("t", {"when": object()})
    with pytest.raises(ValueError):
        await memory_bus.publish("inbox.*", {})


@pytest.mark.asyncio
async def test_slow_subscriber_drops_oldest_and_does_not_block_publisher(
    memory_bus: InMemoryBus, caplog: pytest.LogCaptureFixture
) -> None:
    slow = memory_bus.subscribe("inbox.*", maxsize=3)
    fast = memory_bus.subscribe("inbox.*", maxsize=100)
    caplog.set_level(logging.WARNING, logger="switchboard.bus")

    async def publish_burst(start: int) -> None:
        for n in range(start, start + 10):
            await memory_bus.publish("inbox.new", {"n": n})

    await asyncio.wait_for(publish_burst(0), 1.0)  # nobody consumes; publishing must not wait

    assert slow.dropped == 7
    assert [(await next_event(slow)).data["n"] for _ in range(3)] == [7, 8, 9]
    assert fast.dropped == 0 and fast.pending == 10
    warnings = [r for r in caplog.records if "not keeping up" in r.getMessage()]
    assert len(warnings) == 1, "one warning per burst, not one per dropped event"

    await asyncio.wait_for(publish_burst(10), 1.0)  # the consumer caught up, so this is a new burst
    assert slow.dropped == 14
    assert len([r for r in caplog.records if "not keeping up" in r.getMessage()]) == 2


@pytest.mark.asyncio
async def test_closed_subscription_stops_receiving(memory_bus: InMemoryBus) -> None:
    sub = memory_bus.subscribe("inbox.*")
    await memory_bus.publish("inbox.new", {"n": 1})
    sub.close()
    await memory_bus.publish("inbox.new", {"n": 2})

    assert sub.closed and sub.pending == 0
    assert [e async for e in sub] == []


@pytest.mark.asyncio
async def test_closing_wakes_a_waiting_consumer(memory_bus: InMemoryBus) -> None:
    got: list[Event] = []

    async def consume() -> None:
        async with memory_bus.subscribe("presence.*") as sub:
            subs.append(sub)
            async for event in sub:
                got.append(event)

    subs: list[Subscription] = []
    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    await memory_bus.publish("presence.agent.1", {"status": "away"})
    await asyncio.sleep(0)
    subs[0].close()
    await asyncio.wait_for(task, 1.0)
    assert [e.data for e in got] == [{"status": "away"}]


@pytest.mark.asyncio
async def test_context_manager_exit_closes_the_subscription(memory_bus: InMemoryBus) -> None:
    async with memory_bus.subscribe("*") as sub:
        pass
    await memory_bus.publish("anything", {})
    assert sub.closed and sub.pending == 0


@pytest.mark.asyncio
async def test_bus_close_ends_every_subscription_and_refuses_publish() -> None:
    bus = InMemoryBus()
    sub = bus.subscribe("*")
    with pytest.raises(BusError, match="not started"):
        await bus.publish("t", {})
    await bus.start()
    await bus.close()
    assert sub.closed
    with pytest.raises(BusError, match="closed"):
        await bus.publish("t", {})


def test_create_bus_picks_the_implementation_from_settings() -> None:
    assert isinstance(create_bus("memory", None), InMemoryBus)
    assert isinstance(create_bus("redis", "redis://127.0.0.1:6379/0"), RedisBus)
    with pytest.raises(ValueError, match="redis_url"):
        create_bus("redis", None)
    with pytest.raises(ValueError, match="unknown bus kind"):
        create_bus("kafka", None)


# --- redis bus ------------------------------------------------------------------------------------

CHILD = """
import asyncio, sys
from switchboard.bus import RedisBus

async def main() -> None:
    async with RedisBus(sys.argv[1], sys.argv[2]) as bus:
        await bus.publish("inbox.conversation.7", {"text": "salut, ce faceți?", "n": 7})
        print(bus.origin, flush=True)

asyncio.run(main())
"""


@pytest.mark.redis
@pytest.mark.asyncio
async def test_redis_event_published_in_another_process_reaches_local_subscriber(
    redis_url: str, prefix: str, redis_buses: Callable[..., RedisBus]
) -> None:
    bus = redis_buses()
    sub = bus.subscribe("inbox.*")
    other = bus.subscribe("presence.*")
    await bus.start()

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, redis_url, prefix,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    child_origin = out.decode().strip()

    event = await next_event(sub)
    assert event.topic == "inbox.conversation.7"
    assert event.data == {"text": "salut, ce faceți?", "n": 7}
    assert event.origin == child_origin != bus.origin
    assert other.pending == 0


@pytest.mark.redis
@pytest.mark.asyncio
async def test_redis_local_publish_is_delivered_exactly_once(redis_buses: Callable[..., RedisBus]) -> None:
    bus, neighbour = redis_buses(), redis_buses()  # neighbour stands in for another process
    sub = bus.subscribe("inbox.*")
    await bus.start()
    await neighbour.start()

    mine = await bus.publish("inbox.new", {"n": 1})
    # Redis delivers in publish order, so once the neighbour's event arrives through the reader,
    # the echo of ours has arrived too and must have been dropped.
    theirs = await neighbour.publish("inbox.new", {"n": 2})
    assert (await next_event(sub)).id == mine.id
    assert (await next_event(sub)).id == theirs.id
    assert sub.pending == 0


@pytest.mark.redis
@pytest.mark.asyncio
@pytest.mark.usefixtures("redis_url")
async def test_redis_start_against_unreachable_server_raises_promptly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = RedisBus("redis://switchboard:s3cret@127.0.0.1:1/0", connect_timeout=2.0)
    started = time.monotonic()
    with pytest.raises(BusUnavailableError, match="cannot reach Redis") as info:
        await bus.start()
    assert time.monotonic() - started < 3.0
    assert "s3cret" not in str(info.value) and "127.0.0.1:1" in str(info.value)
    assert "s3cret" not in caplog.text
    with pytest.raises(BusError):
        await bus.publish("t", {})
    await bus.close()


@pytest.mark.redis
@pytest.mark.asyncio
async def test_redis_reader_resubscribes_after_the_connection_drops(
    redis_url: str, redis_buses: Callable[..., RedisBus], caplog: pytest.LogCaptureFixture
) -> None:
    bus = redis_buses(backoff_initial=0.05, backoff_max=0.2)
    neighbour = redis_buses()
    sub = bus.subscribe("presence.*")
    await bus.start()
    await neighbour.start()
    caplog.set_level(logging.WARNING, logger="switchboard.bus")

    admin = Redis.from_url(redis_url)
    try:
        ours = [c for c in await admin.client_list(_type="pubsub") if c.get("name") == bus.client_name]
        assert len(ours) == 1, "one pub/sub connection per bus"
        await admin.client_kill_filter(_id=ours[0]["id"])
    finally:
        await admin.aclose()

    async def publish_until_received() -> Event:
        while True:  # events published while the reader is away are lost by design, so keep trying
            await neighbour.publish("presence.agent.9", {"status": "online"})
            try:
                return await asyncio.wait_for(anext(sub), 0.2)
            except TimeoutError:
                continue

    event = await asyncio.wait_for(publish_until_received(), WAIT)
    assert event.data == {"status": "online"}
    assert bus.reconnects >= 1
    assert any("lost Redis pub/sub" in r.getMessage() for r in caplog.records)


def test_redis_bus_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="not a Redis URL") as info:
        RedisBus("http://user:hunter2@example.com/")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ValueError, match="prefix"):
        RedisBus("redis://127.0.0.1:6379/0", prefix="a:*")


def test_event_json_is_what_other_languages_can_read() -> None:
    raw = Event(topic="t", data={"x": 1}, id="abc", ts=1.5, origin="h:1:f").to_json()
    assert json.loads(raw) == {"id": "abc", "topic": "t", "ts": 1.5, "origin": "h:1:f", "data": {"x": 1}}


@pytest.mark.redis
@pytest.mark.asyncio
async def test_redis_idle_pings_keep_a_quiet_subscription_alive(redis_buses: Callable[..., RedisBus]) -> None:
    bus = redis_buses(ping_interval=0.1, socket_timeout=0.3)
    neighbour = redis_buses()
    sub = bus.subscribe("*")
    await bus.start()
    await neighbour.start()
    await asyncio.sleep(1.0)  # several idle rounds; an unanswered PING would reconnect after 0.4s

    sent = await neighbour.publish("inbox.new", {})
    assert (await next_event(sub)).id == sent.id
    assert bus.reconnects == 0
