"""AmiConnection through real panoramisk against the fake AMI server replaying real Asterisk 20 recordings:
login, call events reaching the hub, a refused secret, a PBX restart with reconciliation, the watchdog on a
frozen PBX, a failing `on_call_event`, click-to-call and ChanSpy actions."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from channels.asterisk.ami import AmiConfig, AmiConnection, AmiNotConnected, SpyMode
from channels.asterisk.calls import CallTracker
from channels.asterisk.model import CallEvent
from switchboard.settings import Settings
from tests.fakes.ami_server import AmiAction, FakeAmi, encode, load_fixture

SECRET = "hubsecret"


@dataclass
class Calls:
    """What `on_call_event` received, and a way to wait for it."""

    events: list[CallEvent] = field(default_factory=list)
    fail_first: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, event: CallEvent) -> None:
        self.events.append(event)
        self._changed.set()
        if len(self.events) <= self.fail_first:
            raise RuntimeError("the inbox is down")

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def ended(self) -> list[CallEvent]:
        return [e for e in self.events if e.kind == "ended"]

    async def until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


def config(fake: FakeAmi, **changes: object) -> AmiConfig:
    values: dict[str, object] = {
        "host": fake.host,
        "port": fake.port,
        "username": "hub",
        "secret": SECRET,
        "ping_seconds": 0.2,
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.2,
        "connect_timeout": 1.0,
    }
    values.update(changes)
    return AmiConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    async with FakeAmi(speed=50) as server:
        yield server


Connect = Callable[..., Awaitable[tuple[AmiConnection, Calls]]]


@pytest.fixture
async def connect(fake: FakeAmi) -> AsyncIterator[Connect]:
    """A started AmiConnection to the fake (logged in unless told otherwise); stopped after the test."""
    started: list[AmiConnection] = []

    async def make(
        calls: Calls | None = None, wait: bool = True, **changes: object
    ) -> tuple[AmiConnection, Calls]:
        calls = calls or Calls()
        connection = AmiConnection(config(fake, **changes), calls)
        started.append(connection)
        await connection.start()
        if wait:
            async with asyncio.timeout(5):
                await connection.wait_connected()
        return connection, calls

    yield make
    for connection in started:
        await connection.stop()


async def test_logs_in_and_a_call_reaches_on_call_event(fake: FakeAmi, connect: Connect) -> None:
    connection, calls = await connect()
    login = fake.actions_named("Login")[0]
    assert (login.get("Username"), login.get("Secret"), login.get("Events")) == ("hub", SECRET, "on")
    await fake.replay(load_fixture("inbound_answered"))
    await calls.until(lambda: bool(calls.ended()))
    assert calls.kinds() == ["ringing", "answered", "ended"]
    assert calls.events[0].endpoint == "PJSIP/1001"
    record = calls.ended()[0].record
    assert (record.linkedid, record.result, record.caller_name) == ("1795431712.4", "answered", "Ivan Petrov")
    assert connection.connected and connection.logins == 1 and fake.connections_made == 1


async def test_utf8_names_survive_reads_that_split_characters() -> None:
    fixture = load_fixture("concurrent_10")
    recorded = [h.get(key) for _, h in fixture.messages() for key in ("CallerIDName", "ConnectedLineName")]
    seen: list[str | None] = []
    all_seen = asyncio.Event()

    class Recording(CallTracker):
        def feed(self, event: Mapping[str, object], at: datetime | None = None) -> list[CallEvent]:
            if event.get("Event") != "FullyBooted":
                seen.extend(
                    str(event[key]) if key in event else None for key in ("CallerIDName", "ConnectedLineName")
                )
                if len(seen) >= len(recorded):
                    all_seen.set()
            return super().feed(event, at)

    async with FakeAmi(chunk_size=61) as chopping:  # 61-byte writes: many characters straddle two reads
        calls = Calls()
        connection = AmiConnection(config(chopping), calls, tracker=Recording())
        await connection.start()
        try:
            await chopping.replay(fixture)
            await asyncio.wait_for(all_seen.wait(), 5)
        finally:
            await connection.stop()
    assert len(calls.ended()) == 10
    assert seen == recorded  # every name in every event, byte for byte
    names = {e.record.caller_name for e in calls.ended()}
    assert {"Иван Петров", "Ольга Смирнова", "José Núñez", "Анна Волкова"} <= names


async def test_a_wrong_secret_is_reported_and_retried_with_backoff(
    fake: FakeAmi, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="channels.asterisk.ami"):
        connection, _ = await connect(wait=False, secret="wrong-secret")
        await fake.wait_until(lambda: fake.failed_logins >= 2)
    assert not connection.connected and connection.logins == 0
    assert connection.last_error is not None and "Authentication failed" in connection.last_error
    assert any(r.levelno == logging.ERROR and "refused the login" in r.getMessage() for r in caplog.records)
    assert all("wrong-secret" not in r.getMessage() for r in caplog.records)
    with pytest.raises(AmiNotConnected, match="Authentication failed"):
        await connection.originate(agent_endpoint="PJSIP/1001", number="79161234507")


async def test_a_call_that_ended_during_a_pbx_restart_is_closed_on_reconnect(
    fake: FakeAmi, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    connection, calls = await connect()
    call = load_fixture("inbound_answered")
    await fake.replay(call, stop=call.index("BridgeEnter", nth=2) + 1)
    await calls.until(lambda: "answered" in calls.kinds())
    with caplog.at_level(logging.INFO, logger="channels.asterisk.ami"):
        # Shutdown (Restart: True), EOF, connects refused for a while: the Hangups are never seen.
        await fake.restart(0.3, farewell=load_fixture("ami_reconnect.conn1"))
        await calls.until(lambda: bool(calls.ended()))
    record = calls.ended()[0].record
    assert (record.linkedid, record.result, record.reconciled) == ("1795431712.4", "answered", True)
    assert fake.logins == 2 and connection.asterisk_uptime == 0
    assert len(fake.actions_named("CoreShowChannels")) == 2  # once per login
    assert any("shut down" in r.getMessage() for r in caplog.records)
    assert any("unreachable" in r.getMessage() for r in caplog.records)  # a refused reconnect was retried


async def test_a_call_still_up_after_a_network_drop_is_kept_and_ends_normally(
    fake: FakeAmi, connect: Connect
) -> None:
    connection, calls = await connect()
    call = load_fixture("inbound_answered")
    split = call.index("BridgeEnter", nth=2) + 1
    await fake.replay(call, stop=split)
    await calls.until(lambda: "answered" in calls.kinds())
    fake.channels = [
        {"Channel": "PJSIP/trunk-00000002", "Uniqueid": "1795431712.4", "Linkedid": "1795431712.4"},
        {"Channel": "PJSIP/1001-00000003", "Uniqueid": "1795431712.5", "Linkedid": "1795431712.4"},
    ]
    await fake.drop()
    await fake.wait_for_action("CoreShowChannels", count=2)
    await connection.drain()
    assert connection.tracker.get("1795431712.4") is not None
    await fake.replay(call, start=split)
    await calls.until(lambda: bool(calls.ended()))
    record = calls.ended()[0].record
    assert (record.result, record.reconciled) == ("answered", False)
    assert record.talk_seconds > 0
    assert fake.logins == 2


async def test_the_watchdog_reconnects_when_the_pbx_freezes(fake: FakeAmi, connect: Connect) -> None:
    connection, _ = await connect(ping_seconds=0.1)
    await fake.wait_for_action("Ping")  # the watchdog pings
    fake.freeze()  # TCP stays open, nothing is answered any more
    await fake.wait_for_login(count=2, within=3)
    assert connection.watchdog_trips == 1
    assert fake.connections_made == 2


async def test_a_raising_on_call_event_does_not_stop_the_stream(fake: FakeAmi, connect: Connect) -> None:
    connection, calls = await connect(Calls(fail_first=2))
    await fake.replay(load_fixture("inbound_answered"))
    await fake.replay(load_fixture("inbound_missed"))
    await calls.until(lambda: len(calls.ended()) == 2)
    assert [e.record.result for e in calls.ended()] == ["answered", "missed"]
    assert fake.connections_made == 1 and connection.connected


async def test_originate_sends_async_with_a_channel_id_and_does_not_wait(
    fake: FakeAmi, connect: Connect
) -> None:
    connection, calls = await connect()
    started = time.monotonic()
    channel_id = await connection.originate(
        agent_endpoint="PJSIP/1001", number="79161234507", variables={"SWITCHBOARD_TASK": "42"}
    )
    assert time.monotonic() - started < 0.5
    assert channel_id.startswith("c2c-")
    action: AmiAction = await fake.wait_for_action("Originate")
    assert {
        key: action.get(key) for key in ("Channel", "Context", "Exten", "Priority", "Async", "Timeout")
    } == {
        "Channel": "PJSIP/1001",
        "Context": "outbound",
        "Exten": "79161234507",
        "Priority": "1",
        "Async": "true",
        "Timeout": "30000",
    }
    assert action.get("ChannelId") == channel_id and action.get("ActionID") == channel_id
    assert action.get_all("Variable") == ["SWITCHBOARD_TASK=42"]
    # Asterisk then runs the recorded click-to-call, under the id the hub chose.
    await fake.replay(
        load_fixture("click_to_call"),
        substitutions={"c2c-16a407d0c479": channel_id, "c2c-originate-1": channel_id},
    )
    await calls.until(lambda: bool(calls.ended()))
    assert [e.kind for e in calls.events] == ["ringing", "answered", "ended"]
    record = calls.ended()[0].record
    assert (record.linkedid, record.direction, record.result) == (channel_id, "out", "answered")
    assert record.customer_number == "+79161234507" and record.variables == {"SWITCHBOARD_TASK": "42"}


async def test_a_click_to_call_asterisk_rejects_ends_as_failed(fake: FakeAmi, connect: Connect) -> None:
    connection, calls = await connect()
    fake.responders["originate"] = lambda action: [
        encode({"Response": "Error", "ActionID": action.get("ActionID") or "", "Message": "Invalid channel"})
    ]
    channel_id = await connection.originate(agent_endpoint="PJSIP/1009", number="79161234599")
    await calls.until(lambda: bool(calls.ended()))
    record = calls.ended()[0].record
    assert (record.linkedid, record.result, record.customer_number) == (channel_id, "failed", "+79161234599")


async def test_a_click_to_call_that_never_rang_ends_as_failed(fake: FakeAmi, connect: Connect) -> None:
    connection, calls = await connect()
    channel_id = await connection.originate(agent_endpoint="PJSIP/1009", number="79161234599")
    await fake.wait_for_action("Originate")
    await fake.send(
        {
            "Event": "OriginateResponse",
            "ActionID": channel_id,
            "Response": "Failure",
            "Channel": "PJSIP/1009",
            "Context": "outbound",
            "Exten": "79161234599",
            "Reason": "0",
            "Uniqueid": channel_id,
        }
    )
    await calls.until(lambda: bool(calls.ended()))
    assert calls.ended()[0].record.result == "failed"


async def test_originate_refuses_header_injection(connect: Connect) -> None:
    connection, _ = await connect()
    with pytest.raises(ValueError, match="number"):
        await connection.originate(agent_endpoint="PJSIP/1001", number="1\r\nAction: Command")
    with pytest.raises(ValueError, match="variable value"):
        await connection.originate(agent_endpoint="PJSIP/1001", number="1", variables={"X": "a\nb"})


@pytest.mark.parametrize(("mode", "options"), [("listen", "qE"), ("whisper", "qwE"), ("barge", "qBE")])
async def test_spy_originates_chanspy_on_the_agent(
    fake: FakeAmi, connect: Connect, mode: SpyMode, options: str
) -> None:
    connection, _ = await connect()
    channel_id = await connection.spy(
        supervisor_endpoint="PJSIP/9001", agent_endpoint="PJSIP/1001", mode=mode
    )
    action = await fake.wait_for_action("Originate")
    assert channel_id.startswith("spy-")
    assert (action.get("Channel"), action.get("Application"), action.get("Data")) == (
        "PJSIP/9001",
        "ChanSpy",
        f"PJSIP/1001,{options}",
    )
    assert (action.get("Async"), action.get("ChannelId")) == ("true", channel_id)


async def test_a_spied_call_gives_no_call_for_the_supervisor(fake: FakeAmi, connect: Connect) -> None:
    connection, calls = await connect()
    channel_id = await connection.spy(supervisor_endpoint="PJSIP/9001", agent_endpoint="PJSIP/1001")
    await fake.replay(
        load_fixture("chanspy"), substitutions={"spy-fa9a6573cd56": channel_id, "spy-originate-1": channel_id}
    )
    await calls.until(lambda: bool(calls.ended()))
    await connection.drain()
    assert {e.record.linkedid for e in calls.events} == {"1795431886.78"}


def test_config_from_settings_keeps_the_secret_out_of_sight() -> None:
    settings = Settings(
        ami_host="pbx.example",
        ami_secret="s3cret",  # type: ignore[arg-type]
        ami_ping_seconds=5,
        _env_file=None,  # type: ignore[call-arg]
    )
    ami = AmiConfig.from_settings(settings)
    assert (ami.host, ami.port, ami.username, ami.secret, ami.ping_seconds) == (
        "pbx.example",
        5038,
        "hub",
        "s3cret",
        5,
    )
    assert "s3cret" not in repr(ami) and "s3cret" not in str(settings.safe_dump())
    with pytest.raises(ValueError, match="telephony is off"):
        AmiConfig.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
