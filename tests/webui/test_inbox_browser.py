"""The agent workspace in Debian's Chromium: messages arrive live without a reload, Enter sends, delivery
ticks move, customer text that looks like HTML stays text. The screenshot is for a person to look at."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from channels.model import (
    Channel,
    DeliveryStatus,
    DeliveryUpdate,
    InboundMessage,
    MessageKind,
    OutboundMessage,
    Sent,
    VisitSource,
)
from inbox.service import IngestResult
from switchboard.jobs import PermanentJobError
from switchboard.permissions import Role
from tests.conftest import ARTIFACTS, Hub, MakeUser, browser_login
from webui import keys
from webui.live import LIVE_SOCKETS

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__xss=1">'
_ids = itertools.count(1)


async def _customer_writes(hub: Hub, sender: str, body: str, **kw: Any) -> IngestResult:
    """What a channel adapter does with a provider's webhook."""
    return await hub.app[keys.INBOX].ingest(
        InboundMessage(
            channel=kw.pop("channel", Channel.WEBCHAT),
            account_id="site",
            external_id=f"ext-{next(_ids)}",
            sender_id=sender,
            body=body,
            **kw,
        )
    )


class FlakyChannel:
    """A web chat adapter whose first send is refused by the provider and whose later sends go out."""

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def __call__(self, outbound: OutboundMessage) -> Sent:
        self.sent.append(outbound)
        if len(self.sent) == 1:
            raise PermanentJobError("visitor closed the chat window")
        return Sent(f"out-{outbound.message_id}")


async def test_an_agent_works_a_conversation_live(
    browser: Browser, served_hub: Hub, make_user: MakeUser
) -> None:
    agent = await make_user(Role.AGENT)
    channel = FlakyChannel()
    served_hub.app[keys.DELIVERY].add_sender(Channel.WEBCHAT, channel)
    earlier = await _customer_writes(
        served_hub,
        "tg-42",
        "Salut, cât costă un credit de consum?",
        channel=Channel.TELEGRAM,
        sender_name="Vasile Ceban",
    )
    context = await browser.new_context(locale="en-US", viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    await browser_login(page, served_hub.url, agent.username)
    await page.goto(f"{served_hub.url}/inbox")
    await page.wait_for_selector('body[data-live="connected"]')
    await expect(page.locator(".conversation-item")).to_have_count(1)

    # A visitor writes on the website: the conversation shows up without a reload, within a second.
    source = VisitSource(
        page_url="https://credit.example/ipoteca?utm_source=facebook",
        utm_source="facebook",
        utm_campaign="toamna-2026",
    )
    first = await _customer_writes(
        served_hub,
        "visitor-1",
        "Bună ziua! Aș vrea un credit ipotecar.",
        sender_name="Maria Rusu",
        source=source,
    )
    item = page.locator(f'.conversation-item[data-id="{first.conversation_id}"]')
    await item.wait_for(timeout=1000)
    await expect(item.locator(".conversation-unread")).to_have_text("1")

    await item.click()
    await page.wait_for_url(f"{served_hub.url}/inbox/{first.conversation_id}")
    await page.locator(f'.message[data-id="{first.message_id}"]').wait_for()
    await expect(page.locator("#contact-panel #contact-name")).to_have_text("Maria Rusu")
    await expect(page.locator("#contact-leads")).to_contain_text("toamna-2026")
    await expect(page.locator("#reply-body")).to_be_focused()

    # The next message lands in the open thread within a second.
    second = await _customer_writes(served_hub, "visitor-1", "Am un salariu de 15 000 lei.")
    await page.locator(f'.message[data-id="{second.message_id}"]').wait_for(timeout=1000)

    # Enter sends; the provider refuses the first reply, and the reason shows in red.
    await page.fill("#reply-body", "Bună, Maria! Vă ajut imediat.")
    await page.press("#reply-body", "Enter")
    failed = page.locator(".message-out.message-failed", has_text="Vă ajut imediat")
    await failed.wait_for(timeout=3000)
    await expect(failed.locator(".message-error")).to_contain_text("visitor closed the chat window")
    await expect(page.locator("#reply-body")).to_have_value("")

    # Shift+Enter starts a new line instead of sending.
    await page.type("#reply-body", "Avansul minim este 10%.")
    await page.press("#reply-body", "Shift+Enter")
    await page.type("#reply-body", "Dobânda: de la 7,9%.")
    await expect(page.locator("#reply-body")).to_have_value("Avansul minim este 10%.\nDobânda: de la 7,9%.")
    await page.press("#reply-body", "Enter")
    sent = page.locator(".message-out", has_text="Dobânda")
    await expect(sent).to_have_attribute("data-status", "sent", timeout=3000)
    assert channel.sent[-1].body == "Avansul minim este 10%.\nDobânda: de la 7,9%."

    # The customer reads it: the ticks turn blue, live.
    await served_hub.app[keys.INBOX].update_delivery(
        DeliveryUpdate(Channel.WEBCHAT, "site", f"out-{channel.sent[-1].message_id}", DeliveryStatus.READ)
    )
    await expect(sent.locator(".ticks-read")).to_have_text("✓✓", timeout=1000)

    # A private note looks different and is never sent.
    await page.check("#reply-note")
    await page.fill("#reply-body", "Clientă serioasă, sună-o mâine la 10.")
    await page.press("#reply-body", "Enter")
    note = page.locator(".message-note", has_text="sună-o mâine")
    await note.wait_for(timeout=2000)
    await expect(note).to_contain_text("Private note")
    await page.uncheck("#reply-note")

    # Customer text that looks like HTML is shown as text and never runs.
    xss = await _customer_writes(served_hub, "visitor-1", XSS)
    body = page.locator(f'.message[data-id="{xss.message_id}"] .message-body')
    await body.wait_for(timeout=1000)
    await expect(body).to_have_text(XSS)
    assert await page.locator("#thread img, #conversation-list img").count() == 0
    assert await page.evaluate("typeof window.__xss") == "undefined"

    # Keyboard: k / j move between conversations when not typing; Alt+arrows work from the reply box.
    await page.locator("#thread").click()
    ids = await page.locator(".conversation-item").evaluate_all("els => els.map(e => Number(e.dataset.id))")
    assert set(ids) == {first.conversation_id, earlier.conversation_id}
    other = earlier.conversation_id
    await page.keyboard.press("j" if ids.index(other) > ids.index(first.conversation_id) else "k")
    await page.wait_for_url(f"{served_hub.url}/inbox/{other}")
    await expect(page.locator("#contact-panel #contact-name")).to_have_text("Vasile Ceban")
    await page.locator("#reply-body").focus()
    await page.keyboard.press(
        "Alt+ArrowDown" if ids.index(first.conversation_id) > ids.index(other) else "Alt+ArrowUp"
    )
    await page.wait_for_url(f"{served_hub.url}/inbox/{first.conversation_id}")
    await page.locator(f'.message[data-id="{xss.message_id}"]').wait_for()

    # Everything has been read: the tabs' unread badges settle to none.
    await expect(page.locator("#unread-all")).to_be_hidden(timeout=5000)
    await expect(item).to_contain_text("You")  # replying took it

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "inbox-agent.png"))
    assert await page.evaluate("typeof window.__xss") == "undefined"
    assert page_errors == []
    await context.close()


async def test_the_feed_reconnects_and_catches_up(
    browser: Browser, served_hub: Hub, make_user: MakeUser
) -> None:
    agent = await make_user(Role.AGENT)
    first = await _customer_writes(served_hub, "visitor-9", "Prima întrebare")
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    await browser_login(page, served_hub.url, agent.username)
    await page.goto(f"{served_hub.url}/inbox/{first.conversation_id}")
    await page.wait_for_selector('body[data-live="connected"]')
    live = await _customer_writes(served_hub, "visitor-9", "Pe viu")
    await page.locator(f'.message[data-id="{live.message_id}"]').wait_for(timeout=1000)

    # The server drops every feed (a deploy); what arrives meanwhile still reaches the thread, once.
    for ws in list(served_hub.app[LIVE_SOCKETS]):
        await ws.close()
    await page.wait_for_selector('body[data-live="disconnected"]')
    missed = await _customer_writes(served_hub, "visitor-9", "Scrisă cât eram deconectați")
    await page.wait_for_selector('body[data-live="connected"]', timeout=5000)
    await page.locator(f'.message[data-id="{missed.message_id}"]').wait_for(timeout=2000)
    await expect(page.locator(f'.message[data-id="{live.message_id}"]')).to_have_count(1)
    await expect(page.locator(f'.message[data-id="{missed.message_id}"]')).to_have_count(1)

    # A phone call is an item of the same thread, marked as a call.
    call = await _customer_writes(served_hub, "visitor-9", "Apel pierdut, 0:00", kind=MessageKind.CALL)
    item = page.locator(f'.message-call[data-id="{call.message_id}"]')
    await item.wait_for(timeout=1000)
    await expect(item.locator(".message-label")).to_have_text("Call")
    await context.close()
