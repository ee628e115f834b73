"""Follow calls through the AMI event stream: a pure, synchronous state machine (no I/O, no clock of its
own) fed one event dict at a time, answering the `CallEvent`s that event caused.

Why not panoramisk's `CallManager`: it groups legs by the epoch second of their Uniqueid, so two calls
started in the same second collide. A call here is everything sharing one **Linkedid** (the Uniqueid of the
leg that started it: the trunk leg inbound, the originated agent leg for click-to-call, whose Uniqueid and
Linkedid are the `ChannelId` the hub chose).

The result is decided from `DialEnd DialStatus` and the queue events (`AgentConnect`, `AgentRingNoAnswer`,
`QueueCallerAbandon`), never from `Cdr` rows alone: a dialplan that answers before queueing gives every Cdr an
AnswerTime, a missed queue call produces one `NO ANSWER` Cdr per member per ring round, and a fallback
`Answer()` turns an unreachable agent into an `ANSWERED` Cdr. An unreachable agent leaves no channel and no
Dial* events at all; only `VarSet DIALSTATUS=CHANUNAVAIL` tells. Finished calls are forgotten (a short list
of their ids is kept so late events such as a trailing `Cdr` are ignored); unknown or malformed events are
logged and skipped, never raised.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Literal

from channels.asterisk.model import (
    CallEvent,
    CallEventKind,
    CallRecord,
    CallResult,
    Direction,
    Party,
    endpoint_of,
    extension_of,
    normalise_number,
    region_of,
)

log = logging.getLogger(__name__)

SPY_PREFIX = "spy-"  # ChannelId prefix of supervisor ChanSpy originates: not customer calls
CLICK_TO_CALL_PREFIX = "c2c-"

Role = Literal["customer", "agent", "other"]
_NO_QUEUE_AGENTS = {"JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL", "FULL"}
_UNKNOWN = {"", "<unknown>"}
_DIALSTATUS_RESULT: dict[str, CallResult] = {
    "CHANUNAVAIL": "unreachable",
    "BUSY": "busy",
    "NOANSWER": "missed",
    "CANCEL": "missed",
}


@dataclass
class _Leg:
    uniqueid: str
    channel: str
    role: Role = "other"
    endpoint: str | None = None
    rung: bool = False  # was dialled as a destination
    dial_status: str | None = None  # the first DialEnd status other than CANCEL (or CANCEL)
    bridge: str | None = None
    transferred: bool = False  # hung up by a blind transfer: not "who hung up"
    hung_up: bool = False


@dataclass
class _Originate:
    agent_endpoint: str | None
    number: str | None
    variables: dict[str, str]
    at: datetime


@dataclass
class _Call:
    linkedid: str
    direction: Direction
    origin: str
    started_at: datetime
    last_seen: datetime
    legs: dict[str, _Leg] = field(default_factory=dict)
    caller_raw: str | None = None
    caller_name: str | None = None
    called_raw: str | None = None
    answered_at: datetime | None = None
    answered_endpoints: list[str] = field(default_factory=list)
    answered_seen: set[str] = field(default_factory=set)
    rung_endpoints: list[str] = field(default_factory=list)
    first_ring_at: datetime | None = None
    ring_end_at: datetime | None = None
    wait_end_at: datetime | None = None
    hangup_cause: int | None = None
    hangup_cause_text: str | None = None
    hung_up_by: Party | None = None
    recording_path: str | None = None
    transfer_target: str | None = None
    queue: str | None = None
    queue_abandoned: bool = False
    queue_status: str | None = None
    agents_tried: bool = False
    dialstatus_var: str | None = None
    originate_failed: bool = False
    cdr_answered: bool = False
    variables: dict[str, str] = field(default_factory=dict)
    reconciled: bool = False
    ended_at: datetime | None = None
    result: CallResult | None = None

    def leg(self, uniqueid: str | None, channel: str | None = None) -> _Leg | None:
        """The leg with this Uniqueid, created on first sight when its channel name is given."""
        if not uniqueid:
            return None
        found = self.legs.get(uniqueid)
        if found is None and channel:
            found = self.legs[uniqueid] = _Leg(uniqueid, channel)
        return found


def _clean(value: str | None) -> str | None:
    return None if value is None or value.strip() in _UNKNOWN else value.strip()


def _normalise(event: Mapping[str, object]) -> dict[str, str]:
    """Lower-cased keys (AMI spells `Uniqueid` and `UniqueID`), one string per key."""
    out: dict[str, str] = {}
    for key, value in event.items():
        if isinstance(value, list | tuple):
            value = value[0] if value else ""
        out[str(key).lower()] = value if isinstance(value, str) else str(value)
    return out


def _cause(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


class CallTracker:
    """Feed it every AMI event (`feed`), with the time it was received; act on what it answers."""

    def __init__(
        self,
        *,
        region: str = "MD",
        recordings_dir: Path | None = None,
        max_live_calls: int = 10_000,
        max_idle: timedelta = timedelta(hours=4),
        remember_finished: int = 4096,
        ignore_prefixes: tuple[str, ...] = (SPY_PREFIX,),
    ) -> None:
        self.region = region
        self.recordings_dir = recordings_dir
        self.max_live_calls = max_live_calls
        self.max_idle = max_idle
        self.remember_finished = remember_finished
        self.ignore_prefixes = ignore_prefixes
        self._live: dict[str, _Call] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._originates: OrderedDict[str, _Originate] = OrderedDict()
        self._out: list[CallEvent] = []
        self._last_sweep: datetime | None = None
        self._handlers: dict[str, Callable[[dict[str, str], datetime], None]] = {
            "newchannel": self._newchannel,
            "dialbegin": self._dialbegin,
            "dialend": self._dialend,
            "bridgeenter": self._bridgeenter,
            "bridgeleave": self._bridgeleave,
            "hanguprequest": self._hanguprequest,
            "hangup": self._hangup,
            "varset": self._varset,
            "queuecallerjoin": self._queuecallerjoin,
            "queuecallerleave": self._queuecallerleave,
            "queuecallerabandon": self._queuecallerabandon,
            "agentcalled": self._agentcalled,
            "agentconnect": self._agentconnect,
            "agentringnoanswer": self._agentringnoanswer,
            "originateresponse": self._originateresponse,
            "blindtransfer": self._blindtransfer,
            "cdr": self._cdr,
            "chanspystart": self._chanspystart,
        }

    # --- the public face -------------------------------------------------------------------------------

    def feed(self, event: Mapping[str, object], at: datetime | None = None) -> list[CallEvent]:
        """Apply one AMI event (a header → value mapping, any key case); the call events it caused."""
        at = at or datetime.now(UTC)
        self._out = []
        name = ""
        try:
            fields = _normalise(event)
            name = fields.get("event", "").lower()
            handler = self._handlers.get(name)
            if handler is not None:
                handler(fields, at)
            self._sweep(at)
        except Exception:
            log.warning("AMI event %r skipped: could not be applied", name, exc_info=True)
        out, self._out = self._out, []
        return out

    def note_originate(
        self,
        channel_id: str,
        *,
        agent_endpoint: str | None,
        number: str | None,
        variables: Mapping[str, str] | None = None,
        at: datetime | None = None,
    ) -> None:
        """Remember a click-to-call the hub asked for, so that its record has the customer's number and
        variables even when Asterisk never creates a channel for it."""
        self._originates[channel_id] = _Originate(
            agent_endpoint, number, dict(variables or {}), at or datetime.now(UTC)
        )
        while len(self._originates) > 1000:
            self._originates.popitem(last=False)

    def reconcile(
        self,
        live_linkedids: Collection[str],
        at: datetime | None = None,
        *,
        candidates: Collection[str] | None = None,
    ) -> list[CallEvent]:
        """After an AMI outage: end the calls this tracker still follows (limited to `candidates`, the
        calls live when the link dropped) that Asterisk no longer has (`CoreShowChannels` Linkedids)."""
        at = at or datetime.now(UTC)
        self._out = []
        alive = set(live_linkedids)
        for linkedid in list(self._live):
            if linkedid in alive or (candidates is not None and linkedid not in candidates):
                continue
            call = self._live[linkedid]
            call.reconciled = True
            log.info("call %s ended while the AMI link was down: closed by reconciliation", linkedid)
            self._end(call, at)
        out, self._out = self._out, []
        return out

    def live_linkedids(self) -> frozenset[str]:
        return frozenset(self._live)

    def get(self, linkedid: str) -> CallRecord | None:
        """The live call's record now, or None."""
        call = self._live.get(linkedid)
        return self._record(call) if call is not None else None

    def __len__(self) -> int:
        return len(self._live)

    # --- helpers ---------------------------------------------------------------------------------------

    def _call(self, linkedid: str | None, at: datetime) -> _Call | None:
        call = self._live.get(linkedid) if linkedid else None
        if call is not None:
            call.last_seen = at
        return call

    def _emit(self, call: _Call, kind: CallEventKind, at: datetime, endpoint: str | None = None) -> None:
        self._out.append(CallEvent(kind, self._record(call), at, endpoint))

    def _answer(self, call: _Call, endpoint: str | None, at: datetime) -> None:
        if call.answered_at is None:
            call.answered_at = at
        if (endpoint or "") in call.answered_seen:
            return
        call.answered_seen.add(endpoint or "")
        if endpoint:
            call.answered_endpoints.append(endpoint)
        self._emit(call, "answered", at, endpoint)

    def _end(self, call: _Call, at: datetime) -> None:
        call.ended_at = at
        call.result = self._decide(call)
        self._live.pop(call.linkedid, None)
        self._finished[call.linkedid] = None
        while len(self._finished) > self.remember_finished:
            self._finished.popitem(last=False)
        self._emit(call, "ended", at)

    def _sweep(self, at: datetime) -> None:
        """Bounded memory: end calls idle too long (a lost Hangup); forget old click-to-call notes."""
        if self._last_sweep is not None and at - self._last_sweep < timedelta(seconds=60):
            return
        self._last_sweep = at
        for call in [c for c in self._live.values() if at - c.last_seen > self.max_idle]:
            log.warning("call %s had no event for %s: closing it", call.linkedid, self.max_idle)
            call.reconciled = True
            self._end(call, at)
        for channel_id in [k for k, v in self._originates.items() if at - v.at > timedelta(minutes=10)]:
            del self._originates[channel_id]

    def _start(self, call: _Call) -> None:
        self._live[call.linkedid] = call
        while len(self._live) > self.max_live_calls:
            oldest = next(iter(self._live.values()))
            log.warning(
                "more than %d live calls: closing the oldest, %s", self.max_live_calls, oldest.linkedid
            )
            oldest.reconciled = True
            self._end(oldest, call.started_at)

    # --- event handlers --------------------------------------------------------------------------------

    def _newchannel(self, ev: dict[str, str], at: datetime) -> None:
        uniqueid = ev["uniqueid"]
        linkedid = ev.get("linkedid") or uniqueid
        if linkedid.startswith(self.ignore_prefixes):
            return
        call = self._call(linkedid, at)
        if call is None:
            if uniqueid != linkedid:
                log.debug("leg %s of call %s that started before we listened: ignored", uniqueid, linkedid)
                return
            self._finished.pop(linkedid, None)  # Uniqueids restart with Asterisk: a reused id is a new call
            note = self._originates.pop(linkedid, None)
            outbound = note is not None or ev.get("channelstatedesc") == "Down"
            call = _Call(linkedid, "out" if outbound else "in", uniqueid, at, at)
            leg = call.leg(uniqueid, ev.get("channel", ""))
            assert leg is not None
            if outbound:
                leg.role, leg.endpoint = "agent", endpoint_of(leg.channel)
                if note is not None:
                    call.called_raw = note.number
                    call.variables.update(note.variables)
                    leg.endpoint = leg.endpoint or note.agent_endpoint
            else:
                leg.role = "customer"
                call.caller_raw = _clean(ev.get("calleridnum"))
                call.caller_name = _clean(ev.get("calleridname"))
                call.called_raw = _clean(ev.get("exten"))
            self._start(call)
            return
        call.leg(uniqueid, ev.get("channel", ""))

    def _dialbegin(self, ev: dict[str, str], at: datetime) -> None:
        call = self._call(ev.get("linkedid") or ev.get("destlinkedid"), at)
        if call is None:
            return
        dest = call.leg(ev.get("destuniqueid"), ev.get("destchannel"))
        if dest is None:
            return
        dest.rung = True
        source = call.legs.get(ev.get("uniqueid", ""))
        if source is None:
            if dest.uniqueid == call.origin:  # the originate dials the agent's own phone first
                if dest.endpoint and dest.endpoint not in call.rung_endpoints:
                    call.rung_endpoints.append(dest.endpoint)
                self._emit(call, "ringing", at, dest.endpoint)
            return
        if source.role == "customer":  # an agent is rung: inbound, queue member, transfer target
            dest.role = "agent"
            dest.endpoint = dest.endpoint or endpoint_of(dest.channel)
            if dest.endpoint and dest.endpoint not in call.rung_endpoints:
                call.rung_endpoints.append(dest.endpoint)
            call.first_ring_at = call.first_ring_at or at
            self._emit(call, "ringing", at, dest.endpoint)
        elif source.role == "agent":  # the agent's leg dials the customer (click-to-call)
            dest.role = "customer"
            dialled = _clean(ev.get("destexten")) or _clean(ev.get("dialstring", "").split("@")[0])
            call.called_raw = call.called_raw or dialled
            call.caller_raw = _clean(ev.get("calleridnum")) or call.caller_raw
            call.caller_name = _clean(ev.get("calleridname")) or call.caller_name
            call.first_ring_at = call.first_ring_at or at

    def _dialend(self, ev: dict[str, str], at: datetime) -> None:
        call = self._call(ev.get("linkedid") or ev.get("destlinkedid"), at)
        if call is None:
            return
        dest = call.leg(ev.get("destuniqueid"), ev.get("destchannel"))
        if dest is None:
            return
        status = ev.get("dialstatus", "").upper()
        if "uniqueid" not in ev and dest.uniqueid == call.origin:
            dest.dial_status = status  # the originate reached (or not) the agent's phone
            return
        if status == "ANSWER":
            dest.dial_status = status
            if dest.role == "agent":
                self._answer(call, dest.endpoint, at)
            elif dest.role == "customer":
                self._answer(call, self._agent_endpoint(call), at)
            return
        if dest.dial_status is None or dest.dial_status == "CANCEL":
            dest.dial_status = status
        if dest.role in ("agent", "customer") and call.answered_at is None:
            call.ring_end_at = call.wait_end_at = at

    def _bridgeenter(self, ev: dict[str, str], at: datetime) -> None:
        call = self._call(ev.get("linkedid"), at)
        leg = call.leg(ev.get("uniqueid"), ev.get("channel")) if call else None
        if call is None or leg is None:
            return
        leg.bridge = ev.get("bridgeuniqueid") or None
        if call.answered_at is not None or leg.bridge is None:
            return
        members = [m for m in call.legs.values() if m.bridge == leg.bridge and not m.hung_up]
        agents = [m for m in members if m.role == "agent"]
        if agents and any(m.role == "customer" for m in members):  # connected without a DialEnd (pickup)
            self._answer(call, agents[0].endpoint, at)

    def _bridgeleave(self, ev: dict[str, str], at: datetime) -> None:
        call = self._call(ev.get("linkedid"), at)
        leg = call.legs.get(ev.get("uniqueid", "")) if call else None
        if leg is not None:
            leg.bridge = None

    def _hanguprequest(self, ev: dict[str, str], at: datetime) -> None:
        call = self._call(ev.get("linkedid"), at)
        leg = call.legs.get(ev.get("uniqueid", "")) if call else None
        if call is not None and leg is not None:
            self._note_hangup(call, leg)

    def _note_hangup(self, call: _Call, leg: _Leg) -> None:
        """Who hung up first: the first `HangupRequest` (a party's own BYE/CANCEL; the dialplan's hangups
        are `SoftHangupRequest`) on a connected leg, or a caller giving up while waiting."""
        if call.hung_up_by is not None or leg.transferred or leg.role == "other":
            return
        if call.answered_at is not None:
            if leg.role == "customer" or leg.bridge is not None:
                call.hung_up_by = leg.role
        elif leg.role == "customer" and call.direction == "in":
            call.hung_up_by = "customer"

    def _hangup(self, ev: dict[str, str], at: datetime) -> None:
        call = self._call(ev.get("linkedid"), at)
        leg = call.legs.get(ev.get("uniqueid", "")) if call else None
        if call is None or leg is None:
            return
        leg.hung_up, leg.bridge = True, None
        has_customer_leg = any(m.role == "customer" for m in call.legs.values())
        if leg.role == "customer" or (leg.uniqueid == call.origin and not has_customer_leg):
            call.hangup_cause = _cause(ev.get("cause"))
            call.hangup_cause_text = _clean(ev.get("cause-txt"))
        if all(m.hung_up for m in call.legs.values()):
            self._end(call, at)

    def _varset(self, ev: dict[str, str], at: datetime) -> None:
        name = ev.get("variable", "").upper()
        if name not in ("MIXMONITOR_FILENAME", "DIALSTATUS", "QUEUESTATUS") and not name.startswith(
            "SWITCHBOARD_"
        ):
            return
        call = self._call(ev.get("linkedid"), at)
        if call is None:
            return
        value = ev.get("value", "").strip()
        if name == "MIXMONITOR_FILENAME":
            call.recording_path = call.recording_path or value or None
        elif name == "DIALSTATUS":
            if ev.get("uniqueid") == call.origin:
                call.dialstatus_var = value.upper()
                if value.upper() != "ANSWER" and call.answered_at is None:
                    call.wait_end_at = at
        elif name == "QUEUESTATUS":
            call.queue_status = value.upper()
        else:
            call.variables[name] = value
            if name == "SWITCHBOARD_TARGET" and not value and call.answered_at is None:
                call.wait_end_at = at

    def _queuecallerjoin(self, ev: dict[str, str], at: datetime) -> None:
        call = self._call(ev.get("linkedid"), at)
        if call is not None:
            call.queue = ev.get("queue") or call.queue

    def _queuecallerleave(self, ev: dict[str, str], at: datetime) -> None:
        call = self._call(ev.get("linkedid"), at)
        if call is not None and call.answered_at is None:
            call.wait_end_at = at

    def _queuecallerabandon(self, ev: dict[str, str], at: datetime) -> None:
        call = self._call(ev.get("linkedid"), at)
        if call is not None:
            call.queue_abandoned = True
            call.wait_end_at = at

    def _agentcalled(self, ev: dict[str, str], at: datetime) -> None:
        call = self._call(ev.get("linkedid"), at)
        leg = call.leg(ev.get("destuniqueid"), ev.get("destchannel")) if call else None
        if call is not None and leg is not None:
            call.agents_tried = True
            leg.endpoint = _clean(ev.get("interface")) or leg.endpoint

    def _agentconnect(self, ev: dict[str, str], at: datetime) -> None:
        call = self._call(ev.get("linkedid"), at)
        if call is not None:
            endpoint = _clean(ev.get("interface")) or endpoint_of(ev.get("destchannel"))
            self._answer(call, endpoint, at)

    def _agentringnoanswer(self, ev: dict[str, str], at: datetime) -> None:
        call = self._call(ev.get("linkedid"), at)
        if call is None:
            return
        call.agents_tried = True
        leg = call.leg(ev.get("destuniqueid"), ev.get("destchannel"))
        if leg is not None:
            leg.role, leg.rung = "agent", True
            leg.dial_status = leg.dial_status or "NOANSWER"
        if call.answered_at is None:
            call.ring_end_at = call.wait_end_at = at

    def _originateresponse(self, ev: dict[str, str], at: datetime) -> None:
        channel_id = ev.get("uniqueid", "")
        if not channel_id or channel_id.startswith(self.ignore_prefixes):
            return
        ok = ev.get("response", "").lower() == "success"
        call = self._call(channel_id, at)
        if call is None:
            note = self._originates.pop(channel_id, None)
            if ok or channel_id in self._finished or note is None:
                return
            # Asterisk never made a channel (the endpoint is unknown or offline): still report the attempt.
            call = _Call(channel_id, "out", channel_id, note.at, at)
            call.called_raw = note.number or _clean(ev.get("exten"))
            call.variables.update(note.variables)
            dial = _clean(ev.get("channel"))
            call.rung_endpoints = [e for e in (note.agent_endpoint or dial,) if e]
            call.originate_failed = True
            self._live[channel_id] = call
            self._end(call, at)
            return
        call.called_raw = call.called_raw or _clean(ev.get("exten"))
        if not ok:
            call.originate_failed = True

    def _blindtransfer(self, ev: dict[str, str], at: datetime) -> None:
        if ev.get("result", "").lower() != "success":
            return
        call = self._call(ev.get("transfererlinkedid") or ev.get("transfereelinkedid"), at)
        if call is None:
            return
        call.transfer_target = _clean(ev.get("extension")) or call.transfer_target
        leg = call.legs.get(ev.get("transfereruniqueid", ""))
        if leg is not None:
            leg.transferred = True

    def _cdr(self, ev: dict[str, str], at: datetime) -> None:
        call = self._call(ev.get("linkedid"), at)
        if call is None:  # usually after the last Hangup: the call is already closed
            return
        if ev.get("disposition", "").upper() == "ANSWERED" and _clean(ev.get("destinationchannel")):
            call.cdr_answered = True

    def _chanspystart(self, ev: dict[str, str], at: datetime) -> None:
        spyer = self._live.get(ev.get("spyerlinkedid", ""))
        if spyer is not None:  # a supervisor's ChanSpy channel originated without our prefix
            self._live.pop(spyer.linkedid)
            self._finished[spyer.linkedid] = None
        log.info("ChanSpy on call %s (%s)", ev.get("spyeelinkedid"), ev.get("spyeechannel"))

    # --- deciding --------------------------------------------------------------------------------------

    @staticmethod
    def _agent_endpoint(call: _Call) -> str | None:
        if call.answered_endpoints:
            return call.answered_endpoints[0]
        if call.direction == "out":
            origin = call.legs.get(call.origin)
            if origin is not None and origin.endpoint:
                return origin.endpoint
        if call.rung_endpoints:
            return call.rung_endpoints[-1]
        target = call.variables.get("SWITCHBOARD_TARGET", "").split("&")[0].strip()
        return target if "/" in target else None

    @staticmethod
    def _from_statuses(statuses: list[str | None], cancelled: CallResult) -> CallResult:
        seen = {status or "NOANSWER" for status in statuses}  # rung without a DialEnd: nobody answered
        if "NOANSWER" in seen:
            return "missed"
        if "CANCEL" in seen:
            return cancelled
        if "BUSY" in seen:
            return "busy"
        if "CHANUNAVAIL" in seen:
            return "unreachable"
        return "failed"

    @staticmethod
    def _from_dialstatus(status: str) -> CallResult:
        return _DIALSTATUS_RESULT.get(status, "failed")

    def _decide(self, call: _Call) -> CallResult:
        if call.answered_at is not None:
            return "answered"
        if call.direction == "out":
            if call.originate_failed:
                return "failed"
            customers = [leg.dial_status for leg in call.legs.values() if leg.role == "customer" and leg.rung]
            if customers:
                return self._from_statuses(customers, "abandoned")
            return self._from_dialstatus(call.dialstatus_var) if call.dialstatus_var else "failed"
        agents = [leg.dial_status for leg in call.legs.values() if leg.role == "agent" and leg.rung]
        if agents or call.agents_tried:
            return self._from_statuses(agents or ["NOANSWER"], "missed")
        if call.dialstatus_var and call.dialstatus_var != "ANSWER":
            return self._from_dialstatus(call.dialstatus_var)
        if call.variables.get("SWITCHBOARD_TARGET") == "" or call.queue_status in _NO_QUEUE_AGENTS:
            return "no_agent"
        if call.cdr_answered:
            return "answered"  # only a Cdr saw it connected (Dial events lost): better than nothing
        return "abandoned"

    def _record(self, call: _Call) -> CallRecord:
        caller = normalise_number(call.caller_raw, self.region)
        called = normalise_number(call.called_raw, self.region)
        customer = caller if call.direction == "in" else called
        agent = self._agent_endpoint(call)
        wait = ring = None
        talk = 0.0
        if call.answered_at is not None:
            wait = (call.answered_at - call.started_at).total_seconds()
            if call.ended_at is not None:
                talk = (call.ended_at - call.answered_at).total_seconds()
        elif call.ended_at is not None:
            wait = ((call.wait_end_at or call.ended_at) - call.started_at).total_seconds()
        if call.first_ring_at is not None:
            ring_end = call.answered_at or call.ring_end_at or call.ended_at
            if ring_end is not None:
                ring = max(0.0, (ring_end - call.first_ring_at).total_seconds())
        recording_file = None
        if call.recording_path and self.recordings_dir is not None:
            recording_file = self.recordings_dir / PurePosixPath(call.recording_path).name
        result = call.result if call.ended_at is not None else ("answered" if call.answered_at else None)
        return CallRecord(
            linkedid=call.linkedid,
            direction=call.direction,
            started_at=call.started_at,
            caller_number=caller,
            caller_number_raw=call.caller_raw,
            called_number=called,
            called_number_raw=call.called_raw,
            caller_name=call.caller_name,
            region=region_of(customer),
            result=result,
            answered_at=call.answered_at,
            ended_at=call.ended_at,
            wait_seconds=wait,
            ring_seconds=ring,
            talk_seconds=talk,
            agent_endpoint=agent,
            agent_extension=extension_of(agent),
            rung_endpoints=tuple(call.rung_endpoints),
            hangup_cause=call.hangup_cause,
            hangup_cause_text=call.hangup_cause_text,
            hung_up_by=call.hung_up_by,
            recording_path=call.recording_path,
            recording_file=recording_file,
            transfer_target=call.transfer_target,
            queue=call.queue,
            variables=dict(call.variables),
            reconciled=call.reconciled,
            ended=call.ended_at is not None,
        )
