"""Login, logout and the language switcher."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session, new_session

from switchboard import accounts
from switchboard.accounts import CurrentUser, LoginRefused
from switchboard.errors import DomainError
from webui import forms, i18n, keys
from webui.security import SESSION_ID_KEY, client_ip, current_user, maybe_user, rotate_csrf
from webui.templating import render


async def login_page(request: web.Request) -> web.StreamResponse:
    if maybe_user(request) is not None:
        raise web.HTTPFound(forms.safe_next(request.query.get("next")))
    context = {"next": forms.safe_next(request.query.get("next")), "expired": "expired" in request.query}
    return await render("login.html", request, context)


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    next_url = forms.safe_next(form.get("next") if isinstance(form.get("next"), str) else None)  # type: ignore[arg-type]
    try:
        username = forms.text(form, "username", max_len=64, required=True)
        password = forms.text(form, "password", max_len=accounts.MAX_PASSWORD, required=True)
    except DomainError as exc:
        return await _login_error(
            request,
            i18n.gettext("Enter your username and password."),
            username="",
            next_url=next_url,
            status=exc.status,
        )
    policy = request.app[keys.LOGIN_POLICY]
    refused: LoginRefused | None = None
    async with request.app[keys.SESSIONS]() as db, db.begin():
        try:
            user = await accounts.authenticate(db, policy, username, password, client_ip(request))
            web_session = await accounts.start_web_session(
                db, policy, user, ip=client_ip(request), user_agent=request.headers.get("User-Agent", "")
            )
            current = CurrentUser.of(user)
        except LoginRefused as exc:
            refused = exc  # caught inside the transaction so the failure and its audit row are kept
    if refused is not None:
        message = i18n.translate_error(refused.reason, refused.params)
        return await _login_error(
            request, message, username=username, next_url=next_url, status=refused.status
        )
    session = await new_session(request)  # a fresh cookie: no session fixation
    session[SESSION_ID_KEY] = web_session.id
    if current.locale:
        session["locale"] = current.locale
    rotate_csrf(session)
    raise web.HTTPFound(next_url)


async def _login_error(
    request: web.Request, message: str, *, username: str, next_url: str, status: int
) -> web.Response:
    context = {"error": message, "username": username, "next": next_url}
    return await render("login.html", request, context, status=status)


async def logout(request: web.Request) -> web.StreamResponse:
    session = await get_session(request)
    user = current_user(request)
    session_id = session.get(SESSION_ID_KEY)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        if isinstance(session_id, str):
            await accounts.end_web_session(db, session_id, user.actor(client_ip(request)))
    session.invalidate()
    raise web.HTTPFound("/login")


async def set_language(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    locale = forms.text(form, "locale", max_len=5)
    if locale not in i18n.LANGUAGE_NAMES:
        raise web.HTTPBadRequest(reason="unknown language")
    session = await get_session(request)
    session["locale"] = locale
    user = maybe_user(request)
    if user is not None:
        async with request.app[keys.SESSIONS]() as db, db.begin():
            await accounts.update_user(db, user.actor(client_ip(request)), user.id, locale=locale)
    next_value = form.get("next")
    raise web.HTTPFound(forms.safe_next(next_value if isinstance(next_value, str) else None))
