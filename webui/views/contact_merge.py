"""Linking two contacts from the inbox's contact panel: the search for the other contact and the merge.

Both answer only about customers the caller may see by the inbox's rules (`inbox.merge`): CONTACTS_VIEW
alone does not open every customer to everyone, and a hidden customer is "not found", like a missing one.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from aiohttp import web

from crm_core import contacts
from crm_core.merge import MAX_QUERY
from inbox import merge
from switchboard.errors import N_, Invalid, NotFound
from webui import forms, keys
from webui.security import client_ip, current_user, viewer_of

MAX_JSON_BODY = 16 * 1024  # {"merge_id": N, "choices": {field: "keep" | "merge"}}


async def contact_search_api(request: web.Request) -> web.StreamResponse:
    """`?q=<name, phone or e-mail>[&exclude=<contact id>]`: at most 20 visible contacts, latest first."""
    query = forms.text(request.query, "q", max_len=MAX_QUERY)
    exclude = forms.integer(request.query, "exclude", minimum=1)
    hits = await merge.search_customers(request.app[keys.INBOX], viewer_of(request), query, exclude=exclude)
    return web.json_response({"contacts": [hit.as_json() for hit in hits]})


async def _merge_body(request: web.Request) -> tuple[int, Any]:
    raw = await request.content.read(MAX_JSON_BODY + 1)
    if len(raw) > MAX_JSON_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_JSON_BODY, actual_size=len(raw))
    try:
        data: Any = json.loads(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(reason="The body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(reason="The body must be a JSON object")
    value = data.get("merge_id")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31:
        raise Invalid(N_("Choose the contact to merge."), field="merge_id")
    return value, data.get("choices")  # checked by `crm_core.merge_fields.parse_choices`


async def contact_merge_api(request: web.Request) -> web.StreamResponse:
    """`{"merge_id": N, "choices": {field: "keep" | "merge"}}`: contact N becomes part of the contact in the
    path (its conversations, channels, leads, deals and the rest move there; the choices say whose value
    each field keeps). Answers with the kept contact's card, its open conversation and the merge's id."""
    keep_id = forms.path_int(request, "id")
    merge_id, choices = await _merge_body(request)
    actor = current_user(request).actor(client_ip(request))
    inbox = request.app[keys.INBOX]
    result = await merge.merge_customers(inbox, viewer_of(request), actor, keep_id, merge_id, choices=choices)
    async with request.app[keys.SESSIONS]() as db:
        card = await contacts.contact_card(db, keep_id)
    if card is None:  # merged away again in the meantime
        raise NotFound(N_("No such contact."))
    body = dataclasses.asdict(card)
    for lead in body["leads"]:
        lead["created_at"] = lead["created_at"].isoformat()
    return web.json_response(
        {
            "contact": body,
            "conversation_id": result.conversation_id,
            "merge_id": result.merged.record_id,
            "moved": {
                "conversations": result.conversations_moved,
                "messages": result.messages_moved,
                "identities": result.merged.identities_moved,
                "leads": result.merged.leads_moved,
            },
        }
    )
