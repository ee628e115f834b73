"""The hub's AMI connection: panoramisk's `Manager`, with what panoramisk 1.4 leaves out.

- **One session, one Manager**, created inside the running loop. panoramisk's own reconnect (a fixed delay,
  forever, re-sending unanswered actions after `FullyBooted`) is switched off: this class reconnects with
  exponential backoff, and an action lost with a connection is never sent twice (an `Originate` repeated
  minutes later would ring a customer nobody is waiting for).
- **Its own watchdog**: panoramisk sends `Ping` but never checks the answer. Here an unanswered `Ping`
  (a frozen Asterisk, a half-open TCP connection) aborts the session and reconnects.
- **UTF-8 that survives TCP**: panoramisk decodes each read on its own (ASCII by default; with UTF-8 a
  character split across two reads is still dropped). The protocol below decodes incrementally, and a
  message that fails to be handled is logged instead of escaping `data_received` (which closes the socket).
- **The event callback only enqueues** (it can never raise into panoramisk); one consumer task feeds the
  `CallTracker` in order and awaits `on_call_event` for each `CallEvent` (its exceptions are logged, the
  stream goes on). The reader is never blocked: Asterisk drops slow AMI readers (`writetimeout`).
- **Reconciliation**: events during an outage are gone. After each reconnect `CoreShowChannels` tells which
  calls still exist; the calls that were live when the link dropped and are gone now are closed.
- **Click-to-call** (`originate`) and **supervisor ChanSpy** (`spy`) send `Originate` with an explicit
  `Async: true` and a `ChannelId` chosen here, and return at once: the result arrives later as call events
  for that id (it becomes the call's Linkedid).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import random
import re
import uuid
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message
from panoramisk.utils import EOL

from channels.asterisk.calls import CLICK_TO_CALL_PREFIX, SPY_PREFIX, CallTracker
from channels.asterisk.model import CallEvent, OnCallEvent, extension_of
from switchboard.settings import Settings

log = logging.getLogger(__name__)

SpyMode = Literal["listen", "whisper", "barge"]
SPY_OPTIONS: dict[SpyMode, str] = {"listen": "q", "whisper": "qw", "barge": "qB"}  # + E: end with the call

_ENDPOINT = re.compile(r"^[A-Za-z0-9_]+/[A-Za-z0-9_.@+\-]{1,80}$")
_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,80}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AmiError(Exception):
    """An AMI action could not be sent."""


class AmiNotConnected(AmiError):
    """There is no logged-in AMI session right now."""


class AmiLoginFailed(AmiError):
    """Asterisk refused the username / secret."""


@dataclass(frozen=True)
class AmiConfig:
    host: str
    port: int = 5038
    username: str = "hub"
    secret: str = field(default="", repr=False)
    ping_seconds: float = 10.0  # how often the watchdog pings, and how long it waits for Pong
    reconnect_max_seconds: float = 30.0
    reconnect_min_seconds: float = 0.5
    connect_timeout: float = 10.0  # TCP connect, Login and CoreShowChannels each
    queue_size: int = 100_000  # events buffered for the consumer before new ones are dropped (and logged)

    @classmethod
    def from_settings(cls, settings: Settings) -> AmiConfig:
        if not settings.ami_host:
            raise ValueError("SWITCHBOARD_AMI_HOST is not set: telephony is off")
        return cls(
            host=settings.ami_host,
            port=settings.ami_port,
            username=settings.ami_username,
            secret=settings.ami_secret.get_secret_value() if settings.ami_secret else "",
            ping_seconds=settings.ami_ping_seconds,
            reconnect_max_seconds=settings.ami_reconnect_max_seconds,
            reconnect_min_seconds=min(0.5, settings.ami_reconnect_max_seconds),
        )


class _Protocol(AMIProtocol):  # type: ignore[misc]  # panoramisk has no type hints
    """AMIProtocol with an incremental UTF-8 decoder and per-message isolation."""

    version: str | None
    queue: deque[str]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def data_received(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if self.version is None and text.startswith("Asterisk Call Manager/"):
            self.version = text.partition(EOL)[0].partition("/")[2].strip()
        if self.queue:
            text = self.queue.popleft() + text
        blocks = text.split(EOL + EOL)
        self.queue.append(blocks.pop(-1))
        for block in blocks:
            try:
                message = Message.from_line(block.strip())
                if message is not None:
                    self.handle_message(message)
            except Exception:
                log.exception("AMI message could not be handled; skipped")


class _Manager(Manager):  # type: ignore[misc]
    """A Manager for one session: no reconnects, no pings of its own; `lost` resolves when it ends."""

    pinger: asyncio.TimerHandle | None

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.lost: asyncio.Future[object] = self.loop.create_future()

    def connection_made(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            return  # the caller awaiting connect() sees the error
        super().connection_made(future)
        if self.pinger is not None:
            self.pinger.cancel()
            self.pinger = None

    def connection_lost(self, exc: object) -> None:
        self._connected = False
        if self.pinger is not None:
            self.pinger.cancel()
            self.pinger = None
        if not self.lost.done():
            self.lost.set_result(exc)


@dataclass(frozen=True)
class _Event:
    at: datetime
    fields: dict[str, Any]


@dataclass(frozen=True)
class _Disconnected:
    at: datetime


@dataclass(frozen=True)
class _Reconcile:
    at: datetime
    linkedids: frozenset[str]


_Item = _Event | _Disconnected | _Reconcile


def _now() -> datetime:
    return datetime.now(UTC)


def _check(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not allowed")
    return value


def _plain(value: str, what: str) -> str:
    """A header value: no line breaks (they would inject AMI headers or actions)."""
    if _CONTROL.search(value) or len(value) > 200:
        raise ValueError(f"{what} has control characters or is too long")
    return value


class AmiConnection:
    """Keep one AMI session up, turn its events into `CallEvent`s for `on_call_event`, send actions.

    `start()` / `stop()` (or `run()`, which starts and waits until cancelled) from inside the running loop.
    """

    def __init__(
        self, config: AmiConfig, on_call_event: OnCallEvent, *, tracker: CallTracker | None = None
    ) -> None:
        self.config = config
        self.on_call_event = on_call_event
        self.tracker = tracker if tracker is not None else CallTracker()
        self.last_error: str | None = None
        self.logins = 0  # successful logins so far (reconnects = logins - 1)
        self.watchdog_trips = 0
        self.dropped_events = 0
        self.asterisk_uptime: int | None = None  # from the last FullyBooted (0 right after a restart)
        self._manager: _Manager | None = None
        self._queue: asyncio.Queue[_Item] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()
        self._reconcile_pending = False
        self._candidates: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings, on_call_event: OnCallEvent) -> AmiConnection:
        tracker = CallTracker(region=settings.default_region, recordings_dir=settings.recordings_dir)
        return cls(AmiConfig.from_settings(settings), on_call_event, tracker=tracker)

    # --- lifecycle -------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._manager is not None

    async def start(self) -> None:
        if self._tasks:
            return
        # Calls still open from an earlier run (leadership lost and won back) are checked at the next login.
        self._candidates |= self.tracker.live_linkedids()
        self._queue = asyncio.Queue(self.config.queue_size)
        self._tasks = [
            asyncio.create_task(self._consume(), name="ami-consumer"),
            asyncio.create_task(self._keep_connected(), name="ami-connection"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run(self) -> None:
        """Start, and stay until cancelled (what `AmiLeader.run` expects)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def wait_connected(self) -> None:
        """Until a session is logged in (wrap it in `asyncio.timeout`)."""
        await self._connected.wait()

    async def drain(self) -> None:
        """Until every event received so far went through the tracker and `on_call_event` (for tests)."""
        if self._queue is not None:
            await self._queue.join()

    # --- actions ---------------------------------------------------------------------------------------

    async def originate(
        self,
        *,
        agent_endpoint: str,
        number: str,
        context: str = "outbound",
        caller_id: str | None = None,
        timeout_seconds: float = 30.0,
        variables: Mapping[str, str] | None = None,
        channel_id: str | None = None,
    ) -> str:
        """Click-to-call: ring `agent_endpoint` (e.g. `PJSIP/1001`); when the agent answers, Asterisk runs
        `context` / `number`, which dials the customer. Returns at once with the call's id (`ChannelId`,
        then Uniqueid and Linkedid of the call, `c2c-…`); what happens next arrives as call events."""
        channel_id = _check(
            channel_id or f"{CLICK_TO_CALL_PREFIX}{uuid.uuid4().hex[:12]}", _NAME, "channel id"
        )
        _check(agent_endpoint, _ENDPOINT, "agent endpoint")
        _check(number, _NUMBER, "number")
        _check(context, _NAME, "context")
        for name, value in (variables or {}).items():
            _check(name, _NAME, "variable name")
            _plain(value, "variable value")
        action: dict[str, Any] = {
            "Action": "Originate",
            "ActionID": channel_id,
            "Channel": agent_endpoint,
            "Context": context,
            "Exten": number,
            "Priority": "1",
            "CallerID": _plain(caller_id or f'"{number}" <{number}>', "caller id"),
            "Timeout": str(int(timeout_seconds * 1000)),
            "Async": "true",
            "ChannelId": channel_id,
        }
        if variables:
            action["Variable"] = [f"{name}={value}" for name, value in variables.items()]
        manager = self._require()
        self.tracker.note_originate(
            channel_id, agent_endpoint=agent_endpoint, number=number, variables=variables
        )
        future = manager.send_action(action)
        future.add_done_callback(partial(self._originate_done, channel_id))
        log.info("click-to-call %s: %s -> %s", channel_id, agent_endpoint, number)
        return channel_id

    async def spy(
        self,
        *,
        supervisor_endpoint: str,
        agent_endpoint: str,
        mode: SpyMode = "listen",
        timeout_seconds: float = 15.0,
        channel_id: str | None = None,
    ) -> str:
        """Ring the supervisor's phone into `ChanSpy` on the agent's current call: `listen` (option `q`,
        no beep), `whisper` (`w`, the agent hears the supervisor) or `barge` (`B`, both hear). `E` ends the
        spy when the call ends. Returns the spy channel's id (`spy-…`); the tracker ignores that call."""
        channel_id = _check(channel_id or f"{SPY_PREFIX}{uuid.uuid4().hex[:12]}", _NAME, "channel id")
        _check(supervisor_endpoint, _ENDPOINT, "supervisor endpoint")
        _check(agent_endpoint, _ENDPOINT, "agent endpoint")
        extension = extension_of(agent_endpoint) or agent_endpoint
        action = {
            "Action": "Originate",
            "ActionID": channel_id,
            "Channel": supervisor_endpoint,
            "Application": "ChanSpy",
            "Data": f"{agent_endpoint},{SPY_OPTIONS[mode]}E",
            "CallerID": f'"{mode.title()} {extension}" <{extension}>',
            "Timeout": str(int(timeout_seconds * 1000)),
            "Async": "true",
            "ChannelId": channel_id,
        }
        future = self._require().send_action(action)
        future.add_done_callback(partial(self._spy_done, channel_id))
        log.info("ChanSpy %s (%s): %s on %s", channel_id, mode, supervisor_endpoint, agent_endpoint)
        return channel_id

    def _require(self) -> _Manager:
        if self._manager is None:
            raise AmiNotConnected(self.last_error or "not connected to Asterisk")
        return self._manager

    def _originate_done(self, channel_id: str, future: asyncio.Future[Any]) -> None:
        """panoramisk hands the `OriginateResponse` to the action's future instead of the event callbacks:
        pass it on to the tracker; an immediate error becomes a failed `OriginateResponse` too."""
        try:
            if future.cancelled():
                return
            result = future.result()
            messages = result if isinstance(result, list) else [result]
            for message in messages:
                if str(message.get("Event", "")).lower() == "originateresponse":
                    self._enqueue(_Event(_now(), dict(message.items())))
            if not isinstance(result, list) and not result.success:
                log.warning("click-to-call %s refused by Asterisk: %s", channel_id, result.get("Message"))
                failure = {"Event": "OriginateResponse", "Response": "Failure", "Uniqueid": channel_id}
                self._enqueue(
                    _Event(_now(), {**failure, "Reason": "0", "Message": result.get("Message", "")})
                )
        except Exception:
            log.exception("click-to-call %s: the answer could not be read", channel_id)

    @staticmethod
    def _spy_done(channel_id: str, future: asyncio.Future[Any]) -> None:
        with contextlib.suppress(Exception):
            result = future.result()
            last = result[-1] if isinstance(result, list) else result
            if str(last.get("Response", "")).lower() not in ("success", ""):
                log.warning("ChanSpy %s failed: %s", channel_id, last.get("Reason") or last.get("Message"))

    # --- the event path --------------------------------------------------------------------------------

    def _on_event(self, _manager: object, message: Message) -> None:
        """panoramisk's event callback: never raises, never blocks."""
        try:
            if message.get("Event") == "FullyBooted":
                with contextlib.suppress(ValueError):
                    self.asterisk_uptime = int(message.get("Uptime", ""))
            self._enqueue(_Event(_now(), dict(message.items())))
        except Exception:
            log.exception("AMI event could not be queued")

    def _enqueue(self, item: _Item) -> None:
        if self._queue is None:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped_events += 1
            if self.dropped_events % 1000 == 1:
                log.error("AMI consumer is behind: %d events dropped so far", self.dropped_events)

    async def _consume(self) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            try:
                for event in self._apply(item):
                    try:
                        await self.on_call_event(event)
                    except Exception:
                        log.exception(
                            "on_call_event failed for %s of call %s", event.kind, event.record.linkedid
                        )
            finally:
                self._queue.task_done()

    def _apply(self, item: _Item) -> list[CallEvent]:
        try:
            if isinstance(item, _Event):
                return self.tracker.feed(item.fields, item.at)
            if isinstance(item, _Disconnected):
                self._candidates |= self.tracker.live_linkedids()
                return []
            candidates, self._candidates = self._candidates, set()
            return self.tracker.reconcile(item.linkedids, item.at, candidates=candidates)
        except Exception:
            log.exception("AMI item %s could not be applied", type(item).__name__)
            return []

    # --- the session -----------------------------------------------------------------------------------

    async def _keep_connected(self) -> None:
        delay = self.config.reconnect_min_seconds
        while True:
            logged_in = False
            try:
                logged_in = await self._session()
            except AmiLoginFailed as exc:
                self.last_error = f"login refused: {exc}"
                log.error(
                    "AMI %s:%s refused the login of %r: %s",
                    self.config.host,
                    self.config.port,
                    self.config.username,
                    exc,
                )
            except (OSError, TimeoutError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}".rstrip(": ")
                log.warning("AMI %s:%s unreachable: %s", self.config.host, self.config.port, self.last_error)
            except Exception as exc:
                self.last_error = repr(exc)
                log.exception("AMI session failed")
            if logged_in:
                delay = self.config.reconnect_min_seconds
            await asyncio.sleep(delay * random.uniform(0.8, 1.0))
            delay = min(delay * 2, self.config.reconnect_max_seconds)

    async def _session(self) -> bool:
        """Connect, log in, reconcile, then watch the link until it is lost; True if it logged in."""
        config = self.config
        loop = asyncio.get_running_loop()
        manager = _Manager(
            loop=loop,
            host=config.host,
            port=config.port,
            encoding="utf8",
            protocol_factory=_Protocol,
            ping_delay=86_400,
            reconnect_timeout=86_400,
            log=log,
        )
        manager.register_event("*", self._on_event)
        logged_in = False
        try:
            await asyncio.wait_for(manager.connect(), config.connect_timeout)
            if manager.protocol is None:
                raise ConnectionError("the AMI connection was not set up")
            login = manager.send_action(
                {"Action": "Login", "Username": config.username, "Secret": config.secret, "Events": "on"}
            )
            reply = await self._answer(login, manager.lost, "Login")
            if not reply.success:
                raise AmiLoginFailed(reply.get("Message") or reply.get("Response") or "refused")
            logged_in = True
            self.logins += 1
            self.last_error = None
            self._manager = manager
            self._connected.set()
            self._reconcile_pending = True
            log.info("AMI connected to %s:%s (login %d)", config.host, config.port, self.logins)
            await self._watch(manager)
        finally:
            self._manager = None
            self._connected.clear()
            if logged_in:
                self._enqueue(_Disconnected(_now()))
            reason = manager.lost.result() if manager.lost.done() else None
            if isinstance(reason, Message) and reason.get("Event") == "Shutdown":
                log.warning("Asterisk shut down (restart: %s)", reason.get("Restart"))
            self._close(manager)
        return logged_in

    async def _answer(self, action: asyncio.Future[Any], lost: asyncio.Future[object], what: str) -> Any:
        """The action's answer, or an error when the link drops or stays silent first."""
        done, _ = await asyncio.wait(
            {action, lost}, timeout=self.config.connect_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if action in done:
            return action.result()
        action.cancel()
        if lost in done:
            raise ConnectionError(f"connection closed while waiting for {what}")
        raise TimeoutError(f"no answer to {what} within {self.config.connect_timeout}s")

    async def _watch(self, manager: _Manager) -> None:
        """Reconcile, then ping every `ping_seconds`; return when the link is lost or Pong is late."""
        interval = self.config.ping_seconds
        while True:
            if self._reconcile_pending:
                await self._reconcile(manager)
            done, _ = await asyncio.wait({manager.lost}, timeout=interval)
            if done:
                return
            ping = manager.send_action({"Action": "Ping"})
            done, _ = await asyncio.wait(
                {ping, manager.lost}, timeout=interval, return_when=asyncio.FIRST_COMPLETED
            )
            if manager.lost in done:
                return
            if ping not in done:
                ping.cancel()
                self.watchdog_trips += 1
                self.last_error = f"no answer to Ping within {interval}s"
                log.warning(
                    "AMI %s:%s: %s, reconnecting", self.config.host, self.config.port, self.last_error
                )
                return

    async def _reconcile(self, manager: _Manager) -> None:
        """Ask which channels exist; the consumer then closes the calls that ended during the outage."""
        try:
            reply = await self._answer(
                manager.send_action({"Action": "CoreShowChannels"}), manager.lost, "CoreShowChannels"
            )
        except TimeoutError:
            log.warning("AMI CoreShowChannels unanswered: reconciliation retried later")
            return
        messages = reply if isinstance(reply, list) else [reply]
        if not isinstance(reply, list) and not reply.success:
            log.warning("AMI CoreShowChannels refused: %s", reply.get("Message"))
            self._reconcile_pending = False
            return
        linkedids = _linkedids(messages)
        self._reconcile_pending = False
        self._enqueue(_Reconcile(_now(), linkedids))

    @staticmethod
    def _close(manager: _Manager) -> None:
        protocol = manager.protocol
        manager.callbacks.clear()
        with contextlib.suppress(Exception):
            manager.close()
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            transport.abort()  # a half-open link would wait forever for a clean close


def _linkedids(messages: Collection[Any]) -> frozenset[str]:
    out = set()
    for message in messages:
        if str(message.get("Event", "")).lower() == "coreshowchannel":
            linkedid = message.get("Linkedid") or message.get("Uniqueid")
            if linkedid:
                out.add(str(linkedid))
    return frozenset(out)
