"""The whole way, in two Chromium pages at once: a visitor writes in the widget on a shop's site, the
logged-in agent sees it in the list and the thread within a second without reloading, replies with Enter,
and the visitor sees the reply. Customer text that looks like HTML stays text on the agent's screen."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from switchboard.permissions import Role
from tests.conftest import ARTIFACTS, PASSWORD, Hub, MakeUser, Shop

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__xss=1"><b>bold?</b>'


async def _agent_page(browser: Browser, hub: Hub, username: str) -> Page:
    context = await browser.new_context(locale="en-US", viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    await page.goto(f"{hub.url}/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url(f"{hub.url}/")
    await page.goto(f"{hub.url}/inbox")
    await page.wait_for_selector('body[data-live="connected"]')
    return page


async def test_a_visitor_and_an_agent_talk_live_through_widget_and_inbox(
    browser: Browser, served_hub: Hub, shop: Shop, make_user: MakeUser
) -> None:
    agent = await make_user(Role.AGENT)
    inbox = await _agent_page(browser, served_hub, agent.username)  # the agent is online
    visitor_context = await browser.new_context(locale="en-US", viewport={"width": 1000, "height": 800})
    visitor = await visitor_context.new_page()
    await visitor.goto(f"{shop.origin}/credit?utm_source=google")
    await visitor.click("#switchboard-chat .launcher")
    prechat = visitor.locator("#switchboard-chat form.prechat")
    await prechat.locator("input[name=name]").fill("Ion Rusu")
    await prechat.locator("input[name=phone]").fill("069 555 444")
    await prechat.locator("button").click()

    await visitor.fill("#switchboard-chat .compose textarea", "Bună! Vreau un credit de 20 000 lei.")
    await visitor.keyboard.press("Enter")
    item = inbox.locator(".conversation-item", has_text="Ion Rusu")
    await item.wait_for(timeout=1000)  # live, no reload
    await item.click()
    await inbox.locator(".message", has_text="Vreau un credit de 20 000 lei").wait_for(timeout=1000)

    await visitor.fill("#switchboard-chat .compose textarea", XSS)
    await visitor.keyboard.press("Enter")
    shown = inbox.locator(".message", has_text="bold?")
    await shown.wait_for(timeout=1000)
    assert XSS in await shown.inner_text()
    assert await inbox.evaluate("window.__xss") is None
    assert await inbox.locator("#thread b").count() == 0

    await inbox.fill("#reply-body", "Bună ziua, Ion! Pentru 20 000 lei, rata este de la 650 lei pe lună.")
    await inbox.press("#reply-body", "Enter")
    reply = visitor.locator("#switchboard-chat .msg.agent", has_text="650 lei pe lună")
    await reply.wait_for(timeout=5000)
    await expect(inbox.locator(".message-out", has_text="650 lei")).to_have_attribute(
        "data-status", "sent", timeout=3000
    )
    ARTIFACTS.mkdir(exist_ok=True)
    await inbox.screenshot(path=str(ARTIFACTS / "e2e-agent.png"))
    await visitor.screenshot(path=str(ARTIFACTS / "e2e-visitor.png"))
    await visitor_context.close()
    await inbox.context.close()
