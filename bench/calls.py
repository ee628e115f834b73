"""Telephony under load: the hub's AMI event path and its FastAGI routing, each beside what the test rig
alone can do, measured in the same run.

A second process plays Asterisk: the fake AMI server (`tests/fakes/ami_server.py`) sends N simultaneous
calls made from copies of the real Asterisk 20 recordings (`tests/fakes/ami_mix.py`: every recorded
outcome, own ids / numbers / names, interleaved in time), and a FastAGI client replays the recorded `agi_*`
sessions, each made a distinct call. This process is the hub. (Two processes, so that on two cores the
rig and the hub do not share one.)

AMI — events per second for the whole stream sent as fast as the fake server can:
  (ceiling) the fake server to a raw asyncio reader that only splits blocks: what the rig can emit;
  (a) `AmiConnection` (panoramisk, its UTF-8 protocol, the queue) + `CallTracker` + a no-op
      `on_call_event`, as a ratio to the ceiling;
  (b) the same with `inbox.calls.CallLog` writing every call (calls row, call item in the customer's
      conversation, router accept/release, callback tasks) to the database: fewer calls, as it is slower.
FastAGI — answers per second and the answer time seen by Asterisk (TCP connect → the last `SET VARIABLE`
received) at offered rates of 10 … 200 calls/s (open loop), and a burst of 50 calls at once, against
`start_agi_server` whose `route_call` is the hub's own `inbox.calls_routing.CallRouting` (caller → contact
and conversation, created for a new number; then the router's decision among the agents with phones).
Callers are the `KNOWN` customers but one call in `NEW_EVERY` from a new number. Each call that got an
agent frees it `HOLD` seconds later, as the call log does at hangup. Beside it (floor):
a bare asyncio TCP server that plays the same three command / answer round trips with no work at all.

Set BENCH_DATABASE_URL to use an existing database (migrated or empty; rows are added to it); by default
a SQLite file in a temporary directory. BENCH_CALLS, BENCH_DB_CALLS, BENCH_AGI_RATES, BENCH_AGI_SECONDS
change the sizes.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.asterisk.agi import start_agi_server
from channels.asterisk.ami import AmiConfig, AmiConnection
from channels.asterisk.calls import CallTracker
from channels.asterisk.model import CallEvent, OnCallEvent
from channels.asterisk.routing_model import CallRequest, CallRoute
from inbox.calls_routing import CallRouting
from inbox.service import Inbox
from router.engine import Router
from switchboard import migrate
from switchboard.accounts_model import User
from switchboard.bus import InMemoryBus
from switchboard.db import create_engine, create_sessionmaker
from switchboard.settings import Settings
from tests.fakes.ami_mix import EPOCH, build_mix, customer_name, customer_number
from tests.fakes.ami_server import FIXTURES, FakeAmi

CALLS = int(os.environ.get("BENCH_CALLS", "1000"))
DB_CALLS = int(os.environ.get("BENCH_DB_CALLS", "200"))
RATES = [int(r) for r in os.environ.get("BENCH_AGI_RATES", "10,50,100,200").split(",")]
AGI_SECONDS = float(os.environ.get("BENCH_AGI_SECONDS", "3"))
BURST = 50
AGENTS = 150
HOLD = 0.5  # seconds a routed call keeps its agent before its hangup releases it
KNOWN = 300  # callers the hub knows before the first call (contact, conversation) ...
NEW_EVERY = 5  # ... and one call in five from a number it has never seen (a new contact and lead)
SEED = 20261123
SECRET = "hubsecret"
RECORDED_AGENTS = ("PJSIP/1001", "PJSIP/1002")  # the endpoints in the AMI recordings

Line = tuple[str, str]  # ("<<", what Asterisk sends) or (">>", a line the hub sends)
_SET = re.compile(r'^SET VARIABLE (SWITCHBOARD_TARGET|SWITCHBOARD_REASON) "(.*)"$')
_LINKEDID = re.compile(r"^200 result=1 \((.+)\)$")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


# --- the fake PBX (second process) -----------------------------------------------------------------------


def agi_templates() -> list[list[Line]]:
    """Every recorded FastAGI session (`fixtures/*.agi`), each as its lines in order."""
    sessions: list[list[Line]] = []
    for path in sorted(FIXTURES.glob("*.agi")):
        for raw in path.read_text("utf-8").split("\n"):
            if raw.startswith("# session:"):
                sessions.append([])
            elif raw[:2] in ("<<", ">>") and sessions:
                sessions[-1].append((raw[:2], raw[3:]))
    return sessions


def caller(n: int) -> int:
    """Who makes call number `n`: one of the `KNOWN` customers, or every `NEW_EVERY`-th call a new one."""
    return KNOWN + n if n % NEW_EVERY == 0 else n % KNOWN


def agi_session(template: list[Line], n: int) -> list[Line]:
    """Call number `n`: the recorded session with its own uniqueid, channel and caller."""
    uniqueid = f"{EPOCH + 100_000 + n // 50}.{n}"
    values = {
        "agi_uniqueid": uniqueid,
        "agi_channel": f"PJSIP/trunk-{n:08x}",
        "agi_callerid": customer_number(caller(n)),
        "agi_calleridname": customer_name(caller(n)),
    }
    out: list[Line] = []
    for direction, text in template:
        key = text.split(":", 1)[0]
        if direction == "<<" and key in values:
            text = f"{key}: {values[key]}"
        elif direction == "<<" and _LINKEDID.match(text):
            text = f"200 result=1 ({uniqueid})"
        out.append((direction, text))
    return out


async def agi_call(port: int, session: list[Line]) -> tuple[float | None, str, bool]:
    """Play Asterisk's side of one session: the answer time (connect → the last command the hub sends,
    None when the hub closed early), the reason it gave and whether it named a target."""
    started = time.perf_counter()
    answered = None
    reason, target = "lost", False
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None, "refused", False
    try:
        for direction, text in session:
            if direction == "<<":
                writer.write(text.encode() + b"\n")
                continue
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 10)
            if not line:
                return None, reason, target
            answered = time.perf_counter() - started
            found = _SET.match(line.decode().rstrip("\n"))
            if found and found.group(1) == "SWITCHBOARD_REASON":
                reason = found.group(2)
            elif found:
                target = bool(found.group(2))
        await writer.drain()
    except (OSError, TimeoutError):
        return None, reason, target
    finally:
        writer.close()
    return answered, reason, target


async def agi_load(port: int, rate: float, count: int, first: int) -> list[tuple[float | None, str, bool]]:
    """`count` calls offered at `rate` per second (all at once when `rate` is 0)."""
    templates = agi_templates()
    sessions = [agi_session(templates[(first + i) % len(templates)], first + i) for i in range(count)]
    tasks = []
    started = time.perf_counter()
    for i, session in enumerate(sessions):
        if rate:
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(agi_call(port, session)))
    return list(await asyncio.gather(*tasks))


async def ami_serve(conn: Connection, calls: int, rounds: int) -> list[float]:
    """Serve the mix of `calls` calls to each of `rounds` logins in turn, as fast as possible."""
    mix = build_mix(calls, seed=SEED)
    fixture = mix.fixture()
    emitted = []
    async with FakeAmi(speed=None, secret=SECRET) as fake:
        conn.send((fake.port, len(mix.blocks), len(mix.data())))
        for done in range(1, rounds + 1):
            await fake.wait_for_login(done, within=300)
            started = time.perf_counter()
            await fake.replay(fixture, speed=None, within=30)
            emitted.append(time.perf_counter() - started)
        await asyncio.to_thread(conn.recv)  # the hub has read everything: now the server may close
    return emitted


def pbx(conn: Connection) -> None:
    """The second process: runs one command at a time for the hub."""
    while True:
        command = conn.recv()
        if command[0] == "ami":
            conn.send(asyncio.run(ami_serve(conn, *command[1:])))
        elif command[0] == "agi":
            conn.send(asyncio.run(agi_load(*command[1:])))
        else:
            return


class Pbx:
    """The hub's handle on the second process: send a command, await its answer without blocking."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=pbx, args=(child,), daemon=True)
        self.process.start()

    async def ask(self, *command: object) -> Any:
        self.conn.send(command)
        return await self.answer()

    async def answer(self) -> Any:
        return await asyncio.to_thread(self.conn.recv)

    def close(self) -> None:
        self.conn.send(("stop",))
        self.process.join(10)


# --- AMI -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    port: int
    blocks: int
    size: int


async def raw_reader(stream: Stream) -> float:
    """Log in, then read and split blocks until all of the stream's events came; seconds from the first."""
    reader, writer = await asyncio.open_connection("127.0.0.1", stream.port, limit=1 << 20)
    try:
        await reader.readline()  # the banner
        writer.write(f"Action: Login\r\nUsername: hub\r\nSecret: {SECRET}\r\n\r\n".encode())
        await reader.readuntil(b"\r\n\r\n")  # Response: Success
        await reader.readuntil(b"\r\n\r\n")  # FullyBooted
        await reader.readuntil(b"\r\n\r\n")  # the first event: the clock starts (as in `Counting`)
        started = time.perf_counter()
        for _ in range(stream.blocks - 1):
            await reader.readuntil(b"\r\n\r\n")
        return time.perf_counter() - started
    finally:
        writer.close()


class Counting(CallTracker):
    """The real tracker, noting when the stream's first event arrived and when its last one was fed."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.fed = 0
        self.first = 0.0
        self.all_fed = asyncio.Event()

    def feed(self, event: Mapping[str, object], at: datetime | None = None) -> list[CallEvent]:
        out = super().feed(event, at)
        if event.get("Event") != "FullyBooted":
            self.fed += 1
            if self.fed == 1:
                self.first = time.perf_counter()
            if self.fed == self.expected:
                self.all_fed.set()
        return out


async def through_connection(stream: Stream, on_call_event: OnCallEvent) -> tuple[float, Counter[str]]:
    """The stream through a real AmiConnection: seconds from its first event to the last one handled
    (`on_call_event` included), and the call events (ringing, answered, ended) it made."""
    kinds: Counter[str] = Counter()

    async def counted(event: CallEvent) -> None:
        kinds[event.kind] += 1
        await on_call_event(event)

    tracker = Counting(stream.blocks)
    config = AmiConfig(host="127.0.0.1", port=stream.port, secret=SECRET, ping_seconds=30.0)
    connection = AmiConnection(config, counted, tracker=tracker)
    await connection.start()
    try:
        async with asyncio.timeout(300):
            await tracker.all_fed.wait()
            await connection.drain()
        elapsed = time.perf_counter() - tracker.first
        if connection.dropped_events:
            print(f"    ({connection.dropped_events} events dropped: the consumer fell behind)")
        return elapsed, kinds
    finally:
        await connection.stop()


async def no_op(event: CallEvent) -> None:
    return None


def rate_line(label: str, events: int, seconds: float, calls: int, ceiling: float | None) -> str:
    rate = events / seconds
    text = f"{label:<56} {rate:9.0f} events/s  ({rate * calls / events:6.0f} calls/s)"
    if ceiling is not None:
        text += f"   ratio to ceiling {rate / ceiling:5.3f}"
    return text


# --- the hub's database ----------------------------------------------------------------------------------

Sessions = async_sessionmaker[AsyncSession]


@dataclass
class Hub:
    label: str  # the database's backend
    sessions: Sessions
    router: Router
    inbox: Inbox
    bus: InMemoryBus
    agents: list[int]


async def hub(url: str) -> Hub:
    """The database migrated, a router and inbox on it, `AGENTS` online agents with phones (the first two
    with the recordings' endpoints, so the call log finds them)."""
    await migrate.upgrade(url)
    sessions = create_sessionmaker(create_engine(url))
    tag = uuid.uuid4().hex[:6]
    async with sessions() as db, db.begin():
        rows = [
            {"username": f"bench-{tag}-{i}", "full_name": f"Agent {i}", "role": "agent", "password_hash": "-"}
            for i in range(AGENTS)
        ]
        agents = sorted(int(i) for i in (await db.execute(insert(User).returning(User.id), rows)).scalars())
    router = Router(sessions)
    for n, agent in enumerate(agents):
        await router.set_capacity(agent, 3, False)
        await router.set_endpoint(agent, RECORDED_AGENTS[n] if n < 2 else f"PJSIP/bench{tag}{n}")
        await router.set_presence(agent, "online")
    bus = InMemoryBus()
    await bus.start()
    inbox = Inbox(sessions, bus)
    inbox.router = router
    for n in range(KNOWN):  # as if each had called before
        number = customer_number(n)
        await inbox.call_conversation(phone=f"+{number}", account_id="74951234567", name=customer_name(n))
    return Hub(url.split(":", 1)[0].split("+", 1)[0], sessions, router, inbox, bus, agents)


async def call_log_handler(the_hub: Hub) -> tuple[OnCallEvent, Callable[[], Awaitable[int]]] | None:
    """`CallLog.on_call_event` and a count of its calls rows, or None when `inbox.calls` is not there."""
    try:
        from inbox.calls import CallLog
        from inbox.calls_model import Call
    except ImportError as exc:
        print(f"(b) skipped: inbox.calls is not importable ({exc})")
        return None
    log = CallLog(the_hub.inbox, the_hub.router, the_hub.sessions, the_hub.bus)

    async def rows() -> int:
        async with the_hub.sessions() as db:
            return int(await db.scalar(select(func.count()).select_from(Call)) or 0)

    return log.on_call_event, rows


# --- FastAGI ---------------------------------------------------------------------------------------------


async def bare_agi(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The floor: the same three round trips as a routing answer, no work at all."""
    try:
        while (await reader.readline()).strip():
            pass
        for command in (
            b"GET VARIABLE CHANNEL(linkedid)\n",
            b'SET VARIABLE SWITCHBOARD_TARGET "PJSIP/1001"\n',
            b'SET VARIABLE SWITCHBOARD_REASON "least_busy"\n',
        ):
            writer.write(command)
            await writer.drain()
            if not await reader.readline():
                break
    finally:
        writer.close()


class Activity:
    """Counts the hub's work in progress; `idle` is set when there is none."""

    def __init__(self) -> None:
        self.running = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.tasks: set[asyncio.Task[None]] = set()

    def enter(self) -> None:
        self.running += 1
        self.idle.clear()

    def leave(self) -> None:
        self.running -= 1
        if self.running == 0:
            self.idle.set()

    def __enter__(self) -> Activity:
        self.enter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.leave()


@dataclass(frozen=True)
class Load:
    count: int
    answers: list[float]  # answer times of the calls that got an answer
    routed: int  # answers naming an agent
    reasons: Counter[str]
    seconds: float

    @property
    def p50(self) -> float:
        return statistics.median(self.answers)

    @property
    def p99(self) -> float:
        return pct(self.answers, 0.99)


async def offer(pbx_: Pbx, port: int, rate: float, count: int, first: int) -> Load:
    started = time.perf_counter()
    results = await pbx_.ask("agi", port, rate, count, first)
    elapsed = time.perf_counter() - started
    answers = [t for t, _, _ in results if t is not None]
    routed = sum(target for _, _, target in results)
    return Load(count, answers, routed, Counter(reason for _, reason, _ in results), elapsed)


AGI_HEADER = (
    f"{'':<22} {'floor: bare TCP':<30} {'hub: CallRouting':<50} {'ratio hub/floor':<21} {'outcome'}\n"
    f"{'':<22} {'p50':>10} {'p99':>10} {'':<8} {'answers/s':>9} {'p50':>10} {'p99':>10} {'':<19}"
    f" {'p50':>6} {'p99':>6}   agent found / late (timeout, error, lost)"
)


def agi_line(label: str, floor: Load, load: Load) -> str:
    late = load.reasons.get("timeout", 0) + load.reasons.get("error", 0) + load.count - len(load.answers)
    return (
        f"{label:<22} {ms(floor.p50)} {ms(floor.p99)} {'':<8} {len(load.answers) / load.seconds:9.0f}"
        f" {ms(load.p50)} {ms(load.p99)} {'':<19} {load.p50 / floor.p50:6.1f} {load.p99 / floor.p99:6.1f}"
        f"   {load.routed:4d} / {late:4d} of {load.count}"
    )


# --- main ------------------------------------------------------------------------------------------------


async def ami_section(pbx_: Pbx, the_hub: Hub) -> None:
    pbx_.conn.send(("ami", CALLS, 3))  # three logins: the raw reader twice, then the AmiConnection
    stream = Stream(*(await pbx_.answer()))
    print(
        f"AMI: {CALLS} simultaneous calls made from the 14 recordings, {stream.blocks} events "
        f"({stream.size / 1e6:.1f} MB), sent as fast as the fake server can"
    )
    ceilings = sorted([await raw_reader(stream), await raw_reader(stream)])
    ceiling = stream.blocks / ceilings[0]
    label = "(ceiling) fake AMI server -> raw asyncio reader, best of 2"
    print(
        rate_line(label, stream.blocks, ceilings[0], CALLS, None)
        + f"   (the other {stream.blocks / ceilings[1]:.0f})"
    )
    seconds, kinds = await through_connection(stream, no_op)
    print(
        rate_line(
            "(a) AmiConnection + CallTracker, no-op on_call_event", stream.blocks, seconds, CALLS, ceiling
        )
        + f"   calls ended {kinds['ended']}/{CALLS}"
    )
    pbx_.conn.send(("done",))
    emitted = await pbx_.answer()
    print(f"    (the fake server's own write loop took {', '.join(f'{s:.2f}' for s in emitted)} s per round)")

    handler = await call_log_handler(the_hub)
    if handler is None:
        return
    on_call_event, rows = handler
    pbx_.conn.send(("ami", DB_CALLS, 1))
    small = Stream(*(await pbx_.answer()))
    before = await rows()
    seconds, kinds = await through_connection(small, on_call_event)
    written = await rows() - before
    pbx_.conn.send(("done",))
    await pbx_.answer()
    print(
        rate_line(
            f"(b) ... + CallLog writing to {the_hub.label} ({DB_CALLS} calls)",
            small.blocks,
            seconds,
            DB_CALLS,
            ceiling,
        )
        + f"   calls ended {kinds['ended']}/{DB_CALLS}, rows written {written}"
    )
    print(
        f"    ({sum(kinds.values())} call events written by CallLog: {sum(kinds.values()) / seconds:.0f}/s,"
        f" {seconds * 1000 / sum(kinds.values()):.1f} ms each)"
    )


async def agi_section(pbx_: Pbx, the_hub: Hub) -> None:
    routing = CallRouting(the_hub.inbox, the_hub.router)
    work = Activity()  # route_call (late ones run on after the budget), calls not hung up yet, hang-ups

    async def hang_up(linkedid: str) -> None:
        try:
            await asyncio.sleep(HOLD)
            await routing.release(linkedid)
        finally:
            work.leave()

    async def route_call(request: CallRequest) -> CallRoute:
        with work:
            route = await routing.route_call(request)
        if route.target:
            work.enter()
            task = asyncio.create_task(hang_up(request.linkedid))
            work.tasks.add(task)
            task.add_done_callback(work.tasks.discard)
        return route

    async def settle() -> None:
        """Until the hub is idle again: every call hung up, no late routing still running."""
        await work.idle.wait()
        await asyncio.sleep(0.2)

    settings = Settings(agi_host="127.0.0.1", agi_port=0, _env_file=None)
    server = await start_agi_server(settings, route_call, routing.release)
    floor_server = await asyncio.start_server(bare_agi, "127.0.0.1", 0)
    floor_port = int(floor_server.sockets[0].getsockname()[1])
    print(
        f"FastAGI: route_call = CallRouting on {the_hub.label} ({AGENTS} agents with phones; callers "
        f"known to the hub but 1 in {NEW_EVERY} new;\n  an agent freed {HOLD} s after each answer), budget "
        f"{settings.agi_budget_ms} ms; {AGI_SECONDS:g} s per rate, the hub idle again before each line"
    )
    print(AGI_HEADER)
    first = 0
    try:
        await offer(pbx_, floor_port, 50, 20, 10_000_000)  # warm up: connections, caches, first contacts
        await offer(pbx_, server.port, 50, 20, 10_000_000)
        for rate in RATES:
            count = int(rate * AGI_SECONDS)
            await settle()
            floor = await offer(pbx_, floor_port, rate, count, first)
            load = await offer(pbx_, server.port, rate, count, first)
            first += count
            print(agi_line(f"offered {rate:4d} calls/s", floor, load))
        await settle()
        floor = await offer(pbx_, floor_port, 0, BURST, first)
        load = await offer(pbx_, server.port, 0, BURST, first)
        print(agi_line(f"burst of {BURST} at once", floor, load))
        await settle()
    finally:
        await server.close()
        floor_server.close()
        await floor_server.wait_closed()


async def main() -> None:
    pbx_ = Pbx()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/bench.db"
            the_hub = await hub(url)
            started = time.perf_counter()
            await ami_section(pbx_, the_hub)
            await agi_section(pbx_, the_hub)
            await the_hub.inbox.close()
            await the_hub.bus.close()
            print(f"(bench took {time.perf_counter() - started:.0f} s after setup)")
    finally:
        pbx_.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)  # a late routing answer is a counted outcome here, not news
    asyncio.run(main())
