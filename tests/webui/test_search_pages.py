"""The search box: the page lists hits by kind with links, the header carries the box, the API answers
JSON, each role gets only the kinds and records it may open, and bad input is a 422 with a reason."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.models import Contact
from inbox.models import Conversation, Message
from switchboard.accounts_model import User
from switchboard.permissions import Role
from tests.conftest import MakeUser, login

Sessions = async_sessionmaker[AsyncSession]


async def _customer(sessions: Sessions, branch_id: int | None) -> int:
    async with sessions() as db, db.begin():
        ion = Contact(first_name="Ion", last_name="Rusu", phone="+37369123456", branch_id=branch_id)
        db.add(ion)
        await db.flush()
        conversation = Conversation(contact_id=ion.id, branch_id=branch_id)
        db.add(conversation)
        await db.flush()
        db.add(Message(conversation_id=conversation.id, direction="in", body="Vreau un credit în Bălți"))
        return ion.id


async def _branch(sessions: Sessions, user_id: int) -> int | None:
    async with sessions() as db:
        return (await db.get(User, user_id)).branch_id  # type: ignore[union-attr]


async def test_the_page_lists_contacts_and_messages_with_links(
    client: TestClient, make_user: MakeUser, sessions: Sessions
) -> None:
    agent = await make_user(Role.AGENT)
    ion = await _customer(sessions, await _branch(sessions, agent.id))
    assert (await login(client, agent.username)).status == 302
    response = await client.get("/search", params={"q": "credit AND Balti"})
    html = await response.text()
    assert response.status == 200
    assert 'id="header-search"' in html
    assert 'data-kind="message"' in html
    assert f'href="/contacts/{ion}#message-' in html
    found = await (await client.get("/search", params={"q": "123456"})).text()
    assert f'href="/contacts/{ion}"' in found
    nothing = await (await client.get("/search", params={"q": "nobody"})).text()
    assert 'id="search-empty"' in nothing


async def test_the_api_answers_typed_hits(
    client: TestClient, make_user: MakeUser, sessions: Sessions
) -> None:
    admin = await make_user(Role.ADMIN)
    ion = await _customer(sessions, None)
    assert (await login(client, admin.username)).status == 302
    response = await client.get("/api/v1/search", params={"q": '"Ion Rusu"'})
    assert response.status == 200
    body = await response.json()
    assert body["hits"] == [
        {
            "kind": "contact",
            "id": ion,
            "title": "Ion Rusu",
            "snippet": "+37369123456",
            "link": f"/contacts/{ion}",
        }
    ]
    only = await (await client.get("/api/v1/search", params={"q": "credit", "kind": "message"})).json()
    assert [hit["kind"] for hit in only["hits"]] == ["message"]


async def test_a_marketer_gets_no_messages_and_no_other_branchs_contacts(
    client: TestClient, make_user: MakeUser, sessions: Sessions
) -> None:
    marketer = await make_user(Role.MARKETER)
    await _customer(sessions, None)
    admin = await make_user(Role.ADMIN, branch="Cahul")
    await _customer(sessions, await _branch(sessions, admin.id))
    assert (await login(client, marketer.username)).status == 302
    body = await (await client.get("/api/v1/search", params={"q": "rusu OR credit"})).json()
    assert [hit["kind"] for hit in body["hits"]] == ["contact"]
    refused = await client.get("/api/v1/search", params={"q": "credit", "kind": "message"})
    assert refused.status == 422


async def test_bad_queries_are_refused_with_a_reason(client: TestClient, make_user: MakeUser) -> None:
    agent = await make_user(Role.AGENT)
    assert (await login(client, agent.username)).status == 302
    too_long = await client.get("/api/v1/search", params={"q": "x" * 201})
    assert too_long.status == 422
    assert "200" in await too_long.text()
    assert (await client.get("/api/v1/search", params={"q": "x", "limit": "0"})).status == 422
    assert (await client.get("/api/v1/search", params={"q": "x", "kind": "planet"})).status == 422
    odd = await client.get("/api/v1/search", params={"q": 'NEAR(a b) * : ^ "" - OR AND \\ \' ((('})
    assert odd.status == 200
