"""The demo credit-consultation script (`credit_consultation.yaml`), loaded and published by
`switchboard demo` through `load_demo`."""

from __future__ import annotations

from importlib import resources

from sqlalchemy.ext.asyncio import AsyncSession

from scripts_engine import authoring, yaml_io
from scripts_engine.authoring import VersionState, VersionView
from scripts_engine.model import ScriptDraft
from scripts_engine.service import ScriptsService
from switchboard.audit import Actor

DEMO_FILE = "credit_consultation.yaml"


def demo_draft() -> ScriptDraft:
    return yaml_io.from_yaml(resources.files(__package__).joinpath(DEMO_FILE).read_text(encoding="utf-8"))


async def load_demo(session: AsyncSession, service: ScriptsService, actor: Actor) -> VersionView:
    """The demo script published: left as it is when its published version already holds this file
    (every demo start calls this), else saved as a draft and published."""
    draft = demo_draft()
    published = await authoring.published_version(session, draft.key)
    if published is not None and ScriptDraft.from_data(published.graph) == draft:
        return await service.get_version(session, published.id)
    version = await service.save_draft(session, actor, draft)
    if version.state is VersionState.DRAFT:
        version = await service.publish(session, actor, version.id)
    return version
