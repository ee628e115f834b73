"""The script editor in Debian's Chromium: a supervisor opens a draft, adds a step, switches its kind and
sees that kind's inputs, saves, watches the graph grow an edge to the new step, publishes, and reads the
version's funnel. The screenshots are for a person to look at."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from scripts_engine.service import VersionState
from switchboard.audit import SYSTEM
from switchboard.permissions import Role
from tests.conftest import ARTIFACTS, Hub, MakeUser, browser_login
from tests.webui.test_scripts_pages import SCRIPT
from webui import keys

pytestmark = pytest.mark.browser


async def test_a_supervisor_edits_a_script_sees_the_graph_and_publishes(
    browser: Browser, served_hub: Hub, make_user: MakeUser
) -> None:
    app = served_hub.app
    async with app[keys.SESSIONS]() as db, db.begin():
        text = SCRIPT.replace("next: done", "next: thanks").replace(
            "  - {id: done, kind: end, outcome: success}\n", ""
        )
        draft = await app[keys.SCRIPTS].import_yaml(db, SYSTEM, text)
    supervisor = await make_user(Role.SUPERVISOR)
    context = await browser.new_context(locale="en-GB", viewport={"width": 1440, "height": 1000})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        await browser_login(page, served_hub.url, supervisor.username)
        await page.goto(f"{served_hub.url}/scripts")
        await page.locator(f'#scripts-list tr[data-version="{draft.id}"] .script-edit').click()
        # `keep` goes to a step that does not exist: named in the problems, publishing disabled
        await expect(
            page.locator('#script-problems li[data-step="keep"][data-code="dangling_edge"]')
        ).to_be_visible()
        await expect(page.locator("#script-publish")).to_be_disabled()
        await expect(page.locator("#script-graph .graph-node")).to_have_count(3)

        await page.locator("#step-add-kind").select_option("say")
        await page.locator("#step-add").click()
        new = page.locator(".script-step").nth(3)
        await expect(new).to_have_attribute("data-step", "step_4")
        await new.locator('input[name="steps-3-id"]').fill("thanks")
        await new.locator(".step-kind").select_option("end")  # the end step's inputs, not the say step's
        await expect(new.locator('select[name="steps-3-outcome"]')).to_be_visible()
        await expect(new.locator('input[name="steps-3-next"]')).to_be_hidden()
        await new.locator('select[name="steps-3-outcome"]').select_option("success")
        await page.locator("#script-save").click()

        await expect(page.locator("#script-ok")).to_be_visible()
        await expect(
            page.locator('#script-graph .graph-edge[data-from="keep"][data-to="thanks"]')
        ).to_have_count(1)
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "script_editor.png"), full_page=True)
        await page.locator("#script-publish").click()
        await expect(page.locator("#script-readonly")).to_be_visible()
        async with app[keys.SESSIONS]() as db:
            assert (await app[keys.SCRIPTS].get_version(db, draft.id)).state is VersionState.PUBLISHED

        await page.locator("#script-analytics").click()
        await expect(page.locator('#funnel-table tr[data-step="hello"] .reached')).to_have_text("0")
        await page.screenshot(path=str(ARTIFACTS / "script_analytics.png"), full_page=True)
        assert errors == []
    finally:
        await context.close()
