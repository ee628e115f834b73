"""What the FastAGI server asks the hub about an inbound call, and the answer it gives the dialplan.

Plain frozen dataclasses so that the room that answers (the inbox, through the composition root) never sees
the AGI protocol, and the server never imports that room.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum


class CallReason(StrEnum):
    """`SWITCHBOARD_REASON` values; besides these, the router's own reasons (`pinned`, `manual`, …) for a
    call it had already given to an agent pass through unchanged."""

    STICKY = "sticky"  # the customer's responsible expert (or last agent)
    LEAST_BUSY = "least_busy"
    OVERFLOW = "overflow"  # the skills were widened
    QUEUED = "queued"  # nobody free now; a caller cannot wait in the hub's queue, so the fallback runs
    OFF_HOURS = "off_hours"  # the branch is closed
    NO_AGENT = "no_agent"  # the chosen agent has no endpoint to dial (logged)
    ERROR = "error"  # routing failed (logged); the fallback runs
    TIMEOUT = "timeout"  # no answer within `agi_budget_ms`; a late choice is released


@dataclass(frozen=True)
class CallRequest:
    """One inbound call as the dialplan's `AGI(agi://…/route)` presents it."""

    linkedid: str  # the call's key on every leg (`CHANNEL(linkedid)`): the router's item id
    uniqueid: str  # this (trunk) leg
    caller: str  # `agi_callerid` as Asterisk gave it; "" when withheld
    caller_e164: str | None  # the caller's number in E.164, None when it is not a phone number
    caller_name: str  # `agi_calleridname`, "" when none
    dialled: str  # the number the customer called (the DID: `agi_dnid`, else `agi_extension`)
    channel: str  # `agi_channel`, e.g. `PJSIP/trunk-00000002`
    language: str = ""  # `agi_language` (the channel's sound language, often just `en`)


@dataclass(frozen=True)
class CallRoute:
    """The answer: `target` is what the dialplan dials (`PJSIP/1001`), "" for nobody (its fallback runs)."""

    target: str = ""
    reason: str = CallReason.NO_AGENT
    agent_id: int | None = None
    contact_id: int | None = None
    conversation_id: int | None = None


RouteCall = Callable[[CallRequest], Awaitable[CallRoute]]
"""Given by the composition root (`inbox.calls_routing.CallRouting.route_call`)."""

ReleaseCall = Callable[[str], Awaitable[None]]
"""Frees whatever routing reserved for the call with this linkedid (`CallRouting.release`): called when an
answer came too late, failed, or could not reach Asterisk, so no agent stays reserved for a call nobody
dials."""
