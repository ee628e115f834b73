"""WhatsApp templates as an admin writes them, one per line: `Name | HX… Content SID | Text with {{1}}`.

Outside the 24-hour window WhatsApp takes only a template approved in the Twilio Content Template Builder; it
is sent by its Content SID with the variables as JSON. The hub keeps the approved text beside the SID so that
the conversation shows what the customer received (`render`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from switchboard.errors import N_, Invalid

CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
FIELD = "templates"
MAX_NAME = 100


@dataclass(frozen=True)
class WhatsAppTemplate:
    name: str
    content_sid: str
    body: str
    variables: tuple[str, ...]  # as they appear in the body, each once: ("1", "2")

    def as_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "content_sid": self.content_sid,
            "body": self.body,
            "variables": list(self.variables),
        }


def _bad(message: str, line: int, **params: object) -> Invalid:
    return Invalid(message, field=FIELD, line=line, **params)


def parse_templates(text: str) -> list[WhatsAppTemplate]:
    """The textarea's lines as templates; blank lines and `#` comments are skipped. `Invalid` names the
    first bad line."""
    found: list[WhatsAppTemplate] = []
    names: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [part.strip() for part in line.split("|", 2)]
        if len(parts) != 3:
            raise _bad(N_("Templates, line %(line)s: write Name | Content SID | Text."), number)
        name, sid, body = parts
        if not name or len(name) > MAX_NAME:
            raise _bad(N_("Templates, line %(line)s: the name is missing or too long."), number)
        if not CONTENT_SID.fullmatch(sid):
            raise _bad(
                N_("Templates, line %(line)s: a Content SID is HX followed by 32 hexadecimal digits."),
                number,
            )
        if not body:
            raise _bad(N_("Templates, line %(line)s: the approved text is missing."), number)
        if name.casefold() in names:
            raise _bad(N_("Templates, line %(line)s: the name %(name)s is used twice."), number, name=name)
        names.add(name.casefold())
        found.append(WhatsAppTemplate(name, sid, body, variables_of(body)))
    return found


def variables_of(body: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(VARIABLE.findall(body)))


def render(template: WhatsAppTemplate, variables: Mapping[str, str]) -> str:
    """The text the customer receives; every variable must have a value (WhatsApp refuses empty ones)."""
    for name in template.variables:
        if not str(variables.get(name, "")).strip():
            raise Invalid(
                N_("Fill in the template variable %(name)s."), field="variables", name="{{" + name + "}}"
            )
    return VARIABLE.sub(lambda m: str(variables[m.group(1)]).strip(), template.body)


def format_templates(templates: Iterable[WhatsAppTemplate]) -> str:
    """The textarea's text for templates already stored (to edit them again)."""
    return "\n".join(f"{t.name} | {t.content_sid} | {t.body}" for t in templates)


def templates_from_config(value: Any) -> list[WhatsAppTemplate]:
    """The templates an account's config holds: the list `prepare` stores (or, leniently, the raw text).
    Entries that are not shaped like a template are left out rather than failing a send."""
    if isinstance(value, str):
        try:
            return parse_templates(value)
        except Invalid:
            return []
    found: list[WhatsAppTemplate] = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        name, sid, body = (str(item.get(key) or "") for key in ("name", "content_sid", "body"))
        if name and body and CONTENT_SID.fullmatch(sid):
            found.append(WhatsAppTemplate(name, sid, body, variables_of(body)))
    return found
