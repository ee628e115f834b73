"""Provider payloads read through pydantic: a body the provider would never send becomes `BadPayload` naming
the field at fault, never a `ValidationError`."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from channels.base import BadPayload

M = TypeVar("M", bound=BaseModel)


def invalid(exc: ValidationError, what: str, *, skip: int = 0) -> BadPayload:
    """`not a {what}: {field}: {pydantic's message}` for the first error; `skip` drops leading parts of
    the field's path (a discriminated union puts its tag there)."""
    errors = exc.errors()
    where = ".".join(str(p) for p in errors[0]["loc"][skip:]) if errors else ""
    message = errors[0]["msg"] if errors else "is invalid"
    return BadPayload(f"not a {what}: {where or 'body'}: {message}")


def parse_object(model: type[M], payload: Any, what: str) -> M:
    """A JSON object as `model`, or `BadPayload` (`a {what} is a JSON object`, or the field at fault)."""
    if not isinstance(payload, dict):
        raise BadPayload(f"a {what} is a JSON object")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise invalid(exc, what) from None
