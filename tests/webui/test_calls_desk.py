"""The call desk: recordings streamed (with Range) only to the people who may hear them, the call list with
its filters and CSV export, click-to-call and live monitoring sent to a fake Asterisk over a real AMI
connection, each refusal with a readable reason."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import tasks
from switchboard.app import build_app
from switchboard.audit_model import AuditEntry
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.conftest import MakeUser, Person, login, page_csrf
from tests.fakes.ami_server import FakeAmi
from tests.webui._calls_desk import RECORDING_NAME, add_call, cheap_passwords, put_recording
from webui import keys
from webui.views.calls import safe_cell

OTHER_BRANCH = "Bălți"
CLIENT = Callable[..., Awaitable[TestClient]]


@pytest.fixture(autouse=True)
def _fast_logins(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_passwords(monkeypatch)


@dataclass
class Browser:
    http: TestClient
    csrf: str

    async def post(self, path: str, body: object) -> tuple[int, dict[str, object]]:
        response = await self.http.post(path, json=body, headers={"X-CSRF-Token": self.csrf})
        return response.status, await response.json()


@dataclass
class Desk:
    """The hub under test, with a way to act as any person (each in their own browser)."""

    app: web.Application
    client: TestClient
    make_user: MakeUser
    recordings: Path
    opened: list[TestClient] = field(default_factory=list)

    async def as_(self, person: Person) -> Browser:
        other: TestClient = TestClient(self.client.server)
        await other.start_server()
        self.opened.append(other)
        assert (await login(other, person.username)).status == 302
        return Browser(other, await page_csrf(other))


async def _desk(
    aiohttp_client: CLIENT, settings: Settings, make_user: MakeUser, tmp_path: Path, **changes: object
) -> AsyncIterator[Desk]:
    recordings = tmp_path / "monitor"
    recordings.mkdir()
    app = build_app(settings.model_copy(update={"recordings_dir": recordings, **changes}))
    desk = Desk(app, await aiohttp_client(app), make_user, recordings)
    yield desk
    for other in desk.opened:
        await other.close()


@pytest.fixture
async def desk(
    aiohttp_client: CLIENT,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
    tmp_path: Path,
) -> AsyncIterator[Desk]:
    """The hub without telephony (no AMI host)."""
    async for value in _desk(aiohttp_client, settings, make_user, tmp_path):
        yield value


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    async with FakeAmi() as server:
        yield server


@pytest.fixture
async def phone_desk(
    aiohttp_client: CLIENT,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
    tmp_path: Path,
    fake: FakeAmi,
) -> AsyncIterator[Desk]:
    """The hub with its real AmiConnection (`keys.AMI`) logged in to the fake Asterisk."""
    changes = {"ami_host": fake.host, "ami_port": fake.port, "ami_secret": SecretStr(fake.secret)}
    async for value in _desk(aiohttp_client, settings, make_user, tmp_path, **changes):
        ami = value.app[keys.AMI]
        assert ami is not None
        await fake.wait_for_login()
        async with asyncio.timeout(5):
            await ami.wait_connected()
        yield value


async def _audit(sessions: async_sessionmaker[AsyncSession], module: str = "calls") -> list[AuditEntry]:
    async with sessions() as db:
        return list(await db.scalars(select(AuditEntry).where(AuditEntry.module == module)))


# --- recordings -------------------------------------------------------------------------------------------


@pytest.fixture
async def recorded(desk: Desk, sessions: async_sessionmaker[AsyncSession]) -> tuple[int, bytes, Person]:
    """An answered call of agent Ana (branch Chișinău) with the real recording; returns (id, bytes, Ana)."""
    ana = await desk.make_user(Role.AGENT, "ana")
    data = put_recording(desk.recordings)
    call_id = await add_call(sessions, agent_id=ana.id, recording_file=RECORDING_NAME)
    return call_id, data, ana


async def test_recording_is_streamed_to_admins_branch_supervisors_and_the_calls_agent(
    desk: Desk, recorded: tuple[int, bytes, Person]
) -> None:
    call_id, data, ana = recorded
    people = [
        ana,
        await desk.make_user(Role.SUPERVISOR, "sofia"),
        await desk.make_user(Role.ADMIN, "adam", branch=OTHER_BRANCH),
    ]
    for person in people:
        browser = await desk.as_(person)
        response = await browser.http.get(f"/api/v1/calls/{call_id}/recording")
        assert response.status == 200, (person.username, await response.text())
        assert await response.read() == data
        assert response.headers["Content-Type"] == "audio/wav"
        assert response.headers["Cache-Control"] == "private, no-store"
        assert response.headers["Content-Disposition"].startswith("inline")
        assert response.headers["Accept-Ranges"] == "bytes"


async def test_recording_is_refused_to_everyone_else_with_a_reason(
    desk: Desk, recorded: tuple[int, bytes, Person]
) -> None:
    call_id, _, _ = recorded
    people = [
        await desk.make_user(Role.AGENT, "boris"),  # same branch, not his call
        await desk.make_user(Role.SUPERVISOR, "vera", branch=OTHER_BRANCH),
        await desk.make_user(Role.MARKETER, "mara"),
    ]
    for person in people:
        browser = await desk.as_(person)
        response = await browser.http.get(f"/api/v1/calls/{call_id}/recording")
        assert response.status == 403, person.username
        body = await response.json()
        assert body["error"]["reason"], person.username
    anonymous = await desk.client.get(f"/api/v1/calls/{call_id}/recording")
    assert anonymous.status == 401


async def test_recording_answers_range_requests_for_an_audio_player(
    desk: Desk, recorded: tuple[int, bytes, Person]
) -> None:
    call_id, data, ana = recorded
    http = (await desk.as_(ana)).http
    url = f"/api/v1/calls/{call_id}/recording"
    size = len(data)

    first = await http.get(url, headers={"Range": "bytes=0-99"})
    assert first.status == 206
    assert first.headers["Content-Range"] == f"bytes 0-99/{size}"
    assert await first.read() == data[:100]

    tail = await http.get(url, headers={"Range": "bytes=48000-"})
    assert tail.status == 206 and await tail.read() == data[48000:]
    suffix = await http.get(url, headers={"Range": "bytes=-44"})  # the last 44 bytes
    assert suffix.status == 206 and await suffix.read() == data[-44:]

    beyond = await http.get(url, headers={"Range": f"bytes={size + 10}-{size + 20}"})
    assert beyond.status == 416
    assert beyond.headers["Content-Range"] == f"bytes */{size}"

    etag = first.headers["ETag"]
    same = await http.get(url, headers={"Range": "bytes=10-19", "If-Range": etag})
    assert same.status == 206 and await same.read() == data[10:20]
    changed = await http.get(url, headers={"Range": "bytes=10-19", "If-Range": '"another-version"'})
    assert changed.status == 200 and await changed.read() == data
    weak = await http.get(url, headers={"Range": "bytes=10-19", "If-Range": f"W/{etag}"})
    assert weak.status == 200  # If-Range compares entity tags strongly
    modified = first.headers["Last-Modified"]
    by_date = await http.get(url, headers={"Range": "bytes=10-19", "If-Range": modified})
    assert by_date.status == 206 and await by_date.read() == data[10:20]
    stale = await http.get(url, headers={"Range": "bytes=10-19", "If-Range": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert stale.status == 200 and await stale.read() == data


async def test_recording_is_404_without_a_file(
    desk: Desk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await desk.make_user(Role.ADMIN, "adam")
    http = (await desk.as_(admin)).http
    none = await add_call(sessions)
    gone = await add_call(sessions, recording_file="1795431999.1.wav")  # never written / deleted
    for call_id in (none, gone, 999_999):
        response = await http.get(f"/api/v1/calls/{call_id}/recording")
        assert response.status == 404, call_id
        assert (await response.json())["error"]["reason"]


@pytest.mark.parametrize("name", ["../secret.wav", "/etc/hostname", "sub/../../secret.wav", "..", "a\\b.wav"])
async def test_recording_names_that_leave_the_directory_are_refused(
    desk: Desk, sessions: async_sessionmaker[AsyncSession], name: str
) -> None:
    (desk.recordings.parent / "secret.wav").write_bytes(b"RIFF not yours")
    admin = await desk.make_user(Role.ADMIN, "adam")
    call_id = await add_call(sessions, recording_file=name)
    response = await (await desk.as_(admin)).http.get(f"/api/v1/calls/{call_id}/recording")
    assert response.status == 404
    assert b"not yours" not in await response.read()


async def test_a_symbolic_link_out_of_the_recordings_directory_is_refused(
    desk: Desk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    secret = desk.recordings.parent / "secret.wav"
    secret.write_bytes(b"RIFF not yours")
    (desk.recordings / "link.wav").symlink_to(secret)
    admin = await desk.make_user(Role.ADMIN, "adam")
    call_id = await add_call(sessions, recording_file="link.wav")
    response = await (await desk.as_(admin)).http.get(f"/api/v1/calls/{call_id}/recording")
    assert response.status == 404


async def test_a_supervisors_listening_is_audited_once_per_play_and_the_agents_is_not(
    desk: Desk, recorded: tuple[int, bytes, Person], sessions: async_sessionmaker[AsyncSession]
) -> None:
    call_id, _, ana = recorded
    sofia = await desk.make_user(Role.SUPERVISOR, "sofia")
    url = f"/api/v1/calls/{call_id}/recording"
    supervisor = (await desk.as_(sofia)).http
    assert (await supervisor.get(url, headers={"Range": "bytes=0-"})).status == 206
    assert (await supervisor.get(url, headers={"Range": "bytes=30000-"})).status == 206  # a seek
    agent = (await desk.as_(ana)).http
    assert (await agent.get(url)).status == 200
    entries = await _audit(sessions)
    assert [(e.username, e.action, e.record_type, e.record_id, e.detail) for e in entries] == [
        ("sofia", "read", "call", str(call_id), "recording")
    ]


def test_recording_types_follow_the_file_extension() -> None:
    from webui.views.calls import RECORDING_TYPES

    assert RECORDING_TYPES == {
        ".wav": "audio/wav",
        ".mp3": "audio/mpeg",
        ".ogg": "audio/ogg",
        ".gsm": "audio/x-gsm",
    }


async def test_an_mp3_recording_is_served_as_audio_mpeg(
    desk: Desk, sessions: async_sessionmaker[AsyncSession]
) -> None:
    (desk.recordings / "c2c-16a407d0c479.mp3").write_bytes(b"ID3" + bytes(200))
    admin = await desk.make_user(Role.ADMIN, "adam")
    call_id = await add_call(sessions, recording_file="c2c-16a407d0c479.mp3", direction="out")
    response = await (await desk.as_(admin)).http.get(f"/api/v1/calls/{call_id}/recording")
    assert response.status == 200 and response.headers["Content-Type"] == "audio/mpeg"


# --- the call list and its export -----------------------------------------------------------------------


def _row_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-call="(\d+)"', html)]


@dataclass
class Calls:
    ana: Person
    boris: Person
    early_in: int  # 2026-11-22 22:30 UTC = 2026-11-23 00:30 in Chișinău
    missed: int
    outbound: int
    other_branch: int
    live: int


@pytest.fixture
async def history(desk: Desk, sessions: async_sessionmaker[AsyncSession]) -> Calls:
    ana = await desk.make_user(Role.AGENT, "ana")
    boris = await desk.make_user(Role.AGENT, "boris")
    day = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    return Calls(
        ana=ana,
        boris=boris,
        early_in=await add_call(
            sessions,
            agent_id=ana.id,
            started_at=day - dt.timedelta(hours=1, minutes=30),
            first_name="Иван",
            last_name="Петров",
            number="+79161234507",
        ),
        missed=await add_call(
            sessions,
            agent_id=boris.id,
            result="missed",
            answered=False,
            started_at=day + dt.timedelta(hours=10),
            number="+37369123456",
        ),
        outbound=await add_call(
            sessions,
            agent_id=ana.id,
            direction="out",
            started_at=day + dt.timedelta(hours=11),
            first_name="Ștefan",
            last_name="Mărgărit",
            number="+37322123456",
        ),
        other_branch=await add_call(
            sessions, branch=OTHER_BRANCH, started_at=day + dt.timedelta(hours=12), number="+37323112233"
        ),
        live=await add_call(
            sessions,
            agent_id=ana.id,
            agent_endpoint="PJSIP/1001",
            live=True,
            started_at=day + dt.timedelta(hours=13),
            number="+37379000111",
        ),
    )


async def test_the_call_list_filters_by_day_in_the_users_zone_agent_direction_result_and_number(
    desk: Desk, history: Calls
) -> None:
    admin = (await desk.as_(await desk.make_user(Role.ADMIN, "adam"))).http

    async def ids(query: str) -> list[int]:
        response = await admin.get(f"/calls?{query}")
        assert response.status == 200, await response.text()
        return _row_ids(await response.text())

    h = history
    assert await ids("") == [h.live, h.other_branch, h.outbound, h.missed, h.early_in]
    # 22:30 UTC on the 22nd is already the 23rd in Chișinău (UTC+2), not in UTC.
    assert h.early_in in await ids("from=2026-11-23&to=2026-11-23&tz=Europe/Chisinau")
    assert h.early_in not in await ids("from=2026-11-23&to=2026-11-23&tz=UTC")
    assert await ids("to=2026-11-22&tz=Europe/Chisinau") == []
    assert await ids(f"agent={h.ana.id}") == [h.live, h.outbound, h.early_in]
    assert await ids("direction=out") == [h.outbound]
    assert await ids("result=missed") == [h.missed]
    assert await ids("result=live") == [h.live]
    assert await ids("number=069 123-456") == [h.missed]
    assert await ids(f"agent={h.ana.id}&direction=in&result=answered") == [h.live, h.early_in]


async def test_a_call_row_shows_the_customer_agent_result_and_times(desk: Desk, history: Calls) -> None:
    admin = (await desk.as_(await desk.make_user(Role.ADMIN, "adam"))).http
    html = await (await admin.get("/calls?direction=out")).text()
    assert 'href="/inbox/' in html and "Ștefan Mărgărit" in html
    assert 'href="tel:+37322123456"' in html  # a click on the number calls back
    assert "Ana" in html and "Answered" in html
    assert "0:04" in html and "1:05" in html  # wait, talk


async def test_supervisors_see_their_branchs_calls_only(desk: Desk, history: Calls) -> None:
    sofia = (await desk.as_(await desk.make_user(Role.SUPERVISOR, "sofia"))).http
    h = history
    html = await (await sofia.get("/calls")).text()
    assert _row_ids(html) == [h.live, h.outbound, h.missed, h.early_in]
    export = await (await sofia.get("/calls.csv")).text()
    assert "+37323112233" not in export and "+37322123456" in export


async def test_the_list_and_export_are_for_supervisors_and_admins_only(desk: Desk) -> None:
    for role in (Role.AGENT, Role.MARKETER):
        http = (await desk.as_(await desk.make_user(role))).http
        for path in ("/calls", "/calls.csv"):
            response = await http.get(path, allow_redirects=False)
            assert response.status == 403, (role, path)


async def test_bad_filters_are_answered_with_the_reason(desk: Desk) -> None:
    admin = (await desk.as_(await desk.make_user(Role.ADMIN, "adam"))).http
    cases = {
        "from=2026-11-24&to=2026-11-23": "The first day comes after the last one.",
        "from=yesterday": "Enter a date as YYYY-MM-DD.",
        "direction=sideways": "Choose inbound or outbound.",
        "result=won": "Unknown call result.",
        "number=abc": "Type some digits of the phone number.",
    }
    for query, reason in cases.items():
        response = await admin.get(f"/calls?{query}")
        assert response.status == 422, query
        assert reason in await response.text(), query
        export = await admin.get(f"/calls.csv?{query}")
        assert export.status == 422, query


async def test_the_csv_export_is_excel_ready_and_safe_from_formulas(
    desk: Desk, history: Calls, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await add_call(
        sessions,
        first_name='=HYPERLINK("http://evil.example","x")',
        last_name="",
        started_at=dt.datetime(2026, 11, 23, 14, tzinfo=dt.UTC),
        number="+37360000001",
    )
    admin = (await desk.as_(await desk.make_user(Role.ADMIN, "adam"))).http
    response = await admin.get("/calls.csv?from=2026-11-23&to=2026-11-23&tz=Europe/Chisinau")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="calls-')
    raw = await response.read()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert header[:6] == ["Started", "Direction", "Customer", "Number", "Agent", "Result"]
    customers = {row[2]: row for row in body}
    assert set(customers) == {
        '\'=HYPERLINK("http://evil.example","x")',
        "Иван Петров",
        "Ștefan Mărgărit",
        "Ion Popescu",
    }
    ivan = customers["Иван Петров"]
    assert ivan[0] == "2026-11-23 00:30:00"  # in the user's zone
    assert ivan[3] == "'+79161234507"  # a leading + would be read as a formula
    assert ivan[4] == "Ana" and ivan[5] == "Answered" and ivan[6] == "4" and ivan[7] == "65"
    assert customers["Ion Popescu"][5] in ("Missed", "Live")
    only_out = await admin.get("/calls.csv?direction=out")
    out_rows = list(csv.reader(io.StringIO((await only_out.text()).lstrip("\ufeff"))))
    assert [row[2] for row in out_rows[1:]] == ["Ștefan Mărgărit"]


def test_formula_cells_get_a_quote_and_other_cells_are_left_alone() -> None:
    assert [safe_cell(v) for v in ("=1+1", "+373", "-2", "@SUM(A1)", "\t=x", "Ion", "")] == [
        "'=1+1",
        "'+373",
        "'-2",
        "'@SUM(A1)",
        "'\t=x",
        "Ion",
        "",
    ]
    assert safe_cell(-5) == -5  # numbers stay numbers


# --- click-to-call --------------------------------------------------------------------------------------


async def test_click_to_call_rings_the_agents_phone_then_dials_the_customer(
    phone_desk: Desk, fake: FakeAmi, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ana = await phone_desk.make_user(Role.AGENT, "ana")
    await phone_desk.app[keys.ROUTER].set_endpoint(ana.id, "PJSIP/1001")
    async with sessions() as db, db.begin():
        task = await tasks.create_task(db, title="Call back", kind="callback", assignee_id=ana.id)
    browser = await phone_desk.as_(ana)
    request = {"number": "069 123 456", "task_id": task.id}  # as written in Moldova
    status, body = await browser.post("/api/v1/calls/originate", request)
    assert status == 202, body
    action = await fake.wait_for_action("Originate")
    assert action.get("Channel") == "PJSIP/1001"  # the agent's phone first
    assert action.get("Context") == "outbound"  # then the dialplan dials the customer
    assert action.get("Exten") == "37369123456"  # E.164 without "+", as [outbound] _X. matches it
    assert action.get("Priority") == "1"
    assert action.get("Async") == "true"
    assert action.get_all("Variable") == [f"SWITCHBOARD_TASK={task.id}"]
    call = body["call"]
    assert isinstance(call, dict)
    assert action.get("ChannelId") == call["id"] and str(call["id"]).startswith("c2c-")
    assert call["number"] == "+37369123456" and call["endpoint"] == "PJSIP/1001"
    entries = await _audit(sessions)
    assert [(e.username, e.action, e.record_id, e.detail) for e in entries] == [
        ("ana", "create", call["id"], "click-to-call")
    ]
    assert entries[0].changes == {
        "number": [None, "+37369123456"],
        "endpoint": [None, "PJSIP/1001"],
        "task_id": [None, task.id],
    }


async def test_click_to_call_shows_the_customers_name_on_the_agents_phone(
    phone_desk: Desk, fake: FakeAmi, sessions: async_sessionmaker[AsyncSession]
) -> None:
    sofia = await phone_desk.make_user(Role.SUPERVISOR, "sofia")
    await phone_desk.app[keys.ROUTER].set_endpoint(sofia.id, "PJSIP/9001")
    call_id = await add_call(sessions, first_name="Иван", last_name='"Петров"', number="+79161234507")
    async with sessions() as db:
        from inbox.calls import get_call

        found = await get_call(db, call_id)
        assert found is not None
    browser = await phone_desk.as_(sofia)
    status, body = await browser.post(
        "/api/v1/calls/originate", {"number": "tel:+7 916 123-45-07", "contact_id": found.contact_id}
    )
    assert status == 202, body
    action = await fake.wait_for_action("Originate")
    assert action.get("Exten") == "79161234507" and action.get("Variable") is None
    assert action.get("CallerID") == '"Иван Петров" <79161234507>'


async def test_click_to_call_without_a_phone_endpoint_is_409(phone_desk: Desk, fake: FakeAmi) -> None:
    browser = await phone_desk.as_(await phone_desk.make_user(Role.AGENT, "ana"))
    status, body = await browser.post("/api/v1/calls/originate", {"number": "+37369123456"})
    assert status == 409
    error = body["error"]
    assert isinstance(error, dict) and "phone endpoint" in str(error["reason"])
    assert fake.actions_named("Originate") == []


async def test_click_to_call_without_telephony_is_503(desk: Desk) -> None:
    ana = await desk.make_user(Role.AGENT, "ana")
    await desk.app[keys.ROUTER].set_endpoint(ana.id, "PJSIP/1001")
    browser = await desk.as_(ana)
    status, body = await browser.post("/api/v1/calls/originate", {"number": "+37369123456"})
    assert status == 503
    assert body["error"] == {"status": 503, "reason": "Telephony is not set up on this hub."}


async def test_click_to_call_while_the_pbx_is_down_is_503(phone_desk: Desk, fake: FakeAmi) -> None:
    ana = await phone_desk.make_user(Role.AGENT, "ana")
    await phone_desk.app[keys.ROUTER].set_endpoint(ana.id, "PJSIP/1001")
    browser = await phone_desk.as_(ana)
    await fake.stop_listening()
    await fake.drop()
    ami = phone_desk.app[keys.AMI]
    assert ami is not None
    async with asyncio.timeout(5):
        while ami.connected:  # noqa: ASYNC110 - the connection has no "lost" event to wait on
            await asyncio.sleep(0.01)
    status, body = await browser.post("/api/v1/calls/originate", {"number": "+37369123456"})
    assert status == 503 and "not connected" in str(body["error"])


async def test_click_to_call_refuses_bad_input_with_the_field(
    phone_desk: Desk, fake: FakeAmi, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ana = await phone_desk.make_user(Role.AGENT, "ana")
    boris = await phone_desk.make_user(Role.AGENT, "boris")
    await phone_desk.app[keys.ROUTER].set_endpoint(ana.id, "PJSIP/1001")
    async with sessions() as db, db.begin():
        borises = await tasks.create_task(db, title="His", kind="callback", assignee_id=boris.id)
    browser = await phone_desk.as_(ana)
    cases: list[tuple[object, int, str]] = [
        ({}, 422, "number"),
        ({"number": 37369123456}, 422, "number"),
        ({"number": "call me"}, 422, "number"),
        ({"number": "12"}, 422, "number"),
        ({"number": "+37369123456", "task_id": borises.id}, 422, "task_id"),
        ({"number": "+37369123456", "task_id": "x"}, 422, "task_id"),
        ({"number": "+37369123456", "contact_id": 999_999}, 422, "contact_id"),
    ]
    for body, status, name in cases:
        got, answer = await browser.post("/api/v1/calls/originate", body)
        assert got == status, (body, answer)
        error = answer["error"]
        assert isinstance(error, dict) and error["field"] == name and error["reason"], body
    not_json = await browser.http.post(
        "/api/v1/calls/originate", data="number=1", headers={"X-CSRF-Token": browser.csrf}
    )
    assert not_json.status == 400
    assert fake.actions_named("Originate") == []


async def test_marketers_cannot_click_to_call(phone_desk: Desk, fake: FakeAmi) -> None:
    browser = await phone_desk.as_(await phone_desk.make_user(Role.MARKETER, "mara"))
    status, _ = await browser.post("/api/v1/calls/originate", {"number": "+37369123456"})
    assert status == 403


# --- live monitoring ------------------------------------------------------------------------------------


@pytest.fixture
async def live_call(phone_desk: Desk, sessions: async_sessionmaker[AsyncSession]) -> tuple[int, Person]:
    """Ana (PJSIP/1001) is talking to a customer now; supervisor Sofia has PJSIP/9001."""
    ana = await phone_desk.make_user(Role.AGENT, "ana")
    sofia = await phone_desk.make_user(Role.SUPERVISOR, "sofia")
    await phone_desk.app[keys.ROUTER].set_endpoint(ana.id, "PJSIP/1001")
    await phone_desk.app[keys.ROUTER].set_endpoint(sofia.id, "PJSIP/9001")
    call_id = await add_call(sessions, agent_id=ana.id, agent_endpoint="PJSIP/1001", live=True)
    return call_id, sofia


async def test_listen_whisper_and_barge_ring_the_supervisor_into_chanspy_and_are_audited(
    phone_desk: Desk,
    fake: FakeAmi,
    live_call: tuple[int, Person],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    call_id, sofia = live_call
    browser = await phone_desk.as_(sofia)
    expected = {"listen": "PJSIP/1001,qE", "whisper": "PJSIP/1001,qwE", "barge": "PJSIP/1001,qBE"}
    for number, (mode, data) in enumerate(expected.items(), start=1):
        status, body = await browser.post(f"/api/v1/calls/{call_id}/monitor", {"mode": mode})
        assert status == 202, body
        action = await fake.wait_for_action("Originate", number)
        assert action.get("Channel") == "PJSIP/9001"  # the supervisor's own phone
        assert action.get("Application") == "ChanSpy"
        assert action.get("Data") == data
        assert action.get("Async") == "true"
        monitor = body["monitor"]
        assert isinstance(monitor, dict) and action.get("ChannelId") == monitor["id"]
        assert str(monitor["id"]).startswith("spy-")
    entries = await _audit(sessions)
    assert [(e.username, e.record_id, e.detail) for e in entries] == [
        ("sofia", str(call_id), "monitor listen"),
        ("sofia", str(call_id), "monitor whisper"),
        ("sofia", str(call_id), "monitor barge"),
    ]
    assert entries[0].changes is not None
    assert entries[0].changes["agent_endpoint"] == [None, "PJSIP/1001"]
    assert entries[0].changes["supervisor_endpoint"] == [None, "PJSIP/9001"]


async def test_monitoring_is_refused_for_agents_other_branches_and_calls_not_live(
    phone_desk: Desk,
    fake: FakeAmi,
    live_call: tuple[int, Person],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    call_id, sofia = live_call
    agent = await phone_desk.as_(await phone_desk.make_user(Role.AGENT, "boris"))
    assert (await agent.post(f"/api/v1/calls/{call_id}/monitor", {"mode": "listen"}))[0] == 403
    vera = await phone_desk.make_user(Role.SUPERVISOR, "vera", branch=OTHER_BRANCH)
    await phone_desk.app[keys.ROUTER].set_endpoint(vera.id, "PJSIP/9002")
    status, body = await (await phone_desk.as_(vera)).post(
        f"/api/v1/calls/{call_id}/monitor", {"mode": "listen"}
    )
    assert status == 403 and "branch" in str(body["error"])

    ended = await add_call(sessions, agent_endpoint="PJSIP/1001")
    ringing = await add_call(sessions, agent_endpoint="PJSIP/1001", live=True, answered=False)
    browser = await phone_desk.as_(sofia)
    for other in (ended, ringing):
        status, body = await browser.post(f"/api/v1/calls/{other}/monitor", {"mode": "listen"})
        assert status == 409 and "not live" in str(body["error"]), other
    status, body = await browser.post(f"/api/v1/calls/{call_id}/monitor", {"mode": "record"})
    assert status == 422 and body["error"] == {
        "status": 422,
        "reason": "Choose listen, whisper or barge.",
        "field": "mode",
    }
    assert (await browser.post("/api/v1/calls/999999/monitor", {"mode": "listen"}))[0] == 404
    assert fake.actions_named("Originate") == []


async def test_a_supervisor_without_a_phone_cannot_monitor(
    phone_desk: Desk, fake: FakeAmi, live_call: tuple[int, Person]
) -> None:
    call_id, _ = live_call
    admin = await phone_desk.as_(await phone_desk.make_user(Role.ADMIN, "adam"))
    status, body = await admin.post(f"/api/v1/calls/{call_id}/monitor", {"mode": "barge"})
    assert status == 409 and "phone endpoint" in str(body["error"])
    assert fake.actions_named("Originate") == []


async def test_the_list_offers_monitoring_only_for_live_answered_calls(
    phone_desk: Desk, live_call: tuple[int, Person], sessions: async_sessionmaker[AsyncSession]
) -> None:
    call_id, sofia = live_call
    ended = await add_call(sessions, agent_endpoint="PJSIP/1001")
    html = await (await (await phone_desk.as_(sofia)).http.get("/calls")).text()
    rows = dict(re.findall(r'<tr data-call="(\d+)"(.*?)</tr>', html, re.S))
    assert 'data-monitor="listen"' in rows[str(call_id)] and 'data-monitor="barge"' in rows[str(call_id)]
    assert "data-monitor" not in rows[str(ended)]
    assert "calls-no-endpoint" not in html
