"""The script engine's front door: `ScriptsService`, built once by the composition root with a CRM port,
and the plain dataclasses / pydantic models it takes and returns. Web views call only this module.

Every method takes the caller's `AsyncSession` (one transaction per use case, committed by the caller) and
raises `switchboard.errors` (Invalid, Conflict, NotFound, TooLarge) for the edges to show; publishing
refused for problems raises `ScriptProblems`, whose `problems` name each step and code.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from scripts_engine import analytics, authoring, suggest, yaml_io
from scripts_engine.analytics import ComparedStep, Comparison, Funnel, StepStats
from scripts_engine.authoring import ScriptProblems, ScriptSummary, VersionInfo, VersionState, VersionView
from scripts_engine.model import ScriptDraft
from scripts_engine.ports import Catalog, CrmContext, CrmPort, FieldKind, FieldSpec, TaskRequest
from scripts_engine.runs import Engine, OptionView, RunStatus, RunStepView, StepView
from scripts_engine.suggest import SuggestContext, Suggestion
from scripts_engine.validation import Problem
from switchboard.audit import Actor

__all__ = [
    "Catalog",
    "ComparedStep",
    "Comparison",
    "CrmContext",
    "CrmPort",
    "FieldKind",
    "FieldSpec",
    "Funnel",
    "OptionView",
    "Problem",
    "RunStatus",
    "RunStepView",
    "ScriptDraft",
    "ScriptProblems",
    "ScriptSummary",
    "ScriptsService",
    "StepStats",
    "StepView",
    "SuggestContext",
    "Suggestion",
    "TaskRequest",
    "VersionInfo",
    "VersionState",
    "VersionView",
]


class ScriptsService:
    def __init__(self, port: CrmPort, *, region: str = "MD") -> None:
        self.port = port
        self.engine = Engine(port, region)

    # --- authoring ------------------------------------------------------------------------------------------

    async def list_scripts(self, session: AsyncSession) -> list[ScriptSummary]:
        return await authoring.list_scripts(session)

    async def get_version(self, session: AsyncSession, version_id: int) -> VersionView:
        return await authoring.get_version(session, version_id)

    async def save_draft(self, session: AsyncSession, actor: Actor, draft: ScriptDraft) -> VersionView:
        return await authoring.save_draft(session, actor, draft)

    async def new_draft(self, session: AsyncSession, actor: Actor, script_id: int) -> VersionView:
        return await authoring.new_draft(session, actor, script_id)

    async def catalog(self, session: AsyncSession) -> Catalog:
        """The fields, stages, templates and task kinds a script may name (for the editor's pickers)."""
        return await self.port.catalog(session)

    async def check(self, session: AsyncSession, draft: ScriptDraft) -> list[Problem]:
        return await authoring.check(session, draft, await self.port.catalog(session))

    async def publish(self, session: AsyncSession, actor: Actor, version_id: int) -> VersionView:
        return await authoring.publish(session, actor, version_id, await self.port.catalog(session))

    async def archive(self, session: AsyncSession, actor: Actor, version_id: int) -> VersionView:
        return await authoring.archive(session, actor, version_id)

    async def export_yaml(self, session: AsyncSession, version_id: int) -> str:
        return yaml_io.to_yaml((await authoring.get_version(session, version_id)).draft)

    async def import_yaml(self, session: AsyncSession, actor: Actor, text: str | bytes) -> VersionView:
        """The file's script saved as its script's draft (made if new); publish it separately."""
        return await authoring.save_draft(session, actor, yaml_io.from_yaml(text))

    # --- choosing and running -------------------------------------------------------------------------------

    async def suggest(self, session: AsyncSession, context: SuggestContext) -> list[Suggestion]:
        return await suggest.suggest(session, context)

    async def suggest_for(
        self,
        session: AsyncSession,
        *,
        conversation_id: int | None = None,
        call_id: int | None = None,
        contact_id: int | None = None,
        lead_id: int | None = None,
        deal_id: int | None = None,
    ) -> list[Suggestion]:
        """`suggest` for a conversation or call, its facts read through the port."""
        ctx = await self.port.context(
            session,
            conversation_id=conversation_id,
            call_id=call_id,
            contact_id=contact_id,
            lead_id=lead_id,
            deal_id=deal_id,
        )
        return await suggest.suggest(session, SuggestContext.of(ctx))

    async def start(
        self, session: AsyncSession, actor: Actor, version_id: int, **links: int | None
    ) -> StepView:
        """Links: conversation_id, call_id, contact_id, lead_id, deal_id (missing ones found by the port)."""
        return await self.engine.start(session, actor, version_id, **links)

    async def current(self, session: AsyncSession, run_id: int) -> StepView:
        return await self.engine.current(session, run_id)

    async def active_run(
        self, session: AsyncSession, *, conversation_id: int | None = None, call_id: int | None = None
    ) -> StepView | None:
        return await self.engine.active_run(session, conversation_id=conversation_id, call_id=call_id)

    async def answer(
        self, session: AsyncSession, actor: Actor, run_id: int, step_id: str, answer: Any
    ) -> StepView:
        return await self.engine.answer(session, actor, run_id, step_id, answer)

    async def back(self, session: AsyncSession, actor: Actor, run_id: int, step_id: str) -> StepView:
        return await self.engine.back(session, actor, run_id, step_id)

    async def leave(self, session: AsyncSession, actor: Actor, run_id: int, reason: str = "") -> StepView:
        return await self.engine.leave(session, actor, run_id, reason)

    async def run_steps(self, session: AsyncSession, run_id: int) -> list[RunStepView]:
        return await self.engine.steps(session, run_id)

    # --- analytics ------------------------------------------------------------------------------------------

    async def funnel(self, session: AsyncSession, version_id: int) -> Funnel:
        return await analytics.funnel(session, self.port, version_id)

    async def compare(self, session: AsyncSession, version_a: int, version_b: int) -> Comparison:
        return await analytics.compare(session, self.port, version_a, version_b)
