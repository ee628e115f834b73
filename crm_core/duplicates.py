"""Is this person already here? The check every write of a contact makes — create, edit, import, ingest.

Exact: the same E.164 phone (any of a contact's phones), e-mail, IDNP or channel identity. Likely: names
that read the same once diacritics and order are set aside (rapidfuzz `token_sort_ratio` ≥ `LIKELY_SCORE`:
"Ștefan Rusu" = "Rusu Stefan") AND the same birth date or the same last six phone digits — a name alone is
too common in Moldova to mean anything.

Forms and the API stop and ask before saving a duplicate; ingest never stops (a customer's message must land):
it links by exact phone as before and records likely pairs in `duplicate_candidates` for the duplicates page.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from crm_core.contacts_model import PHONE_TAIL, ContactEmail, ContactPhone, DuplicateCandidate
from crm_core.models import Contact, ContactIdentity
from switchboard.db import cast_table, insert_ignoring_duplicates, utcnow

LIKELY_SCORE = 88.0
MAX_LIKELY_CANDIDATES = 200  # contacts sharing a birth date or phone tail, compared by name
EXACT = "exact"
LIKELY = "likely"


def fold_name(*parts: str | None) -> str:
    """A name for comparing: diacritics dropped (ș→s, ţ→t, ă→a), case folded, spaces collapsed."""
    text = " ".join(p for p in parts if p)
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def phone_tail(e164: str) -> str:
    return e164[-PHONE_TAIL:]


@dataclass(frozen=True)
class Candidate:
    """What a contact about to be written would hold; `exclude_id` is the contact being edited."""

    first_name: str = ""
    last_name: str = ""
    phones: Sequence[str] = ()  # E.164
    emails: Sequence[str] = ()
    idnp: str | None = None
    birth_date: dt.date | None = None
    identities: Sequence[tuple[str, str, str]] = ()  # (channel, account_id, external_id)
    exclude_id: int | None = None


@dataclass
class DuplicateMatch:
    contact_id: int
    name: str
    kind: str  # EXACT or LIKELY
    reasons: list[str] = field(
        default_factory=list
    )  # phone, email, idnp, identity, name+birth_date, name+phone_tail
    score: float = 100.0
    phone: str | None = None
    email: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "contact_id": self.contact_id,
            "name": self.name,
            "kind": self.kind,
            "reasons": self.reasons,
            "score": round(self.score, 1),
            "phone": self.phone,
            "email": self.email,
        }


def _exclude(column: object, exclude_id: int | None) -> list[object]:
    return [] if exclude_id is None else [column != exclude_id]


async def _exact_ids(session: AsyncSession, c: Candidate) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}

    def add(ids: Iterable[int], reason: str) -> None:
        for contact_id in ids:
            if contact_id != c.exclude_id and reason not in found.setdefault(contact_id, []):
                found[contact_id].append(reason)

    phones = sorted(set(c.phones))
    if phones:
        add(
            await session.scalars(select(ContactPhone.contact_id).where(ContactPhone.e164.in_(phones))),
            "phone",
        )
        add(await session.scalars(select(Contact.id).where(Contact.phone.in_(phones))), "phone")
    emails = sorted({e.strip().lower() for e in c.emails if e.strip()})
    if emails:  # contact_emails holds every address, the primary one included, lower-cased
        add(
            await session.scalars(select(ContactEmail.contact_id).where(ContactEmail.email.in_(emails))),
            "email",
        )
    if c.idnp:
        add(await session.scalars(select(Contact.id).where(Contact.idnp == c.idnp)), "idnp")
    if c.identities:
        keys = tuple_(ContactIdentity.channel, ContactIdentity.account_id, ContactIdentity.external_id)
        add(
            await session.scalars(select(ContactIdentity.contact_id).where(keys.in_(list(c.identities)))),
            "identity",
        )
    return found


async def _likely(session: AsyncSession, c: Candidate) -> dict[int, tuple[list[str], float]]:
    name = fold_name(c.first_name, c.last_name)
    if not name:
        return {}
    clauses = []
    if c.birth_date is not None:
        clauses.append(Contact.birth_date == c.birth_date)
    tails = sorted({phone_tail(p) for p in c.phones if len(p) > PHONE_TAIL})
    if tails:
        clauses.append(
            Contact.id.in_(
                select(ContactPhone.contact_id).where(ContactPhone.tail.in_(tails)).scalar_subquery()
            )
        )
    if not clauses:
        return {}
    rows = await session.scalars(
        select(Contact)
        .where(or_(*clauses), *_exclude(Contact.id, c.exclude_id))  # type: ignore[arg-type]
        .order_by(Contact.id.desc())
        .limit(MAX_LIKELY_CANDIDATES)
    )
    contacts = list(rows)
    if not contacts:
        return {}
    their_tails: dict[int, set[str]] = {}
    if tails:
        for contact_id, tail in await session.execute(
            select(ContactPhone.contact_id, ContactPhone.tail).where(
                ContactPhone.contact_id.in_([x.id for x in contacts])
            )
        ):
            their_tails.setdefault(contact_id, set()).add(tail)
    found: dict[int, tuple[list[str], float]] = {}
    for other in contacts:
        score = fuzz.token_sort_ratio(name, fold_name(other.first_name, other.last_name))
        if score < LIKELY_SCORE:
            continue
        reasons = []
        if c.birth_date is not None and other.birth_date == c.birth_date:
            reasons.append("name+birth_date")
        if their_tails.get(other.id, set()) & set(tails):
            reasons.append("name+phone_tail")
        if reasons:
            found[other.id] = (reasons, float(score))
    return found


def _matches(
    exact: Mapping[int, list[str]],
    likely: Mapping[int, tuple[list[str], float]],
    contacts: Mapping[int, Contact],
) -> list[DuplicateMatch]:
    """One candidate's matches from its exact and likely finds: exact ones first, then by score."""
    matches = []
    for contact_id in set(exact) | set(likely):
        contact = contacts.get(contact_id)
        if contact is None:
            continue
        reasons = list(exact.get(contact_id, []))
        score = 100.0
        if contact_id in likely:
            more, score = likely[contact_id]
            reasons += more
        kind = EXACT if contact_id in exact else LIKELY
        matches.append(
            DuplicateMatch(
                contact_id, contact.display_name, kind, reasons, score, contact.phone, contact.email
            )
        )
    matches.sort(key=lambda m: (m.kind != EXACT, -m.score, m.contact_id))
    return matches


async def find_duplicates(session: AsyncSession, candidate: Candidate) -> list[DuplicateMatch]:
    """Contacts that are (exact) or look like (likely) the candidate: exact ones first, then by score."""
    [matches] = await find_duplicates_many(session, [candidate])
    return matches


async def find_duplicates_many(
    session: AsyncSession, candidates: Sequence[Candidate]
) -> list[list[DuplicateMatch]]:
    """`find_duplicates` for many candidates at once (an import's batch): a few queries per batch instead
    of several per candidate."""
    if len(candidates) == 1:  # the form's check: the single-candidate queries, tuned for it (bench/search)
        exact, likely = [await _exact_ids(session, candidates[0])], [await _likely(session, candidates[0])]
    else:
        exact = await _exact_many(session, candidates)
        likely = await _likely_many(session, candidates)
    ids = {i for found in exact for i in found} | {i for found in likely for i in found}
    contacts: dict[int, Contact] = {}
    for chunk in _chunks(sorted(ids)):
        contacts.update(
            {x.id: x for x in await session.scalars(select(Contact).where(Contact.id.in_(chunk)))}
        )
    return [_matches(e, lk, contacts) for e, lk in zip(exact, likely, strict=True)]


_CHUNK = 1000  # values in one IN (…): far below every engine's parameter limit


def _chunks(values: Sequence[object]) -> Iterable[list[object]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


async def _pairs(
    session: AsyncSession,
    key: InstrumentedAttribute[Any],
    owner: InstrumentedAttribute[int],
    values: set[str],
) -> dict[str, set[int]]:
    """value → ids of the contacts holding it, for `key` (a column) IN `values`."""
    found: dict[str, set[int]] = {}
    for chunk in _chunks(sorted(values)):
        rows = await session.execute(select(key, owner).where(key.in_(chunk)))
        for value, contact_id in rows:
            found.setdefault(value, set()).add(contact_id)
    return found


async def _exact_many(session: AsyncSession, candidates: Sequence[Candidate]) -> list[dict[int, list[str]]]:
    phones = {p for c in candidates for p in c.phones}
    emails = {e.strip().lower() for c in candidates for e in c.emails if e.strip()}
    codes = {c.idnp for c in candidates if c.idnp}
    by_phone = await _pairs(session, ContactPhone.e164, ContactPhone.contact_id, phones)
    for value, ids in (await _pairs(session, Contact.phone, Contact.id, phones)).items():
        by_phone.setdefault(value, set()).update(ids)
    by_email = await _pairs(session, ContactEmail.email, ContactEmail.contact_id, emails)
    by_idnp = await _pairs(session, Contact.idnp, Contact.id, codes)
    out = []
    for c in candidates:
        found: dict[int, list[str]] = {}
        lookups = [
            ("phone", [by_phone.get(p, set()) for p in sorted(set(c.phones))]),
            ("email", [by_email.get(e.strip().lower(), set()) for e in c.emails if e.strip()]),
            ("idnp", [by_idnp.get(c.idnp, set())] if c.idnp else []),
        ]
        for reason, groups in lookups:
            for contact_id in sorted({i for group in groups for i in group}):
                if contact_id != c.exclude_id and reason not in found.setdefault(contact_id, []):
                    found[contact_id].append(reason)
        if c.identities:  # rare on a batch path: asked one by one, as `find_duplicates` does
            keys = tuple_(ContactIdentity.channel, ContactIdentity.account_id, ContactIdentity.external_id)
            for contact_id in await session.scalars(
                select(ContactIdentity.contact_id).where(keys.in_(list(c.identities)))
            ):
                if contact_id != c.exclude_id and "identity" not in found.setdefault(contact_id, []):
                    found[contact_id].append("identity")
        out.append({k: v for k, v in found.items() if v})
    return out


async def _likely_many(
    session: AsyncSession, candidates: Sequence[Candidate]
) -> list[dict[int, tuple[list[str], float]]]:
    dates = {
        c.birth_date for c in candidates if c.birth_date is not None and fold_name(c.first_name, c.last_name)
    }
    tails = {
        phone_tail(p)
        for c in candidates
        if fold_name(c.first_name, c.last_name)
        for p in c.phones
        if len(p) > PHONE_TAIL
    }
    people: dict[int, tuple[str, dt.date | None]] = {}  # id → (folded name, birth date)
    by_date: dict[dt.date, set[int]] = {}
    for chunk in _chunks(sorted(dates)):
        rows = await session.execute(
            select(Contact.id, Contact.first_name, Contact.last_name, Contact.birth_date).where(
                Contact.birth_date.in_(chunk)
            )
        )
        for contact_id, first, last, birth in rows:
            people[contact_id] = (fold_name(first, last), birth)
            if birth is not None:
                by_date.setdefault(birth, set()).add(contact_id)
    by_tail: dict[str, set[int]] = {}
    for chunk in _chunks(sorted(tails)):
        tail_rows = await session.execute(
            select(ContactPhone.tail, ContactPhone.contact_id).where(ContactPhone.tail.in_(chunk))
        )
        for tail, contact_id in tail_rows:
            by_tail.setdefault(tail, set()).add(contact_id)
    missing = sorted({i for ids in by_tail.values() for i in ids} - set(people))
    for chunk in _chunks(missing):
        rows = await session.execute(
            select(Contact.id, Contact.first_name, Contact.last_name, Contact.birth_date).where(
                Contact.id.in_(chunk)
            )
        )
        for contact_id, first, last, birth in rows:
            people[contact_id] = (fold_name(first, last), birth)
    tails_of: dict[int, set[str]] = {}
    for tail, ids in by_tail.items():
        for contact_id in ids:
            tails_of.setdefault(contact_id, set()).add(tail)
    out: list[dict[int, tuple[list[str], float]]] = []
    for c in candidates:
        name = fold_name(c.first_name, c.last_name)
        mine = {phone_tail(p) for p in c.phones if len(p) > PHONE_TAIL}
        pool: set[int] = set()
        if name and c.birth_date is not None:
            pool |= by_date.get(c.birth_date, set())
        if name:
            for tail in mine:
                pool |= by_tail.get(tail, set())
        if c.exclude_id is not None:
            pool.discard(c.exclude_id)
        found: dict[int, tuple[list[str], float]] = {}
        for other in sorted(pool, reverse=True)[:MAX_LIKELY_CANDIDATES]:
            other_name, other_birth = people.get(other, ("", None))
            score = fuzz.token_sort_ratio(name, other_name)
            if score < LIKELY_SCORE:
                continue
            reasons = []
            if c.birth_date is not None and other_birth == c.birth_date:
                reasons.append("name+birth_date")
            if tails_of.get(other, set()) & mine:
                reasons.append("name+phone_tail")
            if reasons:
                found[other] = (reasons, float(score))
        out.append(found)
    return out


_CANDIDATES = cast_table(DuplicateCandidate)


async def record_candidates(session: AsyncSession, contact_id: int, matches: Iterable[DuplicateMatch]) -> int:
    """Remember pairs for the duplicates page (once per pair, whichever way round); returns how many."""
    rows = [
        {
            "contact_id": min(contact_id, m.contact_id),
            "other_id": max(contact_id, m.contact_id),
            "reason": ",".join(m.reasons)[:40],
            "score": m.score,
            "dismissed": False,
            "created_at": utcnow(),
        }
        for m in matches
        if m.contact_id != contact_id
    ]
    for row in rows:
        await session.execute(insert_ignoring_duplicates(session, _CANDIDATES), row)
    return len(rows)


@dataclass(frozen=True)
class DuplicatePair:
    id: int
    first: Contact
    second: Contact
    reason: str
    score: float
    created_at: dt.datetime


async def open_pairs(
    session: AsyncSession, *, visible: object | None = None, limit: int = 50, offset: int = 0
) -> list[DuplicatePair]:
    """Pairs not dismissed, newest first; `visible` is a clause on `Contact` both contacts must meet."""
    statement = (
        select(DuplicateCandidate)
        .where(DuplicateCandidate.dismissed.is_(False))
        .order_by(DuplicateCandidate.created_at.desc(), DuplicateCandidate.id.desc())
    )
    if visible is not None:
        seen = select(Contact.id).where(visible)  # type: ignore[arg-type]
        statement = statement.where(
            and_(DuplicateCandidate.contact_id.in_(seen), DuplicateCandidate.other_id.in_(seen))
        )
    pairs = list(await session.scalars(statement.limit(limit).offset(offset)))
    ids = {p.contact_id for p in pairs} | {p.other_id for p in pairs}
    contacts = (
        {x.id: x for x in await session.scalars(select(Contact).where(Contact.id.in_(ids)))} if ids else {}
    )
    return [
        DuplicatePair(p.id, contacts[p.contact_id], contacts[p.other_id], p.reason, p.score, p.created_at)
        for p in pairs
        if p.contact_id in contacts and p.other_id in contacts
    ]


async def dismiss_pair(session: AsyncSession, pair_id: int) -> bool:
    """Mark a pair "not the same person": it leaves the duplicates page and is never recorded again."""
    pair = await session.get(DuplicateCandidate, pair_id)
    if pair is None:
        return False
    pair.dismissed = True
    await session.flush()
    return True
