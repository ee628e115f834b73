"""Which value the surviving contact keeps, field by field, when two contacts merge: the merge screen
shows both values side by side with a choice per field (`compare`), the API takes the same choices, and
`resolve` turns them into the kept contact's new values.

Left unchosen, a field keeps the kept contact's value, or takes the other one when the kept one is empty;
a name is taken whole when the kept contact has none, and only a missing last name when the first names
agree ("Ion" + "Ion Popescu" gives "Ion Popescu", never "Visitor Rusu"). Tags are always the union; the
phone and e-mail lists are joined by the merge itself (`crm_core.merge`), the choice names the main one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.custom_fields import FieldDef
from crm_core.models import Contact
from switchboard.accounts_model import Branch, User
from switchboard.errors import N_, Invalid

Side = Literal["keep", "merge"]
KEEP: Side = "keep"
MERGE: Side = "merge"
CUSTOM = "custom."

# (field, label msgid) in the order the merge screen shows them
FIELDS: tuple[tuple[str, str], ...] = (
    ("first_name", N_("First name")),
    ("last_name", N_("Last name")),
    ("phone", N_("Main phone")),
    ("email", N_("Main e-mail")),
    ("idnp", N_("IDNP")),
    ("birth_date", N_("Birth date")),
    ("address", N_("Address")),
    ("branch_id", N_("Branch")),
    ("owner_id", N_("Responsible expert")),
    ("language", N_("Language")),
    ("consents", N_("Consent to be contacted")),
)
NAMES = tuple(name for name, _ in FIELDS)
MAX_CHOICES = 200


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def choosable(defs: Sequence[FieldDef]) -> tuple[str, ...]:
    """Every field a choice may name: the profile's and the active custom fields (`custom.<key>`)."""
    return NAMES + tuple(d.path for d in defs if d.active)


def _value(contact: Contact, name: str) -> Any:
    if name.startswith(CUSTOM):
        return (contact.custom or {}).get(name.removeprefix(CUSTOM))
    return getattr(contact, name)


def default_choices(keep: Contact, merged: Contact, defs: Sequence[FieldDef]) -> dict[str, Side]:
    """What the screen preselects and what a merge without choices does."""
    choices: dict[str, Side] = {name: KEEP for name in choosable(defs)}
    if not keep.first_name and not keep.last_name:
        if merged.first_name or merged.last_name:
            choices["first_name"] = choices["last_name"] = MERGE
    elif (
        not keep.last_name and merged.last_name and keep.first_name.casefold() == merged.first_name.casefold()
    ):
        choices["last_name"] = MERGE
    for name in choices:
        if name in ("first_name", "last_name"):
            continue
        if _empty(_value(keep, name)) and not _empty(_value(merged, name)):
            choices[name] = MERGE
    return choices


def parse_choices(raw: Any, defs: Sequence[FieldDef]) -> dict[str, Side]:
    """`{field: "keep" | "merge"}` from a form or the API; anything else is refused with the field named."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise Invalid(N_("The choices must be an object."), field="choices")
    if len(raw) > MAX_CHOICES:
        raise Invalid(N_("At most %(n)s items."), field="choices", n=MAX_CHOICES)
    allowed = set(choosable(defs))
    choices: dict[str, Side] = {}
    for name, side in raw.items():
        if not isinstance(name, str) or name not in allowed:
            raise Invalid(N_("Unknown field: %(name)s."), field="choices", name=str(name)[:60])
        if side not in (KEEP, MERGE):
            raise Invalid(N_("Choose one of the two values."), field=name)
        choices[name] = side
    return choices


def resolve(
    keep: Contact, merged: Contact, choices: Mapping[str, Side], defs: Sequence[FieldDef]
) -> dict[str, Any]:
    """The kept contact's columns that change: the chosen values, the tags' union, and the custom values
    (chosen ones, plus values of retired fields only the merged contact has)."""
    picked = {**default_choices(keep, merged, defs), **choices}
    values: dict[str, Any] = {}
    for name in NAMES:
        value = getattr(merged if picked[name] == MERGE else keep, name)
        if value != getattr(keep, name):
            values[name] = value
    tags = list(dict.fromkeys([*(keep.tags or []), *(merged.tags or [])]))
    if tags != list(keep.tags or []):
        values["tags"] = tags
    active = {d.key for d in defs if d.active}
    custom = dict(keep.custom or {})
    for key, value in (merged.custom or {}).items():
        if key not in active and _empty(custom.get(key)) and not _empty(value):
            custom[key] = value
    for key in active:
        if picked.get(CUSTOM + key) == MERGE:
            value = (merged.custom or {}).get(key)
            if _empty(value):
                custom.pop(key, None)
            else:
                custom[key] = value
    if custom != dict(keep.custom or {}):
        values["custom"] = custom
    return values


@dataclass(frozen=True)
class FieldRow:
    """One line of the merge screen."""

    name: str  # what the choice is called (`pick.<name>` in the form)
    label: str  # an msgid, or a custom field's own label
    translate: bool
    kept: str  # the values as a person reads them, "" for none
    merged: str
    default: Side

    @property
    def same(self) -> bool:
        return self.kept == self.merged


async def _names(
    session: AsyncSession, keep: Contact, merged: Contact
) -> tuple[dict[int, str], dict[int, str]]:
    branch_ids = {x for x in (keep.branch_id, merged.branch_id) if x is not None}
    owner_ids = {x for x in (keep.owner_id, merged.owner_id) if x is not None}
    branches = {b.id: b.name for b in await session.scalars(select(Branch).where(Branch.id.in_(branch_ids)))}
    owners = {
        u.id: u.full_name or u.username
        for u in await session.scalars(select(User).where(User.id.in_(owner_ids)))
    }
    return branches, owners


def _shown(name: str, value: Any, branches: Mapping[int, str], owners: Mapping[int, str]) -> str:
    if _empty(value):
        return ""
    if name == "branch_id":
        return branches.get(value, f"#{value}")
    if name == "owner_id":
        return owners.get(value, f"#{value}")
    if name == "consents":
        return ", ".join(channel for channel, given in sorted(value.items()) if given)
    return str(value)


async def compare(
    session: AsyncSession, keep: Contact, merged: Contact, defs: Sequence[FieldDef]
) -> list[FieldRow]:
    """Both contacts' values per field, with the preselected side."""
    defaults = default_choices(keep, merged, defs)
    branches, owners = await _names(session, keep, merged)
    rows = [
        FieldRow(
            name,
            label,
            True,
            _shown(name, getattr(keep, name), branches, owners),
            _shown(name, getattr(merged, name), branches, owners),
            defaults[name],
        )
        for name, label in FIELDS
    ]
    for field in defs:
        if field.active:
            rows.append(
                FieldRow(
                    field.path,
                    field.label,
                    False,
                    field.display(_value(keep, field.path)),
                    field.display(_value(merged, field.path)),
                    defaults[field.path],
                )
            )
    return rows
