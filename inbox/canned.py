"""Canned replies: list, search, manage and render.

A body holds simple placeholders (`{first_name}`, `{last_name}`, `{agent_name}`, `{phone}`) filled from
the conversation's contact and the agent. Substitution is a plain text replacement: no format spec, no
attribute or index access, nothing is evaluated, and an unknown placeholder stays as written, so a body
like `{0.__class__}` or `{price}` comes out exactly as typed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.canned_model import CannedReply
from switchboard import audit
from switchboard.accounts_model import Branch
from switchboard.errors import N_, Invalid, NotFound
from switchboard.permissions import Role
from switchboard.settings import SUPPORTED_LOCALES

SHORTCUT_RE = re.compile(r"[a-z0-9_-]{1,30}")
PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")
PLACEHOLDERS = ("first_name", "last_name", "agent_name", "phone")
MAX_TITLE = 120
MAX_BODY = 5000
SEARCH_LIMIT = 20


@dataclass(frozen=True)
class Filling:
    """The values a reply's placeholders are filled with."""

    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    agent_name: str = ""

    def values(self) -> dict[str, str]:
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone": self.phone,
            "agent_name": self.agent_name,
        }


def fill(body: str, values: Mapping[str, str]) -> str:
    """Replace each known `{name}` with its value; anything else (unknown names, `{{`, format specs,
    attribute access) is left untouched."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        return values[name] if name in values else match.group(0)

    return PLACEHOLDER_RE.sub(one, body)


def render(reply: CannedReply, contact_card: Any, agent: Any) -> str:
    """The reply's text for one conversation: `contact_card` is a `crm_core.contacts.ContactCard` (or
    None), `agent` anything with `full_name` / `username` (a User or CurrentUser)."""
    first = last = phone = ""
    if contact_card is not None:
        first = getattr(contact_card, "first_name", "") or ""
        last = getattr(contact_card, "last_name", "") or ""
        phone = getattr(contact_card, "phone", "") or ""
    agent_name = (getattr(agent, "full_name", "") or getattr(agent, "username", "") or "") if agent else ""
    return fill(reply.body, Filling(first, last, phone, agent_name).values())


def as_json(reply: CannedReply) -> dict[str, Any]:
    return {
        "id": reply.id,
        "shortcut": reply.shortcut,
        "title": reply.title,
        "body": reply.body,
        "language": reply.language,
        "branch_id": reply.branch_id,
    }


async def for_branch(
    session: AsyncSession, branch_id: int | None, *, prefix: str = "", limit: int = SEARCH_LIMIT
) -> list[CannedReply]:
    """The replies a person of `branch_id` may use (their branch's and everyone's), by shortcut; with a
    prefix, only shortcuts that start with it."""
    query = select(CannedReply).order_by(CannedReply.shortcut).limit(limit)
    if branch_id is None:
        query = query.where(CannedReply.branch_id.is_(None))
    else:
        query = query.where(or_(CannedReply.branch_id.is_(None), CannedReply.branch_id == branch_id))
    prefix = prefix.strip().lower()
    if prefix:
        if not SHORTCUT_RE.fullmatch(prefix):
            return []
        query = query.where(CannedReply.shortcut.startswith(prefix, autoescape=True))
    return list(await session.scalars(query))


async def manageable(session: AsyncSession, role: Role, branch_id: int | None) -> list[CannedReply]:
    """What the management page lists: admins every reply; supervisors their branch's and everyone's."""
    if role is Role.ADMIN:
        query = select(CannedReply).order_by(CannedReply.shortcut)
        return list(await session.scalars(query))
    return await for_branch(session, branch_id, limit=10_000)


def _may_manage(role: Role, own_branch: int | None, reply_branch: int | None) -> bool:
    """Admins manage every reply; supervisors only their own branch's (the shared ones are the admins')."""
    if role is Role.ADMIN:
        return True
    return role is Role.SUPERVISOR and reply_branch is not None and reply_branch == own_branch


@dataclass(frozen=True)
class CannedInput:
    shortcut: str
    title: str
    body: str
    language: str | None = None
    branch_id: int | None = None


async def _validate(session: AsyncSession, data: CannedInput) -> CannedInput:
    shortcut = data.shortcut.strip().lower().lstrip("/")
    if not SHORTCUT_RE.fullmatch(shortcut):
        raise Invalid(N_("Use 1 to 30 lowercase letters, digits, - or _ for the shortcut."), field="shortcut")
    title = data.title.strip()
    if not title:
        raise Invalid(N_("This field is required."), field="title")
    if len(title) > MAX_TITLE:
        raise Invalid(N_("At most %(n)s characters."), field="title", n=MAX_TITLE)
    body = data.body.strip()
    if not body:
        raise Invalid(N_("This field is required."), field="body")
    if len(body) > MAX_BODY:
        raise Invalid(N_("At most %(n)s characters."), field="body", n=MAX_BODY)
    language = (data.language or "").strip() or None
    if language is not None and language not in SUPPORTED_LOCALES:
        raise Invalid(N_("Unknown language."), field="language")
    if data.branch_id is not None and await session.get(Branch, data.branch_id) is None:
        raise Invalid(N_("No such branch."), field="branch_id")
    return CannedInput(shortcut, title, body, language, data.branch_id)


async def _check_unique(session: AsyncSession, shortcut: str, reply_id: int | None = None) -> None:
    query = select(CannedReply.id).where(CannedReply.shortcut == shortcut)
    if reply_id is not None:
        query = query.where(CannedReply.id != reply_id)
    if await session.scalar(query) is not None:
        raise Invalid(N_("This shortcut is already taken."), field="shortcut")


def _snapshot(reply: CannedReply) -> dict[str, Any]:
    return {k: v for k, v in as_json(reply).items() if k != "id"}


async def create(
    session: AsyncSession, actor: audit.Actor, role: Role, own_branch: int | None, data: CannedInput
) -> CannedReply:
    clean = await _validate(session, data)
    if not _may_manage(role, own_branch, clean.branch_id):
        raise Invalid(N_("You may only add replies for your own branch."), field="branch_id")
    await _check_unique(session, clean.shortcut)
    reply = CannedReply(
        shortcut=clean.shortcut,
        title=clean.title,
        body=clean.body,
        language=clean.language,
        branch_id=clean.branch_id,
        created_by=actor.user_id,
    )
    session.add(reply)
    await session.flush()
    await audit.record_change(
        session,
        actor,
        module="inbox",
        action=audit.AuditAction.CREATE,
        record_type="canned_reply",
        record_id=reply.id,
        changes=audit.diff({}, _snapshot(reply)),
    )
    return reply


async def _get_manageable(
    session: AsyncSession, role: Role, own_branch: int | None, reply_id: int
) -> CannedReply:
    reply = await session.get(CannedReply, reply_id)
    if reply is None or not _may_manage(role, own_branch, reply.branch_id):
        raise NotFound(N_("No such canned reply."))
    return reply


async def update(
    session: AsyncSession,
    actor: audit.Actor,
    role: Role,
    own_branch: int | None,
    reply_id: int,
    data: CannedInput,
) -> CannedReply:
    reply = await _get_manageable(session, role, own_branch, reply_id)
    clean = await _validate(session, data)
    if not _may_manage(role, own_branch, clean.branch_id):
        raise Invalid(N_("You may only add replies for your own branch."), field="branch_id")
    await _check_unique(session, clean.shortcut, reply.id)
    before = _snapshot(reply)
    reply.shortcut, reply.title, reply.body = clean.shortcut, clean.title, clean.body
    reply.language, reply.branch_id = clean.language, clean.branch_id
    await session.flush()
    await audit.record_change(
        session,
        actor,
        module="inbox",
        action=audit.AuditAction.UPDATE,
        record_type="canned_reply",
        record_id=reply.id,
        changes=audit.diff(before, _snapshot(reply)),
    )
    return reply


async def delete(
    session: AsyncSession, actor: audit.Actor, role: Role, own_branch: int | None, reply_id: int
) -> None:
    reply = await _get_manageable(session, role, own_branch, reply_id)
    before = _snapshot(reply)
    await session.delete(reply)
    await session.flush()
    await audit.record_change(
        session,
        actor,
        module="inbox",
        action=audit.AuditAction.DELETE,
        record_type="canned_reply",
        record_id=reply_id,
        changes=audit.diff(before, {}),
    )
