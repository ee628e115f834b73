"""The merge screen and its undo over HTTP: the screen shows both values per field and what will move, the
form's choices decide whose value the kept contact takes, the merge page and the recent merges offer the
undo to the person who merged and to supervisors (not to another agent), and the API does the same; bad
choices, hidden contacts and expired merges are refused with a reason."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import profile
from crm_core.models import Contact, Lead
from switchboard.accounts_model import User
from switchboard.audit import SYSTEM
from switchboard.permissions import Role
from tests.conftest import MakeUser, Person, login, page_csrf, second_browser


async def _signed_in(client: TestClient, person: Person) -> str:
    assert (await login(client, person.username)).status == 302
    return await page_csrf(client, "/contacts/new")


async def _two(sessions: async_sessionmaker[AsyncSession], branch_id: int | None = None) -> tuple[int, int]:
    async with sessions() as db, db.begin():
        keep = await profile.create_contact(
            db,
            SYSTEM,
            profile.parse_profile(
                {"first_name": "Ion", "last_name": "Rusu", "phones": ["069123456"], "branch_id": branch_id}
            ),
        )
        other = await profile.create_contact(
            db,
            SYSTEM,
            profile.parse_profile(
                {
                    "first_name": "Ioan",
                    "last_name": "Rusu",
                    "phones": ["+40721123456"],
                    "birth_date": "1985-03-02",
                    "branch_id": branch_id,
                }
            ),
            confirm_duplicate=True,
        )
        db.add(Lead(contact_id=other, source_channel="viber"))
    return keep, other


async def _branch(sessions: async_sessionmaker[AsyncSession], person: Person) -> int | None:
    async with sessions() as db:
        user = await db.get(User, person.id)
        assert user is not None
        return user.branch_id


async def _merge_form(client: TestClient, csrf: str, keep: int, other: int, **picks: str) -> Any:
    data = {"_csrf": csrf, "keep": str(keep), "merge": str(other)} | {
        f"pick.{k}": v for k, v in picks.items()
    }
    return await client.post("/contacts/merge", data=data, allow_redirects=False)


async def test_the_screen_shows_both_values_and_the_choices_decide(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    agent = await make_user(Role.AGENT)
    keep, other = await _two(sessions, await _branch(sessions, agent))
    csrf = await _signed_in(client, agent)
    screen = await (await client.get(f"/contacts/merge?keep={keep}&merge={other}")).text()
    assert 'data-field="first_name"' in screen and "Ioan" in screen and "1985-03-02" in screen
    assert 'id="merge-moves"' in screen and "1 leads" in screen

    merged = await _merge_form(client, csrf, keep, other, first_name="merge", phone="keep")
    assert merged.status == 302
    location = merged.headers["Location"]
    assert location.startswith("/contacts/merges/")
    async with sessions() as db:
        kept = await db.get(Contact, keep)
        assert await db.get(Contact, other) is None
    assert kept is not None
    assert (kept.first_name, kept.phone, str(kept.birth_date)) == ("Ioan", "+37369123456", "1985-03-02")
    page = await (await client.get(location)).text()
    assert 'id="merge-undo"' in page and 'data-status="active"' in page
    listed = await (await client.get("/contacts/merges")).text()
    assert f'href="{location}"' in listed and "merge-undo" in listed

    undone = await client.post(f"{location}/undo", data={"_csrf": csrf}, allow_redirects=False)
    assert undone.status == 302 and undone.headers["Location"] == location
    async with sessions() as db:
        back = await db.get(Contact, other)
        kept = await db.get(Contact, keep)
    assert back is not None and back.first_name == "Ioan" and back.phone == "+40721123456"
    assert kept is not None and kept.first_name == "Ion" and kept.birth_date is None
    again = await client.post(f"{location}/undo", data={"_csrf": csrf}, allow_redirects=False)
    assert again.status == 409


async def test_bad_choices_are_refused_naming_the_field_and_nothing_moves(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_user(Role.ADMIN)  # the panel API sees customers by the inbox rules: all, for admins
    keep, other = await _two(sessions)
    csrf = await _signed_in(client, admin)
    for picks, field in (({"first_name": "both"}, "first_name"), ({"password": "merge"}, "choices")):
        response = await client.post(
            f"/api/v1/contacts/{keep}/merge",
            data=json.dumps({"merge_id": other, "choices": picks}),
            headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
        )
        assert response.status == 422
        assert (await response.json())["error"]["field"] == field
    async with sessions() as db:
        assert await db.get(Contact, other) is not None
    response = await client.post(
        f"/api/v1/contacts/{keep}/merge",
        data=json.dumps({"merge_id": other, "choices": {"last_name": "merge", "phone": "merge"}}),
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    )
    assert response.status == 200
    body = await response.json()
    assert body["contact"]["phone"] == "+40721123456" and body["merge_id"] > 0


async def test_only_the_merger_or_a_supervisor_may_undo_and_others_do_not_see_it(
    client: TestClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    merger = await make_user(Role.AGENT)
    colleague = await make_user(Role.AGENT)
    supervisor = await make_user(Role.SUPERVISOR)
    elsewhere = await make_user(Role.AGENT, branch="Bălți")
    keep, other = await _two(sessions, await _branch(sessions, merger))
    csrf = await _signed_in(client, merger)
    record = (await _merge_form(client, csrf, keep, other)).headers["Location"].rsplit("/", 1)[1]

    colleague_browser = await second_browser(client)
    other_csrf = await _signed_in(colleague_browser, colleague)
    listed = await (await colleague_browser.get("/api/v1/contact-merges")).json()
    assert listed == {"merges": []}  # an agent lists their own merges
    refused = await colleague_browser.post(
        f"/api/v1/contact-merges/{record}/undo", headers={"X-CSRF-Token": other_csrf}
    )
    assert refused.status == 403 and "reason" in (await refused.json())["error"]

    far_browser = await second_browser(client)
    far_csrf = await _signed_in(far_browser, elsewhere)
    hidden = await far_browser.post(
        f"/api/v1/contact-merges/{record}/undo", headers={"X-CSRF-Token": far_csrf}
    )
    assert hidden.status == 404  # another branch's contact: not even its merge exists for them
    assert (await far_browser.get(f"/contacts/merges/{record}")).status == 404

    boss_browser = await second_browser(client)
    boss_csrf = await _signed_in(boss_browser, supervisor)
    [shown] = (await (await boss_browser.get("/api/v1/contact-merges")).json())["merges"]
    assert (shown["id"], shown["may_undo"], shown["status"]) == (int(record), True, "active")
    undone = await boss_browser.post(
        f"/api/v1/contact-merges/{record}/undo", headers={"X-CSRF-Token": boss_csrf}
    )
    assert undone.status == 200
    report = (await undone.json())["undo"]
    assert (report["complete"], report["kept_id"], report["merged_id"]) == (True, keep, other)
    for browser in (colleague_browser, far_browser, boss_browser):
        await browser.session.close()
