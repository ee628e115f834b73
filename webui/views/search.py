"""The search box: `GET /search?q=` (the page behind the box in the header) and `GET /api/v1/search?q=`.
One query (`crm_core.search_query`) over contacts, companies, leads, deals (`crm_core.search`) and
messages (`inbox.search`); each kind only for a role that may open it, each record only if the caller may
see it, and its title and snippet without the fields hidden from the caller's role. `kind=` narrows to one
kind, `limit=` caps the hits per kind."""

from __future__ import annotations

import logging

from aiohttp import web

from crm_core import field_visibility, search
from crm_core.search_query import parse
from inbox.search import search_messages
from switchboard.accounts import CurrentUser
from switchboard.errors import N_, Invalid
from switchboard.permissions import Action, can
from webui import forms, keys
from webui.security import current_user, viewer_of
from webui.templating import render

log = logging.getLogger(__name__)

_NEEDS = {
    search.Kind.CONTACT: Action.CONTACTS_VIEW,
    search.Kind.COMPANY: Action.CONTACTS_VIEW,
    search.Kind.LEAD: Action.DEALS_VIEW,
    search.Kind.DEAL: Action.DEALS_VIEW,
    search.Kind.MESSAGE: Action.INBOX_VIEW,
}


def _kinds(request: web.Request, user: CurrentUser) -> list[search.Kind]:
    allowed = [kind for kind, action in _NEEDS.items() if can(user.role, action)]
    wanted = forms.text(request.query, "kind", max_len=20)
    if not wanted:
        return allowed
    if wanted not in {kind.value for kind in allowed}:
        raise Invalid(N_("Unknown filter."), field="kind")
    return [search.Kind(wanted)]


async def _hits(request: web.Request) -> tuple[str, list[search.Hit]]:
    user = current_user(request)
    text = forms.text(request.query, "q", max_len=search.MAX_QUERY)
    limit = forms.integer(request.query, "limit", minimum=1, maximum=search.MAX_LIMIT) or search.DEFAULT_LIMIT
    kinds = _kinds(request, user)
    query = parse(text)
    if query.empty:
        return text, []
    async with request.app[keys.SESSIONS]() as db:
        hidden = await field_visibility.hidden_map(db, user.role)
        scope = search.Scope(user.id, user.role, user.branch_id, hidden)
        hits = await search.search(db, query, scope, kinds=kinds, limit=limit)
        if search.Kind.MESSAGE in kinds:
            hits += await search_messages(
                db, query, viewer_of(request), limit=limit, hidden=scope.hides("contact")
            )
    log.debug("search by %s: %d hits", user.username, len(hits))
    return text, hits


async def search_page(request: web.Request) -> web.StreamResponse:
    text, hits = await _hits(request)
    groups = {kind: [hit for hit in hits if hit.kind is kind] for kind in search.Kind}
    return await render(
        "search.html",
        request,
        {"q": text, "groups": {kind: found for kind, found in groups.items() if found}, "total": len(hits)},
    )


async def search_api(request: web.Request) -> web.StreamResponse:
    text, hits = await _hits(request)
    return web.json_response({"q": text, "hits": [hit.as_json() for hit in hits]})
