"""Jinja2 for the pages: autoescaping, the i18n extension wired to the request's language, and the context
every page gets (user, navigation, CSRF token, flash messages)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web

from switchboard.permissions import can
from webui import forms, i18n
from webui.navigation import navigation_for
from webui.security import CSRF, CSRF_FIELD, maybe_user

TEMPLATES = jinja2.PackageLoader("webui", "templates")


def _query_without_page(query: dict[str, str]) -> str:
    return urlencode({k: v for k, v in query.items() if k != "page"})


def _format_dt(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.strftime(fmt) if value is not None else ""


async def _page_context(request: web.Request) -> dict[str, Any]:
    user = maybe_user(request)
    return {
        "current_user": user,
        "navigation": navigation_for(user.role) if user else [],
        "csrf_token": request.get(CSRF, ""),
        "csrf_field": CSRF_FIELD,
        "locale": i18n.current_locale(),
        "languages": i18n.LANGUAGE_NAMES,
        "flashes": await forms.pop_flashes(request) if user else [],
        "request_path": request.path_qs,
        "request": request,
    }


async def render(
    template: str, request: web.Request, context: dict[str, Any] | None = None, *, status: int = 200
) -> web.Response:
    """Render a page with the context every page needs (user, navigation, CSRF token, flashes)."""
    page = await _page_context(request)
    page.update(context or {})
    return aiohttp_jinja2.render_template(template, request, page, status=status)


def setup_templates(app: web.Application) -> jinja2.Environment:
    env = aiohttp_jinja2.setup(
        app,
        loader=TEMPLATES,
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n.gettext, ngettext=i18n.ngettext, newstyle=True
    )
    env.filters["dt"] = _format_dt
    env.filters["dict_without_page"] = _query_without_page
    env.globals["static"] = lambda path: app.router["static"].url_for(filename=path)
    env.globals["can"] = can
    return env
