"""In Chromium: an agent sets their presence in the header; a supervisor sees it on the routing desk, asks
who would get a chat now, sets the agent offline and asks again."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.conftest import Hub, MakeUser, browser_login

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"routing": True})


async def test_presence_in_the_header_drives_the_routing_desk(
    browser: Browser, served_hub: Hub, make_user: MakeUser, tmp_path: Path
) -> None:
    ana = await make_user(Role.AGENT, username="ana_expert")
    boss = await make_user(Role.SUPERVISOR, username="sef_de_tura")
    errors: list[str] = []

    agent_context = await browser.new_context(locale="en-US")
    agent_page = await agent_context.new_page()
    agent_page.on("pageerror", lambda e: errors.append(str(e)))
    await browser_login(agent_page, served_hub.url, ana.username)
    select = agent_page.locator("#presence-select")
    await expect(select).to_be_enabled()
    await expect(select).to_have_value("offline")
    await select.select_option("online")
    dot = agent_page.locator("#presence-dot")
    await expect(dot).to_have_class("status-dot status-dot-animated status-green")

    desk_context = await browser.new_context(locale="en-US", viewport={"width": 1440, "height": 900})
    desk = await desk_context.new_page()
    desk.on("pageerror", lambda e: errors.append(str(e)))
    await browser_login(desk, served_hub.url, boss.username)
    await desk.goto(f"{served_hub.url}/routing")
    row = desk.locator(f'#agents tr[data-agent="{ana.id}"]')
    await expect(row.locator(".agent-presence")).to_have_value("online")
    await desk.select_option("#dry-channel", "telegram")
    await desk.click("#dry-run-button")
    await expect(desk.locator("#dry-result")).to_contain_text("Ana_Expert")
    await expect(desk.locator("#dry-result")).to_contain_text("least busy")
    await desk.screenshot(path=str(tmp_path / "routing-desk.png"), full_page=True)

    await row.locator(".agent-presence").select_option("offline")
    await expect(desk.locator("#agents-error")).to_have_text("")
    await desk.click("#dry-run-button")
    await expect(desk.locator("#dry-result")).to_contain_text("Nobody now")
    await agent_page.reload()
    await expect(agent_page.locator("#presence-select")).to_have_value("offline")
    assert errors == []
    await agent_context.close()
    await desk_context.close()
