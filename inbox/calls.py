"""Phone calls in the inbox. `CallLog.on_call_event` is the AMI connection's seam: each `CallEvent` of a
call becomes its `calls` row and its call item (a `Message` of kind `call`) in the customer's conversation,
both keyed by Asterisk's Linkedid, so a replayed event or another process taking over the AMI stream never
writes a second one. Around that it tells the router the call was taken and ended, pops the caller's card on
the ringing agent's screen, and turns a missed inbound call into a callback task (returning the call, or a
click-to-call made from the task, closes it). The read side (`list_calls`, `get_call`) serves the desk.

A call from a withheld number, or from something that is not a phone number (an internal extension), has no
customer to attach it to: its `calls` row is kept (the desk and the reports see it) but no contact,
conversation, call item or callback task is made — nobody could call it back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.asterisk.model import CallEvent, CallRecord
from channels.model import Channel, MessageKind
from crm_core import scoring, tasks
from crm_core.models import Contact, Lead
from crm_core.tasks_model import Task
from inbox import notifications
from inbox.calls_model import Call
from inbox.calls_routing import UNKNOWN_LINE
from inbox.models import Conversation, Message
from inbox.notifications_model import Notification
from inbox.service import CallConversation, Inbox, event_payload
from router.engine import Router
from router.model import ItemKind
from switchboard.accounts_model import User
from switchboard.bus import EventBus
from switchboard.db import cast_table, insert_ignoring_duplicates, utcnow

log = logging.getLogger(__name__)

DIRECTIONS = ("in", "out")
MAX_LIST = 5000
CALL_TOPIC = "inbox.call"  # the screen pop: personal, carries `user_id` like notifications do
# inbound results that leave a customer waiting for a call back
CALLBACK_RESULTS = frozenset({"missed", "busy", "unreachable", "failed", "no_agent", "abandoned"})
# of those, the ones whose task goes to the agent who was rung (the others go to the branch's queue: the
# agent's phone was unreachable, or nobody was there to ring)
_AGENT_CALLBACK_RESULTS = frozenset({"missed", "busy", "abandoned"})
_CLOSED_LEADS = ("won", "lost", "closed")
HELD_MAX = 10_000  # calls remembered on standby (far more than a PBX has live at once)


@dataclass(frozen=True)
class CallView:
    """One call as the desk and the exports show it (`calls` row + the agent's and contact's names).

    `recording_file` is a bare file name under `settings.recordings_dir` (never a path); `has_recording`
    says whether there is one at all (whether the file still exists on disk is the server's business)."""

    id: int
    linkedid: str
    direction: str
    customer_number: str | None
    customer_number_raw: str | None
    caller_name: str | None
    dialled: str | None
    region: str | None
    result: str | None
    routed_reason: str | None
    agent_id: int | None
    agent_name: str | None
    agent_endpoint: str | None
    contact_id: int | None
    contact_name: str | None
    conversation_id: int | None
    message_id: int | None
    task_id: int | None
    started_at: dt.datetime
    answered_at: dt.datetime | None
    ended_at: dt.datetime | None
    wait_seconds: float | None
    ring_seconds: float | None
    talk_seconds: float
    hangup_cause: int | None
    hangup_cause_text: str | None
    hung_up_by: str | None
    recording_file: str | None
    transfer_target: str | None
    queue: str | None
    reconciled: bool
    ended: bool

    @property
    def has_recording(self) -> bool:
        return bool(self.recording_file)

    def as_json(self) -> dict[str, Any]:
        """For the API: datetimes as ISO strings, `has_recording` added."""
        data: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            data[name] = value.isoformat() if isinstance(value, dt.datetime) else value
        data["has_recording"] = self.has_recording
        return data


def _query() -> Any:
    return (
        select(
            Call,
            User.full_name,
            User.username,
            Contact.first_name,
            Contact.last_name,
        )
        .outerjoin(User, User.id == Call.agent_id)
        .outerjoin(Contact, Contact.id == Call.contact_id)
    )


def _view(
    call: Call, full_name: str | None, username: str | None, first: str | None, last: str | None
) -> CallView:
    contact_name = f"{first or ''} {last or ''}".strip() or None
    return CallView(
        id=call.id,
        linkedid=call.linkedid,
        direction=call.direction,
        customer_number=call.customer_number,
        customer_number_raw=call.customer_number_raw,
        caller_name=call.caller_name,
        dialled=call.dialled,
        region=call.region,
        result=call.result,
        routed_reason=call.routed_reason,
        agent_id=call.agent_id,
        agent_name=(full_name or username) if call.agent_id is not None else None,
        agent_endpoint=call.agent_endpoint,
        contact_id=call.contact_id,
        contact_name=contact_name,
        conversation_id=call.conversation_id,
        message_id=call.message_id,
        task_id=call.task_id,
        started_at=call.started_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        wait_seconds=call.wait_seconds,
        ring_seconds=call.ring_seconds,
        talk_seconds=call.talk_seconds or 0.0,
        hangup_cause=call.hangup_cause,
        hangup_cause_text=call.hangup_cause_text,
        hung_up_by=call.hung_up_by,
        recording_file=call.recording_file,
        transfer_target=call.transfer_target,
        queue=call.queue,
        reconciled=bool(call.reconciled),
        ended=bool(call.ended),
    )


def _number_filter(number: str) -> ColumnElement[bool] | None:
    """Digits the user typed match anywhere in the E.164 number (`0691` finds `+373691…` only if it is
    in it; `691 23` finds `+37369123…`): spaces, dashes and brackets are ignored."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if not digits:
        return None
    return Call.customer_number.contains(digits, autoescape=True)


async def list_calls(
    session: AsyncSession,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    agent_id: int | None = None,
    direction: str | None = None,
    result: str | None = None,
    number: str | None = None,
    branch_id: int | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[CallView]:
    """Calls started in [`since`, `until`), newest first. `result="live"` selects calls not ended yet;
    `number` matches digits anywhere in the customer's E.164 number; `branch_id` keeps the calls whose
    conversation belongs to that branch (or to none), for a supervisor's view."""
    query = _query()
    if since is not None:
        query = query.where(Call.started_at >= since)
    if until is not None:
        query = query.where(Call.started_at < until)
    if agent_id is not None:
        query = query.where(Call.agent_id == agent_id)
    if direction is not None:
        query = query.where(Call.direction == direction)
    if result == "live":
        query = query.where(Call.ended.is_(False))
    elif result is not None:
        query = query.where(Call.result == result)
    if number:
        condition = _number_filter(number)
        if condition is not None:
            query = query.where(condition)
    if branch_id is not None:
        query = query.outerjoin(Conversation, Conversation.id == Call.conversation_id).where(
            (Conversation.branch_id.is_(None)) | (Conversation.branch_id == branch_id)
        )
    limit = max(1, min(limit, MAX_LIST))
    query = query.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit).offset(max(0, offset))
    rows = (await session.execute(query)).all()
    return [_view(*row) for row in rows]


async def get_call(session: AsyncSession, call_id: int) -> CallView | None:
    row = (await session.execute(_query().where(Call.id == call_id))).first()
    return _view(*row) if row is not None else None


async def live_call_id(session: AsyncSession, conversation_id: int, agent_id: int) -> int | None:
    """The call `agent_id` is on right now with this conversation's customer (newest first), if any: the
    sales-script panel then follows the call rather than the chat."""
    query = (
        select(Call.id)
        .where(Call.conversation_id == conversation_id, Call.agent_id == agent_id, Call.ended.is_(False))
        .order_by(Call.started_at.desc(), Call.id.desc())
        .limit(1)
    )
    return await session.scalar(query)


async def get_call_by_linkedid(session: AsyncSession, linkedid: str) -> CallView | None:
    row = (await session.execute(_query().where(Call.linkedid == linkedid))).first()
    return _view(*row) if row is not None else None


# --- writing: the AMI side's events -----------------------------------------------------------------------

_CALLS = cast_table(Call)
_MESSAGES = cast_table(Message)


@dataclass(frozen=True)
class _Known:
    """What the `calls` row already says about a call, read before the event's transaction."""

    conversation_id: int | None
    ended: bool


@dataclass
class _Outcome:
    """What one event's transaction did, for what follows its commit (router, bus)."""

    call_id: int
    conversation_id: int | None = None  # the customer's conversation, once the call has one
    message: dict[str, Any] | None = None  # the `inbox.message`-style payload of the call item
    new_item: bool = False
    pop: dict[str, Any] | None = None  # the screen pop's card
    notification: list[dict[str, Any]] | None = None
    skipped: bool = False  # the call had already ended: nothing changed


class CallLog:
    """`await call_log.on_call_event(event)` for each `CallEvent` the AMI connection produces, in order.

    `standby=True` (the composition root, where several processes may connect to one PBX): events are only
    written while `lead()` runs, i.e. while this process holds the AMI leadership (`AmiLeader`)."""

    def __init__(
        self,
        inbox: Inbox,
        router: Router,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        *,
        account_id: str = "pbx",
        recordings_dir: Path | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        standby: bool = False,
    ) -> None:
        self.inbox = inbox
        self.router = router
        self.sessions = sessions
        self.bus = bus
        self.account_id = account_id  # the call items' channel account (their external id is the Linkedid)
        self.recordings_dir = recordings_dir
        self.clock = clock
        self.leading = not standby
        self._lock = asyncio.Lock()
        self._held: OrderedDict[str, CallEvent] = OrderedDict()  # the latest event of each call on standby

    async def on_call_event(self, event: CallEvent) -> None:
        """Write what the event says. On standby (another process leads) only the call's latest event
        is kept, to be written if this process takes over (`lead`)."""
        if not self.leading:
            self._hold(event)
            return
        async with self._lock:
            await self._apply(event, pop=True)

    async def lead(self) -> None:
        """Runs while this process holds the AMI leadership (`AmiLeader.run(call_log.lead)`): first the
        latest state of every call seen on standby is written — a call the old leader did not finish is
        finished here, one it did is skipped — then the stream's events, until cancelled."""
        async with self._lock:
            self.leading = True
            held, self._held = list(self._held.values()), OrderedDict()
            if held:
                log.info("taking over the call log: %d call(s) seen on standby", len(held))
            for event in held:
                try:
                    await self._apply(event, pop=False)  # the ringing is over or was popped already
                except Exception:
                    log.exception("call %s could not be written on takeover", event.record.linkedid)
        try:
            await asyncio.Event().wait()
        finally:
            self.leading = False

    def _hold(self, event: CallEvent) -> None:
        key = event.record.linkedid
        self._held.pop(key, None)
        self._held[key] = event
        while len(self._held) > HELD_MAX:
            self._held.popitem(last=False)

    async def _apply(self, event: CallEvent, *, pop: bool) -> None:
        record = event.record
        linkedid = record.linkedid[:64]
        known = await self._known(linkedid)
        if known is not None and known.ended:
            # a replay, or a reconciled end after the real one: nothing changes, but the router is told
            # again in case the first time failed (release is idempotent)
            if event.kind == "ended":
                await self._release(linkedid)
            return
        agent_id = await self._agent(record.agent_endpoint)
        conversation = None
        if (known is None or known.conversation_id is None) and record.customer_number:
            conversation = await self.inbox.call_conversation(
                phone=record.customer_number,
                account_id=self._line(record),
                name=record.caller_name or None,
            )
        due_at = None
        if event.kind == "ended" and record.direction == "in" and record.result in CALLBACK_RESULTS:
            due_at = await self._due(conversation, known)
        ringing_agent = await self._agent(event.endpoint) if pop and event.kind == "ringing" else None
        outcome = await self._write(event, agent_id, conversation, due_at, ringing_agent)
        if outcome.skipped:
            if event.kind == "ended":
                await self._release(linkedid)
            return
        await self._after(event, outcome, agent_id, ringing_agent)

    # --- before the transaction -------------------------------------------------------------------------

    async def _known(self, linkedid: str) -> _Known | None:
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(Call.conversation_id, Call.ended).where(Call.linkedid == linkedid)
                )
            ).first()
        return _Known(row.conversation_id, bool(row.ended)) if row is not None else None

    async def _agent(self, endpoint: str | None) -> int | None:
        try:
            return await self.router.agent_by_endpoint(endpoint)
        except Exception:
            log.exception("call: whose endpoint is %s could not be read", endpoint)
            return None

    def _line(self, record: CallRecord) -> str:
        """The channel account the customer's phone identity is kept under: the number they called
        inbound (as the FastAGI routing names it), the hub's own account outbound."""
        if record.direction == "in":
            return (record.called_number_raw or UNKNOWN_LINE)[:100]
        return self.account_id

    async def _due(self, conversation: CallConversation | None, known: _Known | None) -> dt.datetime:
        """A callback is due now, or when the customer's branch opens next if it is closed now."""
        branch_id = conversation.branch_id if conversation is not None else None
        if conversation is None and known is not None and known.conversation_id is not None:
            async with self.sessions() as session:
                branch_id = await session.scalar(
                    select(Conversation.branch_id).where(Conversation.id == known.conversation_id)
                )
        now = self.clock()
        try:
            return await self.router.opens_at(branch_id, now) or now
        except Exception:
            log.exception("call: the opening hours could not be read; the callback is due now")
            return now

    # --- the transaction --------------------------------------------------------------------------------

    async def _write(
        self,
        event: CallEvent,
        agent_id: int | None,
        conversation: CallConversation | None,
        due_at: dt.datetime | None,
        ringing_agent: int | None,
    ) -> _Outcome:
        record = event.record
        now = self.clock()
        async with self.sessions() as session, session.begin():
            await session.execute(
                insert_ignoring_duplicates(session, _CALLS),
                # `ended` is set below, with everything an end does: a row is ended only by this code
                {**self._columns(record), "ended": False, "created_at": now, "updated_at": now},
            )
            call = await session.scalar(
                select(Call)
                .where(Call.linkedid == record.linkedid[:64])
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            assert call is not None
            if call.ended:  # another process ended it meanwhile
                return _Outcome(call.id, skipped=True)
            was_answered = call.answered_at is not None
            for name, value in self._columns(record).items():
                if name != "linkedid":
                    setattr(call, name, value)
            if agent_id is not None:
                call.agent_id = agent_id
            if conversation is not None and call.conversation_id is None:
                call.contact_id, call.conversation_id = conversation.contact_id, conversation.conversation_id
            call.updated_at = now
            outcome = _Outcome(call.id, call.conversation_id)
            await self._close_tasks(session, call, record, was_answered)
            if record.answered_at is not None and not was_answered and call.contact_id is not None:
                await scoring.note_engagement(session, call.contact_id, scoring.Engagement.ANSWERED_CALL)
            if event.kind == "ended" and due_at is not None:
                outcome.notification = await self._callback(session, call, record, due_at)
            conversation_row = (
                await session.get(Conversation, call.conversation_id, with_for_update=True)
                if call.conversation_id is not None
                else None
            )
            if conversation_row is not None:
                message, outcome.new_item = await self._item(session, call, conversation_row, now)
                if event.kind == "ended":
                    conversation_row.last_activity_at = now
                outcome.message = event_payload(message, conversation_row)
                if outcome.notification:
                    for item in outcome.notification:
                        item["notification"]["message_id"] = message.id
                    await session.execute(
                        update(Notification)
                        .where(Notification.id.in_([n["notification"]["id"] for n in outcome.notification]))
                        .values(message_id=message.id)
                    )
            if event.kind == "ringing" and ringing_agent is not None:
                outcome.pop = await self._card(session, call, record)
        return outcome

    def _columns(self, record: CallRecord) -> dict[str, Any]:
        """The `calls` row's values as the record has them now."""
        return {
            "linkedid": record.linkedid[:64],
            "direction": record.direction,
            "customer_number": _cut(record.customer_number, 20),
            "customer_number_raw": _cut(record.customer_number_raw, 40),
            "caller_name": _cut(record.caller_name, 200),
            "dialled": _cut(record.called_number_raw if record.direction == "in" else None, 40),
            "region": _cut(record.region, 100),
            "result": record.result,
            "routed_reason": _cut(record.variables.get("SWITCHBOARD_REASON") or None, 20),
            "agent_endpoint": _cut(record.agent_endpoint, 100),
            "started_at": record.started_at,
            "answered_at": record.answered_at,
            "ended_at": record.ended_at,
            "wait_seconds": record.wait_seconds,
            "ring_seconds": record.ring_seconds,
            "talk_seconds": record.talk_seconds or 0.0,
            "hangup_cause": record.hangup_cause,
            "hangup_cause_text": _cut(record.hangup_cause_text, 100),
            "hung_up_by": record.hung_up_by,
            "recording_file": _cut(recording_name(record), 255),
            "transfer_target": _cut(record.transfer_target, 40),
            "queue": _cut(record.queue, 80),
            "reconciled": record.reconciled,
            "ended": record.ended,
        }

    async def _item(
        self, session: AsyncSession, call: Call, conversation: Conversation, now: dt.datetime
    ) -> tuple[Message, bool]:
        """The call item in the conversation, made on first sight (once: its external id is the Linkedid)
        and brought up to date with the row on every event."""
        meta = {"call": await self._meta(session, call)}
        created = False
        message = (
            await session.get(Message, call.message_id, populate_existing=True)
            if call.message_id is not None
            else None
        )
        if message is None:
            values = {
                "conversation_id": conversation.id,
                "direction": call.direction,
                "kind": MessageKind.CALL.value,
                "body": "",
                "attachments": [],
                "author_user_id": call.agent_id if call.direction == "out" else None,
                "author_contact_id": call.contact_id if call.direction == "in" else None,
                "channel": Channel.PHONE.value,
                "account_id": self.account_id,
                "external_id": call.linkedid,
                "status": "delivered",
                "created_at": call.started_at,
                "sent_at": call.started_at,
                "meta": meta,
                # the call's own events carry it live; `publish_pending` has nothing to add
                "published_at": now,
            }
            inserted = await session.execute(insert_ignoring_duplicates(session, _MESSAGES, "id"), values)
            message_id = inserted.scalar_one_or_none()
            created = message_id is not None
            if message_id is None:  # written before its row knew it (a crash between the two: never)
                message_id = await session.scalar(
                    select(Message.id).where(
                        Message.channel == Channel.PHONE.value,
                        Message.account_id == self.account_id,
                        Message.external_id == call.linkedid,
                    )
                )
            assert message_id is not None
            call.message_id = message_id
            message = await session.get(Message, message_id, populate_existing=True)
            assert message is not None
        if not created:
            message.meta = meta
            if call.direction == "out" and call.agent_id is not None:
                message.author_user_id = call.agent_id
        return message, created

    async def _meta(self, session: AsyncSession, call: Call) -> dict[str, Any]:
        agent_name = None
        if call.agent_id is not None:
            row = (
                await session.execute(select(User.full_name, User.username).where(User.id == call.agent_id))
            ).first()
            agent_name = (row.full_name or row.username) if row is not None else None
        return {
            "call_id": call.id,
            "linkedid": call.linkedid,
            "result": call.result,
            "direction": call.direction,
            "customer_number": call.customer_number,
            "caller_name": call.caller_name,
            "agent_id": call.agent_id,
            "agent_name": agent_name,
            "started_at": _iso(call.started_at),
            "answered_at": _iso(call.answered_at),
            "ended_at": _iso(call.ended_at),
            "wait_seconds": _round(call.wait_seconds),
            "ring_seconds": _round(call.ring_seconds),
            "talk_seconds": _round(call.talk_seconds) or 0.0,
            "has_recording": bool(call.recording_file),
            "region": call.region,
            "hung_up_by": call.hung_up_by,
            "transfer_target": call.transfer_target,
            "reconciled": bool(call.reconciled),
            "ended": bool(call.ended),
        }

    async def _close_tasks(
        self, session: AsyncSession, call: Call, record: CallRecord, was_answered: bool
    ) -> None:
        """The customer answered the agent's call: their callbacks are done, and so is the task a
        click-to-call was made from. Only on the moment of answering, so a replay changes nothing."""
        if call.direction != "out" or record.answered_at is None or was_answered:
            return
        outcome = "Called back: the customer answered"
        task_id = _task_id(record.variables.get("SWITCHBOARD_TASK"))
        if task_id is not None:
            try:
                await tasks.complete_task(session, task_id, by_user_id=call.agent_id, outcome=outcome)
            except tasks.TaskError as exc:  # no such task, or cancelled meanwhile: the call still counts
                log.info("call %s: task %s not completed: %s", call.linkedid, task_id, exc)
            else:
                call.task_id = task_id
        if call.contact_id is not None:
            closed = await tasks.close_open_tasks(
                session,
                contact_id=call.contact_id,
                kind=tasks.TaskKind.CALLBACK.value,
                by_user_id=call.agent_id,
                outcome=outcome,
            )
            if closed:
                log.info("call %s closed callback task(s) %s", call.linkedid, closed)

    async def _callback(
        self, session: AsyncSession, call: Call, record: CallRecord, due_at: dt.datetime
    ) -> list[dict[str, Any]] | None:
        """A missed inbound call: a callback task for the agent who was rung (or the branch's queue) and a
        notification for that agent. Made once per call (`source_key`), however often the end is replayed."""
        if call.contact_id is None:  # a withheld number: nobody to call back
            return None
        key = f"missed-call:{call.linkedid}"
        existing = await session.scalar(select(Task.id).where(Task.source_key == key))
        if existing is not None:
            return None
        assignee = _callback_assignee(call, record)
        branch_id = (
            await session.scalar(
                select(Conversation.branch_id).where(Conversation.id == call.conversation_id)
            )
            if call.conversation_id is not None
            else None
        )
        who = call.caller_name or call.customer_number or call.customer_number_raw or "?"
        task = await tasks.create_task(
            session,
            title=f"Call back {who}",
            kind=tasks.TaskKind.CALLBACK.value,
            assignee_id=assignee,
            branch_id=branch_id,
            contact_id=call.contact_id,
            conversation_id=call.conversation_id,
            due_at=due_at,
            note=_callback_note(call),
            source_key=key,
        )
        if assignee is None:
            return []
        notification = Notification(
            user_id=assignee,
            kind=notifications.MISSED_CALL,
            conversation_id=call.conversation_id,
            text=f"{who} ({call.customer_number})" if call.caller_name and call.customer_number else who,
            created_at=utcnow(),
        )
        session.add(notification)
        await session.flush()
        payload = notifications.as_json(notification)
        payload["task_id"] = task.id
        return [{"user_id": assignee, "notification": payload}]

    async def _card(self, session: AsyncSession, call: Call, record: CallRecord) -> dict[str, Any]:
        """The screen pop: who is calling, as far as the hub knows them."""
        contact = await session.get(Contact, call.contact_id) if call.contact_id is not None else None
        name = None
        open_leads = 0
        new_caller = True
        if contact is not None:
            name = f"{contact.first_name} {contact.last_name}".strip() or None
            open_leads = int(
                await session.scalar(
                    select(func.count())
                    .select_from(Lead)
                    .where(Lead.contact_id == contact.id, Lead.status.not_in(_CLOSED_LEADS))
                )
                or 0
            )
            # new: nothing in the customer's history but this call
            new_caller = not await session.scalar(
                select(
                    exists().where(
                        Message.conversation_id == Conversation.id,
                        Conversation.contact_id == contact.id,
                        Message.id != (call.message_id or 0),
                    )
                )
            )
        return {
            "call_id": call.id,
            "linkedid": call.linkedid,
            "direction": call.direction,
            "number": call.customer_number or call.customer_number_raw,
            "name": name or call.caller_name,
            "new_caller": new_caller,
            "region": call.region,
            "contact_id": call.contact_id,
            "conversation_id": call.conversation_id,
            "open_leads": open_leads,
        }

    # --- after the commit -------------------------------------------------------------------------------

    async def _after(
        self, event: CallEvent, outcome: _Outcome, agent_id: int | None, ringing_agent: int | None
    ) -> None:
        record = event.record
        linkedid = record.linkedid[:64]
        if event.kind == "answered" and agent_id is not None:
            try:
                await self.router.accept(ItemKind.CALL, linkedid, agent_id)
            except Exception:
                log.exception("call %s: the router could not record the answer", linkedid)
        if event.kind == "ended":
            await self._release(linkedid)
        if outcome.message is not None:
            await self._publish("inbox.message" if outcome.new_item else "inbox.status", outcome.message)
        if outcome.notification:
            for item in outcome.notification:
                await self._publish(notifications.TOPIC, item)
        if event.kind == "ringing" and ringing_agent is not None and outcome.pop is not None:
            await self._publish(
                CALL_TOPIC, {"user_id": ringing_agent, "call": {"event": "ringing", **outcome.pop}}
            )
        elif event.kind in ("answered", "ended"):
            # the card goes away on every screen it popped on (a queue rings several agents)
            endpoints = {*record.rung_endpoints, record.agent_endpoint, event.endpoint} - {None}
            users = {await self._agent(endpoint) for endpoint in endpoints} - {None}
            card = {
                "event": event.kind,
                "call_id": outcome.call_id,
                "linkedid": linkedid,
                "agent_id": agent_id,
                "conversation_id": outcome.conversation_id,  # the script panel follows it
            }
            for user_id in sorted(u for u in users if u is not None):
                await self._publish(CALL_TOPIC, {"user_id": user_id, "call": card})

    async def _release(self, linkedid: str) -> None:
        try:
            await self.router.release(ItemKind.CALL, linkedid)
        except Exception:
            log.exception("call %s: the router could not release it", linkedid)

    async def _publish(self, topic: str, payload: dict[str, Any]) -> None:
        try:
            await self.bus.publish(topic, payload)
        except Exception:
            log.exception("call event %s could not be published", topic)


def recording_name(record: CallRecord) -> str | None:
    """The recording's bare file name (what `/api/v1/calls/{id}/recording` looks up under
    `recordings_dir`); never a path, so a stored value can never point outside that directory."""
    if record.recording_file is not None:
        return record.recording_file.name or None
    if record.recording_path:
        return PurePosixPath(record.recording_path.replace("\\", "/")).name or None
    return None


def _callback_assignee(call: Call, record: CallRecord) -> int | None:
    """The agent who was rung and did not answer (a busy one too); the queue when the agent's phone was
    unreachable, nobody was there, or a queue rang several agents at once."""
    if call.result not in _AGENT_CALLBACK_RESULTS:
        return None
    if record.queue and len(set(record.rung_endpoints)) > 1:
        return None
    return call.agent_id


def _callback_note(call: Call) -> str:
    parts = [f"Missed call ({call.result})"]
    if call.customer_number:
        parts.append(call.customer_number)
    if call.region:
        parts.append(call.region)
    return ", ".join(parts)


def _task_id(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit() or len(value.strip()) > 9:
        return None
    return int(value.strip()) or None


def _cut(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
