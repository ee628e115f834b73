"""The screen pop in Debian's Chromium: an agent whose phone (PJSIP/1001) rings sees the caller's card on
whatever page they are on, opens the conversation in one click, and there the call item follows the call
live (answered, talk time, the recording player); on the inbox page the card comes from the page's own
feed and goes away when the call is answered. The screenshots are for a person to look at."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from channels.asterisk.calls import CallTracker
from channels.asterisk.model import CallEvent
from inbox.calls import CallLog
from switchboard.permissions import Role
from tests.conftest import Hub, MakeUser, browser_login
from tests.fakes.ami_server import load_fixture
from webui import keys

pytestmark = pytest.mark.browser

BASE = dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC)


def recorded(name: str) -> list[CallEvent]:
    tracker, out = CallTracker(), []
    for t, fields in load_fixture(name).messages():
        out += tracker.feed(fields, BASE + dt.timedelta(seconds=t))
    return out


async def test_the_ringing_agent_sees_the_caller_and_opens_the_conversation(
    browser: Browser, served_hub: Hub, make_user: MakeUser, tmp_path: Path
) -> None:
    app = served_hub.app
    agent = await make_user(Role.AGENT, "ana.rusu")
    await app[keys.ROUTER].set_endpoint(agent.id, "PJSIP/1001")
    log = CallLog(app[keys.INBOX], app[keys.ROUTER], app[keys.SESSIONS], app[keys.BUS])
    context = await browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await browser_login(page, served_hub.url, agent.username)
    await page.wait_for_selector('body[data-call-feed="connected"]')

    answered = recorded("inbound_answered")
    await log.on_call_event(answered[0])  # PJSIP/1001 rings
    pop = page.locator(".call-pop")
    await expect(pop).to_have_count(1)
    await expect(pop.locator(".call-pop-name")).to_have_text("Ivan Petrov")
    await expect(pop.locator(".call-pop-number")).to_have_text("+79161234501")
    await expect(pop.locator(".call-pop-region")).to_contain_text("Russia")
    await expect(pop.locator(".call-pop-new")).to_have_text("New caller")
    await page.screenshot(path=str(tmp_path / "screen-pop-home.png"))

    await pop.locator(".call-pop-open").click()
    await page.wait_for_url(re.compile(r"/inbox/\d+$"))
    item = page.locator('.message[data-kind="call"]')
    await expect(item).to_have_count(1)
    await expect(item.locator(".call-result")).to_have_text("In progress")
    await page.wait_for_selector('body[data-live="connected"]')
    for event in answered[1:]:
        await log.on_call_event(event)
    await expect(item.locator(".call-result")).to_have_text("Answered")
    await expect(item.locator(".call-talk")).to_contain_text("0:03")
    await expect(item.locator(".call-agent")).to_contain_text("Ana.Rusu")
    await expect(item.locator("audio.call-recording")).to_have_attribute("preload", "none")
    src = await item.locator("audio.call-recording").get_attribute("src")
    assert src is not None and re.fullmatch(r"/api/v1/calls/\d+/recording", src)
    await expect(page.locator('#contact-panel a[href="tel:+79161234501"]').first).to_be_visible()

    # On the inbox page the card comes over the page's own feed, and goes when the call is answered.
    second = recorded("inbound_agent_hangup")
    await log.on_call_event(second[0])
    await expect(page.locator(".call-pop .call-pop-number")).to_have_text("+79161234502")
    await page.screenshot(path=str(tmp_path / "screen-pop-inbox.png"))
    await log.on_call_event(second[1])
    await expect(page.locator(".call-pop")).to_have_count(0)
    assert errors == []
    await context.close()
