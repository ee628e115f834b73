"""YAML import / export of the script model, so scripts can be reviewed and diffed as text.

Export writes `ScriptDraft.as_data()` (defaults left out, keys in the model's order) with
`yaml.safe_dump`; import reads it back into an equal model, so export → import → export is byte-identical.
Import is for files people bring: anything but plain YAML is refused with a readable reason — a file over
`MAX_BYTES`, aliases (the "billion laughs" bomb), Python tags, nesting deeper than the model allows, and
wrong types or unknown keys (pydantic's errors, by path).
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from scripts_engine.model import ScriptDraft
from switchboard.errors import N_, Invalid, TooLarge

MAX_BYTES = 256 * 1024
MAX_DEPTH = 40
MAX_ERRORS = 5


class _Loader(yaml.SafeLoader):
    """SafeLoader without aliases and with a nesting limit (the pure-Python composer, so it can refuse)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a script", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(None, None, "the document nests too deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def to_yaml(draft: ScriptDraft) -> str:
    return yaml.safe_dump(
        draft.as_data(), sort_keys=False, allow_unicode=True, default_flow_style=False, width=100, indent=2
    )


def _location(error: Any) -> str:
    return ".".join(str(part) for part in error.get("loc", ())) or "script"


def from_yaml(text: str | bytes) -> ScriptDraft:
    """The script in `text`; `Invalid` (or `TooLarge`) saying what is wrong and where."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise TooLarge(N_("A script file may be at most %(n)s KiB."), field="file", n=MAX_BYTES // 1024)
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(N_("The script file must be UTF-8 text."), field="file") from None
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise TooLarge(N_("A script file may be at most %(n)s KiB."), field="file", n=MAX_BYTES // 1024)
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise Invalid(
            N_("The script file is not valid YAML (line %(line)s): %(error)s"),
            field="file",
            line=line,
            error=str(exc.problem or exc.context or "error"),
        ) from None
    except yaml.YAMLError as exc:
        raise Invalid(
            N_("The script file is not valid YAML: %(error)s"), field="file", error=str(exc)
        ) from None
    except RecursionError:
        raise Invalid(
            N_("The script file is not valid YAML: %(error)s"), field="file", error="too deep"
        ) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise Invalid(N_("A script file holds one mapping with key, name and steps."), field="file")
    try:
        return ScriptDraft.from_data(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        detail = "; ".join(f"{_location(e)}: {e['msg']}" for e in errors[:MAX_ERRORS])
        if len(errors) > MAX_ERRORS:
            detail += f"; … ({len(errors) - MAX_ERRORS} more)"
        raise Invalid(
            N_("The script file does not fit the script model: %(error)s"), field="file", error=detail
        ) from None
