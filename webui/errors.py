"""Turns every failure into an answer a person or a program can act on: JSON under `/api/` and for
webhooks, a friendly page elsewhere; an unexpected exception is logged with an id the page shows."""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from switchboard.errors import DomainError
from webui import i18n
from webui.keys import Handler
from webui.security import USER
from webui.templating import render

log = logging.getLogger(__name__)

_FRIENDLY = {
    400: "The request could not be understood.",
    401: "Please log in.",
    403: "You do not have permission to open this page.",
    404: "This page does not exist.",
    405: "This action is not allowed here.",
    413: "The upload is too large.",
    422: "Some fields need attention.",
    429: "Too many attempts. Please wait and try again.",
    500: "Something went wrong on our side. The error has been logged.",
    503: "The service is temporarily unavailable.",
}


def wants_json(request: web.Request) -> bool:
    return request.path.startswith(("/api/", "/webhooks/", "/widget/")) or request.path in ("/healthz",)


async def error_response(
    request: web.Request, status: int, reason: str, **extra: object
) -> web.StreamResponse:
    if wants_json(request):
        return web.json_response({"error": {"status": status, "reason": reason, **extra}}, status=status)
    context = {
        "status": status,
        "title": i18n.gettext(_FRIENDLY.get(status, "Error")),
        "reason": reason,
        **extra,
    }
    return await render("error.html", request, context, status=status)


def log_refusal(request: web.Request, status: int, why: str) -> None:
    """One line for every request refused (bad input, not allowed, not found): who asked, what, and why."""
    user = request.get(USER)
    who = user.username if user is not None else "-"
    log.info("%s %s refused %s for %s: %s", request.method, request.path, status, who, why)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reason = exc.reason if exc.text is None or exc.text.startswith(f"{exc.status}:") else exc.text
        log_refusal(request, exc.status, reason)
        return await error_response(request, exc.status, reason)
    except DomainError as exc:
        log_refusal(request, exc.status, f"{exc.field or '-'}: {exc.message}")
        return await error_response(
            request, exc.status, i18n.translate_error(exc.message, exc.params), field=exc.field
        )
    except Exception:
        incident = secrets.token_hex(4)
        log.exception("unhandled error %s on %s %s", incident, request.method, request.path)
        return await error_response(request, 500, "internal error", incident=incident)
