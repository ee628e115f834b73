"""Contacts from the agent's side: the quick edit of the contact panel in the inbox."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from aiohttp import web

from crm_core import contacts
from crm_core.contacts import DuplicatesFound
from switchboard.errors import N_, Invalid, NotFound
from webui import forms, keys
from webui.security import client_ip, current_user, viewer_of
from webui.views.contacts_pages import duplicates_response

MAX_JSON_BODY = 16 * 1024
FIELDS = ("first_name", "last_name", "phone", "email")


async def _json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.content.read(MAX_JSON_BODY + 1)
    if len(raw) > MAX_JSON_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_JSON_BODY, actual_size=len(raw))
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(reason="The body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(reason="The body must be a JSON object")
    return data


def _field(data: dict[str, Any], name: str) -> str:
    if name not in data:
        raise Invalid(N_("This field is required."), field=name)
    value = data[name]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(N_("This field must be text."), field=name)
    return value


async def contact_update_api(request: web.Request) -> web.StreamResponse:
    """`{"first_name": "…", "last_name": "…", "phone": "…", "email": "…"}` (every field; empty clears
    phone and e-mail; `"confirm_duplicate": true` saves even when the new values match another contact,
    which otherwise answers 409 with the matches). 404 unless the caller can see one of the customer's
    conversations (admins always): CONTACTS_VIEW alone does not open every customer to everyone."""
    contact_id = forms.path_int(request, "id")
    if not await request.app[keys.INBOX].can_see_contact(viewer_of(request), contact_id):
        raise NotFound(N_("No such contact."))
    data = await _json_object(request)
    fields = {name: _field(data, name) for name in FIELDS}
    actor = current_user(request).actor(client_ip(request))
    region = request.app[keys.SETTINGS].default_region
    confirm = data.get("confirm_duplicate") is True
    try:
        async with request.app[keys.SESSIONS]() as db, db.begin():
            card = await contacts.update_contact(
                db, actor, contact_id, region=region, confirm_duplicate=confirm, **fields
            )
    except DuplicatesFound as exc:
        return duplicates_response(request, exc)
    body = dataclasses.asdict(card)
    for lead in body["leads"]:
        lead["created_at"] = lead["created_at"].isoformat()
    return web.json_response({"contact": body})
