"""Merging two contacts that turned out to be one person (an agent links a Viber customer to the web chat
visitor who gave their name), and finding the candidates to link.

crm_core moves its own rows — identities, leads, deals, tasks, phones, e-mails, company links, relations and
likely-duplicate pairs — sets the kept contact's fields from the choices (`crm_core.merge_fields`), deletes
the merged contact and writes a `contact_merges` record of all of it, so that `crm_core.merge_undo` can
put everything back for a while. Rooms whose tables point at contacts move their rows first, in the same
transaction, and hand what they recorded over as a part of that record (the inbox does this in
`inbox.merge`): the delete cascades to whatever still points at the merged contact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Table, Update, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import custom_fields, merge_fields, scoring
from crm_core.contacts import normalise_phone
from crm_core.contacts_model import (
    ContactCompany,
    ContactEmail,
    ContactPhone,
    ContactRelation,
    DuplicateCandidate,
)
from crm_core.funnel_model import Deal
from crm_core.merge_model import ContactMerge
from crm_core.models import Contact, ContactIdentity, Lead
from crm_core.tasks import move_contact_tasks
from crm_core.tasks_model import Task
from switchboard import audit
from switchboard.audit import Actor
from switchboard.db import cast_table, utcnow
from switchboard.errors import N_, Invalid, NotFound
from switchboard.row_json import encode, to_json

MAX_QUERY = 100
MAX_WORDS = 5
CONTACTS = cast_table(Contact)
# Every table of this room pointing at a contact, with the columns that do. A merge moves or deletes the
# merged contact's rows in each; `test_merge` checks that no foreign key to contacts is missing here.
LINKS: tuple[tuple[Table, tuple[str, ...]], ...] = (
    (cast_table(ContactIdentity), ("contact_id",)),
    (cast_table(Lead), ("contact_id",)),
    (cast_table(Deal), ("contact_id",)),
    (cast_table(Task), ("contact_id",)),
    (cast_table(ContactPhone), ("contact_id",)),
    (cast_table(ContactEmail), ("contact_id",)),
    (cast_table(ContactCompany), ("contact_id",)),
    (cast_table(ContactRelation), ("contact_id", "related_id")),
    (cast_table(DuplicateCandidate), ("contact_id", "other_id")),
)
FLAGGED = ("contact_phones", "contact_emails")  # `is_primary` follows the kept contact's main phone / e-mail
Rows = dict[str, dict[int, dict[str, Any]]]


@dataclass(frozen=True)
class MergeResult:
    kept_id: int
    merged_id: int
    identities_moved: int
    leads_moved: int
    filled: tuple[str, ...]  # the kept contact's fields that took the merged contact's value
    record_id: int = 0  # the `contact_merges` row: what undoing it needs


async def lock_pair(session: AsyncSession, keep_id: int, merge_id: int) -> tuple[Contact, Contact]:
    """Both contacts, locked in id order, so two agents merging the same pair either way round queue
    instead of deadlocking, and the second finds the merged contact gone (NotFound). Callers that move
    their own rows before `merge_contacts` take the locks first with this.

    PostgreSQL: `FOR NO KEY UPDATE`, which two merges cannot both hold but a message or identity being
    stored for the customer meanwhile (its foreign key takes `KEY SHARE`) passes, so an inbound message
    finishes instead of deadlocking with the merge. SQLite's `BEGIN IMMEDIATE` serialises writers."""
    if keep_id == merge_id:
        raise Invalid(N_("A contact cannot be merged with itself."), field="merge_id")
    rows = await session.scalars(
        select(Contact)
        .where(Contact.id.in_((keep_id, merge_id)))
        .order_by(Contact.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    found = {contact.id: contact for contact in rows}
    if keep_id not in found or merge_id not in found:
        raise NotFound(N_("No such contact."))
    return found[keep_id], found[merge_id]


async def merge_contacts(
    session: AsyncSession,
    actor: Actor,
    keep_id: int,
    merge_id: int,
    *,
    choices: Mapping[str, Any] | None = None,
    parts: Mapping[str, Any] | None = None,
) -> MergeResult:
    """Make `merge_id` part of `keep_id`: its rows move over, the kept contact takes the chosen values
    (`crm_core.merge_fields`; unchosen fields keep the kept value or fill an empty one), it is deleted,
    and the merge is recorded with `parts` (other rooms' records of what they moved) for its undo.
    Audited twice (the kept contact's update, the merged contact's deletion naming where it went) so
    either id leads to the other in the log."""
    keep, merged = await lock_pair(session, keep_id, merge_id)
    defs = await custom_fields.definitions(session, "contact")
    picked = merge_fields.parse_choices(choices, defs)  # refused before anything moves
    values = merge_fields.resolve(keep, merged, picked, defs)
    kept_row = await _contact_row(session, keep_id)
    merged_row = await _contact_row(session, merge_id)
    before = await _pointing_at(session, merge_id)
    flags = await _flags(session, keep_id)
    identities = await _rowcount(
        session,
        update(ContactIdentity).where(ContactIdentity.contact_id == merge_id).values(contact_id=keep_id),
    )
    leads = await _rowcount(
        session, update(Lead).where(Lead.contact_id == merge_id).values(contact_id=keep_id)
    )
    await session.execute(update(Deal).where(Deal.contact_id == merge_id).values(contact_id=keep_id))
    await move_contact_tasks(session, merge_id, keep_id)  # its tasks would lose their customer
    await _move_profile_rows(session, keep_id, merge_id)
    await _move_pairs(session, keep_id, merge_id)
    deleted = await _pointing_at(session, merge_id)  # what the deletion takes with it
    changes = audit.diff({name: getattr(keep, name) for name in values}, values)
    # The merged contact goes first, so that its IDNP (unique) can pass to the kept one.
    await session.delete(merged)
    await session.flush()
    for name, value in values.items():
        setattr(keep, name, value)
    keep.updated_at = utcnow()
    await session.flush()
    if "phone" in values or "email" in values:
        await _follow_primary(session, keep)
    moved = await _moved(session, before, deleted, flags, keep_id)
    await scoring.recompute_contact(session, keep_id)  # completeness and engagement are the joined ones now
    record = ContactMerge(
        kept_id=keep_id,
        merged_id=merge_id,
        actor_id=actor.user_id,
        actor_name=actor.username,
        merged_row=merged_row,
        kept_row=kept_row,
        kept_after={name: encode(value) for name, value in values.items()},
        moved=moved,
        deleted={table: list(rows.values()) for table, rows in deleted.items() if rows},
        parts=dict(parts or {}),
    )
    session.add(record)
    await session.flush()
    await audit.record_change(
        session,
        actor,
        module="contacts",
        action=audit.AuditAction.UPDATE,
        record_type="contact",
        record_id=keep_id,
        changes={**changes, "merged_contact_id": [None, merge_id]},
        detail=f"merged contact #{merge_id} into this one ({identities} channel identities, {leads} leads;"
        f" merge #{record.id}, undoable)",
    )
    snapshot = {
        name: merged_row.get(name)
        for name in ("first_name", "last_name", "phone", "email", "language", "branch_id", "owner_id")
    }
    await audit.record_change(
        session,
        actor,
        module="contacts",
        action=audit.AuditAction.DELETE,
        record_type="contact",
        record_id=merge_id,
        changes=audit.diff(snapshot, {"merged_into": keep_id}),
        detail=f"merged into contact #{keep_id} (merge #{record.id})",
    )
    filled = tuple(name for name in values if name not in ("tags", "custom"))
    return MergeResult(keep_id, merge_id, identities, leads, filled, record.id)


async def rows_to_move(session: AsyncSession, merge_id: int) -> dict[str, int]:
    """What merging the contact away would move, by table (the merge screen's summary)."""
    counts: dict[str, int] = {}
    for table, columns in LINKS:
        found = await session.scalar(
            select(func.count()).select_from(table).where(or_(*(table.c[c] == merge_id for c in columns)))
        )
        if found:
            counts[table.name] = int(found)
    return counts


async def _contact_row(session: AsyncSession, contact_id: int) -> dict[str, Any]:
    row = (await session.execute(select(CONTACTS).where(CONTACTS.c.id == contact_id))).mappings().one()
    return to_json(CONTACTS, row)


async def _pointing_at(session: AsyncSession, contact_id: int) -> Rows:
    """Every row of `LINKS` that points at the contact, whole, by table and id."""
    found: Rows = {}
    for table, columns in LINKS:
        rows = await session.execute(
            select(table).where(or_(*(table.c[c] == contact_id for c in columns))).order_by(table.c.id)
        )
        found[table.name] = {row["id"]: to_json(table, row) for row in rows.mappings()}
    return found


async def _flags(session: AsyncSession, contact_id: int) -> dict[str, dict[int, bool]]:
    """The kept contact's phones' and e-mails' `is_primary`, which a new main phone or e-mail changes."""
    flags: dict[str, dict[int, bool]] = {}
    for model in (ContactPhone, ContactEmail):
        rows = await session.execute(select(model.id, model.is_primary).where(model.contact_id == contact_id))
        flags[model.__tablename__] = {row_id: bool(primary) for row_id, primary in rows}
    return flags


async def _follow_primary(session: AsyncSession, keep: Contact) -> None:
    """The kept contact's lists mark its (new) main phone and e-mail as the primary ones."""
    await session.execute(
        update(ContactPhone).where(ContactPhone.contact_id == keep.id).values(is_primary=False)
    )
    if keep.phone:
        await session.execute(
            update(ContactPhone)
            .where(ContactPhone.contact_id == keep.id, ContactPhone.e164 == keep.phone)
            .values(is_primary=True)
        )
    await session.execute(
        update(ContactEmail).where(ContactEmail.contact_id == keep.id).values(is_primary=False)
    )
    if keep.email:
        await session.execute(
            update(ContactEmail)
            .where(ContactEmail.contact_id == keep.id, ContactEmail.email == keep.email.lower())
            .values(is_primary=True)
        )


def _tracked(table: Table) -> tuple[str, ...]:
    columns = next(columns for t, columns in LINKS if t is table)
    return columns + (("is_primary",) if table.name in FLAGGED else ())


async def _moved(
    session: AsyncSession, before: Rows, deleted: Rows, flags: dict[str, dict[int, bool]], keep_id: int
) -> dict[str, list[dict[str, Any]]]:
    """`{table: [{"id", "before", "after"}]}`: the merged contact's rows that now point elsewhere, and
    the kept contact's rows whose primary flag changed, with the columns' old and new values."""
    moved: dict[str, list[dict[str, Any]]] = {}
    for table, _ in LINKS:
        tracked = _tracked(table)
        ids = [row_id for row_id in before[table.name] if row_id not in deleted[table.name]]
        ids += [row_id for row_id in flags.get(table.name, {}) if row_id not in ids]
        if not ids:
            continue
        rows = await session.execute(select(table).where(table.c.id.in_(ids)))
        entries = []
        for row in rows.mappings():
            now = to_json(table, row)
            if row["id"] in before[table.name]:
                old = {c: before[table.name][row["id"]][c] for c in tracked}
            else:
                old = {"contact_id": keep_id, "is_primary": flags[table.name][row["id"]]}
            changed = [c for c in tracked if old[c] != now[c]]
            if changed:
                entries.append(
                    {
                        "id": row["id"],
                        "before": {c: old[c] for c in changed},
                        "after": {c: now[c] for c in changed},
                    }
                )
        if entries:
            moved[table.name] = sorted(entries, key=lambda e: e["id"])
    return moved


async def _move_profile_rows(session: AsyncSession, keep_id: int, merge_id: int) -> None:
    """The merged contact's other phones and e-mails, companies and relations join the kept contact's,
    except those it already has (the rest go with the merged contact's deletion)."""
    phones = ContactPhone.__table__.alias("kept_phones")
    await session.execute(
        update(ContactPhone)
        .where(
            ContactPhone.contact_id == merge_id,
            ~exists().where(phones.c.contact_id == keep_id, phones.c.e164 == ContactPhone.e164),
        )
        .values(contact_id=keep_id, is_primary=False)
    )
    emails = ContactEmail.__table__.alias("kept_emails")
    await session.execute(
        update(ContactEmail)
        .where(
            ContactEmail.contact_id == merge_id,
            ~exists().where(emails.c.contact_id == keep_id, emails.c.email == ContactEmail.email),
        )
        .values(contact_id=keep_id, is_primary=False)
    )
    links = ContactCompany.__table__.alias("kept_companies")
    await session.execute(
        update(ContactCompany)
        .where(
            ContactCompany.contact_id == merge_id,
            ~exists().where(links.c.contact_id == keep_id, links.c.company_id == ContactCompany.company_id),
        )
        .values(contact_id=keep_id)
    )
    for side, other in (("contact_id", "related_id"), ("related_id", "contact_id")):
        column, other_column = getattr(ContactRelation, side), getattr(ContactRelation, other)
        kept = ContactRelation.__table__.alias("kept_relations")
        await session.execute(
            update(ContactRelation)
            .where(
                column == merge_id,
                other_column != keep_id,  # a relation between the two becomes none
                ~exists().where(
                    kept.c[side] == keep_id,
                    kept.c[other] == other_column,
                    kept.c.kind == ContactRelation.kind,
                ),
            )
            .values({side: keep_id})
        )


async def _move_pairs(session: AsyncSession, keep_id: int, merge_id: int) -> None:
    """The merged contact's likely-duplicate pairs become the kept contact's (lower id first, as the table
    keeps them), unless the kept contact has that pair already; the pair of the two themselves is settled
    by the merge and goes with the merged contact."""
    pairs = await session.execute(
        select(DuplicateCandidate.id, DuplicateCandidate.contact_id, DuplicateCandidate.other_id).where(
            or_(DuplicateCandidate.contact_id == merge_id, DuplicateCandidate.other_id == merge_id)
        )
    )
    for pair_id, first, second in list(pairs):
        other = second if first == merge_id else first
        if other == keep_id:
            continue
        low, high = sorted((keep_id, other))
        taken = await session.scalar(
            select(DuplicateCandidate.id).where(
                DuplicateCandidate.contact_id == low, DuplicateCandidate.other_id == high
            )
        )
        if taken is None:
            await session.execute(
                update(DuplicateCandidate)
                .where(DuplicateCandidate.id == pair_id)
                .values(contact_id=low, other_id=high)
            )


async def _rowcount(session: AsyncSession, statement: Update) -> int:
    result = cast(CursorResult[Any], await session.execute(statement))
    return result.rowcount


# --- finding the contact to link --------------------------------------------------------------------------


def _contains(column: Any, word: str) -> ColumnElement[bool]:
    result: ColumnElement[bool] = func.lower(column).contains(word, autoescape=True)
    return result


def search_filter(query: str, region: str = "MD") -> ColumnElement[bool] | None:
    """Contacts matching what an agent typed: every word in the name, e-mail, phone or a channel identity
    (its display name or address), or the whole query as a phone number (`069 123 456` finds
    `+37369123456`). None when there is nothing to look for. Case-insensitive for ASCII on SQLite, fully
    on PostgreSQL (SQLite's `lower()` leaves other letters alone)."""
    query = " ".join(query.split())
    if len(query) > MAX_QUERY:
        raise Invalid(N_("At most %(n)s characters."), field="q", n=MAX_QUERY)
    words = [w.lower() for w in query.split(" ")[:MAX_WORDS] if w]
    if not words:
        return None
    per_word = []
    for word in words:
        identity = exists().where(
            ContactIdentity.contact_id == Contact.id,
            or_(_contains(ContactIdentity.display_name, word), _contains(ContactIdentity.external_id, word)),
        )
        per_word.append(
            or_(
                _contains(Contact.first_name, word),
                _contains(Contact.last_name, word),
                _contains(Contact.email, word),
                Contact.phone.contains(word, autoescape=True),
                identity,
            )
        )
    matches: ColumnElement[bool] = and_(*per_word)
    e164 = normalise_phone(query, region)
    digits = "".join(c for c in query if c.isdigit())
    if e164 is not None:
        matches = or_(matches, Contact.phone == e164)
    elif len(digits) >= 3 and digits != query:  # "69 12" finds +3736912…
        matches = or_(matches, Contact.phone.contains(digits, autoescape=True))
    return matches
