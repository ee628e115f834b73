"""In Chromium: an agent sets their presence in the header; a supervisor sees it on the routing desk (which
follows it live), asks who would get a chat now, gives the agent skills, sets them offline and asks again;
an admin writes a branch's working hours and off-hours replies."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.conftest import Hub, MakeUser, browser_login
from tests.router.conftest import add_branch
from webui import keys

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"routing": True})


async def test_presence_in_the_header_drives_the_routing_desk(
    browser: Browser,
    served_hub: Hub,
    make_user: MakeUser,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
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

    await select.select_option("away")  # the desk follows without a reload
    await expect(row.locator(".agent-presence")).to_have_value("away", timeout=8000)
    await select.select_option("online")
    await desk.select_option("#skills-agent", str(ana.id))
    await desk.check('#skills-form input[name="languages"][value="ru"]')
    await desk.fill("#skills-products", "mortgage, consumer credit")
    await desk.click('#skills-form button[type="submit"]')
    await expect(desk.locator("#skills-status")).to_have_text("Saved.")
    view = await served_hub.app[keys.ROUTER].agent(ana.id)
    assert view is not None and view.skills.languages == ("ru",)
    assert view.skills.products == ("consumer credit", "mortgage")
    await desk.select_option("#dry-language", "ro")
    await desk.click("#dry-run-button")
    await expect(desk.locator("#dry-result")).to_contain_text("Nobody now")  # she speaks only Russian
    await desk.select_option("#dry-language", "ru")

    await row.locator(".agent-presence").select_option("offline")
    await expect(desk.locator("#agents-error")).to_have_text("")
    await desk.click("#dry-run-button")
    await expect(desk.locator("#dry-result")).to_contain_text("Nobody now")
    await agent_page.reload()
    await expect(agent_page.locator("#presence-select")).to_have_value("offline")
    await agent_context.close()
    await desk_context.close()

    admin = await make_user(Role.ADMIN, username="admin_rute")
    branch_id = await add_branch(sessions, "Bălți")
    admin_context = await browser.new_context(locale="en-US", viewport={"width": 1440, "height": 1100})
    page = await admin_context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    await browser_login(page, served_hub.url, admin.username)
    await page.goto(f"{served_hub.url}/routing")
    await page.select_option("#hours-branch", str(branch_id))
    await expect(page.locator("#hours-form")).to_have_attribute("aria-busy", "false")
    await page.fill("#hours-mon", "09:00-13:00, 14:00-18:00")
    await page.fill("#hours-sat", "9 to 5")
    await page.click('#hours-form button[type="submit"]')
    await expect(page.locator("#hours-status")).to_contain_text("HH:MM-HH:MM")  # caught before sending
    await page.fill("#hours-sat", "10:00-14:00")
    await page.fill("#hours-holidays", "2026-12-25")
    await page.fill("#hours-reply-ro", "Revenim la {opens}.")
    await page.click('#hours-form button[type="submit"]')
    await expect(page.locator("#hours-status")).to_have_text("Saved.")
    await page.screenshot(path=str(tmp_path / "routing-hours.png"), full_page=True)
    hours = await served_hub.app[keys.ROUTER].working_hours(branch_id)
    assert hours is not None and hours.replies == {"ro": "Revenim la {opens}."}
    assert hours.week_json()["mon"] == [["09:00", "13:00"], ["14:00", "18:00"]]
    await page.reload()  # what the server has comes back into the form
    await page.select_option("#hours-branch", str(branch_id))
    await expect(page.locator("#hours-form")).to_have_attribute("aria-busy", "false")
    await expect(page.locator("#hours-sat")).to_have_value("10:00-14:00")
    await expect(page.locator("#hours-reply-ro")).to_have_value("Revenim la {opens}.")
    assert errors == []
    await admin_context.close()
