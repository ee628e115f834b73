"""A fake Asterisk Manager Interface (AMI) server that replays real Asterisk 20 recordings, and the loader of
those recordings (`tests/channels/asterisk/fixtures/*.ami` + `*.timing.tsv`).

The server speaks AMI as Asterisk does: the banner line, `Login` (a wrong secret gets `Response: Error` /
`Message: Authentication failed` and the socket closed), `FullyBooted` after a login, `Ping` answered with
`Ping: Pong` and a `Timestamp`, `CoreShowChannels` as an event list (`channels` says what is "up"),
`Originate` with `Async: true` answered `Originate successfully queued`, `Logoff` with `Goodbye`, any
other action with `Response: Success`. Every action received is kept (`actions`), so a test can assert that
an `Originate` carried the right headers.

A fixture's event blocks are replayed to the logged-in client at the recorded pace divided by `speed` (None:
as fast as possible); the recording's own banner, responses and post-login `FullyBooted` are skipped because
the server writes its own. `substitutions` rewrite bytes on the way (e.g. the recorded `ChannelId` into the
one the hub generated). Failure modes: `drop()` (EOF), `restart()` (EOF, refused connects for a while, then
listening again, as `core restart now` did), `freeze()` (the current connections stop answering anything:
a hung or half-open PBX), and `chunk_size` (writes split in small pieces, so multi-byte UTF-8 characters
straddle reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

FIXTURES = Path(__file__).resolve().parent.parent / "channels" / "asterisk" / "fixtures"
BANNER = b"Asterisk Call Manager/9.0.0\r\n"
EOL = "\r\n"


# --- the recordings --------------------------------------------------------------------------------------


def parse_block(data: bytes | str) -> dict[str, str]:
    """One AMI block (`Key: Value` lines) as a dict; a repeated key keeps its first value, `Key: ` is ''."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    headers: dict[str, str] = {}
    for line in text.split(EOL):
        key, sep, value = line.partition(":")
        if sep and key and " " not in key:
            headers.setdefault(key, value[1:] if value.startswith(" ") else value)
    return headers


@dataclass(frozen=True)
class Block:
    """One block of a recording: when it arrived (seconds since the TCP connect), what it is, its bytes."""

    t: float
    kind: str  # banner, Response or Event
    name: str
    data: bytes

    @property
    def headers(self) -> dict[str, str]:
        return parse_block(self.data)


@dataclass(frozen=True)
class AmiFixture:
    name: str
    blocks: tuple[Block, ...]

    @property
    def events(self) -> list[Block]:
        """The event blocks a replay sends: all but the banner, the responses and the login's FullyBooted."""
        out = []
        for position, block in enumerate(self.blocks):
            if block.kind != "Event":
                continue
            if block.name == "FullyBooted" and position <= 2:
                continue
            out.append(block)
        return out

    def messages(self) -> list[tuple[float, dict[str, str]]]:
        """The replayed events parsed, with their recorded times: what a CallTracker is fed in tests."""
        return [(block.t, block.headers) for block in self.events]

    def index(self, name: str, nth: int = 1, **fields: str) -> int:
        """The position in `events` of the `nth` event called `name` whose headers include `fields`."""
        seen = 0
        for position, block in enumerate(self.events):
            if block.name != name:
                continue
            headers = block.headers
            if all(headers.get(key) == value for key, value in fields.items()):
                seen += 1
                if seen == nth:
                    return position
        raise LookupError(f"{self.name}: no event #{nth} {name} {fields}")


def load_fixture(name: str, directory: Path = FIXTURES) -> AmiFixture:
    """`name.ami` cut into blocks by `name.timing.tsv` (offsets are bytes; the text is UTF-8)."""
    raw = (directory / f"{name}.ami").read_bytes()
    blocks = []
    with (directory / f"{name}.timing.tsv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            offset, length = int(row["byte_offset"]), int(row["byte_length"])
            blocks.append(
                Block(float(row["t_rel_s"]), row["kind"], row["name"], raw[offset : offset + length])
            )
    return AmiFixture(name, tuple(blocks))


SCENARIOS = (
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
)


# --- the server ------------------------------------------------------------------------------------------


@dataclass
class AmiAction:
    """An action a client sent: its headers in order (a header such as `Variable` may repeat)."""

    headers: list[tuple[str, str]]
    connection: int  # 1 for the first TCP connection the server accepted, and so on

    @property
    def name(self) -> str:
        return self.get("Action") or ""

    def get(self, key: str, default: str | None = None) -> str | None:
        for name, value in self.headers:
            if name.lower() == key.lower():
                return value
        return default

    def get_all(self, key: str) -> list[str]:
        return [value for name, value in self.headers if name.lower() == key.lower()]


def encode(headers: Mapping[str, str] | Sequence[tuple[str, str]]) -> bytes:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return ("".join(f"{key}: {value}{EOL}" for key, value in items) + EOL).encode("utf-8")


Responder = Callable[[AmiAction], list[bytes]]


@dataclass
class _Connection:
    number: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    authenticated: bool = False
    frozen: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class FakeAmi:
    """Serve AMI on 127.0.0.1 at a free port (`port`, fixed across `restart()`)."""

    def __init__(
        self,
        *,
        username: str = "hub",
        secret: str = "hubsecret",
        speed: float | None = None,
        uptime: int = 300,
        chunk_size: int | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.username = username
        self.secret = secret
        self.speed = speed
        self.uptime = uptime
        self.chunk_size = chunk_size
        self.actions: list[AmiAction] = []
        self.channels: list[dict[str, str]] = []  # what CoreShowChannels reports as up
        self.responders: dict[str, Responder] = {}  # action name (lower case) -> blocks to answer
        self.connections_made = 0
        self.logins = 0
        self.failed_logins = 0
        self._server: asyncio.Server | None = None
        self._connections: list[_Connection] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> FakeAmi:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.start_listening()

    async def start_listening(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop_listening(self) -> None:
        """Close the listening socket: new connects are refused (existing connections stay)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def drop(self) -> None:
        """Close every client connection (the client reads EOF)."""
        for connection in list(self._connections):
            await self._hang_up(connection)

    async def restart(self, down_seconds: float, farewell: AmiFixture | None = None) -> None:
        """As `core restart now`: send `farewell`'s events (e.g. `Shutdown`), close the connections, refuse
        connects for `down_seconds`, then listen again on the same port with a fresh uptime."""
        await self.stop_listening()
        if farewell is not None:
            await self.replay(farewell)
        await self.drop()
        await asyncio.sleep(down_seconds)
        self.uptime = 0
        await self.start_listening()

    def freeze(self) -> None:
        """The current connections stay open but nothing more is answered or sent on them."""
        for connection in self._connections:
            connection.frozen = True

    async def close(self) -> None:
        await self.stop_listening()
        await self.drop()  # each connection's task then reads EOF and ends
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 5)

    # --- waiting for the client ------------------------------------------------------------------------

    async def wait_for_login(self, count: int = 1, within: float = 5.0) -> None:
        """Until `count` successful logins in total."""
        await self.wait_until(lambda: self.logins >= count, within, f"{count} login(s)")

    async def wait_for_action(self, name: str, count: int = 1, within: float = 5.0) -> AmiAction:
        """The `count`-th action called `name` (case-insensitive), once it has arrived."""

        def found() -> bool:
            return len(self.actions_named(name)) >= count

        await self.wait_until(found, within, f"action {name} #{count}")
        return self.actions_named(name)[count - 1]

    def actions_named(self, name: str) -> list[AmiAction]:
        return [action for action in self.actions if action.name.lower() == name.lower()]

    async def wait_until(
        self, predicate: Callable[[], bool], within: float = 5.0, what: str = "change"
    ) -> None:
        """Until `predicate()` holds, re-checked whenever the server's state changes (logins, actions)."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), within)
            except TimeoutError:
                raise AssertionError(f"fake AMI: no {what} within {within}s") from None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- sending ---------------------------------------------------------------------------------------

    async def replay(
        self,
        fixture: AmiFixture,
        *,
        start: int = 0,
        stop: int | None = None,
        speed: float | str | None = "default",
        substitutions: Mapping[str, str] | None = None,
        within: float = 5.0,
    ) -> None:
        """Send `fixture.events[start:stop]` to the logged-in client at the recorded pace / `speed`."""
        pace = self.speed if speed == "default" else speed
        blocks = fixture.events[start:stop]
        if not blocks:
            return
        connection = await self._current(within)
        began, first = time.monotonic(), blocks[0].t
        for block in blocks:
            if isinstance(pace, int | float) and pace > 0:
                delay = (block.t - first) / pace - (time.monotonic() - began)
                if delay > 0:
                    await asyncio.sleep(delay)
            data = block.data
            for old, new in (substitutions or {}).items():
                data = data.replace(old.encode("utf-8"), new.encode("utf-8"))
            await self._write(connection, data)

    async def send(self, headers: Mapping[str, str] | bytes, within: float = 5.0) -> None:
        """Send one block (an event) to the logged-in client."""
        data = headers if isinstance(headers, bytes) else encode(headers)
        await self._write(await self._current(within), data)

    async def _current(self, within: float) -> _Connection:
        def ready() -> bool:
            return any(c.authenticated and not c.frozen for c in self._connections)

        await self.wait_until(ready, within, "logged-in connection")
        return [c for c in self._connections if c.authenticated and not c.frozen][-1]

    async def _write(self, connection: _Connection, data: bytes) -> None:
        if connection.frozen or connection.writer.is_closing():
            return
        async with connection.lock:
            size = self.chunk_size or len(data)
            for offset in range(0, len(data), size):
                connection.writer.write(data[offset : offset + size])
                with contextlib.suppress(ConnectionError):
                    await connection.writer.drain()
                if self.chunk_size:
                    await asyncio.sleep(0)  # let the client read this piece on its own

    # --- serving ---------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections_made += 1
        connection = _Connection(self.connections_made, reader, writer)
        self._connections.append(connection)
        await self._notify()
        try:
            await self._write(connection, BANNER)
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                action = self._parse(raw, connection.number)
                self.actions.append(action)
                await self._notify()
                if connection.frozen:
                    continue
                if not await self._answer(connection, action):
                    break
        finally:
            await self._hang_up(connection)
            self._tasks.discard(task)

    @staticmethod
    def _parse(raw: bytes, number: int) -> AmiAction:
        headers = []
        for line in raw.decode("utf-8", "replace").split(EOL):
            key, sep, value = line.partition(":")
            if sep:
                headers.append((key.strip(), value[1:] if value.startswith(" ") else value))
        return AmiAction(headers, number)

    async def _answer(self, connection: _Connection, action: AmiAction) -> bool:
        """Write the answer to one action; False when the connection must close."""
        name = action.name.lower()
        action_id = action.get("ActionID") or ""
        if name == "login":
            if action.get("Username") == self.username and action.get("Secret") == self.secret:
                connection.authenticated = True
                self.logins += 1
                await self._write(
                    connection,
                    encode(
                        {"Response": "Success", "ActionID": action_id, "Message": "Authentication accepted"}
                    )
                    + encode(
                        {
                            "Event": "FullyBooted",
                            "Privilege": "system,all",
                            "Uptime": str(self.uptime),
                            "LastReload": str(self.uptime),
                            "Status": "Fully Booted",
                        }
                    ),
                )
                await self._notify()
                return True
            self.failed_logins += 1
            await self._write(
                connection,
                encode({"Response": "Error", "ActionID": action_id, "Message": "Authentication failed"}),
            )
            await self._notify()
            return False
        if not connection.authenticated:
            await self._write(
                connection,
                encode({"Response": "Error", "ActionID": action_id, "Message": "Permission denied"}),
            )
            return True
        if name in self.responders:
            for block in self.responders[name](action):
                await self._write(connection, block)
            return True
        if name == "logoff":
            await self._write(
                connection,
                encode({"Response": "Goodbye", "ActionID": action_id, "Message": "Thanks for all the fish."}),
            )
            return False
        if name == "ping":
            await self._write(
                connection,
                encode(
                    {
                        "Response": "Success",
                        "ActionID": action_id,
                        "Ping": "Pong",
                        "Timestamp": f"{time.time():.6f}",
                    }
                ),
            )
        elif name == "coreshowchannels":
            await self._write(connection, self._core_show_channels(action_id))
        elif name == "originate":
            message = "Originate successfully queued"
            await self._write(
                connection, encode({"Response": "Success", "ActionID": action_id, "Message": message})
            )
        else:
            await self._write(connection, encode({"Response": "Success", "ActionID": action_id}))
        return True

    def _core_show_channels(self, action_id: str) -> bytes:
        out = encode(
            {
                "Response": "Success",
                "ActionID": action_id,
                "EventList": "start",
                "Message": "Channels will follow",
            }
        )
        for channel in self.channels:
            out += encode({"Event": "CoreShowChannel", "ActionID": action_id, **channel})
        out += encode(
            {
                "Event": "CoreShowChannelsComplete",
                "ActionID": action_id,
                "EventList": "Complete",
                "ListItems": str(len(self.channels)),
            }
        )
        return out

    async def _hang_up(self, connection: _Connection) -> None:
        if connection in self._connections:
            self._connections.remove(connection)
        connection.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await connection.writer.wait_closed()
