"""Reading untrusted form and query input into plain values, with limits and readable errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

from aiohttp import web
from aiohttp_session import get_session
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import custom_fields
from crm_core.custom_fields import FieldDef
from switchboard.errors import N_, DomainError, Invalid


def text(data: Mapping[str, Any], name: str, *, max_len: int = 200, required: bool = False) -> str:
    value = data.get(name, "")
    if not isinstance(value, str):
        raise Invalid(N_("This field must be text."), field=name)
    value = value.strip()
    if required and not value:
        raise Invalid(N_("This field is required."), field=name)
    if len(value) > max_len:
        raise Invalid(N_("At most %(n)s characters."), field=name, n=max_len)
    return value


def integer(data: Mapping[str, Any], name: str, *, minimum: int = 0, maximum: int = 2**31 - 1) -> int | None:
    raw = text(data, name, max_len=12)
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise Invalid(N_("Enter a whole number."), field=name) from exc
    if not minimum <= value <= maximum:
        raise Invalid(N_("Enter a number from %(min)s to %(max)s."), field=name, min=minimum, max=maximum)
    return value


def reference(data: Mapping[str, Any], name: str, *, error: type[DomainError] = Invalid) -> int | None:
    """A record id from JSON (a number) or a form (digits); absent, null and "" are None. `error` lets a
    room raise its own kind of `Invalid` (a task's, say) so its edge answers the way it always does."""
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isdigit() and len(value) < 11:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise error(N_("Not a valid reference."), field=name)
    return value


def date(data: Mapping[str, Any], name: str) -> dt.date | None:
    raw = text(data, name, max_len=10)
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise Invalid(N_("Enter a date as YYYY-MM-DD."), field=name) from exc


def path_int(request: web.Request, name: str) -> int:
    try:
        value = int(request.match_info[name])
    except (KeyError, ValueError) as exc:
        raise web.HTTPNotFound() from exc
    if not 0 < value < 2**31:
        raise web.HTTPNotFound()
    return value


def safe_next(value: str | None, default: str = "/") -> str:
    """Only same-site paths: an open redirect after login would help phishing."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


async def flash(request: web.Request, message: str, kind: str = "success") -> None:
    session = await get_session(request)
    messages = list(session.get("flash", []))[-4:]
    messages.append([kind, message])
    session["flash"] = messages


async def pop_flashes(request: web.Request) -> list[list[str]]:
    session = await get_session(request)
    return list(session.pop("flash", []))


async def posted(request: web.Request) -> dict[str, str]:
    """A posted form's text fields, without the CSRF token (files and repeated keys: read the form itself)."""
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "_csrf"}


def flag(data: Mapping[str, Any], name: str, default: bool) -> bool:
    """A true / false value from a JSON body (a boolean) or a form ("1", "on", "true"; "0", "off", "")."""
    value = data.get(name, default)
    if isinstance(value, bool):
        return value
    if value in ("1", "true", "on"):
        return True
    if value in ("0", "false", "off", ""):
        return False
    raise Invalid(N_("Give true or false."), field=name)


# --- custom fields ------------------------------------------------------------------------------------------


async def custom_defs(db: AsyncSession, entity: str, hidden: Collection[str] = ()) -> list[FieldDef]:
    """The admin-defined fields a record's form shows, in form order: the active ones not hidden from the
    reader (`crm_core.field_visibility`: `custom.<key>`)."""
    return [d for d in await custom_fields.definitions(db, entity) if d.path not in hidden]


def refuse_hidden_custom(raw: Any, hidden: Collection[str]) -> None:
    """An API body may not set a custom field the caller cannot see (answered as unknown, like a core one)."""
    if isinstance(raw, Mapping):
        for key in raw:
            if f"custom.{key}" in hidden:
                raise Invalid(N_("Unknown field."), field=f"custom.{key}")
