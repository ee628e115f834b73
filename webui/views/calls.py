"""The call desk: the call list (CDR) with its filters and CSV export, call recordings streamed to the
people who may hear them, click-to-call from any phone number, and a supervisor's live monitoring.

Who sees which call: admins every call; supervisors the calls of their branch (the call's conversation is
in their branch or in none, as the inbox shows conversations); an agent only the recordings of their own
calls. Calls are read through `inbox.calls` (`list_calls` / `get_call`); the PBX is reached through the
process's `AmiConnection` (`keys.AMI`), which sends `Originate` and returns at once: what the call does next
arrives as AMI events and is logged by the inbox's `CallLog`.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import io
import logging
import zoneinfo
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlencode

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from multidict import CIMultiDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.asterisk.ami import SPY_OPTIONS, AmiConnection, AmiNotConnected, SpyMode
from channels.asterisk.model import RESULTS
from crm_core import tasks
from crm_core.contacts import normalise_phone
from crm_core.models import Contact
from inbox import calls
from inbox.calls import CallView
from inbox.models import Conversation
from switchboard import audit
from switchboard.accounts import CurrentUser
from switchboard.accounts_model import User
from switchboard.audit import AuditAction, Category
from switchboard.errors import N_, Conflict, DomainError, Invalid, NotFound
from switchboard.permissions import Action, Role, can
from webui import forms, i18n, keys
from webui.errors import log_refusal
from webui.security import client_ip, current_user, viewer_of
from webui.templating import render
from webui.views.inbox import _json_object

log = logging.getLogger(__name__)

PAGE_SIZE = 50
CSV_BATCH = 500
CSV_MAX_ROWS = 100_000  # one export; narrow the dates for more
TASK_VARIABLE = "SWITCHBOARD_TASK"  # the dialplan's `outbound` context sees the task a call was made from
MONITOR_MODES: tuple[SpyMode, ...] = tuple(SPY_OPTIONS)  # listen, whisper, barge
RESULT_FILTERS = (*RESULTS, "live")
NO_BRANCH = 0  # no branch has id 0: a supervisor without a branch sees only calls outside every branch
RECORDING_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".gsm": "audio/x-gsm"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

RESULT_LABELS: dict[str, str] = {
    "answered": N_("Answered"),
    "missed": N_("Missed"),
    "busy": N_("Busy"),
    "unreachable": N_("Unreachable"),
    "failed": N_("Failed"),
    "no_agent": N_("No agent"),
    "abandoned": N_("Abandoned"),
    "live": N_("Live"),
}
DIRECTION_LABELS: dict[str, str] = {"in": N_("Inbound"), "out": N_("Outbound")}
HUNG_UP_LABELS: dict[str, str] = {"customer": N_("Customer"), "agent": N_("Agent")}
MODE_LABELS: dict[str, str] = {"listen": N_("Listen"), "whisper": N_("Whisper"), "barge": N_("Barge in")}


# --- who may see which call --------------------------------------------------------------------------------


def branch_scope(user: CurrentUser) -> int | None:
    """The `branch_id` filter of `inbox.calls.list_calls` for this person (None: every call)."""
    if user.role is Role.ADMIN:
        return None
    return user.branch_id if user.branch_id is not None else NO_BRANCH


async def _in_scope(db: AsyncSession, user: CurrentUser, call: CallView) -> bool:
    """An admin's, or a supervisor's of the call's branch (a call in no branch is every branch's)."""
    if user.role is Role.ADMIN:
        return True
    if user.role is not Role.SUPERVISOR:
        return False
    if call.conversation_id is None:
        return True
    branch = await db.scalar(select(Conversation.branch_id).where(Conversation.id == call.conversation_id))
    return branch is None or branch == user.branch_id


async def may_listen(db: AsyncSession, user: CurrentUser, call: CallView) -> bool:
    """Recordings: admins, the supervisors of the call's branch and the call's own agent."""
    if user.role is Role.AGENT:
        return call.agent_id is not None and call.agent_id == user.id
    if call.agent_id is not None and call.agent_id == user.id and can(user.role, Action.CALLS_RECORDING):
        return True
    return await _in_scope(db, user, call)


async def _call(db: AsyncSession, call_id: int) -> CallView:
    found = await calls.get_call(db, call_id)
    if found is None:
        raise NotFound(N_("No such call."))
    return found


def _forbidden(reason: str) -> web.HTTPForbidden:
    return web.HTTPForbidden(reason=i18n.gettext(reason))


# --- recordings ---------------------------------------------------------------------------------------------


def recording_path(recordings_dir: Path | None, name: str | None) -> Path | None:
    """The recording's file under `recordings_dir`, or None when there is none or the stored name is not a
    bare file name (`../x`, `/etc/x`, `a/b`), or resolves outside the directory (a symbolic link)."""
    if recordings_dir is None or not name or "\x00" in name or "\\" in name:
        return None
    if PurePosixPath(name).name != name or name in (".", ".."):
        log.warning("recording name %r is not a bare file name: refused", name)
        return None
    root = recordings_dir.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path == root:
        log.warning("recording %r resolves outside the recordings directory: refused", name)
        return None
    return path


class RecordingResponse(web.FileResponse):
    """aiohttp reads If-Range only as a date: an entity tag there is ignored, so a player resuming with the
    ETag of a file that has changed since (a recording still being written) would get a piece of the new
    file spliced onto the old. Here an If-Range entity tag that is not the file's current, strong ETag
    drops the Range and the whole file is sent (200), as RFC 9110 section 13.1.5 asks."""

    def __init__(self, path: Path, headers: Mapping[str, str]) -> None:
        super().__init__(path, headers=headers)
        self._recording = path

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if_range = request.headers.get(hdrs.IF_RANGE, "").strip()
        if if_range and hdrs.RANGE in request.headers and request.if_range is None:
            try:
                st = self._recording.stat()
                current = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
            except OSError:
                current = ""
            if if_range != current:
                headers = CIMultiDict(request.headers)
                del headers[hdrs.RANGE]
                request = request.clone(headers=headers)
        return await super().prepare(request)


def _is_first_read(request: web.Request) -> bool:
    """A player's first request (no range, or from byte 0), not each seek: what the audit log counts."""
    header = request.headers.get(hdrs.RANGE, "").replace(" ", "")
    return not header or header.startswith("bytes=0-")


async def recording(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/calls/{id}/recording`: the call's recording, with Range support for an `<audio>`
    player. Admins, the supervisors of its branch and the call's agent; anyone else 403; 404 without a
    file. A listener other than the call's own agent is audited (once per play, not per seek)."""
    call_id = forms.path_int(request, "id")
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        call = await _call(db, call_id)
        if not await may_listen(db, user, call):
            raise _forbidden(N_("Only supervisors and the call's agent may listen to this recording."))
        path = recording_path(request.app[keys.SETTINGS].recordings_dir, call.recording_file)
        if path is None or not path.is_file():
            raise NotFound(N_("This call has no recording."))
        if call.agent_id != user.id and _is_first_read(request):
            await audit.record_change(
                db,
                user.actor(client_ip(request)),
                module="calls",
                action=AuditAction.READ,
                record_type="call",
                record_id=call.id,
                detail="recording",
            )
    content_type = RECORDING_TYPES.get(path.suffix.lower(), "application/octet-stream")
    headers = {
        hdrs.CONTENT_TYPE: content_type,
        hdrs.CONTENT_DISPOSITION: f'inline; filename="call-{call.id}{path.suffix.lower()}"',
        hdrs.CACHE_CONTROL: "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return RecordingResponse(path, headers)


# --- the call list -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CallFilters:
    """The list's filters as the page's form sends them. Dates are whole days in `zone`, the browser's
    time zone (the form's `tz`; UTC without it)."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    zone: dt.tzinfo = dt.UTC
    zone_name: str = ""
    agent_id: int | None = None
    direction: str | None = None
    result: str | None = None
    number: str = ""
    page: int = 1

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> CallFilters:
        date_from, date_to = forms.date(query, "from"), forms.date(query, "to")
        if date_from and date_to and date_from > date_to:
            raise Invalid(N_("The first day comes after the last one."), field="from")
        zone_name = forms.text(query, "tz", max_len=64)
        zone: dt.tzinfo = dt.UTC
        if zone_name:
            try:
                zone = zoneinfo.ZoneInfo(zone_name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                zone_name = ""
        direction = forms.text(query, "direction", max_len=10) or None
        if direction is not None and direction not in DIRECTION_LABELS:
            raise Invalid(N_("Choose inbound or outbound."), field="direction")
        result = forms.text(query, "result", max_len=20) or None
        if result is not None and result not in RESULT_FILTERS:
            raise Invalid(N_("Unknown call result."), field="result")
        number = forms.text(query, "number", max_len=40)
        if number and not any(ch.isdigit() for ch in number):
            raise Invalid(N_("Type some digits of the phone number."), field="number")
        return cls(
            date_from=date_from,
            date_to=date_to,
            zone=zone,
            zone_name=zone_name,
            agent_id=forms.integer(query, "agent", minimum=1),
            direction=direction,
            result=result,
            number=number,
            page=forms.integer(query, "page", minimum=1, maximum=100_000) or 1,
        )

    def window(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """[since, until) in UTC: from the first day's midnight to the midnight after the last day."""
        since = until = None
        if self.date_from is not None:
            since = dt.datetime.combine(self.date_from, dt.time(), self.zone).astimezone(dt.UTC)
        if self.date_to is not None:
            after = self.date_to + dt.timedelta(days=1)
            until = dt.datetime.combine(after, dt.time(), self.zone).astimezone(dt.UTC)
        return since, until

    def query(self, **changes: Any) -> str:
        """The filters as a query string (for paging links and the export)."""
        values = {
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "tz": self.zone_name,
            "agent": str(self.agent_id or ""),
            "direction": self.direction or "",
            "result": self.result or "",
            "number": self.number,
            "page": str(self.page) if self.page > 1 else "",
        }
        values.update({k: str(v) for k, v in changes.items()})
        return urlencode({k: v for k, v in values.items() if v})


def _number_digits(typed: str, region: str) -> str | None:
    """What the number filter looks for in the customer's E.164 number: a whole number as typed locally
    (`069 123 456`) becomes its E.164 digits; a piece of one loses its trunk or international zeros."""
    if not typed:
        return None
    whole = normalise_phone(typed, region)
    if whole is not None:
        return whole.lstrip("+")
    return "".join(ch for ch in typed if ch.isdigit()).lstrip("0") or None


async def _list(
    db: AsyncSession,
    user: CurrentUser,
    filters: CallFilters,
    region: str,
    *,
    limit: int,
    offset: int,
) -> list[CallView]:
    since, until = filters.window()
    return await calls.list_calls(
        db,
        since=since,
        until=until,
        agent_id=filters.agent_id,
        direction=filters.direction,
        result=filters.result,
        number=_number_digits(filters.number, region),
        branch_id=branch_scope(user),
        limit=limit,
        offset=offset,
    )


async def _people(db: AsyncSession, user: CurrentUser) -> list[User]:
    """Whom the agent filter offers: people who can take calls, of the supervisor's branch."""
    query = (
        select(User)
        .where(User.active.is_(True), User.role.in_([Role.AGENT.value, Role.SUPERVISOR.value]))
        .order_by(User.full_name, User.username)
    )
    if user.role is not Role.ADMIN:
        query = query.where(User.branch_id == user.branch_id)
    return list(await db.scalars(query))


def duration(seconds: float | None) -> str:
    """`m:ss` (`h:mm:ss` past an hour); empty for no value."""
    if seconds is None:
        return ""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def is_live(call: CallView) -> bool:
    """Answered and not over: what a supervisor can listen in on."""
    return not call.ended and call.answered_at is not None and bool(call.agent_endpoint)


def _local(moment: dt.datetime | None, zone: dt.tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if moment is not None else ""


async def _page(request: web.Request, error: DomainError | None = None) -> web.Response:
    user = current_user(request)
    try:
        filters = CallFilters.parse(request.query) if error is None else CallFilters()
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await _page(request, exc)
    offset = (filters.page - 1) * PAGE_SIZE
    region = request.app[keys.SETTINGS].default_region
    async with request.app[keys.SESSIONS]() as db:
        rows = await _list(db, user, filters, region, limit=PAGE_SIZE + 1, offset=offset)
        people = await _people(db, user)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    own_endpoint = await request.app[keys.ROUTER].endpoint(user.id)
    context = {
        "rows": rows,
        "filters": filters,
        "values": request.query if error else {},
        "people": people,
        "results": RESULT_FILTERS,
        "result_labels": RESULT_LABELS,
        "direction_labels": DIRECTION_LABELS,
        "mode_labels": MODE_LABELS,
        "modes": MONITOR_MODES,
        "duration": duration,
        "is_live": is_live,
        "local": functools.partial(_local, zone=filters.zone),
        "zone_label": filters.zone_name or "UTC",
        "may_monitor": can(user.role, Action.CALLS_MONITOR),
        "own_endpoint": own_endpoint,
        "prev_query": filters.query(page=filters.page - 1) if filters.page > 1 else None,
        "next_query": filters.query(page=filters.page + 1) if more else None,
        "error": i18n.translate_error(error.message, error.params) if error else None,
        "error_field": error.field if error else None,
    }
    return await render("calls.html", request, context, status=error.status if error else 200)


async def calls_page(request: web.Request) -> web.StreamResponse:
    """`GET /calls?from=&to=&tz=&agent=&direction=&result=&number=&page=`: the call list."""
    return await _page(request)


def safe_cell(value: object) -> object:
    """A CSV cell a spreadsheet will not run: text starting with `= + - @` (or a tab / CR) gets a `'`."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_header() -> list[str]:
    names = (
        N_("Started"),
        N_("Direction"),
        N_("Customer"),
        N_("Number"),
        N_("Agent"),
        N_("Result"),
        N_("Wait, s"),
        N_("Talk, s"),
        N_("Answered"),
        N_("Ended"),
        N_("Hung up by"),
        N_("Recording"),
        N_("Conversation"),
        N_("Call ID"),
    )
    return [i18n.gettext(name) for name in names]


def _csv_row(call: CallView, zone: dt.tzinfo) -> list[object]:
    result = "live" if not call.ended else (call.result or "")
    return [
        _local(call.started_at, zone),
        i18n.gettext(DIRECTION_LABELS.get(call.direction, call.direction)),
        call.contact_name or call.caller_name or "",
        call.customer_number or call.customer_number_raw or "",
        call.agent_name or "",
        i18n.gettext(RESULT_LABELS[result]) if result in RESULT_LABELS else result,
        round(call.wait_seconds) if call.wait_seconds is not None else "",
        round(call.talk_seconds or 0),
        _local(call.answered_at, zone),
        _local(call.ended_at, zone),
        i18n.gettext(HUNG_UP_LABELS[call.hung_up_by]) if call.hung_up_by in HUNG_UP_LABELS else "",
        i18n.gettext("yes") if call.has_recording else "",
        call.conversation_id or "",
        call.linkedid,
    ]


def _csv_lines(rows: Sequence[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([[safe_cell(cell) for cell in row] for row in rows])
    return buffer.getvalue().encode("utf-8")


async def calls_csv(request: web.Request) -> web.StreamResponse:
    """`GET /calls.csv` with the page's filters: every matching call (up to CSV_MAX_ROWS), streamed in
    batches, UTF-8 with a BOM so that Excel reads Cyrillic and Romanian names; times in the user's zone."""
    user = current_user(request)
    filters = CallFilters.parse(request.query)
    region = request.app[keys.SETTINGS].default_region
    stamp = dt.datetime.now(filters.zone).strftime("%Y%m%d-%H%M")
    response = web.StreamResponse(
        headers={
            hdrs.CONTENT_TYPE: "text/csv; charset=utf-8",
            hdrs.CONTENT_DISPOSITION: f'attachment; filename="calls-{stamp}.csv"',
            hdrs.CACHE_CONTROL: "private, no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    async with request.app[keys.SESSIONS]() as db:
        first = await _list(db, user, filters, region, limit=CSV_BATCH, offset=0)
    await response.prepare(request)
    await response.write("\ufeff".encode() + _csv_lines([_csv_header()]))
    batch, offset, written = first, 0, 0
    while batch:
        await response.write(_csv_lines([_csv_row(call, filters.zone) for call in batch]))
        written += len(batch)
        if len(batch) < CSV_BATCH or written >= CSV_MAX_ROWS:
            break
        offset += CSV_BATCH
        async with request.app[keys.SESSIONS]() as db:
            batch = await _list(
                db, user, filters, region, limit=min(CSV_BATCH, CSV_MAX_ROWS - written), offset=offset
            )
    await response.write_eof()
    log.info("calls: %s exported %d calls (%s)", user.username, written, filters.query() or "no filter")
    return response


# --- the PBX -----------------------------------------------------------------------------------------------


def _ami(request: web.Request) -> AmiConnection:
    ami = request.app.get(keys.AMI)
    if ami is None:
        raise web.HTTPServiceUnavailable(reason=i18n.gettext("Telephony is not set up on this hub."))
    if not ami.connected:
        raise _not_connected()
    return ami


def _not_connected() -> web.HTTPServiceUnavailable:
    return web.HTTPServiceUnavailable(
        reason=i18n.gettext("The phone system is not connected right now. Try again in a minute.")
    )


async def _own_endpoint(request: web.Request, user: CurrentUser) -> str:
    endpoint = await request.app[keys.ROUTER].endpoint(user.id)
    if not endpoint:
        raise Conflict(
            N_("You have no phone set up in the hub. Ask an admin to set your phone endpoint."),
            field="endpoint",
        )
    return endpoint


def _caller_id(name: str, number: str) -> str | None:
    """What the agent's phone shows while it rings: the customer's name and number."""
    clean = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>\\;')[:60].strip()
    return f'"{clean}" <{number}>' if clean else None


async def originate_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/calls/originate {"number": "+373…", "task_id"?, "contact_id"?}`: ring the caller's own
    phone; when they answer, the PBX dials the customer (the `ami_originate_context` context gets the E.164
    digits without `+`). Answers 202 with the call's id; the call item is logged from the AMI events."""
    user = current_user(request)
    data = await _json_object(request)
    raw = data.get("number")
    if not isinstance(raw, str) or not raw.strip():
        raise Invalid(N_("Give the phone number to call."), field="number")
    settings = request.app[keys.SETTINGS]
    number = normalise_phone(raw.strip(), settings.default_region)
    if number is None:
        raise Invalid(N_("“%(number)s” is not a phone number."), field="number", number=raw.strip()[:40])
    task_id = forms.reference(data, "task_id")
    contact_id = forms.reference(data, "contact_id")
    contact_name = ""
    async with request.app[keys.SESSIONS]() as db:
        if task_id is not None:
            task = await tasks.get_task(db, task_id)
            if task is None or not tasks.may_act(user.role, user.id, user.branch_id, task):
                raise Invalid(N_("No such task."), field="task_id")
    if contact_id is not None:
        if not await request.app[keys.INBOX].can_see_contact(viewer_of(request), contact_id):
            raise Invalid(N_("No such contact."), field="contact_id")
        async with request.app[keys.SESSIONS]() as db:
            contact = await db.get(Contact, contact_id)
        if contact is not None:
            contact_name = f"{contact.first_name} {contact.last_name}".strip()
    endpoint = await _own_endpoint(request, user)
    ami = _ami(request)
    variables = {TASK_VARIABLE: str(task_id)} if task_id is not None else None
    digits = number.lstrip("+")
    try:
        channel_id = await ami.originate(
            agent_endpoint=endpoint,
            number=digits,
            context=settings.ami_originate_context,
            caller_id=_caller_id(contact_name, digits),
            variables=variables,
        )
    except AmiNotConnected:
        raise _not_connected() from None
    except ValueError as exc:
        log.warning("click-to-call by %s refused by the AMI checks: %s", user.username, exc)
        raise Invalid(N_("This call cannot be placed from here."), field="number") from exc
    async with request.app[keys.SESSIONS]() as db, db.begin():
        await audit.record_change(
            db,
            user.actor(client_ip(request)),
            module="calls",
            action=AuditAction.CREATE,
            record_type="call",
            record_id=channel_id,
            changes={"number": [None, number], "endpoint": [None, endpoint], "task_id": [None, task_id]},
            detail="click-to-call",
        )
    body = {"call": {"id": channel_id, "number": number, "endpoint": endpoint, "task_id": task_id}}
    return web.json_response(body, status=202)


async def monitor_api(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/calls/{id}/monitor {"mode": "listen" | "whisper" | "barge"}`: ring the supervisor's own
    phone into ChanSpy on the agent of a live, answered call of their branch. Audited."""
    call_id = forms.path_int(request, "id")
    user = current_user(request)
    data = await _json_object(request)
    mode = data.get("mode")
    if mode not in MONITOR_MODES:
        raise Invalid(N_("Choose listen, whisper or barge."), field="mode")
    async with request.app[keys.SESSIONS]() as db:
        call = await _call(db, call_id)
        if not await _in_scope(db, user, call):
            raise _forbidden(N_("This call is not in your branch."))
    if not is_live(call):
        raise Conflict(N_("This call is not live: only an answered call that is still on can be monitored."))
    assert call.agent_endpoint is not None
    endpoint = await _own_endpoint(request, user)
    if endpoint == call.agent_endpoint:
        raise Conflict(N_("This is your own call."), field="mode")
    ami = _ami(request)
    try:
        channel_id = await ami.spy(
            supervisor_endpoint=endpoint, agent_endpoint=call.agent_endpoint, mode=mode
        )
    except AmiNotConnected:
        raise _not_connected() from None
    except ValueError as exc:
        log.warning("monitoring call %s by %s refused by the AMI checks: %s", call_id, user.username, exc)
        raise Conflict(N_("This call cannot be monitored from here.")) from exc
    async with request.app[keys.SESSIONS]() as db, db.begin():
        await audit.record(
            db,
            user.actor(client_ip(request)),
            category=Category.RECORD,
            module="calls",
            action=AuditAction.READ,
            record_type="call",
            record_id=call.id,
            changes={
                "mode": [None, mode],
                "agent_endpoint": [None, call.agent_endpoint],
                "supervisor_endpoint": [None, endpoint],
                "spy_channel": [None, channel_id],
            },
            detail=f"monitor {mode}",
        )
    log.info("calls: %s monitors call %s (%s) from %s", user.username, call.id, mode, endpoint)
    return web.json_response({"monitor": {"id": channel_id, "mode": mode, "endpoint": endpoint}}, status=202)
