"""The FastAGI routing server against a client that replays what a real Asterisk 20 sent (`fixtures/*.agi`):
the hub must answer every recorded session with the same commands the recording server sent, within its
budget, and survive hostile clients."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from channels.asterisk.agi import AgiServer, agi_quote, start_agi_server
from channels.asterisk.routing_model import CallRequest, CallRoute
from switchboard.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
AGI_FILES = sorted(p.name for p in FIXTURES.glob("*.agi"))
Line = tuple[str, str]  # ("<<", what Asterisk sent) or (">>", what the server sent)
_SET = re.compile(r'^SET VARIABLE (SWITCHBOARD_TARGET|SWITCHBOARD_REASON) "(.*)"$')
_LINKEDID = re.compile(r"^200 result=1 \((.+)\)$")
WAIT = 2.0  # seconds a client waits for the server: far above any answer here


def recorded_sessions(name: str) -> list[list[Line]]:
    """The FastAGI sessions of one recording, each as its lines in order."""
    sessions: list[list[Line]] = []
    for raw in (FIXTURES / name).read_text("utf-8").split("\n"):
        if raw.startswith("# session:"):
            sessions.append([])
        elif raw[:2] in ("<<", ">>") and sessions:
            sessions[-1].append((raw[:2], raw[3:]))
    return sessions


def recorded_answer(session: list[Line]) -> tuple[str, CallRoute]:
    """The linkedid Asterisk gave and the answer the recording server sent for it."""
    linkedid, values = "", {}
    for (_, line), (_, answer) in itertools.pairwise(session):
        if line == "GET VARIABLE CHANNEL(linkedid)":
            match = _LINKEDID.match(answer)
            assert match
            linkedid = match.group(1)
        found = _SET.match(line)
        if found:
            values[found.group(1)] = found.group(2)
    return linkedid, CallRoute(values["SWITCHBOARD_TARGET"], values["SWITCHBOARD_REASON"])


def headers_of(session: list[Line]) -> dict[str, str]:
    block = [text for _, text in session[: session.index(("<<", ""))]]
    return dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "") for line in block)


async def replay(port: int, session: list[Line]) -> list[str]:
    """Plays Asterisk's side of a recorded session; returns every line the server sent, up to its close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent: list[str] = []
    try:
        for direction, text in session:
            if direction == "<<":
                writer.write(text.encode() + b"\n")
                continue
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), WAIT)
            if not line:
                return sent
            sent.append(line.decode().rstrip("\n"))
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(), WAIT)
        sent += [line for line in rest.decode().split("\n") if line]
        return sent
    finally:
        writer.close()


async def exchange(port: int, data: bytes) -> bytes:
    """Sends raw bytes and returns everything the server sent until it closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        try:
            writer.write_eof()  # all said: a server waiting for more would wait for nothing
            await writer.drain()
        except ConnectionError:
            pass  # the server may close before taking everything: that is the point
        return await asyncio.wait_for(reader.read(), WAIT)
    except ConnectionError:
        return b""
    finally:
        writer.close()


def session_with(session: list[Line], **headers: str) -> list[Line]:
    """A recorded session with some `agi_*` header values changed (or added)."""
    block_end = session.index(("<<", ""))
    lines = []
    for direction, text in session[:block_end]:
        key = text.split(":", 1)[0]
        lines.append((direction, f"{key}: {headers.pop(key)}" if key in headers else text))
    lines += [("<<", f"{key}: {value}") for key, value in headers.items()]
    return lines + session[block_end:]


@dataclass
class FakeRouting:
    """Stands in for `CallRouting`: answers from a table (or as told), records requests and releases."""

    answers: dict[str, CallRoute] = field(default_factory=dict)
    delay: float = 0.0
    fail: bool = False
    answer: Callable[[CallRequest], CallRoute] | None = None
    requests: list[CallRequest] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    release_seen: asyncio.Event = field(default_factory=asyncio.Event)

    async def route_call(self, request: CallRequest) -> CallRoute:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("database is down")
        if self.answer is not None:
            return self.answer(request)
        return self.answers.get(request.linkedid, CallRoute("", "queued"))

    async def release(self, linkedid: str) -> None:
        self.released.append(linkedid)
        self.release_seen.set()


Start = Callable[..., Awaitable[tuple[AgiServer, FakeRouting]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    servers: list[AgiServer] = []

    async def make(**options: float) -> tuple[AgiServer, FakeRouting]:
        fake = FakeRouting()
        server = AgiServer(fake.route_call, fake.release, **options)  # type: ignore[arg-type]
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server, fake

    yield make
    for server in servers:
        await server.close()


INBOUND = recorded_sessions("inbound_answered.agi")[0]


# --- the recordings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", AGI_FILES)
async def test_every_recorded_session_gets_the_commands_the_recording_server_sent(name: str) -> None:
    fake = FakeRouting()
    settings = Settings(agi_port=0, agi_budget_ms=1000, _env_file=None)  # type: ignore[call-arg]
    server = await start_agi_server(settings, fake.route_call, fake.release)
    try:
        sessions = recorded_sessions(name)
        for session in sessions:
            linkedid, route = recorded_answer(session)
            fake.answers[linkedid] = route
        for session in sessions:
            sent = await replay(server.port, session)
            assert sent == [text for direction, text in session if direction == ">>"]
    finally:
        await server.close()
    assert len(fake.requests) == len(sessions) and fake.released == []
    for session, request in zip(sessions, fake.requests, strict=True):
        env = headers_of(session)
        assert request.linkedid == recorded_answer(session)[0]
        assert request.uniqueid == env["agi_uniqueid"]
        assert request.caller == env["agi_callerid"]
        assert request.caller_e164 == "+" + env["agi_callerid"]  # sent without "+": read as international
        assert request.caller_name == env["agi_calleridname"]
        assert request.dialled == env["agi_dnid"] == "74951234567"
        assert request.channel == env["agi_channel"]


async def test_the_recorded_caller_and_call_reach_route_call(start: Start) -> None:
    server, fake = await start()
    await replay(server.port, INBOUND)
    assert fake.requests == [
        CallRequest(
            linkedid="1795431712.4",
            uniqueid="1795431712.4",
            caller="79161234501",
            caller_e164="+79161234501",
            caller_name="Ivan Petrov",
            dialled="74951234567",
            channel="PJSIP/trunk-00000002",
            language="en",
        )
    ]


async def test_ten_calls_at_once_are_routed_in_parallel_with_their_utf8_names(start: Start) -> None:
    server, fake = await start(budget_ms=1000)
    fake.delay = 0.2  # a slow answer each: in series this would take 2 s
    sessions = recorded_sessions("concurrent_10.agi")
    for session in sessions:
        linkedid, route = recorded_answer(session)
        fake.answers[linkedid] = route
    started = time.monotonic()
    sent = await asyncio.gather(*(replay(server.port, s) for s in sessions))
    assert time.monotonic() - started < 1.0
    assert sent == [[t for d, t in s if d == ">>"] for s in sessions]
    names = {r.caller_name for r in fake.requests}
    assert {"Иван Петров", "Ольга Смирнова", "José Núñez", "Анна Волкова"} <= names


# --- the budget --------------------------------------------------------------------------------------


async def test_a_slow_answer_gives_an_empty_target_in_time_and_the_late_choice_is_released(
    start: Start,
) -> None:
    server, fake = await start(budget_ms=50)
    fake.delay = 0.3
    fake.answers["1795431712.4"] = CallRoute("PJSIP/1001", "least_busy", agent_id=7)
    started = time.monotonic()
    sent = await replay(server.port, INBOUND)
    assert time.monotonic() - started < 0.25
    assert sent == [
        "GET VARIABLE CHANNEL(linkedid)",
        'SET VARIABLE SWITCHBOARD_TARGET ""',
        'SET VARIABLE SWITCHBOARD_REASON "timeout"',
    ]
    assert fake.released == []  # not yet: the late answer is still on its way
    await asyncio.wait_for(fake.release_seen.wait(), 2)
    assert fake.released == ["1795431712.4"]


async def test_a_burst_past_the_routing_slots_answers_some_in_time_and_never_starts_the_rest(
    start: Start,
) -> None:
    server, fake = await start(budget_ms=300, max_routing=2)
    fake.delay = 0.2  # two at a time, 0.2 s each: in 0.3 s two are routed, two more start and run late
    sessions = [session_with(INBOUND, agi_uniqueid=f"1795431712.{n}") for n in range(10, 20)]
    fake.answer = lambda request: CallRoute("PJSIP/1001", "least_busy", agent_id=7)
    started = time.monotonic()
    sent = await asyncio.gather(*(replay(server.port, s) for s in sessions))
    assert time.monotonic() - started < 0.6  # everyone had an answer within the budget (and a margin)
    reasons = [lines[-1] for lines in sent]
    assert reasons.count('SET VARIABLE SWITCHBOARD_REASON "least_busy"') == 2
    assert reasons.count('SET VARIABLE SWITCHBOARD_REASON "timeout"') == 8
    assert len(fake.requests) == 4  # six calls never started any routing work


async def test_a_late_answer_that_reserved_nobody_releases_nothing(start: Start) -> None:
    server, fake = await start(budget_ms=30)
    fake.delay = 0.1  # and then "queued": nobody reserved
    sent = await replay(server.port, INBOUND)
    assert sent[-1] == 'SET VARIABLE SWITCHBOARD_REASON "timeout"'
    await asyncio.sleep(0.2)
    assert fake.released == []


async def test_a_failing_route_answers_error_and_releases_what_it_may_have_reserved(start: Start) -> None:
    server, fake = await start()
    fake.fail = True
    sent = await replay(server.port, INBOUND)
    assert sent[1:] == ['SET VARIABLE SWITCHBOARD_TARGET ""', 'SET VARIABLE SWITCHBOARD_REASON "error"']
    await asyncio.wait_for(fake.release_seen.wait(), 2)
    assert fake.released == ["1795431712.4"]


# --- hostile or broken input -----------------------------------------------------------------------------


def test_agi_quote_escapes_quotes_and_backslashes_and_refuses_line_breaks() -> None:
    assert agi_quote("PJSIP/1001") == '"PJSIP/1001"'
    assert agi_quote('a"b\\c') == '"a\\"b\\\\c"'
    for bad in ("x\nEXEC Dial", "x\r", "\x00"):
        with pytest.raises(ValueError):
            agi_quote(bad)


async def test_a_caller_name_full_of_agi_syntax_is_only_data(start: Start) -> None:
    server, fake = await start()
    evil = 'Evil" \\ "x\x07"\r; SET VARIABLE SWITCHBOARD_TARGET "Local/666'
    fake.answer = lambda r: CallRoute("PJSIP/1001", "least_busy", agent_id=1)
    sent = await replay(server.port, session_with(INBOUND, agi_calleridname=evil))
    assert sent == [
        "GET VARIABLE CHANNEL(linkedid)",
        'SET VARIABLE SWITCHBOARD_TARGET "PJSIP/1001"',
        'SET VARIABLE SWITCHBOARD_REASON "least_busy"',
    ]
    assert fake.requests[0].caller_name == evil.replace("\x07", "").replace("\r", "")


@pytest.mark.parametrize(
    "route",
    [
        CallRoute('PJSIP/1001"\nEXEC System "rm -rf /', "least_busy", agent_id=1),  # a line break
        CallRoute('PJSIP/1001" "x', "least_busy", agent_id=1),  # a quote
        CallRoute("PJSIP/1001&PJSIP/1002", "least_busy", agent_id=1),  # two dial targets
        CallRoute("PJSIP/1001,,tT", "least_busy", agent_id=1),  # Dial() options
        CallRoute("PJSIP/1001", 'sticky"\nHANGUP', agent_id=1),  # a reason is checked too
    ],
)
async def test_a_value_that_could_change_the_command_is_never_sent(start: Start, route: CallRoute) -> None:
    server, fake = await start()
    fake.answer = lambda r: route
    sent = await replay(server.port, session_with(INBOUND, agi_calleridname=route.target))
    assert sent == [
        "GET VARIABLE CHANNEL(linkedid)",
        'SET VARIABLE SWITCHBOARD_TARGET ""',
        'SET VARIABLE SWITCHBOARD_REASON "error"',
    ]
    await asyncio.wait_for(fake.release_seen.wait(), 2)  # the agent chosen for it is freed


async def test_an_unknown_script_gets_no_command_and_no_routing(start: Start) -> None:
    server, fake = await start()
    sent = await replay(server.port, session_with(INBOUND, agi_network_script="admin/reset"))
    assert sent == []
    assert fake.requests == []


async def test_garbage_gets_no_answer_and_the_server_keeps_serving(start: Start) -> None:
    server, fake = await start()
    assert await exchange(server.port, b"\x00\xff\xfe garbage\nGET / HTTP/1.1\nHost: x\n\n") == b""
    assert await exchange(server.port, b"\n") == b""
    assert await exchange(server.port, b"agi_network_script: r\xc3\xb6ute\xff\n\n") == b""  # no such script
    assert await exchange(server.port, bytes(range(256)) * 4) == b""
    assert len(await replay(server.port, INBOUND)) == 3
    assert len(fake.requests) == 1  # only the real call was routed


async def test_a_huge_header_line_or_block_is_cut_off(start: Start) -> None:
    server, fake = await start()
    assert await exchange(server.port, b"agi_callerid: " + b"9" * 100_000 + b"\n\n") == b""
    block = b"".join(b"agi_x%d: %s\n" % (i, b"y" * 200) for i in range(500)) + b"\n"
    assert await exchange(server.port, block) == b""
    assert fake.requests == []
    assert len(await replay(server.port, INBOUND)) == 3


async def test_a_client_that_never_finishes_its_headers_is_dropped(start: Start) -> None:
    server, _ = await start(header_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\nagi_network_script: route\n")
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    assert 0.15 < time.monotonic() - started < 1.5
    writer.close()
    assert server.active_sessions == 0


async def test_a_client_that_closes_mid_headers_leaves_no_session_behind(start: Start) -> None:
    server, fake = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\nagi_network_script: route\n")
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    await asyncio.sleep(0.05)
    assert server.active_sessions == 0 and fake.requests == []


async def test_an_asterisk_that_never_answers_a_command_is_dropped(start: Start) -> None:
    server, fake = await start(command_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    header = [text for _, text in INBOUND[: INBOUND.index(("<<", "")) + 1]]
    writer.write("\n".join(header).encode() + b"\n")
    assert await asyncio.wait_for(reader.readline(), 2) == b"GET VARIABLE CHANNEL(linkedid)\n"
    assert await asyncio.wait_for(reader.read(), 2) == b""  # no answer: dropped, nothing routed
    writer.close()
    assert fake.requests == []


# --- what Asterisk may answer ---------------------------------------------------------------------------


async def test_without_a_linkedid_the_uniqueid_is_the_call_key(start: Start) -> None:
    server, fake = await start()
    session = [(d, "200 result=0" if t.startswith("200 result=1 (") else t) for d, t in INBOUND]
    sent = await replay(server.port, session)
    assert len(sent) == 3
    assert fake.requests[0].linkedid == "1795431712.4"


async def test_a_caller_who_hung_up_before_routing_is_not_routed(start: Start) -> None:
    server, fake = await start()
    header = [text for _, text in INBOUND[: INBOUND.index(("<<", "")) + 1]]
    answer = b"HANGUP\n200 result=1 (1795431712.4)\n"
    sent = await exchange(server.port, "\n".join(header).encode() + b"\n" + answer)
    assert sent == b"GET VARIABLE CHANNEL(linkedid)\n"
    assert fake.requests == []


async def test_an_answer_asterisk_could_not_take_releases_the_agent(start: Start) -> None:
    server, fake = await start()
    fake.delay = 0.05
    fake.answers["1795431712.4"] = CallRoute("PJSIP/1001", "least_busy", agent_id=7)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    header = [text for _, text in INBOUND[: INBOUND.index(("<<", "")) + 1]]
    writer.write("\n".join(header).encode() + b"\n")
    assert await reader.readline() == b"GET VARIABLE CHANNEL(linkedid)\n"
    writer.write(b"200 result=1 (1795431712.4)\n")
    await writer.drain()
    writer.close()  # the caller hung up while the hub was choosing
    await asyncio.wait_for(fake.release_seen.wait(), 2)
    assert fake.released == ["1795431712.4"]


async def test_a_dead_channel_answer_releases_the_agent(start: Start) -> None:
    server, fake = await start()
    fake.answers["1795431712.4"] = CallRoute("PJSIP/1001", "least_busy", agent_id=7)
    dead = "511 Command Not Permitted on a dead channel or intercept routine"
    session = [(d, dead if t == "200 result=1" else t) for d, t in INBOUND]
    assert len(await replay(server.port, session)) == 3
    await asyncio.wait_for(fake.release_seen.wait(), 2)
    assert fake.released == ["1795431712.4"]


async def test_close_waits_for_a_late_answer_and_releases_it(start: Start) -> None:
    server, fake = await start(budget_ms=20)
    fake.delay = 0.1
    fake.answers["1795431712.4"] = CallRoute("PJSIP/1001", "sticky", agent_id=7)
    await replay(server.port, INBOUND)
    await server.close()
    assert fake.released == ["1795431712.4"]
