"""Routes of the website chat widget (public, authenticated by widget key and origin)."""

from __future__ import annotations

from webui.routes_spec import RouteSpec

WIDGET_ROUTES: tuple[RouteSpec, ...] = ()
