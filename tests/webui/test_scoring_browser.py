"""Lead scoring in a real browser: an admin adds a rule on `/admin/scoring`, the worker rescores the open
leads, and the lead page shows the breakdown beside the learned score's wait for history."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, expect
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import classifiers
from crm_core.models import Contact, Lead
from crm_core.scoring_model import ScoringRule
from switchboard.permissions import Role
from tests.conftest import MakeUser, browser_login


async def test_an_admin_adds_a_rule_and_the_lead_page_explains_the_score(
    browser: Browser, live_hub: str, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_user(Role.ADMIN)
    async with sessions() as db, db.begin():
        await db.execute(delete(ScoringRule))
        await classifiers.seed_defaults(db)
        contact = Contact(first_name="Maria", last_name="Rusu", phone="+37369000001")
        db.add(contact)
        await db.flush()
        lead = Lead(contact_id=contact.id, source_channel="webchat", product="mortgage")
        db.add(lead)
        await db.flush()
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    try:
        await browser_login(page, live_hub, admin.username)
        await page.goto(f"{live_hub}/admin/scoring")
        await page.fill("#rule-name", "Asks for a mortgage")
        await page.select_option("#rule-kind", "product")
        await page.fill("#rule-points", "35")
        await page.fill("#rule-values", "mortgage")
        await page.click("#scoring-rule-save")
        await expect(page.locator("#scoring-rules tbody tr")).to_have_count(1)
        await page.screenshot(path="/tmp/scoring_admin.png", full_page=True)
        for _ in range(100):  # the worker rescores in the background
            await page.goto(f"{live_hub}/leads/{lead.id}")
            if await page.locator("#lead-score-total").inner_text() == "35":
                break
            await asyncio.sleep(0.1)
        await expect(page.locator("#lead-score-total")).to_have_text("35")
        await expect(page.locator("#lead-score-breakdown")).to_contain_text("Asks for a mortgage")
        await expect(page.locator("#lead-learned-waiting")).to_contain_text("0 of 30")
        await page.screenshot(path="/tmp/scoring.png", full_page=True)
    finally:
        await context.close()
