"""Scripts and their versions: save a draft, publish it (validated; the version is frozen from then on),
archive. A script has at most one draft and at most one published version at a time; editing a script
whose last version is published starts draft n+1 from it. Every change is audited (module "scripts").

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scripts_engine.model import ScriptDraft
from scripts_engine.ports import Catalog
from scripts_engine.tables import ScriptRow, VersionRow
from scripts_engine.validation import Problem, validate
from switchboard import audit
from switchboard.audit import Actor, AuditAction
from switchboard.db import utcnow
from switchboard.errors import N_, Conflict, Invalid, NotFound

MODULE = "scripts"


class VersionState(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class ScriptProblems(Invalid):
    """Publishing refused: the script has problems (`problems`, for the editor to mark)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(
            N_("The script has %(n)s problems to fix before it can be published."), n=len(problems)
        )
        self.problems = list(problems)


@dataclass(frozen=True)
class VersionView:
    id: int
    script_id: int
    number: int
    state: VersionState
    draft: ScriptDraft
    created_at: dt.datetime
    published_at: dt.datetime | None

    @property
    def key(self) -> str:
        return self.draft.key

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "script_id": self.script_id,
            "number": self.number,
            "state": self.state.value,
            "created_at": self.created_at.isoformat(),
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "script": self.draft.as_data(),
        }

    @property
    def name(self) -> str:
        return self.draft.name

    @property
    def info(self) -> VersionInfo:
        """The version without its graph (what lists show)."""
        return VersionInfo(self.id, self.number, self.state, self.created_at, self.published_at)


@dataclass(frozen=True)
class VersionInfo:
    id: int
    number: int
    state: VersionState
    created_at: dt.datetime
    published_at: dt.datetime | None


@dataclass(frozen=True)
class ScriptSummary:
    id: int
    key: str
    name: str
    versions: list[VersionInfo]  # newest first

    @property
    def published(self) -> VersionInfo | None:
        return next((v for v in self.versions if v.state is VersionState.PUBLISHED), None)

    @property
    def draft(self) -> VersionInfo | None:
        return next((v for v in self.versions if v.state is VersionState.DRAFT), None)


def _view(row: VersionRow) -> VersionView:
    return VersionView(
        id=row.id,
        script_id=row.script_id,
        number=row.number,
        state=VersionState(row.state),
        draft=ScriptDraft.from_data(row.graph),
        created_at=row.created_at,
        published_at=row.published_at,
    )


async def get_version(session: AsyncSession, version_id: int) -> VersionView:
    row = await session.get(VersionRow, version_id)
    if row is None:
        raise NotFound(N_("No such script version."))
    return _view(row)


async def list_scripts(session: AsyncSession) -> list[ScriptSummary]:
    scripts = list(await session.scalars(select(ScriptRow).order_by(ScriptRow.name, ScriptRow.id)))
    versions: dict[int, list[VersionInfo]] = {s.id: [] for s in scripts}
    rows = await session.execute(
        select(
            VersionRow.script_id,
            VersionRow.id,
            VersionRow.number,
            VersionRow.state,
            VersionRow.created_at,
            VersionRow.published_at,
        ).order_by(VersionRow.script_id, VersionRow.number.desc())
    )
    for script_id, version_id, number, state, created_at, published_at in rows:
        versions[script_id].append(
            VersionInfo(version_id, number, VersionState(state), created_at, published_at)
        )
    return [ScriptSummary(s.id, s.key, s.name, versions[s.id]) for s in scripts]


async def published_keys(session: AsyncSession) -> dict[str, bool]:
    """Every script's key → whether one of its versions is published (hand-overs are checked on it)."""
    published = (
        select(VersionRow.id)
        .where(VersionRow.script_id == ScriptRow.id, VersionRow.state == VersionState.PUBLISHED.value)
        .exists()
    )
    rows = await session.execute(select(ScriptRow.key, published))
    return {key: bool(flag) for key, flag in rows}


async def published_version(session: AsyncSession, key: str) -> VersionRow | None:
    return await session.scalar(
        select(VersionRow)
        .join(ScriptRow, ScriptRow.id == VersionRow.script_id)
        .where(ScriptRow.key == key, VersionRow.state == VersionState.PUBLISHED.value)
    )


async def _locked_script(session: AsyncSession, script_id: int) -> ScriptRow:
    """The script row, held (PostgreSQL) so two publishes or two saves of one script queue."""
    row = await session.scalar(
        select(ScriptRow)
        .where(ScriptRow.id == script_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFound(N_("No such script."))
    return row


async def _latest(session: AsyncSession, script_id: int) -> VersionRow | None:
    return await session.scalar(
        select(VersionRow)
        .where(VersionRow.script_id == script_id)
        .order_by(VersionRow.number.desc())
        .limit(1)
    )


async def save_draft(session: AsyncSession, actor: Actor, draft: ScriptDraft) -> VersionView:
    """Store `draft` as the script's (found by key) draft: the open draft is replaced, otherwise a new
    version number n+1 is made (a new script starts at 1). Published versions are never touched."""
    script_id = await session.scalar(select(ScriptRow.id).where(ScriptRow.key == draft.key))
    data = draft.as_data()
    if script_id is None:
        script = ScriptRow(key=draft.key, name=draft.name)
        session.add(script)
        await session.flush()
        latest = None
        action = AuditAction.CREATE
    else:
        script = await _locked_script(session, script_id)
        latest = await _latest(session, script.id)
        script.name = draft.name
        action = AuditAction.UPDATE
    if latest is not None and latest.state == VersionState.DRAFT.value:
        latest.graph = data
        latest.updated_at = utcnow()
        row = latest
    else:
        row = VersionRow(
            script_id=script.id,
            number=(latest.number + 1) if latest is not None else 1,
            state=VersionState.DRAFT.value,
            graph=data,
            created_by=actor.user_id,
        )
        session.add(row)
    await session.flush()
    await audit.record_change(
        session,
        actor,
        module=MODULE,
        action=action,
        record_type="script_version",
        record_id=row.id,
        changes={"state": [None, VersionState.DRAFT.value]} if action is AuditAction.CREATE else None,
        detail=f"{draft.key} v{row.number} draft saved ({len(draft.steps)} steps)",
    )
    return _view(row)


async def new_draft(session: AsyncSession, actor: Actor, script_id: int) -> VersionView:
    """The script's draft to edit: the open one, or a copy of the latest version as number n+1."""
    await _locked_script(session, script_id)
    latest = await _latest(session, script_id)
    if latest is None:
        raise NotFound(N_("No such script."))
    if latest.state == VersionState.DRAFT.value:
        return _view(latest)
    return await save_draft(session, actor, ScriptDraft.from_data(latest.graph))


async def check(session: AsyncSession, draft: ScriptDraft, catalog: Catalog) -> list[Problem]:
    return validate(draft, catalog, await published_keys(session))


async def publish(session: AsyncSession, actor: Actor, version_id: int, catalog: Catalog) -> VersionView:
    """Freeze a draft as the script's published version (the one published before is archived; its runs
    go on with it). `ScriptProblems` when validation finds anything."""
    row = await session.get(VersionRow, version_id)
    if row is None:
        raise NotFound(N_("No such script version."))
    await _locked_script(session, row.script_id)
    await session.refresh(row)
    if row.state != VersionState.DRAFT.value:
        raise Conflict(N_("Only a draft can be published; edit the script to make a new draft."))
    problems = await check(session, ScriptDraft.from_data(row.graph), catalog)
    if problems:
        raise ScriptProblems(problems)
    now = utcnow()
    previous = await session.scalar(
        select(VersionRow).where(
            VersionRow.script_id == row.script_id, VersionRow.state == VersionState.PUBLISHED.value
        )
    )
    if previous is not None:
        previous.state = VersionState.ARCHIVED.value
        await session.flush()  # before the new one: one published version per script (unique index)
    row.state = VersionState.PUBLISHED.value
    row.published_at = now
    row.published_by = actor.user_id
    await session.flush()
    await audit.record_change(
        session,
        actor,
        module=MODULE,
        action=AuditAction.UPDATE,
        record_type="script_version",
        record_id=row.id,
        changes={"state": [VersionState.DRAFT.value, VersionState.PUBLISHED.value]},
        detail=f"v{row.number} published" + (f", v{previous.number} archived" if previous else ""),
    )
    return _view(row)


async def archive(session: AsyncSession, actor: Actor, version_id: int) -> VersionView:
    """Take a draft or the published version out of use; runs on it go on. Archived already: unchanged."""
    row = await session.get(VersionRow, version_id)
    if row is None:
        raise NotFound(N_("No such script version."))
    await _locked_script(session, row.script_id)
    await session.refresh(row)
    if row.state == VersionState.ARCHIVED.value:
        return _view(row)
    before = row.state
    row.state = VersionState.ARCHIVED.value
    await session.flush()
    await audit.record_change(
        session,
        actor,
        module=MODULE,
        action=AuditAction.UPDATE,
        record_type="script_version",
        record_id=row.id,
        changes={"state": [before, VersionState.ARCHIVED.value]},
    )
    return _view(row)
