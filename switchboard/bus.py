"""Event bus carrying live events (WebSocket pushes, presence) between hub processes.

One interface, two implementations chosen by settings (``bus = "memory" | "redis"``):

* :class:`InMemoryBus` — a single process; publish fans out to local subscriptions directly.
* :class:`RedisBus` — several processes; events travel over Redis pub/sub and each process fans
  them out to its own subscriptions with the same local code.

Delivery is live and best-effort: there is no history and no replay, so a subscriber that
(re)connects must fetch current state from the database. A slow subscriber never blocks a
publisher: its bounded queue drops the oldest events instead.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import fnmatch
import json
import logging
import os
import random
import re
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal, Self
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .redact import redact_text, redact_url

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "BusError",
    "BusUnavailableError",
    "Event",
    "EventBus",
    "InMemoryBus",
    "RedisBus",
    "Subscription",
    "create_bus",
    "process_id",
]

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE: Final = 1000
"""Per-subscription queue bound: roughly a minute of a busy inbox, far more than a healthy tab lags."""

_TOPIC_FORBIDDEN = frozenset("*?[]")
_CLIENT_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._:/#-]")

_process_ids: dict[int, str] = {}


def process_id() -> str:
    """``host:pid:random`` for this process, recomputed after a fork.

    The random part keeps ids unique where host and pid repeat (containers all running as pid 1).
    """
    pid = os.getpid()
    ident = _process_ids.get(pid)
    if ident is None:
        ident = f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}"
        _process_ids.clear()
        _process_ids[pid] = ident
    return ident


class BusError(RuntimeError):
    """The bus was used in the wrong state (publish before ``start()`` or after ``close()``)."""


class BusUnavailableError(BusError):
    """The bus backend cannot be reached at start-up; raised so a misconfigured process fails loudly."""


@dataclass(frozen=True)
class Event:
    """One message on the bus; ``origin`` names the publishing bus so a process can spot its own echo.

    Subscribers must treat ``data`` as read-only: one decoded copy is shared by all local subscriptions.
    """

    topic: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ts: float = field(default_factory=time.time)
    origin: str = field(default_factory=process_id)

    def to_json(self) -> str:
        """Compact JSON; NaN/Infinity are refused because browsers' ``JSON.parse`` rejects them."""
        return json.dumps(
            {"id": self.id, "topic": self.topic, "ts": self.ts, "origin": self.origin, "data": self.data},
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        """Parse and validate; any malformed input raises ``ValueError``. Unknown keys are ignored
        so processes of adjacent versions can share a bus during a rolling deploy."""
        try:
            obj = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ValueError(f"malformed event: {exc}") from exc
        if not isinstance(obj, dict):
            raise ValueError(f"malformed event: expected a JSON object, got {type(obj).__name__}")
        topic, data, ident, ts, origin = (obj.get(k) for k in ("topic", "data", "id", "ts", "origin"))
        if not isinstance(topic, str) or not topic:
            raise ValueError("malformed event: 'topic' must be a non-empty string")
        if not isinstance(data, dict):
            raise ValueError("malformed event: 'data' must be an object")
        if not isinstance(ident, str) or not ident:
            raise ValueError("malformed event: 'id' must be a non-empty string")
        if isinstance(ts, bool) or not isinstance(ts, int | float):
            raise ValueError("malformed event: 'ts' must be a number")
        if not isinstance(origin, str):
            raise ValueError("malformed event: 'origin' must be a string")
        return cls(topic=topic, data=data, id=ident, ts=float(ts), origin=origin)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _check_topic(topic: str) -> str:
    if not isinstance(topic, str) or not topic:
        raise ValueError("topic must be a non-empty string")
    if _TOPIC_FORBIDDEN.intersection(topic):
        raise ValueError(f"topic {topic!r} contains glob characters; those belong in subscribe patterns")
    return topic


class Subscription:
    """Events whose topic matches ``pattern`` (``fnmatch`` glob; ``*`` also spans dots).

    Async iterator and async context manager. The queue is bounded: when it is full the oldest event
    is dropped and ``dropped`` grows, with one warning per burst, so a stalled browser tab costs
    memory it is allowed and never slows the publisher.
    """

    def __init__(self, pattern: str, maxsize: int, on_close: _LocalFanout) -> None:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("subscription pattern must be a non-empty string")
        if maxsize < 1:
            raise ValueError("subscription maxsize must be at least 1")
        self.pattern: Final = pattern
        self.maxsize: Final = maxsize
        self.dropped = 0
        """Events discarded over this subscription's life because the consumer fell behind."""
        self._regex = re.compile(fnmatch.translate(pattern))
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self._fanout: _LocalFanout | None = on_close
        self._burst_dropped = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<Subscription {self.pattern!r} pending={self.pending} dropped={self.dropped}>"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Events queued and not yet consumed."""
        return 0 if self._closed else self._queue.qsize()

    def matches(self, topic: str) -> bool:
        return self._regex.match(topic) is not None

    def _offer(self, event: Event) -> None:
        """Enqueue without ever waiting; called by the publisher's side."""
        if self._closed:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            self._burst_dropped += 1
            if self._burst_dropped == 1:
                log.warning(
                    "event bus: subscriber %r is not keeping up (queue of %d full); dropping oldest events",
                    self.pattern,
                    self.maxsize,
                )
        self._queue.put_nowait(event)

    def close(self) -> None:
        """Stop receiving; pending events are discarded and a blocked ``async for`` ends.

        Synchronous so it can run from any cleanup path (finally blocks, WebSocket close callbacks).
        """
        if self._closed:
            return
        self._closed = True
        if self._fanout is not None:
            self._fanout.discard(self)
            self._fanout = None
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)  # wakes a consumer blocked in __anext__

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)  # keep ending iteration for any later or concurrent call
            raise StopAsyncIteration
        if self._burst_dropped and self._queue.empty():
            log.info(
                "event bus: subscriber %r caught up after dropping %d events",
                self.pattern,
                self._burst_dropped,
            )
            self._burst_dropped = 0
        return item

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _LocalFanout:
    """In-process dispatch shared by both buses, so memory and Redis deployments behave alike."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._subs: list[Subscription] = []

    def subscribe(self, pattern: str, maxsize: int | None = None) -> Subscription:
        sub = Subscription(pattern, self.maxsize if maxsize is None else maxsize, self)
        self._subs.append(sub)
        return sub

    def discard(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subs.remove(sub)

    def dispatch(self, event: Event) -> int:
        """Offer ``event`` to every matching subscription without awaiting; returns how many matched."""
        delivered = 0
        for sub in tuple(self._subs):  # a subscription may close while we iterate
            if sub.matches(event.topic):
                sub._offer(event)
                delivered += 1
        return delivered

    def close_all(self) -> None:
        for sub in tuple(self._subs):
            sub.close()

    def __len__(self) -> int:
        return len(self._subs)


_State = Literal["new", "running", "closed"]


class EventBus(abc.ABC):
    """What the app sees; pick an implementation with :func:`create_bus`.

    ``publish`` requires ``start()`` on every implementation (even where it is a no-op) so code that
    forgets it fails in tests with the memory bus, not first in production with Redis.
    Subscribing is local and allowed at any time before ``close()``.
    """

    origin: str

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect; raises :class:`BusUnavailableError` if the backend is unreachable."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect and end every subscription. Idempotent."""

    @abc.abstractmethod
    async def publish(self, topic: str, data: Mapping[str, Any]) -> Event:
        """Send ``data`` on ``topic`` (no glob characters); returns the event as sent."""

    @abc.abstractmethod
    def subscribe(self, pattern: str, *, maxsize: int | None = None) -> Subscription:
        """Receive events whose topic matches the glob ``pattern``, from now on."""

    @abc.abstractmethod
    async def healthy(self) -> bool:
        """True while the bus can carry events (for `/healthz`)."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _cannot_publish(state: _State) -> BusError:
    return BusError(f"cannot publish: event bus is {'closed' if state == 'closed' else 'not started'}")


def _new_origin() -> str:
    # Per bus, not per process: two buses in one process (tests, CLI tools) must see each other's events.
    return f"{process_id()}#{uuid.uuid4().hex[:6]}"


def _encode(topic: str, data: Mapping[str, Any], origin: str) -> tuple[Event, str, Event]:
    """Build the event, its wire form and the copy handed to subscribers.

    Both buses deliver the decoded wire form, so memory-bus tests catch non-JSON data and
    subscribers see exactly what a remote process would, never the publisher's (mutable) dict.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"event data must be a mapping, not {type(data).__name__}")
    event = Event(topic=_check_topic(topic), data=dict(data), origin=origin)
    payload = event.to_json()
    return event, payload, Event.from_json(payload)


class InMemoryBus(EventBus):
    """Single-process bus: publish hands events straight to matching local subscriptions."""

    def __init__(self, *, maxsize: int = DEFAULT_QUEUE_SIZE) -> None:
        self.origin = _new_origin()
        self._fanout = _LocalFanout(maxsize)
        self._state: _State = "new"

    async def start(self) -> None:
        if self._state == "closed":
            raise BusError("event bus is closed")
        self._state = "running"

    async def close(self) -> None:
        self._state = "closed"
        self._fanout.close_all()

    async def publish(self, topic: str, data: Mapping[str, Any]) -> Event:
        if self._state != "running":
            raise _cannot_publish(self._state)
        event, _payload, delivered = _encode(topic, data, self.origin)
        self._fanout.dispatch(delivered)
        return event

    async def healthy(self) -> bool:
        return self._state == "running"

    def subscribe(self, pattern: str, *, maxsize: int | None = None) -> Subscription:
        if self._state == "closed":
            raise BusError("cannot subscribe: event bus is closed")
        return self._fanout.subscribe(pattern, maxsize)


class RedisBus(EventBus):
    """Multi-process bus over Redis pub/sub.

    Each bus holds one pub/sub connection that PSUBSCRIBEs ``{prefix}:*``; a reader task decodes
    what arrives and fans it out locally. Create one per process.

    Exactly-once for local subscribers: a publish is delivered locally at once and the Redis echo
    (same ``origin``) is ignored. Routing local events through Redis instead would lose them, and
    make delivery depend on the round trip, whenever the reader is reconnecting; the origin check
    cannot double-deliver because origins are unique per bus instance.

    Cross-process delivery is best-effort, as Redis pub/sub is at-most-once anyway: a failed
    PUBLISH is logged and counted in ``publish_failures`` rather than raised, so a Redis blip never
    fails the request that produced the event. Events sent while the reader is reconnecting are lost.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "switchboard",
        *,
        maxsize: int = DEFAULT_QUEUE_SIZE,
        connect_timeout: float = 5.0,
        socket_timeout: float = 5.0,
        ping_interval: float = 15.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                f"not a Redis URL: {redact_url(url)!r} (expected redis://, rediss:// or unix://)"
            )
        if not prefix or set(prefix) & (_TOPIC_FORBIDDEN | {":", "\\"}):
            raise ValueError(f"invalid bus prefix {prefix!r}: needs text without glob characters or ':'")
        self.origin = _new_origin()
        self.prefix: Final = prefix
        self.safe_url: Final = redact_url(url)
        self.client_name: Final = _CLIENT_NAME_UNSAFE.sub("_", f"switchboard-bus:{self.origin}")
        self.reconnects = 0
        """Times the reader re-established its subscription after losing it."""
        self.publish_failures = 0
        self._url = url
        self._connect_timeout = connect_timeout
        self._socket_timeout = socket_timeout
        self._ping_interval = ping_interval
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._fanout = _LocalFanout(maxsize)
        self._state: _State = "new"
        self._client: Redis | None = None
        self._reader: asyncio.Task[None] | None = None
        self._publish_failing = False

    def _channel(self, topic: str) -> str:
        return f"{self.prefix}:{topic}"

    async def start(self) -> None:
        """Connect and subscribe, failing fast with :class:`BusUnavailableError` if Redis is unreachable."""
        if self._state == "running":
            return
        if self._state == "closed":
            raise BusError("event bus is closed")
        client = Redis.from_url(
            self._url,
            socket_connect_timeout=self._connect_timeout,
            socket_timeout=self._socket_timeout,
            socket_keepalive=True,
            client_name=self.client_name,
            # Our reader owns reconnection (with backoff and logging); redis-py retrying underneath
            # would hide outages and slow down the fail-fast start.
            retry=Retry(NoBackoff(), 0),
        )
        try:
            async with asyncio.timeout(self._connect_timeout):
                await client.ping()
                pubsub = await self._open_pubsub(client)
        except (RedisError, OSError) as exc:  # OSError covers TimeoutError and refused sockets
            await client.aclose()
            raise BusUnavailableError(
                f"event bus: cannot reach Redis at {self.safe_url}: {_describe(exc)}"
            ) from exc
        except BaseException:
            await client.aclose()
            raise
        self._client = client
        self._state = "running"
        self._reader = asyncio.create_task(
            self._read_forever(client, pubsub), name=f"bus-reader {self.prefix}"
        )

    async def close(self) -> None:
        if self._state == "closed":
            return
        self._state = "closed"
        self._fanout.close_all()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.wait({reader})
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def publish(self, topic: str, data: Mapping[str, Any]) -> Event:
        client = self._client
        if self._state != "running" or client is None:
            raise _cannot_publish(self._state)
        event, payload, delivered = _encode(topic, data, self.origin)
        self._fanout.dispatch(delivered)
        try:
            await client.publish(self._channel(event.topic), payload)
        except (RedisError, OSError) as exc:
            self.publish_failures += 1
            if not self._publish_failing:
                self._publish_failing = True
                log.warning(
                    "event bus: publishing to Redis at %s failed (%s); other processes miss events meanwhile",
                    self.safe_url,
                    _describe(exc),
                )
        else:
            if self._publish_failing:
                self._publish_failing = False
                log.info("event bus: publishing to Redis at %s recovered", self.safe_url)
        return event

    async def healthy(self) -> bool:
        client = self._client
        if self._state != "running" or client is None:
            return False
        try:
            async with asyncio.timeout(self._socket_timeout):
                await client.ping()
        except (RedisError, OSError):
            return False
        return self._reader is not None and not self._reader.done()

    def subscribe(self, pattern: str, *, maxsize: int | None = None) -> Subscription:
        if self._state == "closed":
            raise BusError("cannot subscribe: event bus is closed")
        return self._fanout.subscribe(pattern, maxsize)

    async def _open_pubsub(self, client: Redis) -> PubSub:
        """PSUBSCRIBE and wait for the confirmation, so nothing published after this returns is missed."""
        pubsub = client.pubsub()
        try:
            await pubsub.psubscribe(self._channel("*"))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._connect_timeout
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError("no PSUBSCRIBE confirmation from Redis")
                msg = await pubsub.get_message(timeout=remaining)
                if msg is not None and msg["type"] == "psubscribe":
                    return pubsub
        except BaseException:
            await _discard(pubsub)
            raise

    async def _read_forever(self, client: Redis, pubsub: PubSub | None) -> None:
        """Pump messages; on any failure drop the connection and resubscribe with capped, jittered backoff."""
        failures = 0
        try:
            while True:
                try:
                    if pubsub is None:
                        async with asyncio.timeout(self._connect_timeout):
                            pubsub = await self._open_pubsub(client)
                        self.reconnects += 1
                        log.warning(
                            "event bus: resubscribed to Redis at %s after %d failed attempt(s)",
                            self.safe_url,
                            failures,
                        )
                        failures = 0
                    await self._pump(pubsub)
                    raise ConnectionError("pub/sub subscription ended")
                except Exception as exc:
                    if pubsub is not None:
                        await _discard(pubsub)
                        pubsub = None
                    delay = min(self._backoff_max, self._backoff_initial * 2**failures)
                    delay *= random.uniform(0.5, 1.0)  # spread out a fleet reconnecting after a Redis restart
                    failures += 1
                    log.warning(
                        "event bus: lost Redis pub/sub at %s (%s); retry in %.1fs, events meanwhile are lost",
                        self.safe_url,
                        _describe(exc),
                        delay,
                    )
                    await asyncio.sleep(delay)
        finally:
            if pubsub is not None:
                await _discard(pubsub)

    async def _pump(self, pubsub: PubSub) -> None:
        """Dispatch until the connection fails; PINGs when idle, so a half-open socket is noticed."""
        awaiting_pong = False
        while True:
            timeout = self._socket_timeout if awaiting_pong else self._ping_interval
            msg = await pubsub.get_message(timeout=timeout)
            if msg is None:
                if awaiting_pong:
                    raise ConnectionError(f"no reply to PING within {timeout:.0f}s")
                await pubsub.ping()
                awaiting_pong = True
                continue
            awaiting_pong = False
            if msg["type"] == "pmessage":
                self._receive(msg["channel"], msg["data"])

    def _receive(self, channel: bytes | str, raw: bytes | str) -> None:
        try:
            event = Event.from_json(raw)
        except ValueError as exc:
            log.warning("event bus: ignoring malformed message on %r: %s", channel, exc)
            return
        if event.origin == self.origin:
            return  # our own publish, already delivered locally
        self._fanout.dispatch(event)


async def _discard(pubsub: PubSub) -> None:
    try:
        await pubsub.aclose()  # redis-py leaves it unannotated
    except Exception:  # the connection is already broken; closing is best-effort
        log.debug("event bus: error closing pub/sub connection", exc_info=True)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return redact_text(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def create_bus(kind: str, redis_url: str | None, *, prefix: str = "switchboard") -> EventBus:
    """Build the bus named by settings: ``"memory"`` or ``"redis"`` (which needs ``redis_url``)."""
    if kind == "memory":
        return InMemoryBus()
    if kind == "redis":
        if not redis_url:
            raise ValueError("bus 'redis' needs a redis_url")
        return RedisBus(redis_url, prefix)
    raise ValueError(f"unknown bus kind {kind!r}: expected 'memory' or 'redis'")
