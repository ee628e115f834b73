"""FastAGI call routing: the dialplan runs `AGI(agi://HUB:4573/route)`, the hub asks `route_call` which
endpoint to dial and answers `SET VARIABLE SWITCHBOARD_TARGET "PJSIP/1001"` and `SWITCHBOARD_REASON "…"`,
then closes; the dialplan dials the target, or runs its fallback when it is empty.

The answer has a strict budget (`agi_budget_ms`): a caller is ringing meanwhile. Past it the hub answers an
empty target with reason `timeout`, and when the late choice arrives anyway it is released (`release`), so
no agent stays reserved for a call nobody dials. The same happens when routing fails, when the answer cannot
reach Asterisk, or when the caller hung up meanwhile.

Built on panoramisk's `fast_agi.Application` (its route table and `Request`), with the parts of panoramisk
1.4 that a server open to the network cannot keep replaced:

- Its `handler` reads the header block with `read(100)` until `\\n\\n`, with no limit and no deadline: a
  client that closes early makes it spin on EOF forever, one that never sends the blank line holds its
  socket forever, a huge block is buffered whole, and a byte that is not UTF-8 raises out of the handler
  (the socket is never closed). Here the block is read line by line with a deadline, a byte cap and a line
  cap, and decoded with replacement characters.
- `Request.send_command` waits for the answer with no timeout, crashes on an empty or garbled answer
  (`int('')`), returns at an asynchronous `HANGUP` line without reading the command's own answer (every
  later answer is then off by one), and writes whatever it is given (a line break in a value is a second
  command). Here answers are awaited with a timeout, `HANGUP` is noted and skipped, garbage is an error
  result, and commands are built only from checked, quoted values.
- `Application.__init__` calls `asyncio.get_event_loop()` (deprecated outside a running loop): the running
  loop is passed in. Its handler also swallows `BaseException`, cancellation included; ours lets shutdown
  cancel a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from collections.abc import Coroutine
from typing import Any, Final

from panoramisk import fast_agi
from panoramisk.utils import parse_agi_result

from channels.asterisk.model import normalise_number  # the AMI side's rule: one E.164 per caller
from channels.asterisk.routing_model import CallReason, CallRequest, CallRoute, ReleaseCall, RouteCall
from switchboard.settings import Settings

__all__ = [
    "AgiServer",
    "CallReason",
    "CallRequest",
    "CallRoute",
    "agi_quote",
    "start_agi_server",
]

log = logging.getLogger(__name__)

SCRIPT: Final = "route"  # agi://HUB:PORT/route
HEADER_TIMEOUT: Final = 5.0  # Asterisk sends the whole block at once (~600 bytes)
COMMAND_TIMEOUT: Final = 2.0  # Asterisk answers GET / SET VARIABLE at once
MAX_HEADER_BYTES: Final = 16 * 1024
MAX_HEADER_LINES: Final = 100
LINE_LIMIT: Final = 4096  # longest line read from a client
MAX_ANSWER_LINES: Final = 50  # a 520 usage text is a few lines
MAX_SESSIONS: Final = 500
MAX_ROUTING: Final = 8  # routings at once; more only queue behind the database and the CPU
CLOSE_GRACE: Final = 1.0

# What may be sent as a dial target: TECHNOLOGY/resource, nothing that changes Dial()'s meaning (no
# spaces, commas, `&`, quotes, `$`, braces or control characters). `router.model.phone_endpoint` checks
# the same shape when an admin saves an endpoint; this is the wire's own guard.
_TARGET_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,15}/[A-Za-z0-9_.@:+*#/-]{1,84}$")
_REASON_RE: Final = re.compile(r"^[a-z0-9_-]{1,40}$")
_ID_RE: Final = re.compile(r"^[A-Za-z0-9._:@-]{1,120}$")  # Uniqueid `1795431712.4`, ChannelId `c2c-…`
_KEY_RE: Final = re.compile(r"^agi_[a-z0-9_]{1,40}$")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_WITHHELD: Final = frozenset({"", "unknown", "anonymous", "restricted", "private", "withheld", "<unknown>"})


def agi_quote(value: str) -> str:
    """`value` as one AGI argument: in double quotes with `\\` and `"` escaped, which is exactly what
    Asterisk's argument parser undoes. A control character (a line break would end the command and start
    another) is refused, never escaped."""
    if _CONTROL.search(value):
        raise ValueError("control character in an AGI argument")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _clean(value: str | None, limit: int) -> str:
    """A header value as plain text: no control characters, trimmed, at most `limit` characters."""
    return _CONTROL.sub("", value or "").strip()[:limit]


class _Request(fast_agi.Request):  # type: ignore[misc]
    """panoramisk's request with a safe `send_command` (see the module docstring)."""

    def __init__(
        self,
        app: fast_agi.Application,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timeout: float,
    ) -> None:
        super().__init__(app=app, headers=headers, reader=reader, writer=writer, encoding="utf-8")
        self.timeout = timeout
        self.hung_up = False  # Asterisk said HANGUP: the caller is gone

    async def send_command(self, command: str) -> dict[str, Any]:
        if _CONTROL.search(command):
            raise ValueError("control character in an AGI command")
        self.writer.write(command.encode("ascii") + b"\n")
        async with asyncio.timeout(self.timeout):
            await self.writer.drain()
            return await self._answer()

    async def _answer(self) -> dict[str, Any]:
        usage = False
        for _ in range(MAX_ANSWER_LINES):
            raw = await self.reader.readline()
            if not raw:
                raise ConnectionError("Asterisk closed the FastAGI connection")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line == "HANGUP":  # sent once, asynchronously, when the channel hangs up
                self.hung_up = True
                continue
            if line.startswith("520-"):  # usage text until "520 End of proper usage."
                usage = True
                continue
            if usage and not line.startswith("520 "):
                continue
            try:
                result: dict[str, Any] = parse_agi_result(line)
            except (ValueError, AttributeError, TypeError):
                result = {"error": "AGIUnknownError", "msg": line[:200]}
            if result.get("status_code") == 100:  # "100 Trying...": the answer follows
                continue
            return result
        raise ConnectionError("FastAGI answer too long")


class _Application(fast_agi.Application):  # type: ignore[misc]
    """panoramisk's application (route table) with a bounded, time-limited header reader."""

    def __init__(self, server: AgiServer) -> None:
        super().__init__(default_encoding="utf-8", loop=asyncio.get_running_loop())
        self._server = server

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._server.serve(self, reader, writer)

    def script(self, name: str) -> Any:
        return self._route.get(name)


class AgiServer:
    """The FastAGI server. `start()` listens; `close()` stops listening, lets running sessions finish for
    a moment, then cancels them, and waits for the releases of late answers."""

    def __init__(
        self,
        route_call: RouteCall,
        release: ReleaseCall,
        *,
        budget_ms: int = 300,
        region: str = "MD",
        header_timeout: float = HEADER_TIMEOUT,
        command_timeout: float = COMMAND_TIMEOUT,
        max_sessions: int = MAX_SESSIONS,
        max_routing: int = MAX_ROUTING,
    ) -> None:
        self._route_call = route_call
        # Routing is CPU and database work: past a few at once every call would finish late together, so
        # calls beyond these wait for a slot within their budget, and get the fallback if none frees in time.
        self._routing_slots = asyncio.Semaphore(max_routing)
        self._release = release
        self.budget = budget_ms / 1000
        self.region = region
        self.header_timeout = header_timeout
        self.command_timeout = command_timeout
        self.max_sessions = max_sessions
        self._server: asyncio.Server | None = None
        self._app: _Application | None = None
        self._sessions: set[asyncio.Task[Any]] = set()
        self._late: set[asyncio.Task[CallRoute]] = set()  # route_call still running past the budget
        self._background: set[asyncio.Task[None]] = set()  # releases

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active_sessions(self) -> int:
        return len(self._sessions)

    async def start(self, host: str, port: int) -> None:
        self._app = _Application(self)
        self._app.add_route(SCRIPT, self._route_script)
        self._server = await asyncio.start_server(self._app.handler, host, port, limit=LINE_LIMIT)
        log.info("FastAGI server listening on %s:%s (budget %d ms)", host, self.port, self.budget * 1000)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for group in (self._sessions, self._late):
            running = set(group)
            if running:
                _, pending = await asyncio.wait(running, timeout=CLOSE_GRACE)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.sleep(0)  # let done callbacks of cancelled late answers schedule their releases
        if self._background:
            await asyncio.wait(set(self._background), timeout=CLOSE_GRACE)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # --- one connection ------------------------------------------------------------------------------

    async def serve(
        self, app: _Application, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        self._sessions.add(task)
        try:
            if len(self._sessions) > self.max_sessions:
                log.warning("FastAGI: %d sessions open, %s refused", len(self._sessions) - 1, peer)
                return
            try:
                headers = await self._read_headers(reader)
            except TimeoutError:
                log.warning("FastAGI: %s sent no complete header block in %.1f s", peer, self.header_timeout)
                return
            except (ValueError, ConnectionError) as exc:  # ValueError: a line over LINE_LIMIT
                log.warning("FastAGI: %s dropped while sending headers: %s", peer, type(exc).__name__)
                return
            if headers is None:
                log.warning("FastAGI: %s closed or oversized its header block; nothing answered", peer)
                return
            name = headers.get("agi_network_script", "").split("?", 1)[0]
            script = app.script(name)
            if script is None:
                log.warning("FastAGI: %s asked for unknown script %r; nothing answered", peer, name[:80])
                return
            await script(_Request(app, headers, reader, writer, self.command_timeout))
        except (ConnectionError, TimeoutError) as exc:
            log.warning("FastAGI: session with %s ended early: %s", peer, type(exc).__name__)
        except Exception:
            log.exception("FastAGI: session with %s failed", peer)
        finally:
            self._sessions.discard(task)
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(CLOSE_GRACE):
                    await writer.wait_closed()

    async def _read_headers(self, reader: asyncio.StreamReader) -> dict[str, str] | None:
        """The `agi_*` block up to its empty line; None when the client closed first or sent too much."""
        headers: dict[str, str] = {}
        size = 0
        async with asyncio.timeout(self.header_timeout):
            for _ in range(MAX_HEADER_LINES + 1):
                raw = await reader.readline()
                if not raw:
                    return None
                size += len(raw)
                if size > MAX_HEADER_BYTES:
                    return None
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    return headers
                key, sep, value = line.partition(":")
                if sep and _KEY_RE.match(key):
                    headers[key] = value[1:] if value.startswith(" ") else value
        return None

    # --- the route script ----------------------------------------------------------------------------

    async def _route_script(self, request: _Request) -> None:
        started = time.monotonic()
        call = self._call_of(request.headers)
        linkedid = await self._linkedid(request, call.uniqueid)
        if request.hung_up:
            log.info("call %s: caller hung up before routing", linkedid or call.uniqueid)
            return
        if linkedid is None:
            log.warning("FastAGI: no usable linkedid or uniqueid (%r); fallback", call.uniqueid[:40])
            await self._answer(request, "", CallReason.ERROR)
            return
        call = dataclasses.replace(call, linkedid=linkedid)
        route = await self._decide(call)
        target, reason = self._checked(route, linkedid)
        delivered = False
        try:
            delivered = await self._answer(request, target, reason)
        finally:
            if target and not delivered:
                log.info("call %s: answer %r not taken by Asterisk (hung up?); released", linkedid, target)
                self._spawn_release(linkedid)
        log.info(
            "call %s routed to %r (%s) in %d ms",
            linkedid,
            target,
            reason,
            (time.monotonic() - started) * 1000,
        )

    def _call_of(self, headers: dict[str, str]) -> CallRequest:
        caller = _clean(headers.get("agi_callerid"), 40)
        if caller.lower() in _WITHHELD:
            caller = ""
        name = _clean(headers.get("agi_calleridname"), 200)
        if name.lower() in _WITHHELD:
            name = ""
        dialled = _clean(headers.get("agi_dnid"), 40)
        if dialled.lower() in _WITHHELD:
            dialled = _clean(headers.get("agi_extension"), 40)
        uniqueid = _clean(headers.get("agi_uniqueid"), 120)
        return CallRequest(
            linkedid="",
            uniqueid=uniqueid,
            caller=caller,
            caller_e164=normalise_number(caller, self.region) if caller else None,
            caller_name=name,
            dialled=dialled,
            channel=_clean(headers.get("agi_channel"), 120),
            language=_clean(headers.get("agi_language"), 20),
        )

    async def _linkedid(self, request: _Request, uniqueid: str) -> str | None:
        """`CHANNEL(linkedid)`, the call's key on every leg; the trunk leg's own Uniqueid when Asterisk
        cannot say (for an inbound call they are the same)."""
        answer = await request.send_command("GET VARIABLE CHANNEL(linkedid)")
        value, data = answer.get("result", ("", ""))
        if "error" not in answer and value == "1" and _ID_RE.match(data or ""):
            return str(data)
        log.info(
            "FastAGI: CHANNEL(linkedid) unavailable (%r); using the uniqueid", answer.get("msg", "")[:80]
        )
        return uniqueid if _ID_RE.match(uniqueid) else None

    async def _decide(self, call: CallRequest) -> CallRoute:
        """`route_call` within the budget. A late or failed call keeps running (a transaction that may
        have reserved an agent must not be cut in half) and what it reserved is released."""
        deadline = asyncio.get_running_loop().time() + self.budget
        try:
            async with asyncio.timeout_at(deadline):
                await self._routing_slots.acquire()
        except TimeoutError:
            log.warning("call %s: every routing slot busy for the whole budget; empty target", call.linkedid)
            return CallRoute(reason=CallReason.TIMEOUT)
        try:
            task: asyncio.Task[CallRoute] = asyncio.ensure_future(self._route_call(call))
        except Exception:  # not a coroutine function: a wiring mistake
            self._routing_slots.release()
            log.exception("call %s: route_call could not start; empty target", call.linkedid)
            return CallRoute(reason=CallReason.ERROR)
        # the slot is held until the work ends, late or not
        task.add_done_callback(lambda _: self._routing_slots.release())
        try:
            async with asyncio.timeout_at(deadline):
                route = await asyncio.shield(task)
        except TimeoutError:
            log.warning(
                "call %s: no routing answer within %d ms; empty target (timeout)",
                call.linkedid,
                self.budget * 1000,
            )
            self._adopt_late(task, call.linkedid)
            return CallRoute(reason=CallReason.TIMEOUT)
        except asyncio.CancelledError:
            self._adopt_late(task, call.linkedid)
            raise
        except Exception:
            log.exception("call %s: routing failed; empty target", call.linkedid)
            self._spawn_release(call.linkedid)
            return CallRoute(reason=CallReason.ERROR)
        if not isinstance(route, CallRoute):
            log.error("call %s: route_call returned %r, not a CallRoute", call.linkedid, type(route))
            self._spawn_release(call.linkedid)
            return CallRoute(reason=CallReason.ERROR)
        return route

    def _checked(self, route: CallRoute, linkedid: str) -> tuple[str, str]:
        """Only a well-formed endpoint and reason go on the wire; anything else is the fallback."""
        target, reason = str(route.target or ""), str(route.reason or "")
        if (target and not _TARGET_RE.match(target)) or not _REASON_RE.match(reason):
            log.error(
                "call %s: refused to send target %r / reason %r; fallback",
                linkedid,
                target[:120],
                reason[:60],
            )
            if target:
                self._spawn_release(linkedid)
            return "", CallReason.ERROR.value
        return target, reason

    async def _answer(self, request: _Request, target: str, reason: str) -> bool:
        """The two `SET VARIABLE`s; True when Asterisk took both and the caller is still there."""
        taken = True
        for name, value in (("SWITCHBOARD_TARGET", target), ("SWITCHBOARD_REASON", reason)):
            answer = await request.send_command(f"SET VARIABLE {name} {agi_quote(value)}")
            if "error" in answer:
                log.info("FastAGI: SET VARIABLE %s answered %r", name, answer.get("msg", "")[:80])
                taken = False
        return taken and not request.hung_up

    # --- late answers and releases -------------------------------------------------------------------

    def _adopt_late(self, task: asyncio.Task[CallRoute], linkedid: str) -> None:
        self._late.add(task)
        task.add_done_callback(lambda done: self._late_done(done, linkedid))

    def _late_done(self, task: asyncio.Task[CallRoute], linkedid: str) -> None:
        self._late.discard(task)
        if task.cancelled():
            self._spawn_release(linkedid)
            return
        exc = task.exception()
        if exc is not None:
            log.warning("call %s: late routing failed: %r; released", linkedid, exc)
            self._spawn_release(linkedid)
            return
        route = task.result()
        if isinstance(route, CallRoute) and not route.target and route.agent_id is None:
            return  # nobody was reserved
        log.info("call %s: routing answered after the budget; released", linkedid)
        self._spawn_release(linkedid)

    def _spawn_release(self, linkedid: str) -> None:
        self._spawn(self._safe_release(linkedid))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _safe_release(self, linkedid: str) -> None:
        try:
            await self._release(linkedid)
        except Exception:
            log.exception("call %s: releasing its routing failed", linkedid)


async def start_agi_server(settings: Settings, route_call: RouteCall, release: ReleaseCall) -> AgiServer:
    """The FastAGI server on `agi_host:agi_port`, answering within `agi_budget_ms`. `route_call` answers
    which endpoint to dial; `release(linkedid)` frees what a late, failed or undelivered answer reserved.
    Stop it with `await server.close()`."""
    server = AgiServer(route_call, release, budget_ms=settings.agi_budget_ms, region=settings.default_region)
    await server.start(settings.agi_host, settings.agi_port)
    return server
