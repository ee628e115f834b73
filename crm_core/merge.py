"""Merging two contacts that turned out to be one person (an agent links a Viber customer to the web chat
visitor who gave their name), and finding the candidates to link.

crm_core moves only its own rows (identities, leads, tasks) and deletes the merged contact. Rooms whose tables
point at contacts move their rows first, in the same transaction: the delete cascades to whatever still
points at the merged contact (the inbox does this in `inbox.merge`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Update, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.contacts import normalise_phone
from crm_core.contacts_model import ContactCompany, ContactEmail, ContactPhone, ContactRelation
from crm_core.models import Contact, ContactIdentity, Lead
from crm_core.tasks import move_contact_tasks
from switchboard import audit
from switchboard.audit import Actor
from switchboard.db import utcnow
from switchboard.errors import N_, Invalid, NotFound

# Filled from the merged contact when empty on the kept one. The name is handled apart (see `_fill`).
FILLED = ("phone", "email", "language", "branch_id", "owner_id", "birth_date")
MAX_QUERY = 100
MAX_WORDS = 5


@dataclass(frozen=True)
class MergeResult:
    kept_id: int
    merged_id: int
    identities_moved: int
    leads_moved: int
    filled: tuple[str, ...]  # the kept contact's fields that took the merged contact's value


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


def _fill(keep: Contact, merged: Contact) -> dict[str, Any]:
    """The kept contact's empty fields, from the merged one. A name is taken whole when the kept contact
    has none, and only a missing last name when the first names agree: "Ion" + "Ion Popescu" gives
    "Ion Popescu", never "Visitor Rusu"."""
    values: dict[str, Any] = {}
    if not keep.first_name and not keep.last_name:
        if merged.first_name or merged.last_name:
            values["first_name"], values["last_name"] = merged.first_name, merged.last_name
    elif (
        not keep.last_name and merged.last_name and keep.first_name.casefold() == merged.first_name.casefold()
    ):
        values["last_name"] = merged.last_name
    for name in FILLED:
        if getattr(keep, name) is None and getattr(merged, name) is not None:
            values[name] = getattr(merged, name)
    return values


async def merge_contacts(session: AsyncSession, actor: Actor, keep_id: int, merge_id: int) -> MergeResult:
    """Make `merge_id` part of `keep_id`: its identities and leads move over, its values fill the kept
    contact's empty fields, and it is deleted; audited twice (the kept contact's update, the merged
    contact's deletion naming where it went) so either id leads to the other in the log."""
    keep, merged = await lock_pair(session, keep_id, merge_id)
    identities = await _rowcount(
        session,
        update(ContactIdentity).where(ContactIdentity.contact_id == merge_id).values(contact_id=keep_id),
    )
    leads = await _rowcount(
        session, update(Lead).where(Lead.contact_id == merge_id).values(contact_id=keep_id)
    )
    await move_contact_tasks(session, merge_id, keep_id)  # its tasks would lose their customer
    await _move_profile_rows(session, keep_id, merge_id)
    values = _fill(keep, merged)
    changes = audit.diff({name: getattr(keep, name) for name in values}, values)
    snapshot = {
        name: getattr(merged, name)
        for name in ("first_name", "last_name", "phone", "email", "language", "branch_id", "owner_id")
    }
    for name, value in values.items():
        setattr(keep, name, value)
    keep.updated_at = utcnow()
    await session.delete(merged)
    await session.flush()
    await audit.record_change(
        session,
        actor,
        module="contacts",
        action=audit.AuditAction.UPDATE,
        record_type="contact",
        record_id=keep_id,
        changes={**changes, "merged_contact_id": [None, merge_id]},
        detail=f"merged contact #{merge_id} into this one ({identities} channel identities, {leads} leads)",
    )
    await audit.record_change(
        session,
        actor,
        module="contacts",
        action=audit.AuditAction.DELETE,
        record_type="contact",
        record_id=merge_id,
        changes=audit.diff(snapshot, {"merged_into": keep_id}),
        detail=f"merged into contact #{keep_id}",
    )
    return MergeResult(keep_id, merge_id, identities, leads, tuple(values))


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
