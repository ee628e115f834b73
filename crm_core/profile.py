"""The whole contact profile, as the contact page edits it: names, several phones and e-mails, IDNP, birth
date, address, branch, responsible expert, segment tags, consent per channel, companies and relations;
plus companies themselves, and who may see which contacts.

Every create and edit runs `crm_core.duplicates` first and raises `DuplicatesFound` until the user
confirms (`confirm_duplicate`); the pairs they confirmed are written down for the duplicates page. The
quick edit of the inbox panel is `crm_core.contacts.update_contact`; both keep `Contact.phone` /
`Contact.email` (the primary ones) in step with the lists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import custom_fields, duplicates, idnp, scoring
from crm_core.contacts import check_duplicates, check_email, check_name, check_phone
from crm_core.contacts_model import Company, ContactCompany, ContactEmail, ContactPhone, ContactRelation
from crm_core.merge import search_filter
from crm_core.models import Contact, ContactIdentity
from switchboard import audit
from switchboard.audit import Actor
from switchboard.errors import N_, Invalid, NotFound
from switchboard.permissions import Role

MAX_PHONES = 5
MAX_EMAILS = 5
MAX_TAGS = 20
MAX_TAG = 40
MAX_ADDRESS = 500
MAX_LINKS = 20
CONSENT_CHANNELS = ("phone", "sms", "whatsapp", "viber", "telegram", "email", "messenger", "instagram")
RELATION_KINDS = ("spouse", "guarantor", "relative", "other")
COMPANY_SIZES = ("", "micro", "small", "medium", "large")
PAGE_SIZE = 25


# --- who sees which contacts ------------------------------------------------------------------------------


def visible_contacts(role: Role | str, branch_id: int | None, user_id: int) -> ColumnElement[bool]:
    """Admins see every contact; everyone else the contacts of their branch, those they are responsible
    for, and those no branch has taken yet (a new customer who just wrote in)."""
    if Role(role) is Role.ADMIN:
        return true()
    clauses: list[ColumnElement[bool]] = [Contact.branch_id.is_(None), Contact.owner_id == user_id]
    if branch_id is not None:
        clauses.append(Contact.branch_id == branch_id)
    return or_(*clauses)


def visible_companies(role: Role | str, branch_id: int | None) -> ColumnElement[bool]:
    if Role(role) is Role.ADMIN:
        return true()
    if branch_id is None:
        return Company.branch_id.is_(None)
    return or_(Company.branch_id.is_(None), Company.branch_id == branch_id)


# --- the input ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneIn:
    e164: str
    label: str = ""


@dataclass(frozen=True)
class ProfileInput:
    """A validated profile: phones in E.164, e-mails with a lower-case domain, the first of each primary."""

    first_name: str = ""
    last_name: str = ""
    phones: tuple[PhoneIn, ...] = ()
    emails: tuple[str, ...] = ()
    idnp: str | None = None
    birth_date: dt.date | None = None
    address: str = ""
    branch_id: int | None = None
    owner_id: int | None = None
    tags: tuple[str, ...] = ()
    consents: Mapping[str, bool] = field(default_factory=dict)
    companies: tuple[tuple[int, str], ...] = ()  # (company id, role)
    relations: tuple[tuple[int, str], ...] = ()  # (related contact id, kind)
    # the admin-defined fields as sent, checked against their definitions when written (`_custom`);
    # None: not sent, the stored values stay
    custom: Mapping[str, Any] | None = None

    def candidate(self, exclude_id: int | None = None) -> duplicates.Candidate:
        return duplicates.Candidate(
            first_name=self.first_name,
            last_name=self.last_name,
            phones=[p.e164 for p in self.phones],
            emails=list(self.emails),
            idnp=self.idnp,
            birth_date=self.birth_date,
            exclude_id=exclude_id,
        )


def _text(data: Mapping[str, Any], name: str, max_len: int) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(N_("This field must be text."), field=name)
    value = value.strip()
    if len(value) > max_len:
        raise Invalid(N_("At most %(n)s characters."), field=name, n=max_len)
    return value


def _list(data: Mapping[str, Any], name: str) -> list[Any]:
    value = data.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise Invalid(N_("This field must be a list."), field=name)
    return value


def _id(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31:
        raise Invalid(N_("Choose one from the list."), field=name)
    return value


def parse_profile(data: Mapping[str, Any], region: str = "MD") -> ProfileInput:
    """Validate what a form or the API sent; `Invalid` names the field that is wrong."""
    phones: list[PhoneIn] = []
    for raw in _list(data, "phones"):
        number, label = (raw.get("number"), raw.get("label") or "") if isinstance(raw, dict) else (raw, "")
        if not isinstance(number, str) or not isinstance(label, str):
            raise Invalid(N_("This field must be text."), field="phones")
        try:
            e164 = check_phone(number, region)
        except Invalid as exc:
            raise Invalid(exc.message, field="phones", **exc.params) from None
        if e164 and e164 not in {p.e164 for p in phones}:
            phones.append(PhoneIn(e164, " ".join(label.split())[:40]))
    if len(phones) > MAX_PHONES:
        raise Invalid(N_("At most %(n)s phone numbers."), field="phones", n=MAX_PHONES)
    emails: list[str] = []
    for raw in _list(data, "emails"):
        if not isinstance(raw, str):
            raise Invalid(N_("This field must be text."), field="emails")
        try:
            email = check_email(raw)
        except Invalid as exc:
            raise Invalid(exc.message, field="emails", **exc.params) from None
        if email and email.lower() not in {e.lower() for e in emails}:
            emails.append(email)
    if len(emails) > MAX_EMAILS:
        raise Invalid(N_("At most %(n)s e-mail addresses."), field="emails", n=MAX_EMAILS)
    code = idnp.compact(_text(data, "idnp", 40)) or None
    if code is not None and not idnp.is_valid_idnp(code):
        raise Invalid(N_("An IDNP is 13 digits with a valid check digit."), field="idnp")
    birth: dt.date | None = None
    raw_birth = _text(data, "birth_date", 10)
    if raw_birth:
        try:
            birth = dt.date.fromisoformat(raw_birth)
        except ValueError:
            raise Invalid(N_("Enter a date such as 1985-04-23."), field="birth_date") from None
        if not dt.date(1900, 1, 1) <= birth <= dt.date.today():
            raise Invalid(N_("Enter a date such as 1985-04-23."), field="birth_date")
    raw_tags = data.get("tags")
    tag_list = raw_tags.split(",") if isinstance(raw_tags, str) else _list(data, "tags")
    tags: list[str] = []
    for tag in tag_list:
        if not isinstance(tag, str):
            raise Invalid(N_("This field must be text."), field="tags")
        tag = " ".join(tag.split())
        if len(tag) > MAX_TAG:
            raise Invalid(N_("At most %(n)s characters."), field="tags", n=MAX_TAG)
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise Invalid(N_("At most %(n)s tags."), field="tags", n=MAX_TAGS)
    consents_raw = data.get("consents") or {}
    if isinstance(consents_raw, list):  # a form's checked boxes
        consents_raw = {channel: True for channel in consents_raw}
    if not isinstance(consents_raw, dict):
        raise Invalid(N_("This field must be a list."), field="consents")
    consents = {}
    for channel in CONSENT_CHANNELS:
        value = consents_raw.get(channel, False)
        if not isinstance(value, bool):
            raise Invalid(N_("Choose one from the list."), field="consents")
        consents[channel] = value
    if set(consents_raw) - set(CONSENT_CHANNELS):
        raise Invalid(N_("Choose one from the list."), field="consents")
    companies: list[tuple[int, str]] = []
    for raw in _list(data, "companies")[:MAX_LINKS]:
        if not isinstance(raw, dict):
            raise Invalid(N_("Choose one from the list."), field="companies")
        company_id = _id(raw.get("company_id"), "companies")
        role = raw.get("role") or ""
        if not isinstance(role, str) or len(role) > 100:
            raise Invalid(N_("At most %(n)s characters."), field="companies", n=100)
        if company_id is not None and company_id not in {c for c, _ in companies}:
            companies.append((company_id, " ".join(role.split())))
    relations: list[tuple[int, str]] = []
    for raw in _list(data, "relations")[:MAX_LINKS]:
        if not isinstance(raw, dict):
            raise Invalid(N_("Choose one from the list."), field="relations")
        related = _id(raw.get("contact_id"), "relations")
        kind = raw.get("kind") or "other"
        if kind not in RELATION_KINDS:
            raise Invalid(N_("Choose one from the list."), field="relations")
        if related is not None and (related, kind) not in relations:
            relations.append((related, kind))
    return ProfileInput(
        first_name=check_name(_text(data, "first_name", 400), "first_name"),
        last_name=check_name(_text(data, "last_name", 400), "last_name"),
        phones=tuple(phones),
        emails=tuple(emails),
        idnp=code,
        birth_date=birth,
        address=_text(data, "address", MAX_ADDRESS),
        branch_id=_id(data.get("branch_id"), "branch_id"),
        owner_id=_id(data.get("owner_id"), "owner_id"),
        tags=tuple(tags),
        consents=consents,
        companies=tuple(companies),
        relations=tuple(relations),
        custom=data.get("custom"),
    )


# --- writing ------------------------------------------------------------------------------------------------


def check_identifiable(p: ProfileInput) -> None:
    """A new contact needs something to find them by: a name, a phone or an e-mail."""
    if not (p.first_name or p.last_name or p.phones or p.emails):
        raise Invalid(N_("Enter a name, a phone or an e-mail."), field="first_name")


def contact_columns(p: ProfileInput) -> dict[str, Any]:
    """The `contacts` columns a profile sets (primary phone and e-mail first of their lists), for writers
    that insert many contacts at once (an import) instead of `create_contact`."""
    return _scalars(p)


def audited_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Profile values as the audit log shows them (see `_audited`)."""
    return _audited(values)


def _scalars(p: ProfileInput) -> dict[str, Any]:
    return {
        "first_name": p.first_name,
        "last_name": p.last_name,
        "phone": p.phones[0].e164 if p.phones else None,
        "email": p.emails[0] if p.emails else None,
        "idnp": p.idnp,
        "birth_date": p.birth_date,
        "address": p.address,
        "branch_id": p.branch_id,
        "owner_id": p.owner_id,
        "tags": list(p.tags),
        "consents": dict(p.consents),
    }


async def _custom(
    session: AsyncSession, p: ProfileInput, current: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The contact's custom values after this write: the fields sent replace theirs (a form sends every
    field; the API may send some), each checked by its definition; required ones must have a value. An
    edit that sends none keeps them as they are (`current`; None for a new contact)."""
    if p.custom is None and current is not None:
        return dict(current)
    defs = await custom_fields.definitions(session, "contact")
    return custom_fields.validate(defs, p.custom, current=current, partial=True)


def _audited(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values as the audit log shows them: tags and granted consents as short text."""
    out = dict(values)
    out["tags"] = ", ".join(values.get("tags") or [])
    out["consents"] = ", ".join(sorted(k for k, v in (values.get("consents") or {}).items() if v))
    return out


async def _lists_of(session: AsyncSession, contact_id: int) -> dict[str, Any]:
    phones = await session.scalars(
        select(ContactPhone.e164).where(ContactPhone.contact_id == contact_id).order_by(ContactPhone.id)
    )
    emails = await session.scalars(
        select(ContactEmail.email).where(ContactEmail.contact_id == contact_id).order_by(ContactEmail.id)
    )
    return {"phones": ", ".join(phones), "emails": ", ".join(emails)}


async def _check_links(session: AsyncSession, p: ProfileInput, contact_id: int | None) -> None:
    if p.idnp is not None:
        taken = await session.scalar(
            select(Contact.id).where(Contact.idnp == p.idnp, Contact.id != (contact_id or 0))
        )
        if taken is not None:
            raise Invalid(N_("Another contact has this IDNP."), field="idnp")
    company_ids = {c for c, _ in p.companies}
    if company_ids:
        found = set(await session.scalars(select(Company.id).where(Company.id.in_(company_ids))))
        if found != company_ids:
            raise Invalid(N_("Choose one from the list."), field="companies")
    related = {r for r, _ in p.relations}
    if contact_id is not None and contact_id in related:
        raise Invalid(N_("A contact cannot be related to itself."), field="relations")
    if related:
        found = set(await session.scalars(select(Contact.id).where(Contact.id.in_(related))))
        if found != related:
            raise Invalid(N_("No such contact."), field="relations")


async def _write_lists(session: AsyncSession, contact_id: int, p: ProfileInput) -> None:
    await session.execute(delete(ContactPhone).where(ContactPhone.contact_id == contact_id))
    await session.execute(delete(ContactEmail).where(ContactEmail.contact_id == contact_id))
    await session.execute(delete(ContactCompany).where(ContactCompany.contact_id == contact_id))
    await session.execute(delete(ContactRelation).where(ContactRelation.contact_id == contact_id))
    for i, phone in enumerate(p.phones):
        session.add(
            ContactPhone(
                contact_id=contact_id,
                e164=phone.e164,
                tail=duplicates.phone_tail(phone.e164),
                label=phone.label,
                is_primary=i == 0,
            )
        )
    for i, email in enumerate(p.emails):
        session.add(ContactEmail(contact_id=contact_id, email=email.lower(), is_primary=i == 0))
    for company_id, role in p.companies:
        session.add(ContactCompany(contact_id=contact_id, company_id=company_id, role=role))
    for related_id, kind in p.relations:
        session.add(ContactRelation(contact_id=contact_id, related_id=related_id, kind=kind))
    await session.flush()


async def create_contact(
    session: AsyncSession, actor: Actor, p: ProfileInput, *, confirm_duplicate: bool = False
) -> int:
    """A new contact from the form or the API; `DuplicatesFound` unless confirmed when it matches one."""
    check_identifiable(p)
    custom = await _custom(session, p, None)
    # Duplicates first: an IDNP someone else has shows as that match ("open / merge") before it is refused.
    matches = await check_duplicates(session, p.candidate(), confirmed=confirm_duplicate)
    await _check_links(session, p, None)
    contact = Contact(**_scalars(p), custom=custom)
    session.add(contact)
    await session.flush()
    await _write_lists(session, contact.id, p)
    if matches:
        await duplicates.record_candidates(session, contact.id, matches)
    await audit.record_change(
        session,
        actor,
        module="contacts",
        action=audit.AuditAction.CREATE,
        record_type="contact",
        record_id=contact.id,
        changes=audit.diff(
            {},
            {
                k: v
                for k, v in _audited(
                    {**_scalars(p), "custom": custom, **await _lists_of(session, contact.id)}
                ).items()
                if v
            },
        ),
    )
    return contact.id


async def save_contact(
    session: AsyncSession, actor: Actor, contact_id: int, p: ProfileInput, *, confirm_duplicate: bool = False
) -> None:
    """Replace the contact's profile with `p`, audited field by field."""
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(N_("No such contact."))
    values = {**_scalars(p), "custom": await _custom(session, p, contact.custom or {})}
    matches = await check_duplicates(session, p.candidate(contact_id), confirmed=confirm_duplicate)
    await _check_links(session, p, contact_id)
    before = _audited({**{k: getattr(contact, k) for k in values}, **await _lists_of(session, contact_id)})
    for key, value in values.items():
        setattr(contact, key, value)
    await session.flush()
    await _write_lists(session, contact_id, p)
    if matches:
        await duplicates.record_candidates(session, contact_id, matches)
    changes = audit.diff(before, _audited({**values, **await _lists_of(session, contact_id)}))
    if changes:
        await audit.record_change(
            session,
            actor,
            module="contacts",
            action=audit.AuditAction.UPDATE,
            record_type="contact",
            record_id=contact_id,
            changes=changes,
        )
    await scoring.recompute_contact(session, contact_id)  # completeness rules read the profile


# --- reading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneView:
    e164: str
    label: str
    primary: bool


@dataclass(frozen=True)
class LinkView:
    id: int  # the company's or the related contact's id
    name: str
    role: str  # position at the company, or the kind of relation


@dataclass(frozen=True)
class Profile:
    contact: Contact
    phones: list[PhoneView]
    emails: list[str]
    companies: list[LinkView]
    relations: list[LinkView]  # entered on this contact
    identities: list[ContactIdentity]
    related_by: list[LinkView] = field(default_factory=list)  # entered on the other contact

    def as_json(self) -> dict[str, Any]:
        c = self.contact
        return {
            "id": c.id,
            "name": c.display_name,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "phone": c.phone,
            "email": c.email,
            "phones": [{"number": p.e164, "label": p.label, "primary": p.primary} for p in self.phones],
            "emails": self.emails,
            "idnp": c.idnp,
            "birth_date": c.birth_date.isoformat() if c.birth_date else None,
            "address": c.address,
            "branch_id": c.branch_id,
            "owner_id": c.owner_id,
            "tags": c.tags,
            "consents": c.consents,
            "custom": c.custom or {},
            "companies": [{"company_id": x.id, "name": x.name, "role": x.role} for x in self.companies],
            "relations": [{"contact_id": x.id, "name": x.name, "kind": x.role} for x in self.relations],
            "related_by": [{"contact_id": x.id, "name": x.name, "kind": x.role} for x in self.related_by],
            "identities": [
                {"channel": i.channel, "account_id": i.account_id, "external_id": i.external_id}
                for i in self.identities
            ],
        }


async def profile_of(session: AsyncSession, contact_id: int) -> Profile | None:
    contact = await session.get(Contact, contact_id)
    if contact is None:
        return None
    phones = [
        PhoneView(p.e164, p.label, p.is_primary)
        for p in await session.scalars(
            select(ContactPhone).where(ContactPhone.contact_id == contact_id).order_by(ContactPhone.id)
        )
    ]
    if contact.phone and contact.phone not in {p.e164 for p in phones}:  # written before the lists existed
        phones.insert(0, PhoneView(contact.phone, "", True))
    phones.sort(key=lambda p: not p.primary)
    emails = list(
        await session.scalars(
            select(ContactEmail.email)
            .where(ContactEmail.contact_id == contact_id)
            .order_by(ContactEmail.is_primary.desc(), ContactEmail.id)
        )
    )
    if contact.email and contact.email.lower() not in emails:
        emails.insert(0, contact.email)
    companies = [
        LinkView(company.id, company.name, link.role)
        for link, company in await session.execute(
            select(ContactCompany, Company)
            .join(Company, Company.id == ContactCompany.company_id)
            .where(ContactCompany.contact_id == contact_id)
            .order_by(ContactCompany.id)
        )
    ]
    relations = []
    rows = await session.execute(
        select(ContactRelation, Contact)
        .join(Contact, Contact.id == ContactRelation.related_id)
        .where(ContactRelation.contact_id == contact_id)
        .order_by(ContactRelation.id)
    )
    relations += [LinkView(other.id, other.display_name, rel.kind) for rel, other in rows]
    rows = await session.execute(
        select(ContactRelation, Contact)
        .join(Contact, Contact.id == ContactRelation.contact_id)
        .where(ContactRelation.related_id == contact_id)
        .order_by(ContactRelation.id)
    )
    related_by = [LinkView(other.id, other.display_name, rel.kind) for rel, other in rows]
    identities = list(
        await session.scalars(
            select(ContactIdentity)
            .where(ContactIdentity.contact_id == contact_id)
            .order_by(ContactIdentity.id)
        )
    )
    return Profile(contact, phones, emails, companies, relations, identities, related_by)


@dataclass(frozen=True)
class ContactPage:
    contacts: list[Contact]
    total: int
    page: int
    pages: int


def contact_search(query: str, region: str = "MD") -> ColumnElement[bool] | None:
    """The contacts list's search box: name, phone, e-mail, channel address (`crm_core.merge.search_filter`)
    or the start of an IDNP; None for an empty query."""
    matches = search_filter(query, region)
    if matches is not None:
        code = idnp.compact(query)
        if code.isdigit() and len(code) >= 4:
            matches = or_(matches, Contact.idnp.startswith(code, autoescape=True))
    return matches


async def list_contacts(
    session: AsyncSession,
    visible: ColumnElement[bool],
    *,
    query: str = "",
    page: int = 1,
    region: str = "MD",
    page_size: int = PAGE_SIZE,
) -> ContactPage:
    """One page of the contacts the viewer may see, matching `query` (`contact_search`), newest first."""
    statement = select(Contact).where(visible)
    matches = contact_search(query, region)
    if matches is not None:
        statement = statement.where(matches)
    total = int(await session.scalar(select(func.count()).select_from(statement.subquery())) or 0)
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    rows = await session.scalars(
        statement.order_by(Contact.updated_at.desc(), Contact.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    return ContactPage(list(rows), total, page, pages)


async def can_see(session: AsyncSession, visible: ColumnElement[bool], contact_id: int) -> bool:
    return (await session.scalar(select(Contact.id).where(Contact.id == contact_id, visible))) is not None


# --- companies ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompanyInput:
    name: str
    fiscal_code: str | None = None
    industry: str = ""
    size: str = ""
    address: str = ""
    branch_id: int | None = None
    custom: Mapping[str, Any] | None = None  # as sent (see `ProfileInput.custom`)


def parse_company(data: Mapping[str, Any]) -> CompanyInput:
    name = " ".join(_text(data, "name", 200).split())
    if not name:
        raise Invalid(N_("This field is required."), field="name")
    code = idnp.compact(_text(data, "fiscal_code", 40)) or None
    if code is not None and not idnp.is_valid_idno(code):
        raise Invalid(N_("A fiscal code (IDNO) is 13 digits with a valid check digit."), field="fiscal_code")
    size = _text(data, "size", 20)
    if size not in COMPANY_SIZES:
        raise Invalid(N_("Choose one from the list."), field="size")
    return CompanyInput(
        name=name,
        fiscal_code=code,
        industry=_text(data, "industry", 100),
        size=size,
        address=_text(data, "address", MAX_ADDRESS),
        branch_id=_id(data.get("branch_id"), "branch_id"),
        custom=data.get("custom"),
    )


async def save_company(
    session: AsyncSession, actor: Actor, c: CompanyInput, company_id: int | None = None
) -> int:
    """Create (no `company_id`) or update a company; one fiscal code belongs to one company."""
    clash = select(Company.id).where(Company.fiscal_code == c.fiscal_code)
    if company_id is not None:
        clash = clash.where(Company.id != company_id)
    if c.fiscal_code and await session.scalar(clash) is not None:
        raise Invalid(N_("Another company has this fiscal code."), field="fiscal_code")
    values: dict[str, Any] = {
        "name": c.name,
        "fiscal_code": c.fiscal_code,
        "industry": c.industry,
        "size": c.size,
        "address": c.address,
        "branch_id": c.branch_id,
    }
    found = await session.get(Company, company_id) if company_id is not None else None
    if company_id is not None and found is None:
        raise NotFound(N_("No such company."))
    current = dict(found.custom or {}) if found is not None else None
    if c.custom is None and current is not None:
        values["custom"] = current
    else:
        defs = await custom_fields.definitions(session, "company")
        values["custom"] = custom_fields.validate(defs, c.custom, current=current, partial=True)
    if found is None:
        company = Company(**values)
        session.add(company)
        before: dict[str, Any] = {}
        action = audit.AuditAction.CREATE
    else:
        company = found
        before = {k: getattr(company, k) for k in values}
        for key, value in values.items():
            setattr(company, key, value)
        action = audit.AuditAction.UPDATE
    await session.flush()
    changes = audit.diff(before, values)
    if changes:
        await audit.record_change(
            session,
            actor,
            module="contacts",
            action=action,
            record_type="company",
            record_id=company.id,
            changes=changes,
        )
    return company.id


async def list_companies(
    session: AsyncSession, visible: ColumnElement[bool], *, query: str = "", limit: int = 200
) -> list[Company]:
    statement = select(Company).where(visible)
    words = query.strip().lower()
    if words:
        statement = statement.where(
            or_(
                func.lower(Company.name).contains(words, autoescape=True),
                Company.fiscal_code.startswith(words, autoescape=True),
            )
        )
    return list(await session.scalars(statement.order_by(Company.name, Company.id).limit(limit)))


async def company_members(session: AsyncSession, company_id: int) -> list[LinkView]:
    rows = await session.execute(
        select(ContactCompany, Contact)
        .join(Contact, Contact.id == ContactCompany.contact_id)
        .where(ContactCompany.company_id == company_id)
        .order_by(Contact.last_name, Contact.first_name)
    )
    return [LinkView(contact.id, contact.display_name, link.role) for link, contact in rows]
