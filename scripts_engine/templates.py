"""Step texts are Jinja2 templates over the contact, lead, deal, agent and answers, rendered in an
immutable sandbox: no attribute of Python internals, no mutation of the values, no huge string or number
built by `*` / `**`. A syntax error is found when the script is validated; at run time rendering never
fails a run — an undefined name renders as nothing, any other error leaves the text as written.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

log = logging.getLogger(__name__)

MAX_OUTPUT = 20_000
MAX_REPEAT = 10_000
MAX_EXPONENT = 100


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise OverflowError("exponent too large")
            return operator.pow(left, right)
        if operator_name == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_REPEAT:
                    raise OverflowError("repetition too large")
            return operator.mul(left, right)
        return super().call_binop(context, operator_name, left, right)


def _money(value: Any) -> str:
    """12500.5 → "12 500,50" (as Moldovan documents write amounts)."""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except Exception:
        return "" if value is None else str(value)
    whole, _, cents = f"{amount:,.2f}".partition(".")
    return f"{whole.replace(',', ' ')},{cents}"


def _environment() -> _Sandbox:
    env = _Sandbox(autoescape=False, undefined=ChainableUndefined, keep_trailing_newline=False)
    env.filters["money"] = _money
    return env


ENV = _environment()


def syntax_error(source: str) -> tuple[int, str] | None:
    """(line, message) of the template's syntax error, or None when it parses."""
    try:
        ENV.parse(source)
    except TemplateSyntaxError as exc:
        return exc.lineno, exc.message or "syntax error"
    return None


def render(source: str, values: Mapping[str, Any]) -> str:
    if "{" not in source:  # plain text, the common case
        return source
    try:
        text = ENV.from_string(source).render(values)
    except Exception as exc:  # a run must never fail on a text: show it as written
        log.warning("script text could not be rendered: %s", type(exc).__name__)
        return source
    return text[:MAX_OUTPUT]
