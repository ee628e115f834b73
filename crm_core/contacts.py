"""Finding the customer behind an incoming message, and the contact card the agent sees beside a thread.

Resolution order (DESIGN.md step 2): the channel identity, then the E.164 phone number, else a new contact
with a new lead that records where the customer came from.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import phonenumbers
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.model import VisitSource
from crm_core import duplicates, scoring
from crm_core.contacts_model import ContactEmail, ContactPhone
from crm_core.models import Contact, ContactIdentity, Lead
from switchboard import audit
from switchboard.audit import Actor
from switchboard.db import cast_table, insert_ignoring_duplicates, utcnow
from switchboard.errors import N_, Conflict, Invalid, NotFound


def normalise_phone(raw: str | None, region: str = "MD") -> str | None:
    """E.164 (`+37369123456`) or None when `raw` is not a possible phone number."""
    if not raw or len(raw) > 40:
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def split_name(name: str | None) -> tuple[str, str]:
    parts = " ".join((name or "").split())[:200].split(" ", 1)
    return parts[0][:100], (parts[1] if len(parts) > 1 else "")[:100]


@dataclass(frozen=True)
class Resolved:
    """The contact behind an inbound message, with what routing needs (branch, responsible expert)."""

    contact_id: int
    branch_id: int | None
    owner_id: int | None
    created: bool  # a new contact (and lead) was made
    identity_created: bool  # the channel identity is new (maybe linked to an existing contact by phone)


_CONTACT_KEYS = (Contact.id, Contact.branch_id, Contact.owner_id)
_IDENTITIES = cast_table(ContactIdentity)
# Built once with bound parameters: these run for every inbound message of every channel.
_BY_IDENTITY = (
    select(*_CONTACT_KEYS)
    .join(ContactIdentity, ContactIdentity.contact_id == Contact.id)
    .where(
        ContactIdentity.channel == bindparam("channel"),
        ContactIdentity.account_id == bindparam("account_id"),
        ContactIdentity.external_id == bindparam("external_id"),
    )
)
_BY_PHONE = select(*_CONTACT_KEYS).where(Contact.phone == bindparam("phone")).order_by(Contact.id).limit(1)
_BY_OTHER_PHONE = (
    select(*_CONTACT_KEYS)
    .join(ContactPhone, ContactPhone.contact_id == Contact.id)
    .where(ContactPhone.e164 == bindparam("phone"))
    .order_by(Contact.id)
    .limit(1)
)
_PHONES = cast_table(ContactPhone)
_EMAILS = cast_table(ContactEmail)
_INSERT_CONTACT = insert(cast_table(Contact)).returning(cast_table(Contact).c.id)
_INSERT_LEAD = insert(cast_table(Lead))


async def resolve_contact(
    session: AsyncSession,
    *,
    channel: str,
    account_id: str,
    external_id: str,
    name: str | None = None,
    phone: str | None = None,
    source: VisitSource | None = None,
    region: str = "MD",
    language: str | None = None,
    contact_id: int | None = None,
) -> Resolved:
    """Core statements, not ORM objects: this runs for every inbound message of every channel.

    `contact_id`: the contact a new identity belongs to when the channel proves it (an e-mail replying to
    one of ours), before any look-up by phone."""
    known = (
        await session.execute(
            _BY_IDENTITY, {"channel": channel, "account_id": account_id, "external_id": external_id}
        )
    ).first()
    if known is not None:
        if phone:  # a number the customer shared later (Telegram contact) fills an empty phone
            e164_known = normalise_phone(phone, region)
            if e164_known:
                filled = await session.execute(
                    update(Contact)
                    .where(Contact.id == known.id, Contact.phone.is_(None))
                    .values(phone=e164_known, updated_at=utcnow())
                )
                if getattr(filled, "rowcount", 0):
                    await add_phone(session, known.id, e164_known, primary=True)
                    await scoring.recompute_contact(session, known.id)
        return Resolved(known.id, known.branch_id, known.owner_id, created=False, identity_created=False)
    e164 = normalise_phone(phone, region)
    found = None
    if contact_id is not None:
        found = (await session.execute(select(*_CONTACT_KEYS).where(Contact.id == contact_id))).first()
    if found is None and e164:
        found = (await session.execute(_BY_PHONE, {"phone": e164})).first()
        if found is None:  # one of a contact's other numbers
            found = (await session.execute(_BY_OTHER_PHONE, {"phone": e164})).first()
    if found is not None:
        contact_id, branch_id, owner_id = found.id, found.branch_id, found.owner_id
    else:
        first, last = split_name(name)
        now = utcnow()
        contact_id = (
            await session.execute(
                _INSERT_CONTACT,
                {
                    "first_name": first,
                    "last_name": last,
                    "phone": e164,
                    "language": language,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        ).scalar_one()
        branch_id = owner_id = None
        await session.execute(_INSERT_LEAD, _lead_values(contact_id, channel, source, now))
        if e164:
            await add_phone(session, contact_id, e164, primary=True)
        await _note_likely_duplicates(session, contact_id, first, last, e164)
        await scoring.recompute_contact(session, contact_id)  # the new lead's first score
    linked = await _link_identity(session, contact_id, channel, account_id, external_id, name)
    if linked != contact_id:  # another request linked this identity first: adopt its contact
        if found is None:
            await session.execute(delete(Contact).where(Contact.id == contact_id))
        other = (await session.execute(select(*_CONTACT_KEYS).where(Contact.id == linked))).one()
        return Resolved(other.id, other.branch_id, other.owner_id, created=False, identity_created=False)
    return Resolved(contact_id, branch_id, owner_id, created=found is None, identity_created=True)


async def _note_likely_duplicates(
    session: AsyncSession, contact_id: int, first: str, last: str, e164: str | None
) -> None:
    """Ingest never stops for a duplicate: a new customer who looks like a known one (same name, same
    phone tail) is only written down for the duplicates page."""
    if not (first or last) or not e164:
        return
    matches = await duplicates.find_duplicates(
        session,
        duplicates.Candidate(first_name=first, last_name=last, phones=(e164,), exclude_id=contact_id),
    )
    if matches:
        await duplicates.record_candidates(session, contact_id, matches)


async def add_phone(
    session: AsyncSession, contact_id: int, e164: str, *, primary: bool = False, label: str = ""
) -> None:
    """One more number in the contact's phone list (nothing when it is already there)."""
    await session.execute(
        insert_ignoring_duplicates(session, _PHONES),
        {
            "contact_id": contact_id,
            "e164": e164,
            "tail": duplicates.phone_tail(e164),
            "label": label,
            "is_primary": primary,
        },
    )


async def add_email(
    session: AsyncSession, contact_id: int, email: str, *, primary: bool = False, label: str = ""
) -> None:
    await session.execute(
        insert_ignoring_duplicates(session, _EMAILS),
        {"contact_id": contact_id, "email": email.lower(), "label": label, "is_primary": primary},
    )


async def replace_primary(
    session: AsyncSession,
    contact_id: int,
    *,
    old_phone: str | None,
    phone: str | None,
    old_email: str | None,
    email: str | None,
) -> None:
    """Keep the phone and e-mail lists in step with `Contact.phone` / `Contact.email` after a quick edit:
    the old primary leaves the list, the new one joins it as primary; the other numbers stay."""
    if old_phone != phone:
        if old_phone:
            await session.execute(
                delete(ContactPhone).where(
                    ContactPhone.contact_id == contact_id, ContactPhone.e164 == old_phone
                )
            )
        await session.execute(
            update(ContactPhone).where(ContactPhone.contact_id == contact_id).values(is_primary=False)
        )
        if phone:
            await session.execute(
                delete(ContactPhone).where(ContactPhone.contact_id == contact_id, ContactPhone.e164 == phone)
            )
            await add_phone(session, contact_id, phone, primary=True)
    if (old_email or "").lower() != (email or "").lower():
        if old_email:
            await session.execute(
                delete(ContactEmail).where(
                    ContactEmail.contact_id == contact_id, ContactEmail.email == old_email.lower()
                )
            )
        await session.execute(
            update(ContactEmail).where(ContactEmail.contact_id == contact_id).values(is_primary=False)
        )
        if email:
            await session.execute(
                delete(ContactEmail).where(
                    ContactEmail.contact_id == contact_id, ContactEmail.email == email.lower()
                )
            )
            await add_email(session, contact_id, email, primary=True)


class DuplicatesFound(Conflict):
    """The contact being saved is (or looks like) one already here; the caller shows `matches` and saves
    only when the user confirms."""

    def __init__(self, matches: list[duplicates.DuplicateMatch]) -> None:
        super().__init__(N_("This looks like a contact that already exists."), field="duplicates")
        self.matches = matches


async def check_duplicates(
    session: AsyncSession, candidate: duplicates.Candidate, *, confirmed: bool, contact_id: int | None = None
) -> list[duplicates.DuplicateMatch]:
    """The matches for a form or API write: raises `DuplicatesFound` unless the user confirmed; when they
    did, returns them so the caller records the pairs once it has the contact's id."""
    matches = await duplicates.find_duplicates(session, candidate)
    if matches and not confirmed:
        raise DuplicatesFound(matches)
    return matches


async def _identity(
    session: AsyncSession, channel: str, account_id: str, external_id: str
) -> ContactIdentity | None:
    return await session.scalar(
        select(ContactIdentity).where(
            ContactIdentity.channel == channel,
            ContactIdentity.account_id == account_id,
            ContactIdentity.external_id == external_id,
        )
    )


async def _link_identity(
    session: AsyncSession, contact_id: int, channel: str, account_id: str, external_id: str, name: str | None
) -> int:
    """Insert the identity unless another request just did, and return the contact it belongs to: two
    webhooks racing for a new customer end with one identity, and the loser adopts the winner's contact."""
    inserted = await session.execute(
        insert_ignoring_duplicates(session, _IDENTITIES, "id"),
        {
            "contact_id": contact_id,
            "channel": channel,
            "account_id": account_id,
            "external_id": external_id,
            "display_name": (name or "")[:200] or None,
            "created_at": utcnow(),
        },
    )
    if inserted.scalar_one_or_none() is not None:
        return contact_id
    identity = await _identity(session, channel, account_id, external_id)
    assert identity is not None
    return identity.contact_id


def _lead_values(
    contact_id: int, channel: str, source: VisitSource | None, now: dt.datetime
) -> dict[str, object]:
    s = source or VisitSource()
    return {
        "contact_id": contact_id,
        "source_channel": channel,
        "page_url": s.page_url,
        "referrer": s.referrer,
        "utm_source": s.utm_source,
        "utm_medium": s.utm_medium,
        "utm_campaign": s.utm_campaign,
        "utm_content": s.utm_content,
        "utm_term": s.utm_term,
        "status": "new",
        "first_contact_at": now,
        "created_at": now,
    }


@dataclass(frozen=True)
class IdentityView:
    channel: str
    account_id: str
    external_id: str
    display_name: str | None


@dataclass(frozen=True)
class LeadView:
    id: int
    source_channel: str
    status: str
    utm_source: str | None
    utm_campaign: str | None
    page_url: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class ContactCard:
    id: int
    name: str
    first_name: str
    phone: str | None
    email: str | None
    owner_id: int | None
    branch_id: int | None
    identities: list[IdentityView] = field(default_factory=list)
    leads: list[LeadView] = field(default_factory=list)
    last_name: str = ""


async def contact_card(session: AsyncSession, contact_id: int) -> ContactCard | None:
    contact = await session.get(Contact, contact_id)
    if contact is None:
        return None
    identities = await session.scalars(
        select(ContactIdentity).where(ContactIdentity.contact_id == contact_id).order_by(ContactIdentity.id)
    )
    leads = await session.scalars(select(Lead).where(Lead.contact_id == contact_id).order_by(Lead.id.desc()))
    return ContactCard(
        id=contact.id,
        name=contact.display_name,
        first_name=contact.first_name,
        phone=contact.phone,
        email=contact.email,
        owner_id=contact.owner_id,
        branch_id=contact.branch_id,
        last_name=contact.last_name,
        identities=[IdentityView(i.channel, i.account_id, i.external_id, i.display_name) for i in identities],
        leads=[
            LeadView(x.id, x.source_channel, x.status, x.utm_source, x.utm_campaign, x.page_url, x.created_at)
            for x in leads
        ],
    )


async def identities_of(session: AsyncSession, contact_id: int) -> list[ContactIdentity]:
    return list(
        await session.scalars(
            select(ContactIdentity)
            .where(ContactIdentity.contact_id == contact_id)
            .order_by(ContactIdentity.id)
        )
    )


# --- editing a contact ------------------------------------------------------------------------------------

MAX_NAME = 100
MAX_EMAIL = 254
# Deliberately loose: one @, something on each side, a dot in the domain, no spaces. The mailbox itself
# is the real check.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def check_name(value: str, field_name: str) -> str:
    """A name part with its spaces folded, refused when too long."""
    value = " ".join(value.split())
    if len(value) > MAX_NAME:
        raise Invalid(N_("At most %(n)s characters."), field=field_name, n=MAX_NAME)
    return value


def check_email(value: str) -> str | None:
    """An e-mail address with a lower-case domain; None for empty."""
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_EMAIL or not _EMAIL.match(value):
        raise Invalid(N_("Enter an e-mail address such as name@example.md."), field="email")
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def check_phone(value: str, region: str) -> str | None:
    """A phone number in E.164 (`normalise_phone`); None for empty, refused when it is not one."""
    value = value.strip()
    if not value:
        return None
    e164 = normalise_phone(value, region)
    if e164 is None:
        raise Invalid(N_("Not a phone number: %(phone)s."), field="phone", phone=value[:40])
    return e164


async def update_contact(
    session: AsyncSession,
    actor: Actor,
    contact_id: int,
    *,
    first_name: str,
    last_name: str,
    phone: str,
    email: str,
    region: str = "MD",
    confirm_duplicate: bool = True,
) -> ContactCard:
    """Correct a contact's name, phone (stored E.164; numbers without a country code read in `region`)
    and e-mail; empty phone or e-mail clears it. Audited with the fields that changed.

    A changed name, phone or e-mail that makes the contact look like another raises `DuplicatesFound`
    unless `confirm_duplicate`."""
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(N_("No such contact."))
    fields = {
        "first_name": check_name(first_name, "first_name"),
        "last_name": check_name(last_name, "last_name"),
        "phone": check_phone(phone, region),
        "email": check_email(email),
    }
    before = {key: getattr(contact, key) for key in fields}
    changes = audit.diff(before, fields)
    if changes:
        matches = await check_duplicates(
            session,
            duplicates.Candidate(
                first_name=fields["first_name"] or "",
                last_name=fields["last_name"] or "",
                phones=[fields["phone"]] if fields["phone"] else [],
                emails=[fields["email"]] if fields["email"] else [],
                birth_date=contact.birth_date,
                exclude_id=contact.id,
            ),
            confirmed=confirm_duplicate,
        )
        for key, value in fields.items():
            setattr(contact, key, value)
        await session.flush()
        await replace_primary(
            session,
            contact.id,
            old_phone=before["phone"],
            phone=fields["phone"],
            old_email=before["email"],
            email=fields["email"],
        )
        if matches:
            await duplicates.record_candidates(session, contact.id, matches)
        await audit.record_change(
            session,
            actor,
            module="contacts",
            action=audit.AuditAction.UPDATE,
            record_type="contact",
            record_id=contact.id,
            changes=changes,
        )
        await scoring.recompute_contact(session, contact.id)  # a phone or e-mail known now scores
    card = await contact_card(session, contact.id)
    assert card is not None
    return card


async def set_consent(
    session: AsyncSession,
    *,
    channel: str,
    account_id: str,
    external_id: str,
    subscribed: bool,
    at: dt.datetime,
    name: str | None = None,
    region: str = "MD",
) -> Resolved | None:
    """Record that the customer opted in or out on this channel. An opt-in from someone unknown (Viber's
    `subscribed`) is a first contact and makes one; an opt-out from someone unknown changes nothing."""
    identity = await _identity(session, channel, account_id, external_id)
    if identity is None:
        if not subscribed:
            return None
        resolved = await resolve_contact(
            session, channel=channel, account_id=account_id, external_id=external_id, name=name, region=region
        )
        identity = await _identity(session, channel, account_id, external_id)
        assert identity is not None
    else:
        resolved = None
    identity.unsubscribed_at = None if subscribed else at
    await session.flush()
    if resolved is not None:
        return resolved
    row = (await session.execute(select(*_CONTACT_KEYS).where(Contact.id == identity.contact_id))).one()
    return Resolved(row.id, row.branch_id, row.owner_id, created=False, identity_created=False)


async def unsubscribed(session: AsyncSession, *, channel: str, account_id: str, external_id: str) -> bool:
    """True when the customer opted out of this channel (the hub must not write to them there)."""
    value = await session.scalar(
        select(ContactIdentity.unsubscribed_at).where(
            ContactIdentity.channel == channel,
            ContactIdentity.account_id == account_id,
            ContactIdentity.external_id == external_id,
        )
    )
    return value is not None
