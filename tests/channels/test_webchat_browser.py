"""The widget in a real browser: a shop's page on another origin embeds it from the hub with one script
tag; the visitor writes, the agent answers, the answer appears, as text even when it looks like HTML."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.models import Contact, Lead
from inbox.models import Message
from inbox.service import Viewer
from switchboard import accounts
from switchboard.accounts_model import User
from switchboard.app import login_policy
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.conftest import ARTIFACTS, Hub, MakeUser, Shop
from webui import keys

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


async def _an_agent_is_at_work(
    sessions: async_sessionmaker[AsyncSession], make_user: MakeUser, settings: Settings
) -> Viewer:
    agent = await make_user(Role.AGENT)
    async with sessions() as db, db.begin():
        user = await db.get(User, agent.id)
        assert user is not None
        await accounts.start_web_session(db, login_policy(settings), user, ip="127.0.0.1", user_agent="test")
    return Viewer(agent.id, Role.AGENT, user.branch_id)


async def _stored(sessions: async_sessionmaker[AsyncSession], body: str, page: Page) -> Message:
    for _ in range(100):
        async with sessions() as db:
            found = await db.scalar(select(Message).where(Message.body == body))
        if found is not None:
            return found
        await page.wait_for_timeout(100)
    raise AssertionError(f"message {body!r} was never stored")


async def test_a_visitor_chats_from_another_site_and_the_reply_shows_as_text(
    browser: Browser,
    served_hub: Hub,
    shop: Shop,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
    settings: Settings,
) -> None:
    viewer = await _an_agent_is_at_work(sessions, make_user, settings)
    context = await browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(
        f"{shop.origin}/loans?utm_source=facebook&utm_campaign=spring", referer="https://www.facebook.com/"
    )
    await page.click("#switchboard-chat .launcher")
    assert await page.locator("#switchboard-chat .messages .msg").first.inner_text() == "Hi there!"
    assert await page.locator("#switchboard-chat .status").is_hidden()  # someone is online
    prechat = page.locator("#switchboard-chat form.prechat")
    await prechat.locator("input[name=name]").fill("Ana Rusu")
    await prechat.locator("input[name=phone]").fill("079 111 222")
    await prechat.locator("button").click()
    await page.fill("#switchboard-chat .compose textarea", "Hello, how much is a 10000 lei loan?")
    await page.keyboard.press("Enter")

    stored = await _stored(sessions, "Hello, how much is a 10000 lei loan?", page)
    async with sessions() as db:
        lead = await db.scalar(select(Lead))
    assert (
        lead is not None and lead.page_url == f"{shop.origin}/loans?utm_source=facebook&utm_campaign=spring"
    )
    assert (lead.utm_source, lead.utm_campaign, lead.referrer) == (
        "facebook",
        "spring",
        "https://www.facebook.com/",
    )
    async with sessions() as db:
        contact = await db.get(Contact, lead.contact_id)
    assert contact is not None and (contact.first_name, contact.phone) == ("Ana", "+37379111222")
    await page.locator("#switchboard-chat .msg.mine:not(.pending)").wait_for()

    inbox = served_hub.app[keys.INBOX]
    await inbox.send(viewer, stored.conversation_id, "Internal: check credit history", note=True)
    await inbox.send(viewer, stored.conversation_id, XSS)
    reply = page.locator("#switchboard-chat .msg.agent").nth(1)
    await reply.wait_for(timeout=10_000)
    assert await reply.inner_text() == XSS
    assert await page.get_attribute("#switchboard-chat", "data-transport") == "websocket"
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator("#switchboard-chat img").count() == 0
    assert "Internal" not in await page.locator("#switchboard-chat .messages").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "widget.png"))

    # The visitor comes back later: the same anonymous identity, the history is still there.
    await page.reload()
    await page.click("#switchboard-chat .launcher")
    await page.locator("#switchboard-chat .msg.agent").nth(1).wait_for()
    assert await page.locator("#switchboard-chat .msg.mine").count() == 1
    assert errors == []
    await context.close()


async def test_without_websockets_and_agents_it_takes_a_message_and_polls_for_the_reply(
    browser: Browser,
    served_hub: Hub,
    shop: Shop,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
) -> None:
    context = await browser.new_context(locale="ro-RO", viewport={"width": 1280, "height": 800})
    await context.add_init_script("window.WebSocket = undefined;")  # a proxy that blocks sockets
    page = await context.new_page()
    await page.goto(f"{shop.origin}/")
    await page.click("#switchboard-chat .launcher")
    offline = page.locator("#switchboard-chat form.offline")
    await offline.wait_for()
    assert "No one is online" in await page.locator("#switchboard-chat .status").inner_text()
    await offline.locator("textarea").fill("Call me about a mortgage")
    await offline.locator("button").click()
    assert await offline.locator(".error").inner_text() == "Please give a phone number."
    await offline.locator("input").fill("069 555 123")
    await offline.locator("button").click()

    stored = await _stored(sessions, "Call me about a mortgage", page)
    async with sessions() as db:
        contact = await db.scalar(select(Contact))
    assert contact is not None and contact.phone == "+37369555123"

    admin = await make_user(Role.ADMIN)
    await served_hub.app[keys.INBOX].send(
        Viewer(admin.id, Role.ADMIN, None), stored.conversation_id, "We will call at 5"
    )
    await page.locator("#switchboard-chat .msg.agent", has_text="We will call at 5").wait_for(timeout=10_000)
    assert await page.get_attribute("#switchboard-chat", "data-transport") == "polling"
    await page.screenshot(path=str(ARTIFACTS / "widget-offline.png"))
    await context.close()
