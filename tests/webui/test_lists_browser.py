"""The list page in Debian's Chromium: a supervisor adds a condition on a custom field with the filter bar,
saves the view, comes back to the whole list, picks the view and sees the filtered rows again."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import ARTIFACTS, Hub, MakeUser, browser_login
from tests.webui._lists import Sessions, make_office

pytestmark = pytest.mark.browser


async def test_a_supervisor_filters_on_a_custom_field_saves_the_view_and_picks_it_again(
    browser: Browser, served_hub: Hub, make_user: MakeUser, sessions: Sessions
) -> None:
    office = await make_office(sessions, make_user)
    context = await browser.new_context(locale="en-US", viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    rows = page.locator("#list-table tbody tr[data-id]")
    try:
        await browser_login(page, served_hub.url, office.supervisor.username)
        await page.goto(f"{served_hub.url}/contacts")
        await expect(rows).to_have_count(3)  # the supervisor's branch: Ion, Ana, Dan
        await page.select_option("#list-field", "custom.income")
        await page.select_option("#list-op", "gte")
        await expect(page.locator("#list-value input[type=number]")).to_be_visible()
        await page.fill("#list-value input", "5000")
        await page.click("#list-add")
        await expect(page.locator(".list-condition")).to_contain_text("Income")
        await expect(rows).to_have_count(2)
        await page.click("#list-save-open")
        await page.fill("#list-save-name", "Good income")
        await page.check("#list-save-shared")
        await page.click("#list-save-submit")
        await page.wait_for_url(re.compile(r"/contacts\?view=\d+$"))
        await expect(rows).to_have_count(2)
        await page.goto(f"{served_hub.url}/contacts?all=1")
        await expect(rows).to_have_count(3)
        await page.reload()
        await page.select_option("#list-view-picker", label="Good income · shared")
        await page.wait_for_url(re.compile(r"/contacts\?all=1&view=\d+$"))
        await expect(rows).to_have_count(2)
        ids = {int(i) for i in await rows.evaluate_all("rows => rows.map(r => r.dataset.id)")}
        assert ids == {office.contacts["ion"], office.contacts["dan"]}
        await expect(page.locator(".list-condition")).to_contain_text("from")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "lists_saved_view.png"), full_page=True)
        await page.screenshot(path="/tmp/lists_saved_view.png", full_page=True)
    finally:
        await context.close()
