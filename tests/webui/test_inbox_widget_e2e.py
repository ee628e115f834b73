"""The whole way, in two Chromium pages at once: a visitor writes in the widget on a shop's site, the
logged-in agent sees it in the list and the thread within a second without reloading, replies with Enter,
and the visitor sees the reply; each sees the other typing, and the agent picks the channel to reply on.
Customer text that looks like HTML stays text on the agent's screen."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from channels.model import Channel, InboundMessage
from switchboard.permissions import Role
from tests.conftest import ARTIFACTS, PASSWORD, Hub, MakeUser, Shop
from webui import keys

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


async def test_typing_shows_both_ways_and_the_reply_goes_to_the_picked_channel(
    browser: Browser, served_hub: Hub, shop: Shop, make_user: MakeUser
) -> None:
    agent = await make_user(Role.AGENT)
    inbox = await _agent_page(browser, served_hub, agent.username)
    visitor_context = await browser.new_context(locale="en-US", viewport={"width": 1000, "height": 800})
    visitor = await visitor_context.new_page()
    await visitor.goto(shop.origin)
    await visitor.click("#switchboard-chat .launcher")
    prechat = visitor.locator("#switchboard-chat form.prechat")
    await prechat.locator("input[name=name]").fill("Ana Ciobanu")
    await prechat.locator("input[name=phone]").fill("069 777 888")
    await prechat.locator("button").click()
    compose = visitor.locator("#switchboard-chat .compose textarea")
    await compose.fill("Salut!")
    await visitor.keyboard.press("Enter")
    await expect(visitor.locator("#switchboard-chat")).to_have_attribute("data-transport", "websocket")

    item = inbox.locator(".conversation-item", has_text="Ana Ciobanu")
    await item.click()
    await inbox.locator(".message", has_text="Salut!").wait_for(timeout=2000)
    picker_box = inbox.locator("#reply-channel-box")
    await expect(picker_box).to_be_hidden()  # one identity: nothing to pick

    # the visitor types: "typing…" under the thread header and in the list, gone a few seconds later
    await compose.press_sequentially("Mai am o întrebare", delay=20)
    await expect(inbox.locator("#thread-typing")).to_be_visible(timeout=2000)
    await expect(item.locator(".conversation-typing")).to_have_text("typing…")
    await expect(inbox.locator("#thread-typing")).to_be_hidden(timeout=7000)

    # the agent types a reply: the visitor sees "typing…"; a note says nothing
    await inbox.locator("#reply-body").press_sequentially("Da, vă ascult", delay=20)
    await expect(visitor.locator("#switchboard-chat .typing")).to_have_text("typing…", timeout=2000)
    await inbox.fill("#reply-body", "")

    # the same customer writes on Telegram too (matched by phone): now the reply box offers both
    await served_hub.app[keys.INBOX].ingest(
        InboundMessage(
            channel=Channel.TELEGRAM,
            account_id="bot",
            external_id="tg-1",
            sender_id="555",
            body="Sunt tot eu, pe Telegram",
            sender_name="Ana C.",
            sender_phone="+37369777888",
        )
    )
    await inbox.locator(".message", has_text="pe Telegram").wait_for(timeout=2000)
    await expect(picker_box).to_be_visible(timeout=3000)
    picker = inbox.locator("#reply-channel")
    assert await picker.input_value() == "telegram|bot"  # the customer's last channel
    assert await picker.locator("option").count() == 2
    await inbox.check("#reply-note")
    await expect(picker_box).to_be_hidden()  # never a channel for a note
    await inbox.uncheck("#reply-note")
    await picker.select_option(f"webchat|{shop.widget.account_id}")
    await inbox.fill("#reply-body", "Răspund pe chat")
    await inbox.press("#reply-body", "Enter")
    await visitor.locator("#switchboard-chat .msg.agent", has_text="Răspund pe chat").wait_for(timeout=5000)
    sent = inbox.locator(".message-out", has_text="Răspund pe chat")
    await expect(sent.locator(".channel-badge")).to_have_attribute("data-channel", "webchat")
    ARTIFACTS.mkdir(exist_ok=True)
    await inbox.screenshot(path=str(ARTIFACTS / "e2e-picker.png"))
    await visitor_context.close()
    await inbox.context.close()
