"""The sales-script panel in Debian's Chromium: an agent opens a customer's chat, starts the suggested
script, puts its greeting in the reply box, answers the questions with a button and a typed amount, and
the customer's lead holds the amount as the script ends. The screenshot is for a person to look at."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from channels.model import Channel, InboundMessage
from crm_core.models import Lead
from switchboard.audit import SYSTEM
from switchboard.permissions import Role
from tests.conftest import ARTIFACTS, Hub, MakeUser, browser_login
from tests.webui.test_script_panel_api import SCRIPT
from webui import keys

pytestmark = pytest.mark.browser


async def test_an_agent_follows_a_script_in_a_chat_and_the_lead_is_filled(
    browser: Browser, served_hub: Hub, make_user: MakeUser
) -> None:
    app = served_hub.app
    async with app[keys.SESSIONS]() as db, db.begin():
        draft = await app[keys.SCRIPTS].import_yaml(db, SYSTEM, SCRIPT)
        await app[keys.SCRIPTS].publish(db, SYSTEM, draft.id)
    stored = await app[keys.INBOX].ingest(
        InboundMessage(
            channel=Channel.TELEGRAM,
            account_id="acc",
            external_id="t-1",
            sender_id="42",
            sender_name="Ion Rusu",
            body="Bună ziua, vreau un credit auto",
        )
    )
    agent = await make_user(Role.AGENT)
    context = await browser.new_context(locale="ro-RO", viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await browser_login(page, served_hub.url, agent.username)
        await page.goto(f"{served_hub.url}/inbox/{stored.conversation_id}")
        panel = page.locator("#script-panel")
        await expect(panel.locator("#script-choice")).to_contain_text("Credit rapid")
        await panel.locator("#script-start").click()
        run = panel.locator("#script-run")
        await expect(run).to_have_attribute("data-step", "hello")
        await expect(run.locator(".script-text")).to_have_text("Bună ziua, Ion!")
        await run.locator(".script-to-reply").click()
        await expect(page.locator("#reply-body")).to_have_value("Bună ziua, Ion!")
        await run.locator("#script-next").click()
        await expect(run).to_have_attribute("data-step", "need")
        await run.locator('.script-option[data-value="car"]').click()
        await expect(run).to_have_attribute("data-step", "amount")
        await run.locator("#script-input").fill("75 000")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "script_panel.png"), full_page=True)
        await run.locator("#script-input").press("Enter")
        await expect(run).to_have_attribute("data-status", "ended")
        async with app[keys.SESSIONS]() as db:
            lead = (await db.scalars(select(Lead))).one()
        assert lead.amount == Decimal("75000.00")
        assert errors == []
    finally:
        await context.close()
