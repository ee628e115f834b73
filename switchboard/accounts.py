"""Users, branches, passwords (argon2), server-side web sessions, API tokens and login lockout.

Argon2 is deliberately slow, so hashing runs in a thread to keep the event loop (and every agent's live
feed) responsive during a login.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard import audit
from switchboard.accounts_model import ApiToken, Branch, LoginFailure, User, WebSession
from switchboard.db import utcnow
from switchboard.errors import N_, Conflict, Invalid, NotFound
from switchboard.permissions import Role
from switchboard.settings import SUPPORTED_LOCALES

_hasher = PasswordHasher()
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
TOKEN_PREFIX = "sb_"
# Verified against when the username is unknown, so that response time does not reveal which users exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class CurrentUser:
    """What a request knows about who is calling; built from a session or an API token."""

    id: int
    username: str
    full_name: str
    role: Role
    branch_id: int | None
    branch_name: str | None
    locale: str | None

    @classmethod
    def of(cls, user: User) -> CurrentUser:
        return cls(
            id=user.id,
            username=user.username,
            full_name=user.full_name or user.username,
            role=Role(user.role),
            branch_id=user.branch_id,
            branch_name=user.branch.name if user.branch else None,
            locale=user.locale,
        )

    def actor(self, ip: str | None = None) -> audit.Actor:
        return audit.Actor(user_id=self.id, username=self.username, ip=ip)


# --- passwords ---------------------------------------------------------------------------------------


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(
            N_("The password must have at least %(n)s characters."), field="password", n=MIN_PASSWORD
        )
    if len(password) > MAX_PASSWORD:
        raise Invalid(N_("The password is too long."), field="password")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(stored_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


# --- branches and users ----------------------------------------------------------------------------


async def get_or_create_branch(session: AsyncSession, name: str) -> Branch:
    name = " ".join(name.split())
    if not name or len(name) > 120:
        raise Invalid(N_("A branch name must have 1 to 120 characters."), field="branch")
    branch = await session.scalar(select(Branch).where(func.lower(Branch.name) == name.lower()))
    if branch is None:
        branch = Branch(name=name)
        session.add(branch)
        await session.flush()
    return branch


async def list_branches(session: AsyncSession) -> list[Branch]:
    return list(await session.scalars(select(Branch).order_by(Branch.name)))


def normalise_username(username: str) -> str:
    return username.strip().lower()


def _validate_user_fields(username: str, role: str, locale: str | None) -> None:
    if not _USERNAME.match(username):
        raise Invalid(
            N_("A username has 3 to 64 characters: small letters, digits, dot, dash or underscore."),
            field="username",
        )
    if role not in {r.value for r in Role}:
        raise Invalid(N_("Unknown role: %(role)s."), field="role", role=role)
    if locale is not None and locale not in SUPPORTED_LOCALES:
        raise Invalid(N_("Unknown language."), field="locale")


def user_snapshot(user: User) -> dict[str, Any]:
    """The audited view of a user: no password hash, ever."""
    return {
        "username": user.username,
        "full_name": user.full_name,
        "email": user.email,
        "role": user.role,
        "branch_id": user.branch_id,
        "locale": user.locale,
        "active": user.active,
    }


async def create_user(
    session: AsyncSession,
    actor: audit.Actor,
    *,
    username: str,
    password: str,
    role: str,
    full_name: str = "",
    email: str | None = None,
    branch: str | None = None,
    locale: str | None = None,
) -> User:
    username = normalise_username(username)
    _validate_user_fields(username, role, locale)
    validate_password(password)
    if await session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(N_("The username %(username)s is taken."), field="username", username=username)
    branch_row = await get_or_create_branch(session, branch) if branch else None
    user = User(
        username=username,
        password_hash=await hash_password(password),
        role=role,
        full_name=full_name.strip()[:200],
        email=(email or "").strip()[:254] or None,
        branch_id=branch_row.id if branch_row else None,
        locale=locale,
    )
    session.add(user)
    await session.flush()
    await audit.record_change(
        session,
        actor,
        module="users",
        action=audit.AuditAction.CREATE,
        record_type="user",
        record_id=user.id,
        changes=audit.diff({}, user_snapshot(user)),
    )
    return user


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(N_("No such user."))
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.username)))


async def update_user(
    session: AsyncSession, actor: audit.Actor, user_id: int, *, password: str | None = None, **fields: Any
) -> User:
    """Change the given fields (full_name, email, role, branch_id, locale, active) and audit the diff."""
    user = await get_user(session, user_id)
    before = user_snapshot(user)
    allowed = {"full_name", "email", "role", "branch_id", "locale", "active"}
    unknown = set(fields) - allowed
    if unknown:
        raise Invalid(N_("Unknown field."), field=sorted(unknown)[0])
    _validate_user_fields(user.username, fields.get("role", user.role), fields.get("locale", user.locale))
    if (
        "branch_id" in fields
        and fields["branch_id"] is not None
        and await session.get(Branch, fields["branch_id"]) is None
    ):
        raise Invalid(N_("No such branch."), field="branch_id")
    if actor.user_id == user.id and (
        fields.get("active") is False or fields.get("role", user.role) != user.role
    ):
        raise Invalid(N_("You cannot deactivate yourself or change your own role."), field="role")
    for key, value in fields.items():
        setattr(user, key, value)
    changes = audit.diff(before, user_snapshot(user))
    if password:
        validate_password(password)
        user.password_hash = await hash_password(password)
        user.locked_until = None
        changes["password"] = ["***", "***"]
        await session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    if fields.get("active") is False:
        await session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    if changes:
        await audit.record_change(
            session,
            actor,
            module="users",
            action=audit.AuditAction.UPDATE,
            record_type="user",
            record_id=user.id,
            changes=changes,
        )
    await session.flush()
    return user


# --- login, lockout, sessions ----------------------------------------------------------------------


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    lockout: dt.timedelta = dt.timedelta(minutes=15)
    idle: dt.timedelta = dt.timedelta(minutes=60)
    max_age: dt.timedelta = dt.timedelta(hours=12)

    @property
    def max_failures_per_ip(self) -> int:
        # An office shares one IP; lock an address only well after individual accounts would lock.
        return self.max_failures * 4


class LoginRefused(Exception):
    """A login that did not succeed; `reason` is a msgid safe to show (it never says which part was wrong)."""

    def __init__(self, reason: str, status: int = 401, **params: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.params = params


async def authenticate(
    session: AsyncSession, policy: LoginPolicy, username: str, password: str, ip: str
) -> User:
    """Check credentials with lockout per user and per IP; audit every outcome. Raises `LoginRefused`."""
    username = normalise_username(username)[:64]
    now = utcnow()
    window_start = now - policy.lockout
    ip_failures = await session.scalar(
        select(func.count(LoginFailure.id)).where(LoginFailure.ip == ip, LoginFailure.at >= window_start)
    )
    actor = audit.Actor(user_id=None, username=username or None, ip=ip)
    if (ip_failures or 0) >= policy.max_failures_per_ip:
        await _fail(session, actor, username, ip, "too many failures from this address")
        raise LoginRefused(N_("Too many failed logins from your network. Try again later."), status=429)
    user = await session.scalar(select(User).where(User.username == username)) if username else None
    if user is not None and user.locked_until is not None and user.locked_until > now:
        await _fail(session, actor, username, ip, "account locked")
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise LoginRefused(
            N_("Too many failed logins. The account is locked for %(minutes)s more minutes."),
            status=429,
            minutes=minutes,
        )
    ok = await _verify(user.password_hash if user else _DUMMY_HASH, password[:MAX_PASSWORD])
    if user is None or not ok or not user.active:
        why = "unknown user" if user is None else ("inactive user" if ok else "wrong password")
        await _fail(session, actor, username, ip, why)
        if user is not None:
            failures = await session.scalar(
                select(func.count(LoginFailure.id)).where(
                    LoginFailure.username == username, LoginFailure.at >= window_start
                )
            )
            if (failures or 0) >= policy.max_failures:
                user.locked_until = now + policy.lockout
                raise LoginRefused(
                    N_("Too many failed logins. The account is locked for %(minutes)s more minutes."),
                    status=429,
                    minutes=int(policy.lockout.total_seconds() // 60),
                )
        raise LoginRefused(N_("Wrong username or password."))
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
    await session.execute(delete(LoginFailure).where(LoginFailure.username == username))
    user.locked_until = None
    user.last_login_at = now
    return user


async def _fail(session: AsyncSession, actor: audit.Actor, username: str, ip: str, why: str) -> None:
    session.add(LoginFailure(username=username, ip=ip, at=utcnow()))
    await audit.record(
        session,
        actor,
        category=audit.Category.AUTH,
        module="auth",
        action=audit.AuditAction.LOGIN_FAILED,
        detail=why,
    )


async def start_web_session(
    session: AsyncSession, policy: LoginPolicy, user: User, *, ip: str, user_agent: str
) -> WebSession:
    now = utcnow()
    web_session = WebSession(
        id=secrets.token_urlsafe(32),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + policy.max_age,
        ip=ip,
        user_agent=user_agent[:300],
    )
    session.add(web_session)
    await audit.record(
        session,
        audit.Actor(user.id, user.username, ip),
        category=audit.Category.AUTH,
        module="auth",
        action=audit.AuditAction.LOGIN,
    )
    await session.flush()
    return web_session


@dataclass(frozen=True)
class SessionLookup:
    user: User | None
    expired: bool


async def resolve_web_session(session: AsyncSession, policy: LoginPolicy, session_id: str) -> SessionLookup:
    """The user behind a session id; an idle or over-age session is deleted and reported as expired."""
    found = (
        await session.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.id == session_id)
        )
    ).first()
    if found is None:
        return SessionLookup(user=None, expired=False)
    row, user = found
    now = utcnow()
    if row.expires_at <= now or row.last_seen_at + policy.idle <= now or not user.active:
        await session.delete(row)
        await audit.record(
            session,
            audit.Actor(user.id, user.username, row.ip),
            category=audit.Category.AUTH,
            module="auth",
            action=audit.AuditAction.SESSION_EXPIRED,
        )
        return SessionLookup(user=None, expired=True)
    if now - row.last_seen_at > dt.timedelta(seconds=60):  # touch at most once a minute
        row.last_seen_at = now
    return SessionLookup(user=user, expired=False)


ONLINE_WINDOW = dt.timedelta(minutes=5)
_STAFF_ROLES = (Role.AGENT.value, Role.SUPERVISOR.value, Role.ADMIN.value)


async def agents_online(session: AsyncSession, *, window: dt.timedelta = ONLINE_WINDOW) -> int:
    """How many people who can answer chats (agents, supervisors, admins) have a live web session that
    made a request in the last `window`. A stand-in for the router's presence: honest about "someone is
    at a screen", blind to whether they are busy or have the inbox open."""
    now = utcnow()
    count = await session.scalar(
        select(func.count(func.distinct(WebSession.user_id)))
        .join(User, User.id == WebSession.user_id)
        .where(
            User.active.is_(True),
            User.role.in_(_STAFF_ROLES),
            WebSession.expires_at > now,
            WebSession.last_seen_at >= now - window,
        )
    )
    return int(count or 0)


async def end_web_session(session: AsyncSession, session_id: str, actor: audit.Actor) -> None:
    await session.execute(delete(WebSession).where(WebSession.id == session_id))
    await audit.record(
        session, actor, category=audit.Category.AUTH, module="auth", action=audit.AuditAction.LOGOUT
    )


async def purge_expired(session: AsyncSession, policy: LoginPolicy) -> int:
    """Housekeeping: drop sessions past their life and failures outside the lockout window."""
    now = utcnow()
    result = await session.execute(
        delete(WebSession).where(
            or_(WebSession.expires_at <= now, WebSession.last_seen_at <= now - policy.idle)
        )
    )
    await session.execute(delete(LoginFailure).where(LoginFailure.at < now - policy.lockout))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- API tokens -------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough (no need for a slow hash per API call).
    return hashlib.sha256(token.encode()).hexdigest()


async def create_api_token(
    session: AsyncSession, actor: audit.Actor, user_id: int, name: str, *, days: int | None = None
) -> tuple[ApiToken, str]:
    """Returns the row and the token itself, which is never stored and cannot be shown again."""
    name = " ".join(name.split())[:100]
    if not name:
        raise Invalid(N_("Give the token a name."), field="name")
    if days is not None and not 1 <= days <= 3650:
        raise Invalid(N_("A token lives 1 to 3650 days."), field="days")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user_id,
        name=name,
        prefix=token[:10],
        token_hash=_token_hash(token),
        expires_at=utcnow() + dt.timedelta(days=days) if days else None,
    )
    session.add(row)
    await session.flush()
    await audit.record_change(
        session,
        actor,
        module="api_tokens",
        action=audit.AuditAction.CREATE,
        record_type="api_token",
        record_id=row.id,
        changes={"name": [None, name]},
    )
    return row, token


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    now = utcnow()
    found = (
        await session.execute(
            select(ApiToken.id, ApiToken.last_used_at, User)
            .join(User, User.id == ApiToken.user_id)
            .where(
                ApiToken.token_hash == _token_hash(token),
                ApiToken.revoked_at.is_(None),
                or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now),
                User.active.is_(True),
            )
        )
    ).first()
    if found is None:
        return None
    token_id, last_used_at, user = found
    if last_used_at is None or now - last_used_at > dt.timedelta(minutes=1):
        await session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    return user


async def list_api_tokens(session: AsyncSession, user_id: int) -> list[ApiToken]:
    return list(
        await session.scalars(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at.desc())
        )
    )


async def revoke_api_token(session: AsyncSession, actor: audit.Actor, user_id: int, token_id: int) -> None:
    row = await session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id))
    if row is None:
        raise NotFound(N_("No such token."))
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await audit.record_change(
            session,
            actor,
            module="api_tokens",
            action=audit.AuditAction.DELETE,
            record_type="api_token",
            record_id=row.id,
        )
