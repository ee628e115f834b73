"""Sales-script authoring and analytics over HTTP: a supervisor makes a script in the editor step by
step, sees what validation refuses beside the step it names, publishes, finds the published version
read-only and makes a new draft from it; YAML goes out and comes back the same; a hostile or broken
file is refused with its reason; the funnel page counts the runs; agents cannot reach any of it."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from scripts_engine.service import VersionState
from switchboard.audit import SYSTEM
from switchboard.permissions import Role
from tests.conftest import MakeUser, login, page_csrf
from webui import keys

SCRIPT = """
key: web_quick
name: Credit rapid
start: hello
steps:
  - {id: hello, kind: say, title: Salut, text: 'Bună ziua!', next: amount}
  - {id: amount, kind: ask, title: Suma, text: 'Ce sumă?', answer: {type: money}, next: keep}
  - {id: keep, kind: capture, entity: lead, field: amount, answer: amount, next: done}
  - {id: done, kind: end, outcome: success}
"""


async def _supervisor(client: TestClient, make_user: MakeUser) -> str:
    user = await make_user(Role.SUPERVISOR)
    assert (await login(client, user.username)).status == 302
    return await page_csrf(client, "/scripts")


def _version_id(location: str) -> int:
    match = re.fullmatch(r"/scripts/versions/(\d+)(#.*)?", location)
    assert match, location
    return int(match.group(1))


async def _post(client: TestClient, path: str, data: dict[str, str]) -> Any:
    return await client.post(path, data=data, allow_redirects=False)


async def _state(app: web.Application, version_id: int) -> VersionState:
    async with app[keys.SESSIONS]() as db:
        return (await app[keys.SCRIPTS].get_version(db, version_id)).state


async def test_a_supervisor_builds_a_script_in_the_editor_and_publishes_it(
    client: TestClient, app: web.Application, make_user: MakeUser
) -> None:
    csrf = await _supervisor(client, make_user)
    made = await _post(client, "/scripts", {"_csrf": csrf, "key": "first_call", "name": "Primul apel"})
    assert made.status == 302
    version_id = _version_id(made.headers["Location"])
    path = f"/scripts/versions/{version_id}"

    # two steps added one after the other: the first becomes the start
    base = {"_csrf": csrf, "name": "Primul apel", "steps-count": "0"}
    added = await _post(client, path, base | {"op": "add", "add-kind": "ask"})
    assert added.status == 302 and added.headers["Location"].endswith("#step-step_1")
    ask = {
        "steps-0-id": "need",
        "steps-0-kind": "ask",
        "steps-0-title": "Nevoia",
        "steps-0-text": "Pentru ce aveți nevoie de bani?",
        "steps-0-answer-type": "choice",
        "steps-0-opts": "2",
        "steps-0-opt-0-value": "car",
        "steps-0-opt-0-label": "Automobil",
        "steps-0-opt-0-next": "bye",
        "steps-0-opt-1-value": "home",
        "steps-0-opt-1-label": "Locuință",
    }
    two = base | ask | {"start": "need", "steps-count": "1", "op": "add", "add-kind": "end"}
    assert (await _post(client, path, two)).status == 302
    page = await client.get(path)
    html = await page.text()
    # `home` goes nowhere and `bye` does not exist yet: both named beside the step, publishing disabled
    assert 'id="script-problems"' in html and 'data-step="need"' in html
    assert re.search(r'id="script-publish"[^>]*disabled', html)
    assert 'class="graph-node" data-step="need"' in html

    end = {"steps-1-id": "bye", "steps-1-kind": "end", "steps-1-outcome": "success", "steps-count": "2"}
    ask["steps-0-opt-1-next"] = "bye"
    saved = await _post(client, path, base | ask | end | {"start": "need", "op": "save"})
    assert saved.status == 302
    html = await (await client.get(path)).text()
    assert 'id="script-ok"' in html
    assert '<g class="graph-edge" data-from="need" data-to="bye">' in html

    published = await _post(client, f"{path}/publish", {"_csrf": csrf})
    assert published.status == 302
    assert await _state(app, version_id) is VersionState.PUBLISHED
    html = await (await client.get(path)).text()
    assert 'id="script-readonly"' in html and 'id="script-save"' not in html
    # a published version refuses edits; a new draft copies it as version 2
    refused = await _post(client, path, base | ask | end | {"start": "need", "op": "save"})
    assert refused.status == 409
    copied = await _post(client, f"{path}/new-draft", {"_csrf": csrf})
    assert copied.status == 302
    draft_id = _version_id(copied.headers["Location"])
    async with app[keys.SESSIONS]() as db:
        draft = await app[keys.SCRIPTS].get_version(db, draft_id)
    assert (draft.number, draft.state, [s.id for s in draft.draft.steps]) == (
        2,
        VersionState.DRAFT,
        ["need", "bye"],
    )


async def test_a_refused_form_comes_back_as_typed_with_the_reason(
    client: TestClient, app: web.Application, make_user: MakeUser
) -> None:
    csrf = await _supervisor(client, make_user)
    async with app[keys.SESSIONS]() as db, db.begin():
        view = await app[keys.SCRIPTS].import_yaml(db, SYSTEM, SCRIPT)
    form = {
        "_csrf": csrf,
        "name": "Credit rapid",
        "start": "hello",
        "steps-count": "1",
        "steps-0-id": "hello",
        "steps-0-kind": "capture",
        "steps-0-title": "Typed but broken",
        "steps-0-entity": "nowhere",
        "op": "save",
    }
    response = await _post(client, f"/scripts/versions/{view.id}", form)
    assert response.status == 422
    html = await response.text()
    assert 'id="script-error"' in html and "hello" in html
    assert 'value="Typed but broken"' in html
    async with app[keys.SESSIONS]() as db:
        kept = await app[keys.SCRIPTS].get_version(db, view.id)
    assert [s.id for s in kept.draft.steps] == ["hello", "amount", "keep", "done"]


async def test_yaml_export_and_import_round_trip_and_hostile_files_are_refused(
    client: TestClient, app: web.Application, make_user: MakeUser
) -> None:
    csrf = await _supervisor(client, make_user)
    imported = await _post(client, "/scripts/import", {"_csrf": csrf, "text": SCRIPT})
    assert imported.status == 302
    version_id = _version_id(imported.headers["Location"])
    exported = await client.get(f"/api/v1/scripts/versions/{version_id}/yaml")
    assert exported.status == 200
    assert 'filename="web_quick-v1.yaml"' in exported.headers["Content-Disposition"]
    text = await exported.text()
    # the exported text saved back over the draft changes nothing
    before = await (await client.get(f"/api/v1/scripts/versions/{version_id}")).json()
    again = await _post(client, f"/scripts/versions/{version_id}/yaml", {"_csrf": csrf, "yaml": text})
    assert again.status == 302
    after = await (await client.get(f"/api/v1/scripts/versions/{version_id}")).json()
    assert after["script"] == before["script"] and after["number"] == 1

    for hostile in ("!!python/object/apply:os.system ['true']", "a: &a [*a, *a]\nkey: [", "- just a list"):
        refused = await _post(client, "/scripts/import", {"_csrf": csrf, "text": hostile})
        assert refused.status in (400, 413, 422), hostile
        assert 'id="scripts-error"' in await refused.text()
    empty = await _post(client, "/scripts/import", {"_csrf": csrf, "text": "  "})
    assert empty.status == 422
    api = await client.post("/api/v1/scripts/import", data=b"key: [", headers={"X-CSRF-Token": csrf})
    assert api.status == 422 and (await api.json())["error"]["reason"]


async def test_publishing_a_broken_draft_over_the_api_lists_its_problems(
    client: TestClient, app: web.Application, make_user: MakeUser
) -> None:
    csrf = await _supervisor(client, make_user)
    headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    script = {
        "key": "broken",
        "name": "Broken",
        "start": "a",
        "steps": [
            {"id": "a", "kind": "say", "next": "nowhere"},
            {"id": "lost", "kind": "end", "outcome": "success"},
        ],
    }
    made = await client.post("/api/v1/scripts", data=json.dumps({"script": script}), headers=headers)
    assert made.status == 201
    body = await made.json()
    codes = {(p["code"], p["step"]) for p in body["problems"]}
    assert {step for _, step in codes} >= {"a", "lost"}
    refused = await client.post(f"/api/v1/scripts/versions/{body['id']}/publish", headers=headers)
    assert refused.status == 422
    assert {(p["code"], p["step"]) for p in (await refused.json())["error"]["problems"]} == codes
    assert await _state(app, body["id"]) is VersionState.DRAFT


async def test_the_funnel_page_counts_the_runs_and_compares_versions(
    client: TestClient, app: web.Application, make_user: MakeUser
) -> None:
    await _supervisor(client, make_user)
    scripts = app[keys.SCRIPTS]
    async with app[keys.SESSIONS]() as db, db.begin():
        v1 = await scripts.publish(db, SYSTEM, (await scripts.import_yaml(db, SYSTEM, SCRIPT)).id)
        finished = await scripts.start(db, SYSTEM, v1.id)
        await scripts.answer(db, SYSTEM, finished.run_id, "hello", None)
        left = await scripts.start(db, SYSTEM, v1.id)
        await scripts.leave(db, SYSTEM, left.run_id, "")
        v2 = await scripts.save_draft(db, SYSTEM, v1.draft)
    page = await client.get(f"/scripts/versions/{v1.id}/analytics")
    assert page.status == 200
    html = await page.text()
    row = re.search(r'<tr data-step="hello".*?</tr>', html, re.S)
    assert row and '<span class="reached">2</span>' in row.group(0)
    assert re.search(r'class="drop-offs[^"]*">1<', row.group(0))
    funnel = await (await client.get(f"/api/v1/scripts/versions/{v1.id}/funnel?compare={v2.id}")).json()
    assert (funnel["funnel"]["runs"], funnel["funnel"]["left"], funnel["compare"]["runs"]) == (2, 1, 0)
    assert [s["step"] for s in funnel["steps"]] == ["hello", "amount", "keep", "done"]
    compared = await client.get(f"/scripts/versions/{v1.id}/analytics?compare={v2.id}")
    assert compared.status == 200 and 'id="funnel-compare-table"' in await compared.text()
    assert (await client.get(f"/scripts/versions/{v1.id}/analytics?compare=abc")).status == 422


async def test_agents_cannot_author_scripts(
    client: TestClient, app: web.Application, make_user: MakeUser
) -> None:
    agent = await make_user(Role.AGENT)
    assert (await login(client, agent.username)).status == 302
    csrf = await page_csrf(client, "/profile")
    assert (await client.get("/scripts")).status == 403
    assert (await client.get("/api/v1/scripts")).status == 403
    refused = await _post(client, "/scripts", {"_csrf": csrf, "key": "x", "name": "X"})
    assert refused.status == 403
    async with app[keys.SESSIONS]() as db:
        assert all(s.key != "x" for s in await app[keys.SCRIPTS].list_scripts(db))
