"""In Chromium: a supervisor opens the call list, filters it, plays a recording (fetched with Range
requests), listens in on a live call and calls a customer back by clicking the number — the last two reach
a fake Asterisk through the hub's real AMI connection."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Response, expect
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.conftest import Hub, MakeUser, browser_login
from tests.fakes.ami_server import FakeAmi
from tests.webui._calls_desk import RECORDING_NAME, add_call, cheap_passwords, put_recording
from webui import keys

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _fast_logins(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_passwords(monkeypatch)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    async with FakeAmi() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, fake: FakeAmi) -> Settings:
    return settings.model_copy(
        update={
            "recordings_dir": tmp_path / "monitor",
            "ami_host": fake.host,
            "ami_port": fake.port,
            "ami_secret": SecretStr(fake.secret),
        }
    )


async def test_a_supervisor_filters_calls_plays_a_recording_listens_in_and_calls_back(
    browser: Browser,
    served_hub: Hub,
    fake: FakeAmi,
    settings: Settings,
    make_user: MakeUser,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    ana = await make_user(Role.AGENT, "ana")
    boris = await make_user(Role.AGENT, "boris")
    sofia = await make_user(Role.SUPERVISOR, "sofia")
    router = served_hub.app[keys.ROUTER]
    await router.set_endpoint(ana.id, "PJSIP/1001")
    await router.set_endpoint(sofia.id, "PJSIP/9001")
    assert settings.recordings_dir is not None
    put_recording(settings.recordings_dir)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    recorded = await add_call(
        sessions,
        agent_id=ana.id,
        agent_endpoint="PJSIP/1001",
        first_name="Иван",
        last_name="Петров",
        number="+79161234507",
        recording_file=RECORDING_NAME,
        started_at=now - dt.timedelta(hours=2),
    )
    await add_call(
        sessions,
        agent_id=boris.id,
        result="missed",
        answered=False,
        first_name="Maria",
        last_name="Rusu",
        number="+37369555444",
        started_at=now - dt.timedelta(hours=1),
    )
    live = await add_call(
        sessions,
        agent_id=ana.id,
        agent_endpoint="PJSIP/1001",
        live=True,
        first_name="Ștefan",
        last_name="Mărgărit",
        number="+37322123456",
        started_at=now - dt.timedelta(minutes=3),
    )
    ami = served_hub.app[keys.AMI]
    assert ami is not None
    async with asyncio.timeout(5):
        await ami.wait_connected()

    errors: list[str] = []
    context = await browser.new_context(
        locale="en-US", timezone_id="Europe/Chisinau", viewport={"width": 1440, "height": 900}
    )
    page = await context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    recordings: list[Response] = []
    page.on("response", lambda r: recordings.append(r) if "/recording" in r.url else None)
    await browser_login(page, served_hub.url, sofia.username)
    await page.click('#main-nav a[data-nav="/calls"]')
    await expect(page.locator("#calls-table tbody tr")).to_have_count(3)

    await page.select_option("#filter-agent", str(ana.id))
    await page.select_option("#filter-direction", "in")
    await page.click("#calls-show")
    await expect(page.locator("#calls-table tbody tr")).to_have_count(2)
    assert "tz=Europe%2FChisinau" in page.url and f"agent={ana.id}" in page.url
    await expect(page.locator("#calls-zone")).to_have_text("(Europe/Chisinau)")
    row = page.locator(f'#calls-table tr[data-call="{recorded}"]')
    await expect(row.locator(".call-customer")).to_contain_text("Иван Петров")
    await expect(row.locator(".call-result")).to_have_text("Answered")

    audio = row.locator("audio.call-recording")
    await audio.evaluate("a => { a.muted = true; return a.play(); }")
    await page.wait_for_function(
        "id => document.querySelector(`tr[data-call='${id}'] audio`).readyState > 0", arg=recorded
    )
    assert any(r.status == 206 for r in recordings), [(r.status, r.url) for r in recordings]
    duration = await audio.evaluate("a => a.duration")
    assert 2.5 < duration < 3.5  # the real recording is ~3 s of 8 kHz PCM

    live_row = page.locator(f'#calls-table tr[data-call="{live}"]')
    await expect(live_row.locator(".call-result")).to_have_text("Live")
    await live_row.locator('button[data-monitor="listen"]').click()
    await expect(page.locator("#calls-status")).to_contain_text("Your phone rings now")
    spy = await fake.wait_for_action("Originate")
    assert (spy.get("Channel"), spy.get("Application"), spy.get("Data")) == (
        "PJSIP/9001",
        "ChanSpy",
        "PJSIP/1001,qE",
    )

    await row.locator("a.call-number").click()
    status = page.locator("#click-to-call-status")
    await expect(status).to_have_attribute("data-state", "success")
    await expect(status).to_contain_text("+79161234507")
    dial = await fake.wait_for_action("Originate", 2)
    assert (dial.get("Channel"), dial.get("Context"), dial.get("Exten")) == (
        "PJSIP/9001",
        "outbound",
        "79161234507",
    )
    assert page.url.startswith(served_hub.url + "/calls")  # the tel: link did not navigate away

    async with page.expect_download() as download_info:
        await page.click("#calls-export")  # the same filters, as CSV
    download = await download_info.value
    assert download.suggested_filename.startswith("calls-")
    exported = (await asyncio.to_thread(Path(await download.path()).read_bytes)).decode("utf-8-sig")
    assert "Иван Петров" in exported and "Maria Rusu" not in exported

    await page.screenshot(path=str(tmp_path / "calls.png"), full_page=True)
    await context.close()
    assert errors == []
