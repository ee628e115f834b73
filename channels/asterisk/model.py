"""What the AMI side hands to the rest of the hub: one `CallRecord` per call (keyed by Asterisk's Linkedid)
and the `CallEvent`s that move it along (`ringing` for the screen pop, `answered`, `ended`).

Plain frozen dataclasses: the composition root turns them into conversation items; nothing here knows
about the inbox. Phone numbers come both as Asterisk sent them (`*_raw`) and in E.164 (None when the
value is not a phone number, e.g. an internal extension).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import phonenumbers
from phonenumbers import geocoder

Direction = Literal["in", "out"]
CallResult = Literal["answered", "missed", "busy", "unreachable", "failed", "no_agent", "abandoned"]
CallEventKind = Literal["ringing", "answered", "ended"]
Party = Literal["customer", "agent"]

_CHANNEL_SUFFIX = re.compile(r"^(.+)-[0-9a-fA-F]{6,}(?:;[12])?$")

RESULTS: tuple[CallResult, ...] = (
    "answered",
    "missed",
    "busy",
    "unreachable",
    "failed",
    "no_agent",
    "abandoned",
)


@dataclass(frozen=True)
class CallRecord:
    """A call as known at one moment. Times are UTC; durations are seconds.

    - `result` is None while the call is live and not answered yet; on `ended` it is always set:
      `answered` (an agent / the customer picked up), `missed` (agents rang, nobody answered: the caller gave
      up or the ring timed out; outbound: the customer did not answer), `busy`, `unreachable` (the agent's
      or customer's endpoint could not be reached), `failed` (click-to-call the agent did not take, or a
      congested / failed dial), `no_agent` (the hub had nobody to route to, or the queue was empty),
      `abandoned` (the caller hung up before any agent was tried; outbound: the agent cancelled).
    - `wait_seconds`: from the start until answered, or until the caller stopped waiting for an agent.
    - `ring_seconds`: how long the called side rang (agents inbound, the customer outbound).
    - `agent_endpoint`: the agent who answered; unanswered: the last agent rung (or the routed target).
    - `reconciled`: the end was not seen (the AMI link was down); `ended_at` is when the hub noticed.
    """

    linkedid: str
    direction: Direction
    started_at: datetime
    caller_number: str | None = None  # E.164
    caller_number_raw: str | None = None
    called_number: str | None = None  # E.164
    called_number_raw: str | None = None
    caller_name: str | None = None
    region: str | None = None  # of the customer's number: a city where known offline, else the country
    result: CallResult | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    wait_seconds: float | None = None
    ring_seconds: float | None = None
    talk_seconds: float = 0.0
    agent_endpoint: str | None = None  # e.g. `PJSIP/1001`
    agent_extension: str | None = None  # e.g. `1001`
    rung_endpoints: tuple[str, ...] = ()
    hangup_cause: int | None = None  # of the customer's leg (Q.850)
    hangup_cause_text: str | None = None
    hung_up_by: Party | None = None
    recording_path: str | None = None  # as MixMonitor reported it on the PBX
    recording_file: Path | None = None  # the same file under `recordings_dir`, when that is set
    transfer_target: str | None = None  # the extension a blind transfer sent the call to
    queue: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)  # SWITCHBOARD_* channel variables
    reconciled: bool = False
    ended: bool = False

    @property
    def customer_number(self) -> str | None:
        """The customer's number in E.164: the caller inbound, the called number outbound."""
        return self.caller_number if self.direction == "in" else self.called_number

    @property
    def customer_number_raw(self) -> str | None:
        return self.caller_number_raw if self.direction == "in" else self.called_number_raw


@dataclass(frozen=True)
class CallEvent:
    """`ringing`: `endpoint` (e.g. `PJSIP/1001`) is ringing now, for the screen pop; `answered`: `endpoint`
    took the call (again after a transfer); `ended`: the record is final."""

    kind: CallEventKind
    record: CallRecord
    at: datetime
    endpoint: str | None = None

    @property
    def extension(self) -> str | None:
        return extension_of(self.endpoint)


OnCallEvent = Callable[[CallEvent], Awaitable[None]]
"""The seam the composition root fills: awaited once per event, in order, by the AMI consumer task."""


def endpoint_of(channel: str | None) -> str | None:
    """`PJSIP/1001-0000000c` → `PJSIP/1001` (a channel name without its sequence suffix)."""
    if not channel or "/" not in channel:
        return None
    match = _CHANNEL_SUFFIX.match(channel)
    return match.group(1) if match else channel


def extension_of(endpoint: str | None) -> str | None:
    """`PJSIP/1001` → `1001`; `Local/1001@agents` → `1001`."""
    if not endpoint or "/" not in endpoint:
        return None
    return endpoint.split("/", 1)[1].split("@", 1)[0] or None


def normalise_number(raw: str | None, region: str) -> str | None:
    """E.164 for a number Asterisk sent, or None for extensions and junk. A national number is read in
    `region`; digits that are not valid there but are with a leading `+` (e.g. `74951234567`) are taken
    as international, as trunks often send them."""
    digits = (raw or "").strip()
    if not digits or digits.lower() in {"<unknown>", "anonymous"} or len(digits) > 32:
        return None
    candidates: list[tuple[str, str | None]] = [(digits, region)]
    if digits.isdigit():
        candidates.append(("+" + digits, None))
    parsed: list[phonenumbers.PhoneNumber] = []
    for text, where in candidates:
        try:
            number = phonenumbers.parse(text, where)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        parsed.append(number)
    if parsed and phonenumbers.is_possible_number(parsed[0]) and len(digits.lstrip("+")) >= 6:
        return phonenumbers.format_number(parsed[0], phonenumbers.PhoneNumberFormat.E164)
    return None


def region_of(e164: str | None) -> str | None:
    """Where a number is from, offline (phonenumbers' geocoder): a city if known, else the country."""
    if not e164:
        return None
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    return (
        geocoder.description_for_number(number, "en")
        or geocoder.country_name_for_number(number, "en")
        or None
    )
