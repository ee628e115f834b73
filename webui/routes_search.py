"""Routes of the search box: the page and the API. Everyone signed in may search (CONTACTS_VIEW); which
kinds each role gets, and which records, is decided in `webui.views.search`."""

from __future__ import annotations

from switchboard.permissions import Action
from webui.routes_spec import RouteSpec
from webui.views import search

SEARCH_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/search", search.search_page, "search", Action.CONTACTS_VIEW),
    RouteSpec("GET", "/api/v1/search", search.search_api, "api_search", Action.CONTACTS_VIEW),
)
