"""Classifiers: the admin-editable vocabularies every form picks from — products, lead sources, loss and
junk reasons, regions (a tree: region → locality), segments, industries. Records store the `code`; the
label is shown in the reader's language. Entries are deactivated, never deleted, so old records still
read.

Functions take the caller's `AsyncSession` and never commit; changes are audited in the same
transaction. Errors are `switchboard.errors` `DomainError`s with translatable messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import defaults
from crm_core.funnel_model import MAX_CODE, MAX_LABEL, Classifier
from switchboard import audit
from switchboard.audit import Actor, AuditAction
from switchboard.errors import N_, Conflict, Invalid, NotFound

KINDS: tuple[str, ...] = defaults.KINDS
LANGUAGES = ("ro", "en", "ru")
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
MAX_DEPTH = 3  # region → locality → district of a city is as deep as a form needs
AUDITED = ("code", "label_ro", "label_en", "label_ru", "parent_id", "position", "active")


@dataclass(frozen=True)
class ClassifierView:
    id: int
    kind: str
    code: str
    label_ro: str
    label_en: str
    label_ru: str
    parent_id: int | None
    position: int
    active: bool
    depth: int = 0  # in a tree listing: 0 for a root

    def label(self, locale: str) -> str:
        """The label in `locale` (ro, en, ru), falling back to English."""
        value = {"ro": self.label_ro, "ru": self.label_ru}.get(locale[:2], self.label_en)
        return value or self.label_en

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _view(row: Classifier, depth: int = 0) -> ClassifierView:
    return ClassifierView(
        id=row.id,
        kind=row.kind,
        code=row.code,
        label_ro=row.label_ro,
        label_en=row.label_en,
        label_ru=row.label_ru,
        parent_id=row.parent_id,
        position=row.position,
        active=row.active,
        depth=depth,
    )


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise Invalid(N_("Unknown kind of list."), field="kind")
    return kind


async def list_kind(
    session: AsyncSession, kind: str, *, include_inactive: bool = False
) -> list[ClassifierView]:
    """The entries of one vocabulary as a tree flattened in reading order: each parent, then its
    children (with `depth`), siblings by position then label."""
    query = select(Classifier).where(Classifier.kind == check_kind(kind))
    if not include_inactive:
        query = query.where(Classifier.active.is_(True))
    rows = list(
        await session.scalars(query.order_by(Classifier.position, Classifier.label_en, Classifier.id))
    )
    ids = {r.id for r in rows}
    children: dict[int | None, list[Classifier]] = {}
    for row in rows:
        # an entry whose parent is hidden (inactive) shows as a root rather than vanishing
        children.setdefault(row.parent_id if row.parent_id in ids else None, []).append(row)
    out: list[ClassifierView] = []

    def walk(parent: int | None, depth: int) -> None:
        for row in children.get(parent, []):
            out.append(_view(row, depth))
            walk(row.id, depth + 1)

    walk(None, 0)
    return out


async def get(session: AsyncSession, classifier_id: int) -> ClassifierView | None:
    row = await session.get(Classifier, classifier_id)
    return _view(row) if row is not None else None


async def labels(session: AsyncSession, kind: str, locale: str) -> dict[str, str]:
    """code → label in `locale` for every entry of `kind`, inactive ones too (old records show them)."""
    rows = await list_kind(session, kind, include_inactive=True)
    return {r.code: r.label(locale) for r in rows}


async def is_active_code(session: AsyncSession, kind: str, code: str) -> bool:
    found = await session.scalar(
        select(Classifier.id).where(
            Classifier.kind == kind, Classifier.code == code, Classifier.active.is_(True)
        )
    )
    return found is not None


# --- validation -------------------------------------------------------------------------------------------


def _code(value: str) -> str:
    value = str(value).strip().lower()
    if not value:
        raise Invalid(N_("Give the entry a code."), field="code")
    if len(value) > MAX_CODE:
        raise Invalid(N_("At most %(n)s characters."), field="code", n=MAX_CODE)
    if not _CODE.match(value):
        raise Invalid(N_("Use lowercase latin letters, digits, _ and - in the code."), field="code")
    return value


def _labels(ro: str, en: str, ru: str) -> dict[str, str]:
    values = {"label_ro": " ".join(str(ro).split()), "label_en": " ".join(str(en).split())}
    values["label_ru"] = " ".join(str(ru).split())
    if not values["label_en"]:
        raise Invalid(N_("Give the entry an English label."), field="label_en")
    for name, value in values.items():
        if len(value) > MAX_LABEL:
            raise Invalid(N_("At most %(n)s characters."), field=name, n=MAX_LABEL)
        if not value:
            values[name] = values["label_en"]  # shown in English until someone translates it
    return values


def _position(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise Invalid(N_("Enter a number from %(min)s to %(max)s."), field="position", min=0, max=1_000_000)
    return value


async def _parent(session: AsyncSession, kind: str, parent_id: int | None, self_id: int | None) -> int | None:
    """The parent must be of the same list, and not the entry itself nor one of its descendants."""
    if parent_id is None:
        return None
    depth = 1
    current: int | None = parent_id
    while current is not None:
        if current == self_id:
            raise Invalid(N_("An entry cannot be placed under itself."), field="parent_id")
        row = await session.get(Classifier, current)
        if row is None or row.kind != kind:
            raise Invalid(N_("No such parent entry in this list."), field="parent_id")
        current = row.parent_id
        depth += 1
        if depth > MAX_DEPTH:
            raise Invalid(N_("Lists may be at most %(n)s levels deep."), field="parent_id", n=MAX_DEPTH)
    return parent_id


# --- changing ---------------------------------------------------------------------------------------------


async def create(
    session: AsyncSession,
    actor: Actor,
    *,
    kind: str,
    code: str,
    label_en: str,
    label_ro: str = "",
    label_ru: str = "",
    parent_id: int | None = None,
    position: int | None = None,
) -> ClassifierView:
    """A new active entry; its code is unique within its list (409 otherwise). Without a position it
    goes last."""
    kind = check_kind(kind)
    values: dict[str, Any] = {"kind": kind, "code": _code(code), **_labels(label_ro, label_en, label_ru)}
    values["parent_id"] = await _parent(session, kind, parent_id, None)
    position = _position(position)
    if position is None:
        last = await session.scalar(select(func.max(Classifier.position)).where(Classifier.kind == kind))
        position = (last or 0) + 10
    values["position"] = position
    exists = await session.scalar(
        select(Classifier.id).where(Classifier.kind == kind, Classifier.code == values["code"])
    )
    if exists is not None:
        raise Conflict(
            N_("This list already has an entry with the code %(code)s."), field="code", code=values["code"]
        )
    row = Classifier(**values, active=True)
    session.add(row)
    await session.flush()
    view = _view(row)
    await audit.record_change(
        session,
        actor,
        module="classifiers",
        action=AuditAction.CREATE,
        record_type=f"classifier.{kind}",
        record_id=row.id,
        changes=audit.diff({}, _snapshot(view)),
    )
    return view


def _snapshot(view: ClassifierView) -> dict[str, Any]:
    return {name: getattr(view, name) for name in AUDITED}


async def update(
    session: AsyncSession,
    actor: Actor,
    classifier_id: int,
    *,
    label_en: str,
    label_ro: str = "",
    label_ru: str = "",
    parent_id: int | None = None,
    position: int | None = None,
    active: bool = True,
) -> ClassifierView:
    """Relabel, move or (de)activate an entry. The code never changes: records point at it."""
    row = await session.scalar(select(Classifier).where(Classifier.id == classifier_id).with_for_update())
    if row is None:
        raise NotFound(N_("No such entry."))
    before = _snapshot(_view(row))
    values: dict[str, Any] = _labels(label_ro, label_en, label_ru)
    values["parent_id"] = await _parent(session, row.kind, parent_id, row.id)
    values["position"] = _position(position) if position is not None else row.position
    values["active"] = bool(active)
    for name, value in values.items():
        setattr(row, name, value)
    await session.flush()
    view = _view(row)
    changes = audit.diff(before, _snapshot(view))
    if changes:
        await audit.record_change(
            session,
            actor,
            module="classifiers",
            action=AuditAction.UPDATE,
            record_type=f"classifier.{row.kind}",
            record_id=row.id,
            changes=changes,
        )
    return view


async def set_active(session: AsyncSession, actor: Actor, classifier_id: int, active: bool) -> ClassifierView:
    """Deactivate (hidden from forms, still shown on old records) or reactivate an entry."""
    row = await session.get(Classifier, classifier_id)
    if row is None:
        raise NotFound(N_("No such entry."))
    return await update(
        session,
        actor,
        classifier_id,
        label_en=row.label_en,
        label_ro=row.label_ro,
        label_ru=row.label_ru,
        parent_id=row.parent_id,
        position=row.position,
        active=active,
    )


async def seed_defaults(session: AsyncSession) -> int:
    """Add the day-one vocabularies (`crm_core.defaults`) that are missing; returns how many were added.
    Migration 0014 seeds a new database; this restores them after someone emptied the tables."""
    added = 0
    for kind, entries in defaults.CLASSIFIERS.items():
        existing = {
            code: cid
            for code, cid in await session.execute(
                select(Classifier.code, Classifier.id).where(Classifier.kind == kind)
            )
        }
        for position, (code, (ro, en, ru), children) in enumerate(entries):
            parent = existing.get(code)
            if parent is None:
                row = Classifier(
                    kind=kind, code=code, label_ro=ro, label_en=en, label_ru=ru, position=position * 10
                )
                session.add(row)
                await session.flush()
                parent, added = row.id, added + 1
            for child_position, (child_code, (cro, cen, cru)) in enumerate(children):
                if child_code not in existing:
                    session.add(
                        Classifier(
                            kind=kind,
                            code=child_code,
                            label_ro=cro,
                            label_en=cen,
                            label_ru=cru,
                            parent_id=parent,
                            position=child_position * 10,
                        )
                    )
                    added += 1
    await session.flush()
    return added
