# ruff: noqa: RUF001 - Russian header aliases are Cyrillic on purpose
"""What a spreadsheet column can be imported into, and the first guess of which column is which: the
target fields of a contacts or leads import, with the header names people use for them in English,
Romanian and Russian ("Telefon", "Телефон", "Nume", "Prenume", "Фамилия" …), and the check of a mapping the
user chose (each column one target or none; a field at most once, except phones, e-mails and tags)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from crm_core.custom_fields import FieldDef
from crm_core.duplicates import fold_name
from crm_core.profile import CONSENT_CHANNELS
from switchboard.errors import N_, Invalid

CONTACTS = "contacts"
LEADS = "leads"
KINDS = (CONTACTS, LEADS)
IGNORE = ""
REPEATABLE = frozenset({"phone", "email", "tags"})
NAME_TARGETS = frozenset({"first_name", "last_name", "full_name", "phone", "email"})


@dataclass(frozen=True)
class Target:
    key: str  # "phone", "consent.sms", "custom.income", "lead.product", "lead.custom.channel_rank"
    label: str  # a msgid (N_) for built-in fields, the admin's label for custom ones
    group: str  # contact, consent, custom, lead, lead_custom
    translate: bool = True

    @property
    def repeatable(self) -> bool:
        return self.key in REPEATABLE


_CONTACT: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "first_name",
        N_("First name"),
        ("first name", "firstname", "given name", "prenume", "prenumele", "имя"),
    ),
    (
        "last_name",
        N_("Last name"),
        ("last name", "lastname", "surname", "family name", "nume", "numele", "nume de familie", "фамилия"),
    ),
    (
        "full_name",
        N_("Full name (split into first and last)"),
        (
            "name",
            "full name",
            "contact name",
            "nume complet",
            "nume si prenume",
            "nume prenume",
            "numele si prenumele",
            "фио",
            "ф и о",
            "полное имя",
            "имя и фамилия",
        ),
    ),
    (
        "phone",
        N_("Phone"),
        (
            "phone",
            "phone number",
            "telephone",
            "mobile",
            "mobile phone",
            "cell",
            "tel",
            "telefon",
            "telefonul",
            "nr telefon",
            "numar de telefon",
            "telefon mobil",
            "mobil",
            "телефон",
            "тел",
            "мобильный",
            "мобильный телефон",
            "номер телефона",
        ),
    ),
    (
        "email",
        N_("E-mail"),
        (
            "email",
            "e mail",
            "mail",
            "email address",
            "e mail address",
            "adresa de email",
            "adresa email",
            "почта",
            "электронная почта",
            "эл почта",
            "емейл",
        ),
    ),
    ("idnp", N_("IDNP"), ("idnp", "cod personal", "personal code", "codul personal", "идноп", "личный код")),
    (
        "birth_date",
        N_("Birth date"),
        (
            "birth date",
            "date of birth",
            "birthdate",
            "dob",
            "birthday",
            "data nasterii",
            "data de nastere",
            "дата рождения",
        ),
    ),
    ("address", N_("Address"), ("address", "adresa", "domiciliu", "адрес")),
    ("branch", N_("Branch"), ("branch", "office", "filiala", "oficiu", "sucursala", "филиал", "отделение")),
    (
        "owner",
        N_("Responsible expert (username or e-mail)"),
        (
            "responsible",
            "responsible expert",
            "owner",
            "expert",
            "manager",
            "responsabil",
            "expert responsabil",
            "ответственный",
            "менеджер",
            "эксперт",
        ),
    ),
    ("language", N_("Language"), ("language", "lang", "limba", "язык")),
    ("tags", N_("Segment tags"), ("tags", "tag", "segment", "segments", "etichete", "теги", "сегмент")),
    (
        "company",
        N_("Company name"),
        (
            "company",
            "company name",
            "organization",
            "companie",
            "compania",
            "firma",
            "компания",
            "организация",
        ),
    ),
)

_LEAD: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "lead.source_channel",
        N_("Lead source"),
        ("source", "lead source", "channel", "sursa", "canal", "источник", "канал"),
    ),
    ("lead.campaign", N_("Campaign"), ("campaign", "campanie", "campania", "кампания")),
    ("lead.utm_source", N_("UTM source"), ("utm source",)),
    ("lead.utm_medium", N_("UTM medium"), ("utm medium",)),
    ("lead.utm_campaign", N_("UTM campaign"), ("utm campaign",)),
    ("lead.utm_content", N_("UTM content"), ("utm content",)),
    ("lead.utm_term", N_("UTM term"), ("utm term",)),
    ("lead.referrer", N_("Referrer"), ("referrer", "referer")),
    ("lead.page_url", N_("Landing page"), ("landing page", "page url", "landing", "pagina")),
    ("lead.product", N_("Product"), ("product", "produs", "продукт")),
    (
        "lead.amount",
        N_("Requested amount"),
        ("amount", "requested amount", "suma", "suma solicitata", "сумма", "сумма кредита"),
    ),
    ("lead.term_months", N_("Term (months)"), ("term", "term months", "termen", "termen luni", "срок")),
    ("lead.status", N_("Lead status"), ("status", "lead status", "stare", "statut", "статус")),
)

_CONSENT_WORDS = ("consent", "acord", "согласие")


def fold_header(text: str) -> str:
    """A header for comparing: diacritics and case dropped, punctuation as spaces."""
    return " ".join(re.sub(r"[^\w]+", " ", fold_name(text).replace("_", " ")).split())


def targets(
    kind: str, contact_fields: Sequence[FieldDef], lead_fields: Sequence[FieldDef] = ()
) -> list[Target]:
    """Every field a column of a `kind` import may go into, in the order the mapping step lists them."""
    check_kind(kind)
    out = [Target(key, label, "contact") for key, label, _ in _CONTACT]
    out += [Target(f"consent.{channel}", channel, "consent", translate=False) for channel in CONSENT_CHANNELS]
    out += [Target(f"custom.{d.key}", d.label, "custom", translate=False) for d in contact_fields if d.active]
    if kind == LEADS:
        out += [Target(key, label, "lead") for key, label, _ in _LEAD]
        out += [
            Target(f"lead.custom.{d.key}", d.label, "lead_custom", translate=False)
            for d in lead_fields
            if d.active
        ]
    return out


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise Invalid(N_("Choose contacts or leads."), field="kind")
    return kind


def _aliases(
    kind: str, contact_fields: Sequence[FieldDef], lead_fields: Sequence[FieldDef]
) -> dict[str, str]:
    """folded header → target key; custom fields answer to their key and their label, before the built-in
    names (an admin who called a field "Segment" means that field)."""
    found: dict[str, str] = {}
    groups = [("custom.", contact_fields)] + ([("lead.custom.", lead_fields)] if kind == LEADS else [])
    for prefix, defs in groups:
        for d in defs:
            if d.active:
                for word in (d.key, d.label):
                    found.setdefault(fold_header(word), prefix + d.key)
    specs = _CONTACT + (_LEAD if kind == LEADS else ())
    for key, _label, words in specs:
        for word in (key.removeprefix("lead."), *words):
            found.setdefault(fold_header(word), key)
    for channel in CONSENT_CHANNELS:
        for word in _CONSENT_WORDS:
            found.setdefault(fold_header(f"{word} {channel}"), f"consent.{channel}")
            found.setdefault(fold_header(f"{channel} {word}"), f"consent.{channel}")
    return found


def suggest(
    kind: str,
    header: Sequence[str],
    contact_fields: Sequence[FieldDef] = (),
    lead_fields: Sequence[FieldDef] = (),
) -> list[str]:
    """A target key (or IGNORE) per column, matched by header name; a field that may appear once goes to
    the first column that names it."""
    aliases = _aliases(check_kind(kind), contact_fields, lead_fields)
    used: set[str] = set()
    out = []
    for name in header:
        key = aliases.get(fold_header(name), IGNORE)
        if key and key not in REPEATABLE and key in used:
            key = IGNORE
        used.add(key)
        out.append(key)
    return out


def check_mapping(
    kind: str, mapping: Sequence[object], header: Sequence[str], allowed: Sequence[Target]
) -> list[str]:
    """The user's mapping (a target key or "" per column), refused with the reason when it cannot work."""
    if not isinstance(mapping, list | tuple) or len(mapping) != len(header):
        raise Invalid(N_("Give one target (or none) for each column."), field="mapping")
    keys = {t.key for t in allowed}
    seen: set[str] = set()
    out: list[str] = []
    for column, target in zip(header, mapping, strict=True):
        if target is None:
            target = IGNORE
        if not isinstance(target, str):
            raise Invalid(N_("Give one target (or none) for each column."), field="mapping")
        if target and target not in keys:
            raise Invalid(N_("Unknown field for column %(column)s."), field="mapping", column=column[:80])
        if target and target not in REPEATABLE:
            if target in seen:
                raise Invalid(
                    N_("Two columns go into the same field (%(column)s)."),
                    field="mapping",
                    column=column[:80],
                )
            seen.add(target)
        out.append(target)
    if not seen & NAME_TARGETS and not set(out) & REPEATABLE - {"tags"}:
        raise Invalid(N_("Map at least a name, a phone or an e-mail column."), field="mapping")
    check_kind(kind)
    return out
