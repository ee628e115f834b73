"""Field hiding by role: the admin's setting of which fields (core names such as `idnp`, `birth_date`,
`amount`, or `custom.<key>`) a role may not see on contacts, companies, leads and deals.

A hidden field is left out of list columns, refused as a filter or a sort, left out of exports and cut
from the records' JSON and pages (`redact`, and the templates' `visible_field`); the search box matches a
hit only on what its reader may see (`crm_core.search.seen_matching`). Admins see every field.
Hiding only adds to the rule of `crm_core.leads.locked_fields`: what a role may not see it may not change
either (`locked_lead_fields`), and a field it may see but not change stays merely locked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import custom_fields, leads, list_fields
from crm_core.list_views_model import MAX_FIELD_NAME, HiddenField
from switchboard import audit
from switchboard.audit import Actor, AuditAction
from switchboard.errors import N_, Invalid
from switchboard.permissions import Role

ROLES = (Role.SUPERVISOR, Role.AGENT, Role.MARKETER)  # admins see everything
NOTHING: frozenset[str] = frozenset()

# Where a core field appears in a record's JSON when its name there differs (a choice of ids).
JSON_KEYS: dict[str, tuple[str, ...]] = {
    "branch": ("branch_id", "branch_name"),
    "owner": ("owner_id", "owner_name"),
    "stage": ("stage_id", "stage_name"),
    "pipeline": ("pipeline_id",),
    "contact_name": ("contact_name",),
    "phone": ("phone", "phones"),
    "email": ("email", "emails"),
}


def _role(role: Role | str) -> Role | None:
    try:
        return Role(role)
    except ValueError:
        return None


async def hidden(session: AsyncSession, entity: str, role: Role | str) -> frozenset[str]:
    """The fields of `entity` that `role` may not see."""
    who = _role(role)
    if who is None or who is Role.ADMIN:
        return NOTHING
    rows = await session.scalars(
        select(HiddenField.field).where(HiddenField.entity == entity, HiddenField.role == who.value)
    )
    return frozenset(rows)


async def hidden_map(session: AsyncSession, role: Role | str) -> dict[str, frozenset[str]]:
    """entity → hidden fields, for a page that shows several kinds of records."""
    who = _role(role)
    out: dict[str, frozenset[str]] = {entity: NOTHING for entity in custom_fields.ENTITIES}
    if who is None or who is Role.ADMIN:
        return out
    rows = await session.execute(
        select(HiddenField.entity, HiddenField.field).where(HiddenField.role == who.value)
    )
    grouped: dict[str, set[str]] = {}
    for entity, name in rows:
        grouped.setdefault(entity, set()).add(name)
    return out | {entity: frozenset(names) for entity, names in grouped.items()}


async def setting(session: AsyncSession) -> dict[str, dict[str, frozenset[str]]]:
    """The whole setting: entity → role → hidden fields (for the admin page)."""
    out: dict[str, dict[str, frozenset[str]]] = {
        entity: {role.value: NOTHING for role in ROLES} for entity in custom_fields.ENTITIES
    }
    grouped: dict[tuple[str, str], set[str]] = {}
    for row in await session.scalars(select(HiddenField)):
        grouped.setdefault((row.entity, row.role), set()).add(row.field)
    for (entity, role), names in grouped.items():
        if entity in out and role in out[entity]:
            out[entity][role] = frozenset(names)
    return out


async def known_fields(session: AsyncSession, entity: str) -> list[tuple[str, str]]:
    """(name, label) of every field that can be hidden: core fields, then custom ones (inactive too — a
    field switched off and on again must stay hidden)."""
    labels = list_fields.core_labels(entity)
    defs = await custom_fields.definitions(session, entity, include_inactive=True)
    return [*labels.items(), *((d.path, d.label) for d in defs)]


async def set_hidden(
    session: AsyncSession, actor: Actor, entity: str, role: Role | str, names: Iterable[str]
) -> frozenset[str]:
    """Replace what `role` may not see of `entity`; audited as one change."""
    custom_fields.check_entity(entity)
    who = _role(role)
    if who is None or who not in ROLES:
        raise Invalid(N_("Choose one from the list."), field="role")
    known = {name for name, _ in await known_fields(session, entity)}
    wanted = frozenset(names)
    unknown = sorted(n for n in wanted if n not in known or len(n) > MAX_FIELD_NAME)
    if unknown:
        raise Invalid(N_("Unknown field: %(name)s."), field="fields", name=unknown[0][:MAX_FIELD_NAME])
    before = await hidden(session, entity, who)
    if wanted == before:
        return before
    await session.execute(
        delete(HiddenField).where(HiddenField.entity == entity, HiddenField.role == who.value)
    )
    session.add_all([HiddenField(entity=entity, role=who.value, field=name) for name in sorted(wanted)])
    await session.flush()
    await audit.record_change(
        session,
        actor,
        module="admin",
        action=AuditAction.UPDATE,
        record_type="hidden_fields",
        record_id=f"{entity}:{who.value}",
        changes={"hidden": [sorted(before), sorted(wanted)]},
    )
    return wanted


def locked_lead_fields(role: Role | str, hidden_names: Iterable[str]) -> frozenset[str]:
    """What a role may not change on a lead: the managers' fields of `leads.locked_fields`, and whatever
    is hidden from it."""
    return leads.locked_fields(role) | frozenset(hidden_names)


def contact_label(
    contact_id: int,
    first_name: str,
    last_name: str,
    phone: str | None,
    email: str | None,
    hidden_names: Iterable[str],
) -> str:
    """What a contact goes by for a reader (`Contact.display_name`'s fallbacks: name, phone, e-mail, #id),
    skipping what the reader's role may not see."""
    hidden = set(hidden_names)
    name = "" if "name" in hidden else f"{first_name} {last_name}".strip()
    return (
        name
        or ("" if "phone" in hidden else phone or "")
        or ("" if "email" in hidden else email or "")
        or f"#{contact_id}"
    )


class Named(Protocol):
    """What a contact goes by: a `Contact` row or a profile's contact."""

    id: int
    first_name: str
    last_name: str
    phone: str | None
    email: str | None


def contact_label_of(contact: Named, hidden_names: Iterable[str]) -> str:
    """`contact_label` of a contact record."""
    return contact_label(
        contact.id, contact.first_name, contact.last_name, contact.phone, contact.email, hidden_names
    )


def redact(data: Mapping[str, Any], hidden_names: Iterable[str]) -> dict[str, Any]:
    """A record's JSON without the hidden fields: core names and their JSON keys (`branch` →
    `branch_id`, `branch_name`), and `custom.<key>` inside the `custom` object."""
    out = dict(data)
    custom_keys = set()
    for name in hidden_names:
        if name.startswith("custom."):
            custom_keys.add(name.removeprefix("custom."))
            continue
        for key in JSON_KEYS.get(name, (name,)):
            out.pop(key, None)
    if custom_keys and isinstance(out.get("custom"), Mapping):
        out["custom"] = {k: v for k, v in out["custom"].items() if k not in custom_keys}
    return out
