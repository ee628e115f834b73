"""Labels on conversations: short tags (`credit`, `urgent`, `ипотека`) agents add and filter by.

Labels live in the conversation's JSON `labels` column; `has_label()` is the filter, written for each
backend's JSON functions (SQLite `json_each`, PostgreSQL `json_array_elements_text`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import BindParameter, Boolean, ColumnElement, bindparam, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from inbox import service as inbox_service
from inbox.models import Conversation
from switchboard.db import utcnow
from switchboard.errors import N_, Invalid, NotFound

LABEL_RE = re.compile(r"[\w-]{1,30}")
MAX_LABELS = 10
MAX_CHANGES = 20


def normalise(label: object, field: str = "labels") -> str:
    """A label as stored: trimmed, lower case; unicode letters welcome, spaces and punctuation not."""
    if not isinstance(label, str):
        raise Invalid(N_("This field must be text."), field=field)
    value = label.strip().lower()
    if not LABEL_RE.fullmatch(value):
        raise Invalid(N_("Use 1 to 30 letters, digits, - or _ for a label."), field=field)
    return value


def normalise_all(labels: object, field: str) -> list[str]:
    if labels is None:
        return []
    if not isinstance(labels, list) or len(labels) > MAX_CHANGES:
        raise Invalid(N_("Give a list of labels."), field=field)
    return list(dict.fromkeys(normalise(x, field) for x in labels))


class _HasLabel(ColumnElement[bool]):
    """`label ∈ conversations.labels`, compiled per backend below."""

    inherit_cache = False  # the label is a bound value the cache key would not see
    type = Boolean()

    def __init__(self, label: str) -> None:
        self.value: BindParameter[str] = bindparam("label_filter", label, unique=True)


@compiles(_HasLabel, "sqlite")
def _has_label_sqlite(element: _HasLabel, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(Conversation.__table__.c.labels, **kw)
    value = compiler.process(element.value, **kw)
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = {value})"


@compiles(_HasLabel, "postgresql")
def _has_label_postgresql(element: _HasLabel, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(Conversation.__table__.c.labels, **kw)
    value = compiler.process(element.value, **kw)
    return f"EXISTS (SELECT 1 FROM json_array_elements_text({column}) AS lbl(v) WHERE lbl.v = {value})"


def has_label(label: str) -> ColumnElement[bool]:
    """The filter for conversations carrying `label` (normalised like stored labels)."""
    return _HasLabel(label.strip().lower())


def merged(current: Iterable[str], add: list[str], remove: list[str]) -> list[str]:
    out = [x for x in current if x not in remove]
    for label in add:
        if label not in out and label not in remove:
            out.append(label)
    if len(out) > MAX_LABELS:
        raise Invalid(N_("At most %(n)s labels per conversation."), field="add", n=MAX_LABELS)
    return out


async def change_labels(
    inbox: inbox_service.Inbox,
    viewer: inbox_service.Viewer,
    conversation_id: int,
    *,
    add: list[str],
    remove: list[str],
) -> list[str]:
    """Add and remove labels on a conversation the viewer may see; returns the labels now on it and
    tells the live feed (`inbox.conversation`, with `labels`)."""
    async with inbox.sessions() as session, session.begin():
        conversation = await session.scalar(
            select(Conversation).where(Conversation.id == conversation_id, inbox_service.visible_to(viewer))
        )
        if conversation is None:
            raise NotFound(N_("No such conversation."))
        labels = merged(conversation.labels or [], add, remove)
        conversation.labels = labels
        conversation.last_activity_at = utcnow()
        data = {
            "id": conversation.id,
            "status": conversation.status,
            "assignee_id": conversation.assignee_id,
            "branch_id": conversation.branch_id,
            "labels": labels,
        }
    await inbox.bus.publish("inbox.conversation", {"conversation": data})
    return labels
