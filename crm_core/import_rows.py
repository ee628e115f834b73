"""One spreadsheet row, mapped and validated exactly as the contact form and the lead page validate: the
profile through `profile.parse_profile` (phones to E.164 with `normalise_phone`, the IDNP's check digit,
e-mails, dates, tags, consents), custom fields through `custom_fields`, branch and responsible expert by the
importer's rights (as the contact form allows them), product and lead source from the classifiers, amount
and term as `leads` reads them. A bad row raises `RowError` naming the column, the value and the reason.

`Lookups` holds what every row is checked against (branches, experts, classifiers, field definitions),
read once per run: the rows of a 100,000-line file must not each ask the database the same questions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import classifiers, custom_fields, leads, profile
from crm_core.contacts import split_name
from crm_core.contacts_model import Company
from crm_core.custom_fields import FieldDef, FieldKind
from crm_core.duplicates import fold_name
from crm_core.import_files import Cell, cell_text
from crm_core.leads import LeadStatus
from switchboard.accounts_model import Branch, User
from switchboard.errors import N_, Invalid
from switchboard.permissions import Role

MAX_VALUE = 200  # of a cell shown in the report
MAX_LEAD_TEXT = 200
MAX_URL = 2000
DEFAULT_SOURCE = "import"
LANGUAGES = {
    "ro": "ro",
    "romana": "ro",
    "romanian": "ro",
    "moldoveneasca": "ro",
    "румынский": "ro",
    "en": "en",
    "english": "en",
    "engleza": "en",
    "английский": "en",
    "ru": "ru",
    "rusa": "ru",
    "russian": "ru",
    "русский": "ru",
}
IMPORT_STATUSES = (LeadStatus.NEW, LeadStatus.IN_WORK, LeadStatus.QUALIFIED)
_FLAG = FieldDef(0, "contact", "consent", "", FieldKind.BOOLEAN, (), False, 0, True)
_DAY = FieldDef(0, "contact", "birth_date", "", FieldKind.DATE, (), False, 0, True)
# a field named by `parse_profile` → the targets whose columns may hold it
_PROFILE_TARGETS = {
    "first_name": ("first_name", "full_name"),
    "last_name": ("last_name", "full_name"),
    "phones": ("phone",),
    "phone": ("phone",),
    "emails": ("email",),
    "email": ("email",),
    "idnp": ("idnp",),
    "birth_date": ("birth_date",),
    "address": ("address",),
    "tags": ("tags",),
    "branch_id": ("branch",),
    "owner_id": ("owner",),
    "consents": (),
}


class RowError(Exception):
    """Why a row cannot be imported: the column (its header), the cell's value and a msgid with params."""

    def __init__(self, column: str, value: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.column = column[:200]
        self.value = value[:MAX_VALUE]
        self.message = message
        self.params = params


@dataclass(frozen=True)
class Importer:
    """Who runs the import: their rights decide the branch and the experts a row may name."""

    user_id: int | None
    role: Role
    branch_id: int | None


@dataclass(frozen=True)
class Expert:
    id: int
    branch_id: int | None


@dataclass
class Lookups:
    importer: Importer
    region: str
    branches: dict[str, int]  # folded name or id as text → id (active branches)
    experts: dict[str, Expert]  # lower-cased username or e-mail → active agent or supervisor
    products: dict[str, str]  # folded code or label → code (active)
    sources: dict[str, str]  # folded code or label → code (active lead sources)
    contact_fields: list[FieldDef]
    lead_fields: list[FieldDef]


def _vocabulary(entries: Sequence[classifiers.ClassifierView]) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in entries:
        for word in (entry.code, entry.label_en, entry.label_ro, entry.label_ru):
            if word:
                out.setdefault(fold_name(word), entry.code)
    return out


async def load_lookups(session: AsyncSession, importer: Importer, region: str) -> Lookups:
    branches: dict[str, int] = {}
    for branch in await session.scalars(select(Branch).where(Branch.active.is_(True))):
        branches[fold_name(branch.name)] = branch.id
        branches[str(branch.id)] = branch.id
    experts: dict[str, Expert] = {}
    people = await session.scalars(
        select(User).where(User.active.is_(True), User.role.in_([Role.AGENT.value, Role.SUPERVISOR.value]))
    )
    for user in people:
        expert = Expert(user.id, user.branch_id)
        experts[user.username.casefold()] = expert
        if user.email:
            experts.setdefault(user.email.strip().casefold(), expert)
    return Lookups(
        importer=importer,
        region=region,
        branches=branches,
        experts=experts,
        products=_vocabulary(await classifiers.list_kind(session, "product")),
        sources=_vocabulary(await classifiers.list_kind(session, "lead_source")),
        contact_fields=await custom_fields.definitions(session, "contact"),
        lead_fields=await custom_fields.definitions(session, "lead"),
    )


@dataclass(frozen=True)
class LeadInput:
    values: dict[str, Any]  # leads columns: source_channel, campaign, utm_*, referrer, page_url, product…
    custom: dict[str, Any]


@dataclass(frozen=True)
class RowInput:
    """A valid row. `custom` holds the contact's custom values as typed (validated once the duplicate
    decision says whether the row creates a contact or fills one); `given` the profile fields the row had a
    value for (what an update overwrites)."""

    number: int
    profile: profile.ProfileInput
    given: frozenset[str]
    custom: dict[str, Any]
    custom_columns: dict[str, str]
    language: str | None
    company: str | None
    lead: LeadInput | None = None
    headers: dict[str, str] = field(default_factory=dict)  # target → the header of its (first) column
    consents_given: frozenset[str] = frozenset()  # the channels whose consent the row states


class Columns:
    """The mapped cells of one row: target → [(header, cell), …] in column order."""

    def __init__(self, header: Sequence[str], mapping: Sequence[str], cells: Sequence[Cell]) -> None:
        self.by_target: dict[str, list[tuple[str, Cell]]] = {}
        for i, target in enumerate(mapping):
            if target:
                cell = cells[i] if i < len(cells) else None
                self.by_target.setdefault(target, []).append((header[i], cell))

    def one(self, target: str) -> tuple[str, Cell]:
        found = self.by_target.get(target)
        return found[0] if found else ("", None)

    def texts(self, target: str) -> list[tuple[str, str]]:
        return [(h, cell_text(c).strip()) for h, c in self.by_target.get(target, []) if cell_text(c).strip()]

    def column_of(self, targets: Sequence[str], value: str = "") -> tuple[str, str]:
        """The header and text of the first column of `targets` (holding `value`, when given)."""
        for target in targets:
            for header, cell in self.by_target.get(target, []):
                text = cell_text(cell)
                if not value or value in text:
                    return header, text
        return "", value

    def formula_check(self) -> None:
        for pairs in self.by_target.values():
            for header, cell in pairs:
                if isinstance(cell, str) and cell.startswith("="):
                    raise RowError(header, cell, N_("This cell holds a formula: import its value instead."))


def _split(text: str) -> list[str]:
    for separator in (";", "\n", ","):
        text = text.replace(separator, "\x00")
    return [part.strip() for part in text.split("\x00") if part.strip()]


def _idnp_text(cell: Cell) -> str:
    if isinstance(cell, int) and not isinstance(cell, bool) and 0 <= cell < 10**13:
        return str(cell).zfill(13)  # a spreadsheet stored the code as a number and lost its leading zero
    return cell_text(cell)


def _phone_text(cell: Cell) -> list[str]:
    if isinstance(cell, int) and not isinstance(cell, bool):
        digits = str(cell)
        return [("+" + digits) if len(digits) > 9 else digits]  # 37369123456 typed as a number
    return _split(cell_text(cell))


def _date_text(header: str, cell: Cell) -> str:
    if cell is None or cell == "":
        return ""
    try:
        return str(custom_fields.parse_value(_DAY, cell))  # 1985-04-23, 23.04.1985, 23/04/1985, a date cell
    except Invalid as exc:
        raise RowError(header, cell_text(cell), exc.message, **exc.params) from None


def _profile_data(cols: Columns, look: Lookups) -> tuple[dict[str, Any], set[str]]:
    """The row as the JSON shape `parse_profile` reads, and the profile fields it gave a value for."""
    given: set[str] = set()
    first = cols.texts("first_name")
    last = cols.texts("last_name")
    full = cols.texts("full_name")
    data: dict[str, Any] = {
        "first_name": first[0][1] if first else "",
        "last_name": last[0][1] if last else "",
    }
    if full and not (first or last):
        data["first_name"], data["last_name"] = split_name(full[0][1])
    given.update(k for k in ("first_name", "last_name") if data[k])
    phones = [
        p for _, cell in cols.by_target.get("phone", []) if cell not in (None, "") for p in _phone_text(cell)
    ]
    emails = [e for _, text in cols.texts("email") for e in _split(text)]
    data["phones"], data["emails"] = phones, emails
    header, cell = cols.one("idnp")
    data["idnp"] = _idnp_text(cell).strip()
    header, cell = cols.one("birth_date")
    data["birth_date"] = _date_text(header, cell)
    data["address"] = cell_text(cols.one("address")[1]).strip()
    data["tags"] = ",".join(text for _, text in cols.texts("tags"))
    consents: dict[str, bool] = {}
    for target, pairs in cols.by_target.items():
        if target.startswith("consent.") and pairs and pairs[0][1] not in (None, ""):
            header, cell = pairs[0]
            try:
                consents[target.removeprefix("consent.")] = bool(custom_fields.parse_value(_FLAG, cell))
            except Invalid as exc:
                raise RowError(header, cell_text(cell), exc.message, **exc.params) from None
    data["consents"] = consents
    given.update(k for k in ("phones", "emails", "idnp", "birth_date", "address", "tags") if data[k])
    if consents:
        given.add("consents")
    data["branch_id"] = _branch(cols, look)
    data["owner_id"] = _owner(cols, look)
    given.update(k for k, t in (("branch_id", "branch"), ("owner_id", "owner")) if cols.texts(t))
    return data, given


def _branch(cols: Columns, look: Lookups) -> int | None:
    """The row's branch by name or id; non-admins import into their own branch (an empty cell means it)."""
    header, cell = cols.one("branch")
    text = cell_text(cell).strip()
    me = look.importer
    if not text:
        return None if me.role is Role.ADMIN else me.branch_id
    branch_id = look.branches.get(fold_name(text)) or look.branches.get(text)
    if branch_id is None:
        raise RowError(header, text, N_("No such branch."))
    if me.role is not Role.ADMIN and branch_id != me.branch_id:
        raise RowError(header, text, N_("You may import only into your own branch."))
    return branch_id


def _owner(cols: Columns, look: Lookups) -> int | None:
    header, cell = cols.one("owner")
    text = cell_text(cell).strip()
    if not text:
        return None
    expert = look.experts.get(text.casefold())
    if expert is None:
        raise RowError(header, text, N_("No active agent or supervisor has this username or e-mail."))
    me = look.importer
    if me.role is not Role.ADMIN and expert.branch_id != me.branch_id:
        raise RowError(header, text, N_("The responsible expert must be of your branch."))
    return expert.id


def _language(cols: Columns) -> str | None:
    header, cell = cols.one("language")
    text = cell_text(cell).strip()
    if not text:
        return None
    code = LANGUAGES.get(fold_name(text))
    if code is None:
        raise RowError(header, text, N_("Choose ro, en or ru."))
    return code


def _custom_raw(cols: Columns, prefix: str) -> tuple[dict[str, Any], dict[str, str]]:
    raw: dict[str, Any] = {}
    headers: dict[str, str] = {}
    for target, pairs in cols.by_target.items():
        if target.startswith(prefix):  # "custom." never matches "lead.custom.…"
            key = target.removeprefix(prefix)
            header, cell = pairs[0]
            raw[key] = cell.isoformat() if isinstance(cell, dt.date) else cell
            headers[key] = header
    return raw, headers


def check_custom(
    defs: Sequence[FieldDef],
    raw: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    current: Mapping[str, Any] | None = None,
    partial: bool = False,
) -> dict[str, Any]:
    """`custom_fields.validate`, its error told as the column that holds the field."""
    try:
        return custom_fields.validate(defs, raw, current=current, partial=partial)
    except Invalid as exc:
        key = (exc.field or "").removeprefix("custom.")
        value = raw.get(key)
        label = next((d.label for d in defs if d.key == key), key)
        raise RowError(
            headers.get(key, label), "" if value is None else str(value), exc.message, **exc.params
        ) from None


def _lead(cols: Columns, look: Lookups) -> LeadInput:
    values: dict[str, Any] = {}
    header, cell = cols.one("lead.source_channel")
    text = cell_text(cell).strip()
    if text:
        code = look.sources.get(fold_name(text))
        if code is None:
            raise RowError(header, text, N_("Choose a lead source from the list."))
        values["source_channel"] = code[:20]
    else:
        values["source_channel"] = DEFAULT_SOURCE
    for name, limit in (
        ("campaign", MAX_LEAD_TEXT),
        ("utm_source", MAX_LEAD_TEXT),
        ("utm_medium", MAX_LEAD_TEXT),
        ("utm_campaign", MAX_LEAD_TEXT),
        ("utm_content", MAX_LEAD_TEXT),
        ("utm_term", MAX_LEAD_TEXT),
        ("referrer", MAX_URL),
        ("page_url", MAX_URL),
    ):
        header, cell = cols.one(f"lead.{name}")
        text = " ".join(cell_text(cell).split())
        if len(text) > limit:
            raise RowError(header, text, N_("At most %(n)s characters."), n=limit)
        values[name] = text or None
    header, cell = cols.one("lead.product")
    text = cell_text(cell).strip()
    if text:
        code = look.products.get(fold_name(text))
        if code is None:
            raise RowError(header, text, N_("Choose a product from the list."))
        values["product"] = code
    header, cell = cols.one("lead.amount")
    try:
        values["amount"] = leads.parse_amount(cell_text(cell).strip() if cell is not None else None)
    except Invalid as exc:
        raise RowError(header, cell_text(cell), exc.message, **exc.params) from None
    header, cell = cols.one("lead.term_months")
    try:
        values["term_months"] = leads.parse_term(cell if isinstance(cell, int) else cell_text(cell).strip())
    except Invalid as exc:
        raise RowError(header, cell_text(cell), exc.message, **exc.params) from None
    header, cell = cols.one("lead.status")
    text = cell_text(cell).strip()
    status = LeadStatus.NEW
    if text:
        wanted = fold_name(text).replace(" ", "_")
        found = next((s for s in IMPORT_STATUSES if s.value == wanted), None)
        if found is None:
            raise RowError(header, text, N_("A lead is imported as new, in_work or qualified."))
        status = found
    values["status"] = status.value
    raw, headers = _custom_raw(cols, "lead.custom.")
    return LeadInput(values, check_custom(look.lead_fields, raw, headers))


def parse_row(
    number: int,
    header: Sequence[str],
    mapping: Sequence[str],
    cells: Sequence[Cell],
    look: Lookups,
    kind: str,
) -> RowInput:
    """A valid row, or `RowError` for the first thing wrong with it."""
    cols = Columns(header, mapping, cells)
    cols.formula_check()
    data, given = _profile_data(cols, look)
    try:
        p = profile.parse_profile(data, look.region)
        profile.check_identifiable(p)
    except Invalid as exc:
        value = str(exc.params.get("phone", "")) if exc.field in ("phones", "phone") else ""
        column, text = cols.column_of(_PROFILE_TARGETS.get(exc.field or "", ()), value)
        raise RowError(column, text, exc.message, **exc.params) from None
    if p.owner_id is not None and p.branch_id is None and look.importer.role is not Role.ADMIN:
        p = replace(p, branch_id=look.importer.branch_id)
    custom_raw, custom_headers = _custom_raw(cols, "custom.")
    for key, value in custom_raw.items():  # kinds and choices now; required once create / update is known
        definition = next((d for d in look.contact_fields if d.key == key), None)
        if definition is not None:
            check_custom([replace(definition, required=False)], {key: value}, custom_headers, partial=True)
    company_header, company_cell = cols.one("company")
    company = " ".join(cell_text(company_cell).split()) or None
    if company is not None and len(company) > 200:
        raise RowError(company_header, company, N_("At most %(n)s characters."), n=200)
    return RowInput(
        number=number,
        profile=p,
        given=frozenset(given),
        custom=custom_raw,
        custom_columns=custom_headers,
        language=_language(cols),
        company=company,
        lead=_lead(cols, look) if kind == "leads" else None,
        headers={target: pairs[0][0] for target, pairs in cols.by_target.items()},
        consents_given=frozenset(data["consents"]),
    )


async def company_ids(session: AsyncSession, names: set[str], importer: Importer) -> dict[str, int]:
    """Companies the importer may see, by folded name (the oldest of equal names), for linking rows."""
    found: dict[str, int] = {}
    if not names:
        return found
    folded = {fold_name(n) for n in names}
    rows = await session.execute(
        select(Company.id, Company.name)
        .where(
            func.lower(Company.name).in_(sorted({n.lower() for n in names})),
            profile.visible_companies(importer.role, importer.branch_id),
        )
        .order_by(Company.id)
    )
    for company_id, name in rows:
        key = fold_name(name)
        if key in folded:
            found.setdefault(key, company_id)
    return found
