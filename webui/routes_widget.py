"""Routes of the website chat widget (public, authenticated by widget key and origin).

No session (`uses_session=False`: no cookie on visitors of other sites) and no CSRF token (`csrf=False`):
the handlers check the widget key and the `Origin` allow-list instead.
"""

from __future__ import annotations

from webui.keys import Handler
from webui.routes_spec import PUBLIC, RouteSpec
from webui.views import widget

_KEY = {"key": "nope"}


def _public(method: str, path: str, handler: Handler, name: str) -> RouteSpec:
    return RouteSpec(method, path, handler, name, PUBLIC, csrf=False, uses_session=False, sample=_KEY)


WIDGET_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/widget.js", widget.script, "widget_script", PUBLIC, csrf=False, uses_session=False),
    _public("GET", "/widget/{key}/config", widget.config, "widget_config"),
    _public("OPTIONS", "/widget/{key}/config", widget.preflight, "widget_config_preflight"),
    _public("GET", "/widget/{key}/messages", widget.poll, "widget_poll"),
    _public("POST", "/widget/{key}/messages", widget.post_message, "widget_post"),
    _public("OPTIONS", "/widget/{key}/messages", widget.preflight, "widget_messages_preflight"),
    _public("GET", "/widget/{key}/ws", widget.socket, "widget_socket"),
)
