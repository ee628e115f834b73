"""Linking two contacts from the inbox's contact panel: `GET /api/v1/contacts/search` finds only customers
the caller may see, `POST /api/v1/contacts/{id}/merge` makes two customers one — their conversations,
messages, channels and leads — and afterwards the customer writes into one thread on either channel."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.model import Channel, InboundMessage, VisitSource
from crm_core.models import Contact, ContactIdentity, Lead
from inbox.models import Conversation, Message
from inbox.service import IngestResult
from switchboard.audit_model import AuditEntry
from switchboard.bus import Event
from switchboard.permissions import Role
from tests.conftest import (
    Hub,
    MakeUser,
    Person,
    browser_login,
    login,
    open_in_inbox,
    page_csrf,
    second_browser,
)
from webui import keys

_ids = itertools.count(1)


def _inbound(channel: Channel, sender: str, body: str, **kw: Any) -> InboundMessage:
    return InboundMessage(
        channel=channel, account_id="acc", external_id=f"m-{next(_ids)}", sender_id=sender, body=body, **kw
    )


async def _writes(app: web.Application, channel: Channel, sender: str, body: str, **kw: Any) -> IngestResult:
    """What a channel adapter does with a provider's webhook."""
    return await app[keys.INBOX].ingest(_inbound(channel, sender, body, **kw))


async def _contact_of(sessions: async_sessionmaker[AsyncSession], conversation_id: int) -> int:
    async with sessions() as db:
        contact_id = await db.scalar(
            select(Conversation.contact_id).where(Conversation.id == conversation_id)
        )
    assert contact_id is not None
    return contact_id


@dataclass
class Agent:
    person: Person
    client: TestClient
    csrf: str

    async def search(self, query: str, exclude: int | None = None) -> tuple[int, Any]:
        params = {"q": query} | ({"exclude": str(exclude)} if exclude else {})
        response = await self.client.get("/api/v1/contacts/search", params=params)
        return response.status, await response.json()

    async def merge(self, keep_id: int, body: Any) -> tuple[int, Any]:
        response = await self.client.post(
            f"/api/v1/contacts/{keep_id}/merge",
            data=body if isinstance(body, str) else json.dumps(body),
            headers={"X-CSRF-Token": self.csrf, "Content-Type": "application/json"},
        )
        return response.status, await response.json()


@pytest.fixture
async def sign_in(client: TestClient, make_user: MakeUser) -> Any:
    """A new user of `role`, logged in through their own browser on the running app."""
    opened: list[TestClient] = []

    async def sign_in(role: Role) -> Agent:
        person = await make_user(role)
        browser = client if not opened else await second_browser(client)
        opened.append(browser)
        assert (await login(browser, person.username)).status == 302
        return Agent(person, browser, await page_csrf(browser, "/profile"))

    yield sign_in
    for browser in opened[1:]:
        await browser.session.close()


async def _snapshot(sessions: async_sessionmaker[AsyncSession]) -> tuple[Any, ...]:
    async with sessions() as db:
        return (
            list((await db.execute(select(Contact.id, Contact.first_name).order_by(Contact.id))).all()),
            list(
                (
                    await db.execute(
                        select(Conversation.id, Conversation.contact_id).order_by(Conversation.id)
                    )
                ).all()
            ),
            list((await db.execute(select(Message.id, Message.conversation_id).order_by(Message.id))).all()),
            list((await db.execute(select(ContactIdentity.id, ContactIdentity.contact_id))).all()),
            await db.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.module == "contacts")),
        )


async def test_linking_two_customers_makes_one_thread_on_both_channels(
    app: web.Application, sign_in: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    agent = await sign_in(Role.AGENT)
    source = VisitSource(page_url="https://credit.example/", utm_source="google", utm_campaign="ipoteca")
    web_1 = await _writes(app, Channel.WEBCHAT, "visitor-1", "Bună ziua", sender_name="Maria", source=source)
    viber_1 = await _writes(
        app, Channel.VIBER, "vb-1", "Salut", sender_name="Maria Rusu", sender_phone="069 123 456"
    )
    viber_2 = await _writes(app, Channel.VIBER, "vb-1", "Sunt tot eu")
    keep_id = await _contact_of(sessions, web_1.conversation_id)
    gone_id = await _contact_of(sessions, viber_1.conversation_id)
    async with sessions() as db:
        web_conversation = await db.get(Conversation, web_1.conversation_id)
    assert web_conversation is not None

    async with app[keys.BUS].subscribe("inbox.conversation") as events:
        status, data = await agent.merge(keep_id, {"merge_id": gone_id})
        assert status == 200, data
        frames: list[Event] = []
        while len(frames) < 2:
            frames.append(await asyncio.wait_for(events.__anext__(), 1))

    # The two open conversations are one now: the later one, holding every message, on the kept customer.
    thread_id = viber_1.conversation_id
    assert data["conversation_id"] == thread_id
    assert data["moved"] == {"conversations": 1, "messages": 1, "identities": 1, "leads": 1}
    card = data["contact"]
    assert (card["id"], card["name"], card["phone"]) == (keep_id, "Maria Rusu", "+37369123456")
    assert {i["channel"] for i in card["identities"]} == {"webchat", "viber"}
    assert {lead["source_channel"] for lead in card["leads"]} == {"webchat", "viber"}
    async with sessions() as db:
        assert await db.get(Contact, gone_id) is None
        [thread] = list(await db.scalars(select(Conversation).where(Conversation.contact_id == keep_id)))
        messages = list(await db.scalars(select(Message.id).where(Message.conversation_id == thread_id)))
        authors = set(await db.scalars(select(Message.author_contact_id)))
        leads = list(await db.scalars(select(Lead.contact_id)))
        audit = list(await db.scalars(select(AuditEntry).where(AuditEntry.module == "contacts")))
    assert thread.id == thread_id and thread.status == "open"
    assert sorted(messages) == sorted([web_1.message_id, viber_1.message_id, viber_2.message_id])
    assert thread.unread == 3 and thread.waiting_since == web_conversation.waiting_since
    assert authors == {keep_id} and leads == [keep_id, keep_id]
    assert {(e.action, e.record_id, e.username) for e in audit} == {
        ("update", str(keep_id), agent.person.username),
        ("delete", str(gone_id), agent.person.username),
    }
    # Open screens hear of it: the emptied conversation points at the thread it went into.
    announced = {frame.data["conversation"]["id"]: frame.data["conversation"] for frame in frames}
    assert announced[web_1.conversation_id]["status"] == "merged"
    assert announced[web_1.conversation_id]["merged_into"] == thread_id
    assert announced[thread_id]["contact_id"] == keep_id

    # The customer writes again on either channel: both land in the one conversation.
    again_web = await _writes(app, Channel.WEBCHAT, "visitor-1", "Mai sunt aici")
    again_viber = await _writes(app, Channel.VIBER, "vb-1", "Și aici")
    assert again_web.conversation_id == again_viber.conversation_id == thread_id
    assert not again_web.new_conversation and not again_viber.new_conversation
    response = await agent.client.get(f"/api/v1/conversations/{thread_id}")
    shown = await response.json()
    assert {m["channel"] for m in shown["messages"]} == {"webchat", "viber"} and len(shown["messages"]) == 5


async def test_an_open_conversation_older_than_a_resolved_one_still_gets_the_next_message(
    app: web.Application, sign_in: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The thread is the later conversation even when it was resolved: the inbox adds a customer's
    message to their latest conversation, so an open older one next to it would clash."""
    agent = await sign_in(Role.SUPERVISOR)
    open_one = await _writes(app, Channel.WEBCHAT, "visitor-9", "Aștept un răspuns", sender_name="Ion")
    resolved = await _writes(app, Channel.TELEGRAM, "tg-9", "Mulțumesc", sender_name="Ion Popescu")
    async with sessions() as db, db.begin():
        await db.execute(
            update(Conversation).where(Conversation.id == resolved.conversation_id).values(status="resolved")
        )
    keep_id = await _contact_of(sessions, open_one.conversation_id)
    gone_id = await _contact_of(sessions, resolved.conversation_id)
    status, data = await agent.merge(keep_id, {"merge_id": gone_id})
    assert status == 200, data
    assert data["conversation_id"] == resolved.conversation_id
    async with sessions() as db:
        [thread] = list(await db.scalars(select(Conversation).where(Conversation.contact_id == keep_id)))
    assert (thread.id, thread.status, thread.waiting_since is not None) == (
        resolved.conversation_id,
        "open",
        True,
    )
    later = await _writes(app, Channel.TELEGRAM, "tg-9", "Încă o întrebare")
    assert later.conversation_id == resolved.conversation_id and not later.new_conversation


async def test_an_agent_who_cannot_see_one_side_gets_404_and_nothing_changes(
    app: web.Application, sign_in: Any, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    agent = await sign_in(Role.AGENT)
    marketer = await sign_in(Role.MARKETER)
    colleague = await make_user(Role.AGENT)
    mine = await _writes(app, Channel.WEBCHAT, "visitor-1", "Bună", sender_name="Maria")
    theirs = await _writes(app, Channel.VIBER, "vb-1", "Salut", sender_name="Maria Rusu")
    async with sessions() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id == theirs.conversation_id)
            .values(assignee_id=colleague.id)
        )
    keep_id = await _contact_of(sessions, mine.conversation_id)
    hidden_id = await _contact_of(sessions, theirs.conversation_id)
    before = await _snapshot(sessions)
    for person, keep, gone in (
        (agent, keep_id, hidden_id),
        (agent, hidden_id, keep_id),
        (agent, keep_id, 424242),
        (marketer, keep_id, hidden_id),
    ):
        status, data = await person.merge(keep, {"merge_id": gone})
        assert status == 404, (person.person.role, data)
        assert data["error"]["reason"] == "No such contact."
    assert await _snapshot(sessions) == before


async def test_a_contact_is_not_merged_into_itself_and_bad_bodies_are_refused(
    app: web.Application, sign_in: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    agent = await sign_in(Role.AGENT)
    mine = await _writes(app, Channel.WEBCHAT, "visitor-1", "Bună", sender_name="Maria")
    keep_id = await _contact_of(sessions, mine.conversation_id)
    before = await _snapshot(sessions)
    status, data = await agent.merge(keep_id, {"merge_id": keep_id})
    assert status == 422 and data["error"]["field"] == "merge_id" and "itself" in data["error"]["reason"]
    for body in ({}, {"merge_id": "7"}, {"merge_id": True}, {"merge_id": -1}):
        status, data = await agent.merge(keep_id, body)
        assert status == 422 and data["error"]["field"] == "merge_id", body
    assert (await agent.merge(keep_id, "not json"))[0] == 400
    assert (await agent.merge(keep_id, "[1]"))[0] == 400
    assert await _snapshot(sessions) == before


async def test_search_finds_only_customers_the_caller_may_see(
    app: web.Application, sign_in: Any, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    agent = await sign_in(Role.AGENT)
    admin = await sign_in(Role.ADMIN)
    marketer = await sign_in(Role.MARKETER)
    colleague = await make_user(Role.AGENT)
    visible = await _writes(app, Channel.WEBCHAT, "visitor-1", "Bună", sender_name="Maria Rusu")
    own = await _writes(
        app, Channel.VIBER, "vb-1", "Salut", sender_name="Maria Ceban", sender_phone="069123456"
    )
    hidden = await _writes(app, Channel.TELEGRAM, "tg-1", "Privet", sender_name="Maria Hidden")
    async with sessions() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id == own.conversation_id)
            .values(assignee_id=agent.person.id)
        )
        await db.execute(
            update(Conversation)
            .where(Conversation.id == hidden.conversation_id)
            .values(assignee_id=colleague.id)
        )
        for n in range(22):  # more than a page of namesakes nobody is talking to: no conversation at all
            db.add(Contact(first_name="Maria", last_name=f"Nr{n}"))
    ids = {
        name: await _contact_of(sessions, result.conversation_id)
        for name, result in (("visible", visible), ("own", own), ("hidden", hidden))
    }

    status, data = await agent.search("maria")
    assert status == 200, data
    assert {c["id"] for c in data["contacts"]} == {ids["visible"], ids["own"]}
    assert (await agent.search("maria", exclude=ids["visible"]))[1]["contacts"][0]["id"] == ids["own"]
    [hit] = (await agent.search("069 123 456"))[1]["contacts"]
    assert hit == {
        "id": ids["own"],
        "name": "Maria Ceban",
        "phone": "+37369123456",
        "email": None,
        "channels": ["viber"],
    }
    assert (await agent.search("hidden"))[1]["contacts"] == []
    assert (await agent.search(""))[1]["contacts"] == []
    status, data = await agent.search("x" * 101)
    assert status == 422 and data["error"]["field"] == "q"
    assert (await marketer.search("maria"))[1]["contacts"] == []
    everyone = (await admin.search("maria"))[1]["contacts"]
    assert len(everyone) == 20 and ids["hidden"] in {
        c["id"] for c in (await admin.search("hidden"))[1]["contacts"]
    }


# --- in the browser ----------------------------------------------------------------------------------------


@pytest.mark.browser
async def test_an_agent_links_two_contacts_from_the_panel(
    browser: Browser, served_hub: Hub, make_user: MakeUser, tmp_path: Any
) -> None:
    agent = await make_user(Role.AGENT)
    app = served_hub.app
    web_chat = await _writes(
        app, Channel.WEBCHAT, "visitor-1", "Bună ziua! Vreau un credit.", sender_name="Maria"
    )
    await _writes(
        app,
        Channel.VIBER,
        "vb-1",
        "Salut, v-am scris și pe site.",
        sender_name="Maria Rusu",
        sender_phone="069123456",
    )
    context = await browser.new_context(locale="en-US", viewport={"width": 1440, "height": 900})
    page = await context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    await browser_login(page, served_hub.url, agent.username)
    await open_in_inbox(page, served_hub.url, web_chat.conversation_id)
    await page.wait_for_selector('body[data-live="connected"]')
    await expect(page.locator(".conversation-item")).to_have_count(2)
    await expect(page.locator("#contact-name")).to_have_text("Maria")

    await page.click("#contact-merge-open")
    await page.fill("#contact-merge-query", "rusu")
    hit = page.locator(".contact-merge-hit")
    await expect(hit).to_have_count(1)
    await expect(hit).to_contain_text("+37369123456")
    await hit.click()
    await expect(page.locator("#contact-merge-confirm")).to_contain_text(
        "Merge Maria Rusu into this customer? Their conversations, channels and leads move here."
    )
    await page.screenshot(path=str(tmp_path / "contact-merge-confirm.png"))
    await page.click("#contact-merge-yes")

    # One customer, one thread: both channels' messages, both identities, one conversation in the list.
    await expect(page.locator("#contact-name")).to_have_text("Maria Rusu")
    await expect(page.locator("#contact-identities li")).to_have_count(2)
    await expect(page.locator("#thread .message")).to_have_count(2)
    await expect(page.locator("#thread .channel-badge[data-channel='viber']")).to_have_count(1)
    await expect(page.locator("#thread .channel-badge[data-channel='webchat']")).to_have_count(1)
    await expect(page.locator(".conversation-item")).to_have_count(1)
    shot = tmp_path / "contact-merge.png"
    await page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert page_errors == []
    await context.close()


async def test_a_message_stored_during_a_merge_waits_for_nothing_and_is_not_lost(
    app: web.Application, sign_in: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """An inbound message holds its conversation's row and then needs the customer's (its foreign key):
    the merge, which holds the customers and then wants the conversations, must let it finish."""
    agent = await sign_in(Role.AGENT)
    first = await _writes(app, Channel.WEBCHAT, "visitor-1", "Bună", sender_name="Maria")
    second = await _writes(app, Channel.VIBER, "vb-1", "Salut", sender_name="Maria Rusu")
    keep_id = await _contact_of(sessions, first.conversation_id)
    gone_id = await _contact_of(sessions, second.conversation_id)
    async with sessions() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id == second.conversation_id)
            .values(unread=Conversation.unread + 1)
        )
        merging = asyncio.create_task(agent.merge(keep_id, {"merge_id": gone_id}))
        await asyncio.sleep(0.3)  # the merge has locked the customers and waits for the conversation
        late = Message(
            conversation_id=second.conversation_id,
            direction="in",
            body="Încă ceva",
            author_contact_id=gone_id,
            channel="viber",
            account_id="acc",
            external_id="late-1",
            status="delivered",
        )
        db.add(late)
    status, data = await asyncio.wait_for(merging, 10)
    assert status == 200, data
    async with sessions() as db:
        stored = await db.get(Message, late.id)
        [thread] = list(await db.scalars(select(Conversation).where(Conversation.contact_id == keep_id)))
    assert stored is not None and stored.conversation_id == thread.id == data["conversation_id"]
    assert stored.author_contact_id == keep_id


async def test_two_agents_merging_the_same_customers_at_once_end_with_one(
    app: web.Application, sign_in: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ana, ion = await sign_in(Role.AGENT), await sign_in(Role.AGENT)
    first = await _writes(app, Channel.WEBCHAT, "visitor-1", "Bună", sender_name="Maria")
    second = await _writes(app, Channel.VIBER, "vb-1", "Salut", sender_name="Maria Rusu")
    a = await _contact_of(sessions, first.conversation_id)
    b = await _contact_of(sessions, second.conversation_id)
    answers = await asyncio.gather(ana.merge(a, {"merge_id": b}), ion.merge(b, {"merge_id": a}))
    assert sorted(status for status, _ in answers) == [200, 404]
    async with sessions() as db:
        [survivor] = list(await db.scalars(select(Contact.id)))
        [thread] = list(await db.scalars(select(Conversation)))
        messages = set(await db.scalars(select(Message.conversation_id)))
    assert thread.contact_id == survivor and messages == {thread.id} and thread.status == "open"
