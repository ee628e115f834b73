"""The inbox's tools over HTTP: canned replies (page and API), labels, transfers, @mentions with their
notifications, and what the live feed carries of them to whom."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from inbox.canned_model import CannedReply
from inbox.models import Conversation
from switchboard.permissions import Role
from tests.conftest import MakeUser, login, second_browser
from tests.webui import test_inbox_api as workspace
from webui import keys

# The workspace's fixtures: logged-in browsers and five conversations placed on two branches.
sign_in = workspace.sign_in
floor = workspace.floor
Floor = workspace.Floor
Agent = workspace.Agent
Frame = dict[str, Any]


async def _canned(admin: Any, **fields: Any) -> tuple[int, Any]:
    body = {"shortcut": "salut", "title": "Salut", "body": "Bună, {first_name}!"} | fields
    result: tuple[int, Any] = await admin.post("/api/v1/canned", body)
    return result


# --- canned replies ------------------------------------------------------------------------------------


async def test_a_canned_reply_is_validated_and_rendered_for_the_conversation(
    floor: Floor, app: web.Application
) -> None:
    admin, a = floor.admin, floor.a
    cases: list[tuple[dict[str, Any], str]] = [
        ({"shortcut": "Bad Shortcut!"}, "shortcut"),
        ({"shortcut": "x" * 31}, "shortcut"),
        ({"title": ""}, "title"),
        ({"body": 5}, "body"),
        ({"branch_id": "1"}, "branch_id"),
    ]
    for fields, field in cases:
        status, data = await _canned(admin, **fields)
        assert status == 422 and data["error"]["field"] == field, fields
    status, data = await _canned(
        admin, body="Bună, {first_name} {last_name}! Sunt {agent_name}. {price} {0.__class__}"
    )
    assert status == 201 and data["reply"]["shortcut"] == "salut"
    status, data = await _canned(admin, title="Again")
    assert status == 422 and data["error"]["field"] == "shortcut"  # taken
    status, _ = await a.post("/api/v1/canned", {"shortcut": "mine", "title": "T", "body": "B"})
    assert status == 403  # agents use canned replies; admins and supervisors manage them

    got = await app[keys.INBOX].ingest(workspace.chat("ion-1", "ion", name="Ion Popescu"))
    status, data = await a.get(f"/api/v1/canned?q=sal&conversation_id={got.conversation_id}")
    assert status == 200
    [reply] = data["replies"]
    assert reply["body"] == f"Bună, Ion Popescu! Sunt {a.person.username.title()}. {{price}} {{0.__class__}}"
    assert reply["template"].startswith("Bună, {first_name}")
    status, data = await a.get("/api/v1/canned?q=nothing")
    assert status == 200 and data["replies"] == []
    status, data = await a.get("/api/v1/canned?q=/SAL")
    assert status == 200 and [r["shortcut"] for r in data["replies"]] == ["salut"]
    status, data = await a.get("/api/v1/canned?q=a%25b")
    assert status == 422 and data["error"]["field"] == "q"
    status, _ = await a.get(f"/api/v1/canned?conversation_id={floor.conv['b_own']}")
    assert status == 404  # not theirs to see: no customer's name leaks through a reply
    status, data = await a.get("/api/v1/canned?conversation_id=abc")
    assert status == 422 and data["error"]["field"] == "conversation_id"


async def test_the_canned_page_for_supervisors(
    floor: Floor, sessions: async_sessionmaker[AsyncSession]
) -> None:
    sup = floor.sup
    response = await sup.client.get("/inbox/canned")
    assert response.status == 200 and 'id="canned-create"' in await response.text()
    response = await floor.a.client.get("/inbox/canned")
    assert response.status == 403
    form = {"_csrf": sup.csrf, "shortcut": "bad shortcut", "title": "T", "body": "B"}
    response = await sup.client.post("/inbox/canned", data=form)
    assert response.status == 422 and "lowercase letters" in await response.text()
    async with sessions() as db:
        branch = await db.scalar(
            select(Conversation.branch_id).where(Conversation.id == floor.conv["branch_queue"])
        )
    form |= {"shortcut": "program", "branch_id": str(branch)}
    response = await sup.client.post("/inbox/canned", data=form, allow_redirects=False)
    assert response.status == 302
    async with sessions() as db:
        reply = await db.scalar(select(CannedReply).where(CannedReply.shortcut == "program"))
    assert reply is not None and reply.branch_id == branch
    response = await sup.client.post(
        f"/inbox/canned/{reply.id}",
        data=form | {"title": "Programul", "branch_id": str(branch)},
        allow_redirects=False,
    )
    assert response.status == 302
    html = await (await sup.client.get("/inbox/canned")).text()
    assert "Programul" in html
    status, data = await floor.c.get("/api/v1/canned")  # another branch: not offered there
    assert status == 200 and data["replies"] == []
    response = await sup.client.post(f"/inbox/canned/{reply.id}/delete", data={"_csrf": sup.csrf})
    assert response.status == 200
    async with sessions() as db:
        assert await db.get(CannedReply, reply.id) is None


# --- labels --------------------------------------------------------------------------------------------


async def test_labels_are_added_removed_and_filter_the_list(floor: Floor) -> None:
    a, conv = floor.a, floor.conv["a_own"]
    path = f"/api/v1/conversations/{conv}/labels"
    status, data = await a.post(path, {"add": ["Credit", "ипотека"]})
    assert status == 200 and data["conversation"]["labels"] == ["credit", "ипотека"]
    status, _ = await a.post(
        f"/api/v1/conversations/{floor.conv['branch_queue']}/labels", {"add": ["credit"]}
    )
    assert status == 200
    status, data = await a.post(path, {"remove": ["credit"]})
    assert data["conversation"]["labels"] == ["ипотека"]
    assert await a.ids("?label=credit") == {floor.conv["branch_queue"]}
    assert await a.ids("?label=%D0%B8%D0%BF%D0%BE%D1%82%D0%B5%D0%BA%D0%B0") == {conv}
    assert await a.ids("?label=none") == set()
    status, listed = await a.get("/api/v1/conversations?label=ипотека")
    assert listed["conversations"][0]["labels"] == ["ипотека"]
    status, thread = await a.get(f"/api/v1/conversations/{conv}")
    assert thread["conversation"]["labels"] == ["ипотека"]
    for body, field in [
        ({}, "add"),
        ({"add": "credit"}, "add"),
        ({"add": ["two words"]}, "add"),
        ({"remove": [1]}, "remove"),
        ({"add": [f"l{i}" for i in range(10)]}, "add"),  # eleven with the one it has
    ]:
        status, data = await a.post(path, body)
        assert status == 422 and data["error"]["field"] == field, body
    status, data = await a.get("/api/v1/conversations?label=a%20b")
    assert status == 422 and data["error"]["field"] == "label"
    status, _ = await a.post(f"/api/v1/conversations/{floor.conv['b_own']}/labels", {"add": ["x"]})
    assert status == 404


# --- transfers -----------------------------------------------------------------------------------------


async def test_a_transfer_to_a_branch_clears_the_assignee_and_leaves_the_old_agent(
    floor: Floor, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, c, conv = floor.a, floor.c, floor.conv["a_own"]
    async with sessions() as db:
        balti = await db.scalar(
            select(Conversation.branch_id).where(Conversation.id == floor.conv["balti_queue"])
        )
    ws, _ = await workspace._open_feed(a)
    c_ws, _ = await workspace._open_feed(c)
    status, data = await a.post(
        f"/api/v1/conversations/{floor.conv['branch_queue']}/transfer", {"branch_id": balti}
    )
    assert status == 403  # not theirs
    for body, field in [
        ({}, "assignee_id"),
        ({"branch_id": "2"}, "branch_id"),
        ({"assignee_id": True}, "assignee_id"),
    ]:
        status, data = await a.post(f"/api/v1/conversations/{conv}/transfer", body)
        assert status == 422 and data["error"]["field"] == field, body
    status, data = await a.post(f"/api/v1/conversations/{conv}/transfer", {"branch_id": balti})
    assert status == 200
    assert data["conversation"] == {"id": conv, "assignee_id": None, "branch_id": balti}
    frames = await workspace._frames_until(ws, lambda f: f["type"] == "removed")
    assert frames[-1]["conversation_id"] == conv
    assert conv not in await a.ids()
    status, _ = await a.get(f"/api/v1/conversations/{conv}")
    assert status == 404
    seen = await workspace._frames_until(c_ws, lambda f: f["type"] == "conversation")
    assert any(f["type"] == "message" and f["message"]["kind"] == "system" for f in seen)
    assert conv in await c.ids("?scope=unassigned")
    status, thread = await c.get(f"/api/v1/conversations/{conv}")
    assert thread["messages"][-1]["body"].startswith("Transferred to Bălți by ")
    status, targets = await a.get("/api/v1/transfer-targets")
    assert status == 200 and {b["id"] for b in targets["branches"]} >= {balti}
    assert c.person.id in {p["id"] for p in targets["people"]}
    await ws.close()
    await c_ws.close()


# --- mentions and notifications ------------------------------------------------------------------------


async def test_a_mention_notifies_only_a_colleague_who_may_see_it_and_only_on_their_socket(
    floor: Floor, app: web.Application
) -> None:
    a, conv = floor.a, floor.conv["a_own"]
    feeds = {
        name: (await workspace._open_feed(getattr(floor, name)))[0]
        for name in ("a", "b", "c", "sup", "admin")
    }
    note = f"@{floor.sup.person.username} @{floor.c.person.username} @{floor.b.person.username} vezi aici"
    status, data = await a.post(f"/api/v1/conversations/{conv}/messages", {"body": note, "note": True})
    assert status == 201
    # sup may see Ana's conversation; c (another branch) and b (another agent's conversation) may not.
    frames = await workspace._frames_until(feeds["sup"], lambda f: f["type"] == "notification")
    notification = frames[-1]["notification"]
    assert notification["conversation_id"] == conv and notification["kind"] == "mention"
    assert notification["message_id"] == data["message"]["id"]
    await app[keys.INBOX].ingest(workspace.chat("no_branch-9", "no_branch", "the last one"))
    for name in ("a", "b", "c", "admin"):
        seen = await workspace._frames_until(feeds[name], workspace._is_message("the last one"))
        assert not [f for f in seen if f["type"] == "notification"], name
    for name in ("b", "c"):
        status, data = await getattr(floor, name).get("/api/v1/notifications")
        assert status == 200 and data == {"notifications": [], "unread": 0}, name
    status, data = await floor.sup.get("/api/v1/notifications")
    assert data["unread"] == 1 and data["notifications"][0]["id"] == notification["id"]
    for body in [{"ids": "all"}, {"ids": [True]}, {"ids": [0]}]:
        status, err = await floor.sup.post("/api/v1/notifications/read", body)
        assert status == 422 and err["error"]["field"] == "ids", body
    status, done = await a.post("/api/v1/notifications/read", {"ids": [notification["id"]]})
    assert done == {"marked": 0, "unread": 0}  # not theirs
    status, done = await floor.sup.post("/api/v1/notifications/read", {"ids": [notification["id"]]})
    assert status == 200 and done == {"marked": 1, "unread": 0}
    for ws in feeds.values():
        await ws.close()


async def test_the_bell_is_in_the_header_of_inbox_users_only(floor: Floor, make_user: MakeUser) -> None:
    html = await (await floor.a.client.get("/")).text()
    assert 'id="notifications-toggle"' in html and "js/notifications.js" in html
    inbox_html = await (await floor.a.client.get("/inbox")).text()
    assert "js/inbox_tools.js" in inbox_html and 'id="canned-suggestions"' in inbox_html
    config = json.loads(inbox_html.split('id="inbox-tools-config">', 1)[1].split("</script>", 1)[0])
    assert config == {"may_manage_canned": False}
    marketer = await make_user(Role.MARKETER)
    browser = await second_browser(floor.a.client)
    try:
        assert (await login(browser, marketer.username)).status == 302
        html = await (await browser.get("/")).text()
        assert "Log out" in html and 'id="notifications-toggle"' not in html
    finally:
        await browser.session.close()
