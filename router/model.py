"""The router's plain values at its edge: what the inbox and the web side hand in and get back.

Frozen dataclasses, no SQLAlchemy: callers never see a row, and decisions can travel through the bus.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from router.rules import RoutingRule
from switchboard.errors import N_, Invalid


class Presence(StrEnum):
    ONLINE = "online"
    AFTER_CALL = "after_call"
    AWAY = "away"
    OFFLINE = "offline"


class ItemKind(StrEnum):
    CHAT = "chat"
    CALL = "call"


class Reason(StrEnum):
    """Why a decision was taken; the last two only appear in the log, where an agent's load went down."""

    PINNED = "pinned"
    STICKY = "sticky"
    LEAST_BUSY = "least_busy"
    OVERFLOW = "overflow"
    MANUAL = "manual"
    QUEUED = "queued"
    OFF_HOURS = "off_hours"
    REASSIGNED = "reassigned"
    GIVEN_BACK = "given_back"
    RELEASED = "released"
    TIMED_OUT = "timed_out"


ASSIGNING = frozenset(
    {
        Reason.PINNED,
        Reason.STICKY,
        Reason.LEAST_BUSY,
        Reason.OVERFLOW,
        Reason.MANUAL,
        Reason.REASSIGNED,
        Reason.GIVEN_BACK,
    }
)
"""Reasons whose log row gives an item to an agent (and adds one to the agent's load)."""


class Status(StrEnum):
    ROUTING = "routing"  # inside the transaction that routes it: an item given away at once never
    # leaves a dead "queued" entry in the queue's index for every later queue scan to step over
    QUEUED = "queued"
    OFFERED = "offered"  # given to an agent, who has not taken it yet (accept timeout runs)
    ACCEPTED = "accepted"
    ENDED = "ended"


ACTIVE = (Status.QUEUED, Status.OFFERED, Status.ACCEPTED)


@dataclass(frozen=True)
class Skills:
    """What an agent can take; an empty list means "any"."""

    branches: tuple[int, ...] = ()
    languages: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        *,
        branches: Iterable[int] = (),
        languages: Iterable[str] = (),
        products: Iterable[str] = (),
        channels: Iterable[str] = (),
    ) -> Skills:
        """Normalised (trimmed, lower-case, sorted, no duplicates) and checked."""
        try:
            branch_ids = tuple(sorted({int(b) for b in branches}))
        except (TypeError, ValueError):
            raise Invalid(N_("Branches must be chosen from the list."), field="branches") from None
        words: dict[str, tuple[str, ...]] = {}
        for name, values in (("languages", languages), ("products", products), ("channels", channels)):
            cleaned = {str(v).strip().lower() for v in values} - {""}
            if any(len(v) > 40 for v in cleaned):
                raise Invalid(N_("A skill can be at most 40 characters long."), field=name)
            words[name] = tuple(sorted(cleaned))
        return cls(branch_ids, words["languages"], words["products"], words["channels"])

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Skills:
        data = data or {}
        return cls(
            tuple(data.get("branches", ())),
            tuple(data.get("languages", ())),
            tuple(data.get("products", ())),
            tuple(data.get("channels", ())),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "branches": list(self.branches),
            "languages": list(self.languages),
            "products": list(self.products),
            "channels": list(self.channels),
        }


ENDPOINT_MAX = 100
_ENDPOINT_HELP = N_("Enter the phone endpoint as TECHNOLOGY/resource, e.g. PJSIP/1001.")
_ENDPOINT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,15}/[A-Za-z0-9_.@:+*#/-]{1,84}$")


def phone_endpoint(value: object) -> str | None:
    """An agent's phone endpoint as Asterisk's `Dial()` takes it: `TECHNOLOGY/resource` (`PJSIP/1001`).
    Blank means none. Nothing that would change the dial string's meaning gets through: no spaces, commas
    (Dial's option separator), `&` (several targets), quotes, `$`, braces or control characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(_ENDPOINT_HELP, field="phone_endpoint")
    text = value.strip()
    if not text:
        return None
    if len(text) > ENDPOINT_MAX or not _ENDPOINT_RE.match(text):
        raise Invalid(_ENDPOINT_HELP, field="phone_endpoint")
    return text


@dataclass(frozen=True)
class RoutingRequest:
    kind: ItemKind | str
    item_id: str  # conversation id (chat) or call Linkedid (call)
    channel: str  # channels.model.Channel value ("telegram", "phone", ...)
    branch_id: int | None = None
    language: str | None = None
    product: str | None = None
    owner_id: int | None = None  # the contact's responsible expert (sticky)
    last_agent_id: int | None = None  # the last agent who talked to the customer (sticky, by a rule)
    priority: int = 0  # higher first in the queue
    pinned_agent_id: int | None = None  # a supervisor pinned the item to this agent

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "item_id": self.item_id,
            "channel": self.channel,
            "branch_id": self.branch_id,
            "language": self.language,
            "product": self.product,
            "owner_id": self.owner_id,
            "last_agent_id": self.last_agent_id,
            "priority": self.priority,
            "pinned_agent_id": self.pinned_agent_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RoutingRequest:
        values: dict[str, Any] = {k: data[k] for k in _REQUEST_FIELDS if k in data}
        return cls(**values)


_REQUEST_FIELDS = (
    "kind",
    "item_id",
    "channel",
    "branch_id",
    "language",
    "product",
    "owner_id",
    "last_agent_id",
    "priority",
    "pinned_agent_id",
)


@dataclass(frozen=True)
class Decision:
    request: RoutingRequest
    agent_id: int | None  # None: queued (or off hours)
    reason: str  # a `Reason` value
    skipped: tuple[int, ...] = ()  # agents passed over (accept timeout) for this item
    decision_id: int | None = None  # the stored routing_decisions row


@dataclass(frozen=True)
class LoggedDecision:
    """One stored routing decision, to explain later who got an item and why."""

    id: int
    kind: str
    item_id: str
    agent_id: int | None
    agent_name: str | None
    reason: str
    skipped: tuple[int, ...]
    load_before: int | None
    load_after: int | None
    capacity: int | None
    at: dt.datetime


@dataclass(frozen=True)
class AgentView:
    """One agent as supervisors see them."""

    agent_id: int
    name: str
    presence: Presence
    presence_since: dt.datetime | None
    chats: int  # chats held now (offered or accepted)
    on_call: bool
    capacity: int
    chats_during_call: bool
    skills: Skills
    idle_since: dt.datetime | None  # the last assignment
    assignments_today: int
    consecutive_timeouts: int
    last_heartbeat: dt.datetime | None
    phone_endpoint: str | None = None  # what the dialplan dials for their calls; None: no calls

    @property
    def load(self) -> float:
        """Load ÷ capacity, as the least-busy step compares it (a call fills the agent)."""
        if self.on_call:
            return 1.0
        return self.chats / self.capacity if self.capacity else 1.0


@dataclass(frozen=True)
class RouterSettings:
    """Process-wide knobs; per branch / channel behaviour lives in routing rules (`router.rules`)."""

    default_capacity: int = 5
    default_chats_during_call: bool = False
    wrap_up_seconds: int = 30  # after-call work ends by itself after this long
    absence_grace_seconds: int = 120  # away / offline longer than this: unanswered items move on
    give_back: bool = True  # an agent back online gets back unanswered items taken away for absence
    heartbeat_timeout_seconds: int = 90  # online without a heartbeat this long: set away
    day_timezone: str = "Europe/Chisinau"  # where "assignments today" starts counting at midnight
    config_ttl_seconds: float = 5.0  # rules and working hours are re-read at most this often
    default_rule: RoutingRule = field(default_factory=RoutingRule)
