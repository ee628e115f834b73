"""Authentication, CSRF and the permission check for every request, in one middleware.

Every route carries its rule (`routes.py`); a route without one is refused, so nothing is reachable by
accident. Browsers authenticate with an encrypted session cookie that names a server-side session row
(so logout and expiry are enforced on the server); the REST API also accepts `Authorization: Bearer`.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from aiohttp import web
from aiohttp_session import Session, get_session

from inbox.service import Viewer
from switchboard import accounts
from switchboard.accounts import CurrentUser
from switchboard.permissions import can
from webui import i18n, keys
from webui.routes_spec import PUBLIC, UNSAFE_METHODS, RouteSpec

log = logging.getLogger(__name__)

USER = web.RequestKey("user", CurrentUser)
AUTH = web.RequestKey("auth", str)
CSRF = web.RequestKey("csrf", str)
SPEC = web.RequestKey("spec", RouteSpec)
SESSION_ID_KEY = "sid"
CSRF_KEY = "csrf"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Identity:
    user: CurrentUser | None
    auth: Literal["session", "token", "none"]
    expired: bool = False


def client_ip(request: web.Request) -> str:
    return (request.remote or "unknown")[:64]


def viewer_of(request: web.Request) -> Viewer:
    """Who is asking, as the inbox's visibility rules see them."""
    user = current_user(request)
    return Viewer(user.id, user.role, user.branch_id)


def current_user(request: web.Request) -> CurrentUser:
    """The caller of a route that is not PUBLIC (the middleware has already insisted on one)."""
    return request[USER]


def maybe_user(request: web.Request) -> CurrentUser | None:
    return request.get(USER)


def ensure_csrf(session: Session) -> str:
    token = session.get(CSRF_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


def rotate_csrf(session: Session) -> str:
    session[CSRF_KEY] = secrets.token_urlsafe(32)
    return str(session[CSRF_KEY])


async def _identify_token(request: web.Request, header: str) -> Identity:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return Identity(None, "none")
    async with request.app[keys.SESSIONS]() as db, db.begin():
        user = await accounts.user_for_token(db, token.strip())
        return Identity(CurrentUser.of(user) if user else None, "token" if user else "none")


async def _identify_session(request: web.Request, session: Session) -> Identity:
    session_id = session.get(SESSION_ID_KEY)
    if not isinstance(session_id, str):
        return Identity(None, "none")
    async with request.app[keys.SESSIONS]() as db, db.begin():
        found = await accounts.resolve_web_session(db, request.app[keys.LOGIN_POLICY], session_id)
        user = CurrentUser.of(found.user) if found.user else None
    if user is None:
        session.pop(SESSION_ID_KEY, None)
        return Identity(None, "none", expired=found.expired)
    return Identity(user, "session")


def _deny(request: web.Request, spec: RouteSpec | None, status: int, reason: str) -> web.HTTPException:
    log.info("denied %s %s: %s", request.method, request.path, reason)
    if status == 401 and spec is not None and not spec.is_api:
        location = "/login?next=" + quote(request.path_qs, safe="/")
        return web.HTTPFound(location)
    return web.HTTPForbidden(reason=reason) if status == 403 else web.HTTPUnauthorized(reason=reason)


@web.middleware
async def security_middleware(request: web.Request, handler: keys.Handler) -> web.StreamResponse:
    route = request.match_info.route
    if request.match_info.http_exception is not None:
        return await handler(request)  # 404 / 405: let the error middleware render it
    spec = request.app[keys.ROUTE_SPECS].get(route.name or "")
    if spec is None:
        raise _deny(request, None, 403, "route has no permission rule")
    request[SPEC] = spec
    session: Session | None = None
    header = request.headers.get("Authorization")
    if spec.is_api and header:
        identity = await _identify_token(request, header)  # API clients carry no cookie session
    elif spec.uses_session:
        session = await get_session(request)
        identity = await _identify_session(request, session)
        request[CSRF] = ensure_csrf(session)
    else:
        identity = Identity(None, "none")
    locale = (identity.user.locale if identity.user else None) or (session.get("locale") if session else None)
    default = request.app[keys.SETTINGS].default_locale
    i18n.set_locale(locale or i18n.negotiate(request.headers.get("Accept-Language"), default))
    if identity.user is not None:
        request[USER] = identity.user
        request[AUTH] = identity.auth

    if spec.access != PUBLIC:
        if identity.user is None:
            if identity.expired and not spec.is_api:
                raise web.HTTPFound("/login?expired=1&next=" + quote(request.path_qs, safe="/"))
            raise _deny(request, spec, 401, "session expired" if identity.expired else "login required")
        if not can(identity.user.role, spec.access):
            raise _deny(request, spec, 403, f"role {identity.user.role} may not {spec.access}")
    if request.method in UNSAFE_METHODS and spec.csrf and identity.auth != "token":
        await _check_csrf(request, request.get(CSRF, ""))
    return await handler(request)


async def _check_csrf(request: web.Request, expected: str) -> None:
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not given or not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        log.warning("CSRF check failed on %s %s from %s", request.method, request.path, client_ip(request))
        raise web.HTTPForbidden(reason="CSRF token missing or wrong; reload the page and try again")
