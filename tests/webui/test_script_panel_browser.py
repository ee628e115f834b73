"""The sales-script panel in Debian's Chromium: an agent opens a customer's chat, starts the suggested
script, puts its greeting in the reply box, answers the questions with a button and a typed amount, and
the customer's lead holds the amount as the script ends. The screenshot is for a person to look at."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select, update

from channels.model import Channel, InboundMessage
from crm_core.models import Lead
from inbox.calls import CALL_TOPIC
from inbox.calls_model import Call
from switchboard.audit import SYSTEM
from switchboard.db import utcnow
from switchboard.permissions import Role
from tests.conftest import ARTIFACTS, Hub, MakeUser, browser_login
from tests.webui.test_script_panel_api import PHONE_SCRIPT, SCRIPT
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


async def test_the_panel_follows_a_call_answered_and_ended_while_the_chat_is_open(
    browser: Browser, served_hub: Hub, make_user: MakeUser
) -> None:
    """The chat's script is offered; the agent answers the customer's call (the live `call` frame of the
    call log) and the panel offers the phone's script with the call badge; the call ends and the chat's
    script is back — without reopening the conversation."""
    app = served_hub.app
    async with app[keys.SESSIONS]() as db, db.begin():
        for text in (SCRIPT, PHONE_SCRIPT):
            draft = await app[keys.SCRIPTS].import_yaml(db, SYSTEM, text)
            await app[keys.SCRIPTS].publish(db, SYSTEM, draft.id)
    stored = await app[keys.INBOX].ingest(
        InboundMessage(
            channel=Channel.TELEGRAM, account_id="acc", external_id="t-2", sender_id="43", body="Salut"
        )
    )
    agent = await make_user(Role.AGENT)
    context = await browser.new_context(locale="en-GB", viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    async def call_event(event: str, call_id: int) -> None:
        card = {"event": event, "call_id": call_id, "linkedid": "1733300000.2", "agent_id": agent.id}
        await app[keys.BUS].publish(
            CALL_TOPIC, {"user_id": agent.id, "call": card | {"conversation_id": stored.conversation_id}}
        )

    try:
        await browser_login(page, served_hub.url, agent.username)
        await page.goto(f"{served_hub.url}/inbox/{stored.conversation_id}")
        await expect(page.locator("body")).to_have_attribute("data-live", "connected")
        panel = page.locator("#script-panel")
        await expect(panel.locator("#script-choice")).to_contain_text("Credit rapid")
        await expect(panel.locator(".script-on-call")).to_have_count(0)

        async with app[keys.SESSIONS]() as db, db.begin():
            call = Call(
                linkedid="1733300000.2",
                direction="in",
                customer_number="+37369000043",
                agent_id=agent.id,
                conversation_id=stored.conversation_id,
                started_at=utcnow(),
                answered_at=utcnow(),
            )
            db.add(call)
            await db.flush()
            call_id = call.id
        await call_event("answered", call_id)
        await expect(panel.locator("#script-choice")).to_contain_text("Primul apel")
        await expect(panel.locator(".script-on-call")).to_have_count(1)
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "script_panel_call.png"))

        async with app[keys.SESSIONS]() as db, db.begin():
            await db.execute(update(Call).where(Call.id == call_id).values(ended=True, ended_at=utcnow()))
        await call_event("ended", call_id)
        await expect(panel.locator("#script-choice")).to_contain_text("Credit rapid")
        await expect(panel.locator(".script-on-call")).to_have_count(0)
        assert errors == []
    finally:
        await context.close()
