"""The duplicate warning in Debian's Chromium: editing a contact into someone already known shows "This
looks like …" with the match, and its merge link opens the merge screen with both contacts."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import Channel, InboundMessage
from crm_core import profile
from switchboard.audit import SYSTEM
from switchboard.permissions import Role
from tests.conftest import ARTIFACTS, Hub, MakeUser, browser_login, open_in_inbox
from webui import keys

pytestmark = pytest.mark.browser


async def test_the_form_warns_of_a_duplicate_and_links_to_the_merge_screen(
    browser: Browser, served_hub: Hub, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    agent = await make_user(Role.AGENT)
    async with sessions() as db, db.begin():
        known = await profile.create_contact(
            db,
            SYSTEM,
            profile.parse_profile({"first_name": "Ștefan", "last_name": "Rusu", "phones": ["069123456"]}),
        )
        new = await profile.create_contact(db, SYSTEM, profile.parse_profile({"first_name": "Visitor"}))
    context = await browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    try:
        await browser_login(page, served_hub.url, agent.username)
        await page.goto(f"{served_hub.url}/contacts/{new}")
        await page.fill("#first_name", "Stefan")
        await page.fill("#last_name", "Rusu")
        await page.fill("#phone_0", "+373 69 123 456")
        await page.click("#contact-save")
        warning = page.locator("#duplicate-warning")
        await expect(warning).to_be_visible()
        await expect(warning.locator(f'.duplicate-match[data-contact="{known}"]')).to_contain_text(
            "Ștefan Rusu"
        )
        await expect(page.locator("#contact-save-anyway")).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "contacts_duplicate_warning.png"), full_page=True)
        await warning.locator(".duplicate-merge").click()
        await page.wait_for_url(f"{served_hub.url}/contacts/merge?keep={known}&merge={new}")
        # Both contacts side by side, a choice per differing field, the kept one's value preselected.
        await expect(page.locator("#merge-screen .merge-side")).to_have_count(2)
        first_name = page.locator('#merge-fields tr[data-field="first_name"]')
        await expect(first_name.locator('input[value="keep"]')).to_be_checked()
        await expect(first_name).to_contain_text("Visitor")
        await page.locator('#merge-fields tr[data-field="first_name"] input[value="merge"]').check()
        await page.locator('#merge-fields tr[data-field="first_name"] input[value="keep"]').check()
        await page.screenshot(path=str(ARTIFACTS / "contacts_merge_screen.png"), full_page=True)
        await page.click("#merge-submit")
        await page.wait_for_url(re.compile(r".*/contacts/merges/\d+$"))
        await expect(page.locator("#merge-kept")).to_have_text("Ștefan Rusu")
        # The merge page offers its undo; after it, the merged contact is back.
        await page.click("#merge-undo")
        await expect(page.locator("#merge-detail")).to_have_attribute("data-status", "undone")
        await page.screenshot(path=str(ARTIFACTS / "contacts_merge_undone.png"), full_page=True)
        await page.click("#merge-merged")
        await page.wait_for_url(f"{served_hub.url}/contacts/{new}")
        await expect(page.locator("#first_name")).to_have_value("Visitor")
    finally:
        await context.close()


async def test_the_inbox_quick_edit_shows_the_matches_and_saves_anyway_on_the_second_click(
    browser: Browser, served_hub: Hub, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    agent = await make_user(Role.AGENT)
    async with sessions() as db, db.begin():
        known = await profile.create_contact(
            db,
            SYSTEM,
            profile.parse_profile({"first_name": "Ion", "last_name": "Rusu", "phones": ["069123456"]}),
        )
    got = await served_hub.app[keys.INBOX].ingest(
        InboundMessage(Channel.WEBCHAT, "site", "ext-dup-1", "visitor-7", body="Bună ziua")
    )
    context = await browser.new_context(locale="en-US", viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    try:
        await browser_login(page, served_hub.url, agent.username)
        await open_in_inbox(page, served_hub.url, got.conversation_id)
        await page.click("#contact-edit")
        await page.fill("#contact-first-name", "Ion")
        await page.fill("#contact-phone", "069 123 456")
        await page.click("#contact-save")
        matches = page.locator("#contact-duplicates a")
        await expect(matches).to_have_count(1)
        await expect(matches).to_have_attribute("href", f"/contacts/{known}")
        await expect(page.locator("#contact-save")).to_have_text("Save anyway")
        await page.screenshot(path=str(ARTIFACTS / "contacts_quick_edit_duplicate.png"))
        await page.click("#contact-save")
        await expect(page.locator("#contact-edit-form")).to_have_count(0)
        await expect(page.locator("#contact-name")).to_have_text("Ion")
        await expect(page.locator("#contact-page-link")).to_have_attribute(
            "href", re.compile(r"^/contacts/\d+$")
        )
    finally:
        await context.close()
