"""A user's own page: language and API tokens."""

from __future__ import annotations

from aiohttp import web

from switchboard import accounts
from switchboard.errors import DomainError
from webui import forms, i18n, keys
from webui.security import client_ip, current_user
from webui.templating import render


async def profile_page(
    request: web.Request, *, new_token: str | None = None, error: str | None = None, status: int = 200
) -> web.Response:
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db:
        tokens = await accounts.list_api_tokens(db, user.id)
    context = {"tokens": tokens, "new_token": new_token, "error": error, "languages": i18n.LANGUAGE_NAMES}
    response = await render("profile.html", request, context, status=status)
    response.headers["Cache-Control"] = "no-store"  # the page may show a token once
    return response


async def profile(request: web.Request) -> web.StreamResponse:
    return await profile_page(request)


async def token_create(request: web.Request) -> web.StreamResponse:
    user = current_user(request)
    form = await request.post()
    try:
        name = forms.text(form, "name", max_len=100, required=True)
        days = forms.integer(form, "days", minimum=1, maximum=3650)
        async with request.app[keys.SESSIONS]() as db, db.begin():
            _, token = await accounts.create_api_token(
                db, user.actor(client_ip(request)), user.id, name, days=days
            )
    except DomainError as exc:
        return await profile_page(
            request, error=i18n.translate_error(exc.message, exc.params), status=exc.status
        )
    return await profile_page(request, new_token=token)


async def token_revoke(request: web.Request) -> web.StreamResponse:
    user = current_user(request)
    token_id = forms.path_int(request, "id")
    async with request.app[keys.SESSIONS]() as db, db.begin():
        await accounts.revoke_api_token(db, user.actor(client_ip(request)), user.id, token_id)
    await forms.flash(request, i18n.gettext("Token revoked."))
    raise web.HTTPFound("/profile")
