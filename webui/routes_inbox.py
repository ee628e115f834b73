"""Routes of the agent workspace (inbox pages, its JSON API and the live feed)."""

from __future__ import annotations

from webui.routes_spec import RouteSpec

INBOX_ROUTES: tuple[RouteSpec, ...] = ()
