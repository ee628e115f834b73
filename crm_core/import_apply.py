"""Deciding what each valid row of a batch becomes, and writing it.

`plan` is the one decision both the dry run and the real run make, so their counts agree: a row that holds
the phone, e-mail or IDNP of an earlier row of the file is a duplicate of that row (reported with its
number); otherwise an exact match in the database (`duplicates.find_duplicates_many`, the check every
write path makes) is a duplicate of that contact; the policy then skips it, fills the contact from it, or
creates a new contact anyway (an IDNP belongs to one person: such a row is refused). Likely matches never
stop a row; they are recorded for the duplicates page (`duplicates.record_candidates`) once it is written.

`apply` writes a planned batch in the caller's transaction: new contacts with their phones, e-mails and
companies in a few multi-row statements (10,000 rows must not cost 200,000 round trips), one audit entry
per record as the contact form writes it; updates through `profile.save_contact` (audited field by field,
rescored); a lead per row for a leads import, scored with `scoring.recompute_many`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import duplicates, profile, scoring
from crm_core.contacts_model import ContactCompany, ContactEmail, ContactPhone
from crm_core.duplicates import EXACT, DuplicateMatch, fold_name
from crm_core.import_rows import Importer, Lookups, RowError, RowInput, check_custom, company_ids
from crm_core.models import Contact, Lead
from switchboard import audit
from switchboard.audit import Actor, AuditAction
from switchboard.db import cast_table, utcnow
from switchboard.errors import N_, DomainError

SKIP = "skip"
UPDATE = "update"
CREATE = "create"
POLICIES = (SKIP, UPDATE, CREATE)
CREATED, UPDATED, SKIPPED, REFUSED = "created", "updated", "skipped", "refused"

Ref = tuple[str, int]  # ("row", n): the contact row n of this file made; ("contact", id): one already known

_CONTACTS = cast_table(Contact)
_LEADS = cast_table(Lead)


@dataclass
class Seen:
    """What the rows before this one hold: the first row of each phone, e-mail and IDNP, the custom values
    each contact ends up with, and (real run) the ids of the contacts rows created."""

    keys: dict[str, tuple[Ref, int]] = field(default_factory=dict)  # "phone:+373…" → (ref, row number)
    customs: dict[Ref, dict[str, Any]] = field(default_factory=dict)
    created: dict[int, int] = field(default_factory=dict)  # row number → contact id
    companies: dict[str, int] = field(default_factory=dict)  # folded name → company id


def row_keys(p: profile.ProfileInput) -> list[tuple[str, str]]:
    keys = [("phone", phone.e164) for phone in p.phones] + [("email", e.lower()) for e in p.emails]
    return keys + ([("idnp", p.idnp)] if p.idnp else [])


@dataclass
class Decision:
    row: RowInput
    outcome: str  # CREATED, UPDATED, SKIPPED
    ref: Ref
    custom: dict[str, Any]
    matches: list[DuplicateMatch]  # recorded as candidates once the contact is written
    fallback: int | None = None  # the database's exact match, for a row reference a resumed run lost
    note: tuple[str, dict[str, Any]] | None = None


@dataclass
class Refusal:
    number: int
    error: RowError


Planned = Decision | Refusal


async def _known(session: AsyncSession, importer: Importer, ids: set[int]) -> dict[int, dict[str, Any]]:
    """The custom values of the matched contacts the importer may see (and so may update)."""
    visible = profile.visible_contacts(importer.role, importer.branch_id, importer.user_id or 0)
    out: dict[int, dict[str, Any]] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), 1000):
        chunk = ordered[start : start + 1000]
        for contact_id, custom in await session.execute(
            select(Contact.id, Contact.custom).where(Contact.id.in_(chunk), visible)
        ):
            out[contact_id] = dict(custom or {})
    return out


async def plan(
    session: AsyncSession, rows: Sequence[RowInput], *, policy: str, look: Lookups, seen: Seen
) -> list[Planned]:
    """The decision for each row, in file order; `seen` learns each row as it is decided."""
    found = await duplicates.find_duplicates_many(session, [r.profile.candidate() for r in rows])
    exact_ids = {m.contact_id for matches in found for m in matches if m.kind == EXACT}
    known = await _known(session, look.importer, exact_ids)
    out: list[Planned] = []
    for row, matches in zip(rows, found, strict=True):
        try:
            decision = _decide(row, matches, policy, look, seen, known)
        except RowError as exc:
            out.append(Refusal(row.number, exc))
            continue
        for kind, value in row_keys(row.profile):
            seen.keys.setdefault(f"{kind}:{value}", (decision.ref, row.number))
        if decision.outcome != SKIPPED:
            seen.customs[decision.ref] = decision.custom
        out.append(decision)
    return out


def _decide(
    row: RowInput,
    matches: list[DuplicateMatch],
    policy: str,
    look: Lookups,
    seen: Seen,
    known: dict[int, dict[str, Any]],
) -> Decision:
    p = row.profile
    exact = [m for m in matches if m.kind == EXACT]
    fallback = exact[0].contact_id if exact else None
    hit = next((seen.keys[f"{k}:{v}"] + (k,) for k, v in row_keys(p) if f"{k}:{v}" in seen.keys), None)
    idnp_owner: Ref | None = None
    if p.idnp:
        if f"idnp:{p.idnp}" in seen.keys:
            idnp_owner = seen.keys[f"idnp:{p.idnp}"][0]
        else:
            owner = next((m for m in exact if "idnp" in m.reasons), None)
            idnp_owner = ("contact", owner.contact_id) if owner is not None else None
    target: Ref | None = None
    note: tuple[str, dict[str, Any]] | None = None
    if hit is not None:
        target, earlier, what = hit
        note = (N_("Same %(what)s as row %(row)s."), {"what": what, "row": earlier})
    elif exact:
        target = ("contact", exact[0].contact_id)
        note = (
            N_("Same %(what)s as contact #%(id)s."),
            {"what": exact[0].reasons[0], "id": exact[0].contact_id},
        )
    if target is None or policy == CREATE:
        if idnp_owner is not None:
            raise RowError(row.headers.get("idnp", ""), p.idnp or "", N_("Another contact has this IDNP."))
        custom = check_custom(look.contact_fields, row.custom, row.custom_columns)
        return Decision(row, CREATED, ("row", row.number), custom, matches, fallback, note)
    if policy == SKIP:
        return Decision(row, SKIPPED, target, {}, [], fallback, note)
    if target[0] == "contact" and target[1] not in known and target not in seen.customs:
        raise RowError("", "", N_("This row matches a contact you may not change."))
    if idnp_owner is not None and idnp_owner != target:
        raise RowError(row.headers.get("idnp", ""), p.idnp or "", N_("Another contact has this IDNP."))
    current = seen.customs.get(target)
    if current is None:
        current = known.get(target[1] if target[0] == "contact" else (fallback or 0), {})
    given = {k: v for k, v in row.custom.items() if v is not None and v != ""}
    custom = check_custom(look.contact_fields, given, row.custom_columns, current=current, partial=True)
    likely = [m for m in matches if m.kind != EXACT]
    return Decision(row, UPDATED, target, custom, likely, fallback, note)


# --- writing ------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a written batch did; `refusals` are rows refused only when written (an update `save_contact`
    refused)."""

    flagged: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    lead_ids: list[int] = field(default_factory=list)


def _contact_of(decision: Decision, seen: Seen) -> int | None:
    kind, value = decision.ref
    if kind == "contact":
        return value
    return seen.created.get(value, decision.fallback)


async def _companies(
    session: AsyncSession, actor: Actor, rows: Sequence[RowInput], look: Lookups, seen: Seen
) -> None:
    names = {r.company for r in rows if r.company and fold_name(r.company) not in seen.companies}
    if not names:
        return
    seen.companies.update(await company_ids(session, names, look.importer))
    for row in rows:
        if row.company and fold_name(row.company) not in seen.companies:
            company = profile.CompanyInput(name=row.company, branch_id=row.profile.branch_id)
            seen.companies[fold_name(row.company)] = await profile.save_company(session, actor, company)


def _created_audit(row: RowInput, custom: dict[str, Any]) -> dict[str, list[Any]]:
    p = row.profile
    values = {
        **profile.contact_columns(p),
        "phones": ", ".join(x.e164 for x in p.phones),
        "emails": ", ".join(e.lower() for e in p.emails),
    }
    shown = {k: v for k, v in profile.audited_values(values).items() if v}
    shown.update({f"custom.{k}": v for k, v in custom.items()})
    if row.language:
        shown["language"] = row.language
    return audit.diff({}, shown)


async def _create(
    session: AsyncSession, actor: Actor, import_id: int, creates: list[Decision], seen: Seen
) -> int:
    now = utcnow()
    values = [
        {
            **profile.contact_columns(d.row.profile),
            "language": d.row.language,
            "custom": d.custom,
            "created_at": now,
            "updated_at": now,
        }
        for d in creates
    ]
    statement = insert(_CONTACTS).returning(_CONTACTS.c.id, sort_by_parameter_order=True)
    ids = list((await session.execute(statement, values)).scalars())
    phones, emails, links = [], [], []
    for d, contact_id in zip(creates, ids, strict=True):
        seen.created[d.row.number] = contact_id
        p = d.row.profile
        phones += [
            {
                "contact_id": contact_id,
                "e164": x.e164,
                "tail": duplicates.phone_tail(x.e164),
                "label": x.label,
                "is_primary": i == 0,
            }
            for i, x in enumerate(p.phones)
        ]
        emails += [
            {"contact_id": contact_id, "email": e.lower(), "label": "", "is_primary": i == 0}
            for i, e in enumerate(p.emails)
        ]
        if d.row.company:
            links.append(
                {"contact_id": contact_id, "company_id": seen.companies[fold_name(d.row.company)], "role": ""}
            )
    for model, rows in ((ContactPhone, phones), (ContactEmail, emails), (ContactCompany, links)):
        if rows:
            await session.execute(insert(cast_table(model)), rows)
    await audit.record_changes(
        session,
        actor,
        module="contacts",
        action=AuditAction.CREATE,
        entries=[
            audit.Change(
                "contact",
                contact_id,
                _created_audit(d.row, d.custom),
                f"import #{import_id}, row {d.row.number}",
            )
            for d, contact_id in zip(creates, ids, strict=True)
        ],
    )
    flagged = 0
    for d, contact_id in zip(creates, ids, strict=True):
        if d.matches:
            await duplicates.record_candidates(session, contact_id, d.matches)
            flagged += 1
    return flagged


def _merged(stored: profile.Profile, row: RowInput) -> profile.ProfileInput:
    """The stored profile with the row's non-empty cells written over it; the row's phones and e-mails
    come first, the ones the contact had stay after them (up to the profile's limits)."""
    c = stored.contact
    current = profile.ProfileInput(
        first_name=c.first_name,
        last_name=c.last_name,
        phones=tuple(profile.PhoneIn(x.e164, x.label) for x in stored.phones),
        emails=tuple(stored.emails),
        idnp=c.idnp,
        birth_date=c.birth_date,
        address=c.address,
        branch_id=c.branch_id,
        owner_id=c.owner_id,
        tags=tuple(c.tags or ()),
        consents=dict(c.consents or {}),
        companies=tuple((x.id, x.role) for x in stored.companies),
        relations=tuple((x.id, x.role) for x in stored.relations),
    )
    new = row.profile
    changes: dict[str, Any] = {}
    for name in ("first_name", "last_name", "idnp", "birth_date", "address", "branch_id", "owner_id"):
        if name in row.given:
            changes[name] = getattr(new, name)
    if "phones" in row.given:
        mine = {x.e164 for x in new.phones}
        changes["phones"] = (new.phones + tuple(x for x in current.phones if x.e164 not in mine))[
            : profile.MAX_PHONES
        ]
    if "emails" in row.given:
        mine_e = {e.lower() for e in new.emails}
        changes["emails"] = (new.emails + tuple(e for e in current.emails if e.lower() not in mine_e))[
            : profile.MAX_EMAILS
        ]
    if "tags" in row.given:
        changes["tags"] = (current.tags + tuple(t for t in new.tags if t not in current.tags))[
            : profile.MAX_TAGS
        ]
    if "consents" in row.given:
        changes["consents"] = {
            **current.consents,
            **{k: v for k, v in new.consents.items() if k in row.consents_given},
        }
    return replace(current, **changes)


async def _update(
    session: AsyncSession,
    actor: Actor,
    import_id: int,
    d: Decision,
    contact_id: int,
    seen: Seen,
    out: Outcome,
) -> bool:
    try:
        async with session.begin_nested():
            stored = await profile.profile_of(session, contact_id)
            if stored is None:
                raise RowError("", "", N_("No such contact."))
            merged = _merged(stored, d.row)
            if d.row.company:
                company_id = seen.companies[fold_name(d.row.company)]
                if company_id not in {c for c, _ in merged.companies}:
                    merged = replace(merged, companies=(*merged.companies, (company_id, "")))
            await profile.save_contact(session, actor, contact_id, merged, confirm_duplicate=True)
            contact = stored.contact
            old_custom, old_language = dict(contact.custom or {}), contact.language
            language = d.row.language or old_language
            if (old_custom, old_language) != (d.custom, language):
                contact.custom, contact.language = d.custom, language
                await session.flush()
                changes = audit.diff(
                    {f"custom.{k}": v for k, v in old_custom.items()} | {"language": old_language},
                    {f"custom.{k}": v for k, v in d.custom.items()} | {"language": language},
                )
                await audit.record_change(
                    session,
                    actor,
                    module="contacts",
                    action=AuditAction.UPDATE,
                    record_type="contact",
                    record_id=contact_id,
                    changes=changes,
                    detail=f"import #{import_id}, row {d.row.number}",
                )
    except RowError as exc:
        out.refusals.append(Refusal(d.row.number, exc))
        return False
    except DomainError as exc:
        field_name = (exc.field or "").removesuffix("s") if exc.field in ("phones", "emails") else exc.field
        column = d.row.headers.get(field_name or "", "")
        out.refusals.append(Refusal(d.row.number, RowError(column, "", exc.message, **exc.params)))
        return False
    return True


async def _leads(
    session: AsyncSession, actor: Actor, import_id: int, written: list[tuple[Decision, int]]
) -> list[int]:
    now = utcnow()
    rows = [
        {
            "contact_id": contact_id,
            **d.row.lead.values,
            "custom": d.row.lead.custom,
            "first_contact_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for d, contact_id in written
        if d.row.lead is not None
    ]
    if not rows:
        return []
    statement = insert(_LEADS).returning(_LEADS.c.id, sort_by_parameter_order=True)
    ids = list((await session.execute(statement, rows)).scalars())
    entries = []
    for lead_id, values in zip(ids, rows, strict=True):
        shown = {k: v for k, v in values.items() if v not in (None, "", {}) and not k.endswith("_at")}
        entries.append(audit.Change("lead", lead_id, audit.diff({}, shown), f"import #{import_id}"))
    await audit.record_changes(session, actor, module="leads", action=AuditAction.CREATE, entries=entries)
    await scoring.recompute_many(session, ids)  # the new leads' first scores
    return ids


async def apply(
    session: AsyncSession,
    actor: Actor,
    import_id: int,
    planned: Sequence[Planned],
    *,
    look: Lookups,
    seen: Seen,
) -> Outcome:
    """Write the batch's decisions in file order (creates first: a later row may update an earlier one)."""
    decisions = [d for d in planned if isinstance(d, Decision)]
    await _companies(session, actor, [d.row for d in decisions if d.outcome != SKIPPED], look, seen)
    out = Outcome()
    creates = [d for d in decisions if d.outcome == CREATED]
    if creates:
        out.flagged = await _create(session, actor, import_id, creates, seen)
    written: list[tuple[Decision, int]] = [(d, seen.created[d.row.number]) for d in creates]
    for d in decisions:
        if d.outcome != UPDATED:
            continue
        contact_id = _contact_of(d, seen)
        if contact_id is None:
            out.refusals.append(Refusal(d.row.number, RowError("", "", N_("No such contact."))))
            continue
        if await _update(session, actor, import_id, d, contact_id, seen, out):
            written.append((d, contact_id))
            if d.matches:
                await duplicates.record_candidates(session, contact_id, d.matches)
    written.sort(key=lambda pair: pair[0].row.number)
    out.lead_ids = await _leads(session, actor, import_id, written)
    return out
