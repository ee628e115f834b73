"""In Chromium: an agent opens a WhatsApp conversation whose 24-hour window has closed, sees why a free reply
cannot go, picks an approved template, fills its variables and sends it; the template reaches Twilio."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import Channel, InboundMessage
from inbox.models import Message
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.channels.conftest import drain
from tests.channels.twilio.conftest import CUSTOMER, make_account
from tests.conftest import Hub, MakeUser, browser_login
from tests.fakes.twilio import FakeTwilio
from webui import keys

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings: Settings, fake: FakeTwilio) -> Settings:
    """The served hub talks to the fake Twilio."""
    return settings.model_copy(update={"twilio_api_base": fake.base_url})


async def test_an_agent_sends_a_whatsapp_template_after_the_window_closed(
    browser: Browser,
    served_hub: Hub,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    fake: FakeTwilio,
    make_user: MakeUser,
    tmp_path: Path,
) -> None:
    whatsapp = await make_account(
        sessions,
        settings,
        Channel.WHATSAPP,
        templates="Reminder | HX" + "1a" * 16 + " | Bună ziua, {{1}}! Rata de {{2}} lei este scadentă mâine.",
    )
    got = await served_hub.app[keys.INBOX].ingest(
        InboundMessage(
            Channel.WHATSAPP,
            str(whatsapp.id),
            "SM" + "0" * 32,
            CUSTOMER,
            "Bună ziua, am o întrebare despre rată.",
            sender_name="Ion Popescu",
            sender_phone=CUSTOMER,
        )
    )
    async with sessions() as db, db.begin():
        yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(hours=30)
        await db.execute(update(Message).where(Message.direction == "in").values(created_at=yesterday))
    agent = await make_user(Role.ADMIN)

    context = await browser.new_context(locale="en-US", viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await browser_login(page, served_hub.url, agent.username)
    await page.goto(f"{served_hub.url}/inbox/{got.conversation_id}")
    bar = page.locator("#reply-window")
    await expect(bar).to_contain_text("only an approved template can be sent")

    # A free reply is refused with the reason; nothing is queued.
    await page.fill("#reply-body", "Mai sunteți acolo?")
    await page.press("#reply-body", "Enter")
    await expect(page.locator("#reply-error")).to_contain_text("24 hours")

    await page.fill("#template-picker input[name='1']", "Ion")
    await page.fill("#template-picker input[name='2']", "1200")
    await expect(page.locator("#template-preview")).to_have_text(
        "Bună ziua, Ion! Rata de 1200 lei este scadentă mâine."
    )
    await page.screenshot(path=str(tmp_path / "whatsapp-template.png"), full_page=True)
    await page.click("#template-send")
    sent = page.locator(".message-out", has_text="Rata de 1200 lei")
    await sent.wait_for(timeout=3000)
    await drain(served_hub.app)
    await expect(sent).to_have_attribute("data-status", "sent", timeout=3000)
    [call] = fake.calls_of("messages")
    assert call.form["ContentSid"] == "HX" + "1a" * 16
    assert call.form["To"] == f"whatsapp:{CUSTOMER}"
    await page.screenshot(path=str(tmp_path / "whatsapp-template-sent.png"), full_page=True)
    assert errors == []
    await context.close()
