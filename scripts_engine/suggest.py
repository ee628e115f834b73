"""Choosing a script when a conversation or call starts: the published scripts whose `applies` condition
matches the talk, the most specific first (the one matching most of channel, segment, product, deal stage
and language), then the newest. The agent may still pick another one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scripts_engine.authoring import VersionState
from scripts_engine.model import AppliesTo, ScriptDraft
from scripts_engine.ports import CrmContext
from scripts_engine.tables import ScriptRow, VersionRow


@dataclass(frozen=True)
class SuggestContext:
    channel: str | None = None
    segments: tuple[str, ...] = ()
    product: str | None = None
    deal_stage: str | None = None
    language: str | None = None

    @classmethod
    def of(cls, ctx: CrmContext) -> SuggestContext:
        return cls(ctx.channel, tuple(ctx.segments), ctx.product, ctx.deal_stage, ctx.language)


@dataclass(frozen=True)
class Suggestion:
    script_id: int
    key: str
    name: str
    version_id: int
    version_number: int
    specificity: int  # how many of the script's criteria the talk matched
    published_at: dt.datetime | None


def _fold(value: str | None) -> str:
    return (value or "").strip().casefold()


def specificity(applies: AppliesTo, ctx: SuggestContext) -> int | None:
    """How many of the script's criteria the talk matches, or None when one of them fails. A criterion the
    script leaves empty always holds; one whose fact the talk does not know yet (no language on the
    contact, a chat with no deal) holds without counting. Segments are always known: no tags is none."""
    score = 0
    if applies.segments:
        if not {_fold(s) for s in ctx.segments} & {_fold(a) for a in applies.segments}:
            return None
        score += 1
    for allowed, value in (
        (applies.channels, ctx.channel),
        (applies.products, ctx.product),
        (applies.deal_stages, ctx.deal_stage),
        (applies.languages, ctx.language),
    ):
        if not allowed or not value:
            continue
        if _fold(value) not in {_fold(a) for a in allowed}:
            return None
        score += 1
    return score


async def suggest(session: AsyncSession, ctx: SuggestContext) -> list[Suggestion]:
    rows = await session.execute(
        select(ScriptRow.id, ScriptRow.key, ScriptRow.name, VersionRow)
        .join(VersionRow, VersionRow.script_id == ScriptRow.id)
        .where(VersionRow.state == VersionState.PUBLISHED.value)
    )
    found: list[Suggestion] = []
    for script_id, key, name, version in rows:
        score = specificity(ScriptDraft.from_data(version.graph).applies, ctx)
        if score is not None:
            found.append(
                Suggestion(script_id, key, name, version.id, version.number, score, version.published_at)
            )
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    found.sort(key=lambda s: (-s.specificity, -(s.published_at or oldest).timestamp(), -s.version_id))
    return found
