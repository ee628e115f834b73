"""Finding the customer behind an incoming message, and the contact card the agent sees beside a thread.

Resolution order (DESIGN.md step 2): the channel identity, then the E.164 phone number, else a new contact
with a new lead that records where the customer came from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from channels.model import VisitSource
from crm_core.models import Contact, ContactIdentity, Lead


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
    contact: Contact
    created: bool  # a new contact (and lead) was made
    identity_created: bool  # the channel identity is new (maybe linked to an existing contact by phone)


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
) -> Resolved:
    identity = await _identity(session, channel, account_id, external_id)
    if identity is not None:
        contact = await session.get(Contact, identity.contact_id)
        assert contact is not None  # FK with ON DELETE CASCADE
        return Resolved(contact, created=False, identity_created=False)
    e164 = normalise_phone(phone, region)
    contact = None
    if e164:
        contact = await session.scalar(
            select(Contact).where(Contact.phone == e164).order_by(Contact.id).limit(1)
        )
    created = contact is None
    if contact is None:
        first, last = split_name(name)
        contact = Contact(first_name=first, last_name=last, phone=e164, language=language)
        session.add(contact)
        await session.flush()
        session.add(_lead(contact.id, channel, source))
    linked = await _link_identity(session, contact.id, channel, account_id, external_id, name)
    if linked.contact_id != contact.id:  # another request linked this identity first
        if created:
            await session.delete(contact)
        other = await session.get(Contact, linked.contact_id)
        assert other is not None
        return Resolved(other, created=False, identity_created=False)
    return Resolved(contact, created=created, identity_created=True)


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
) -> ContactIdentity:
    """Insert the identity in a savepoint: two webhooks racing for a new customer end with one identity."""
    identity = ContactIdentity(
        contact_id=contact_id,
        channel=channel,
        account_id=account_id,
        external_id=external_id,
        display_name=(name or "")[:200] or None,
    )
    try:
        async with session.begin_nested():
            session.add(identity)
    except IntegrityError:
        existing = await _identity(session, channel, account_id, external_id)
        assert existing is not None
        return existing
    return identity


def _lead(contact_id: int, channel: str, source: VisitSource | None) -> Lead:
    s = source or VisitSource()
    return Lead(
        contact_id=contact_id,
        source_channel=channel,
        page_url=s.page_url,
        referrer=s.referrer,
        utm_source=s.utm_source,
        utm_medium=s.utm_medium,
        utm_campaign=s.utm_campaign,
        utm_content=s.utm_content,
        utm_term=s.utm_term,
    )


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
