"""Moldovan 13-digit state codes: the IDNP of a person and the IDNO (fiscal code) of a company.

Both end in a check digit: the first twelve digits weighted 7, 3, 1, 7, 3, 1… summed, modulo 10
(python-stdnum `md.idno`, whose vector is 1008600038413; the same rule for IDNP as in idnp.js). A passing
check says the code is well-formed, not that the person or company exists."""

from __future__ import annotations

LENGTH = 13
_WEIGHTS = (7, 3, 1) * 4


def compact(value: str) -> str:
    """The code without the spaces, dashes and dots people type between its groups."""
    return "".join(c for c in value if c not in " -./\t")


def check_digit(body: str) -> int:
    """The check digit for twelve digits."""
    if len(body) != LENGTH - 1 or not (body.isascii() and body.isdigit()):
        raise ValueError("twelve digits expected")
    return sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 10


def is_valid(value: str) -> bool:
    """True for 13 ASCII digits whose last is the check digit of the twelve before it."""
    code = compact(value)
    if len(code) != LENGTH or not (code.isascii() and code.isdigit()):
        return False
    return check_digit(code[:-1]) == int(code[-1])


# The person's and the company's codes follow one rule; two names so that callers say which they mean.
is_valid_idnp = is_valid
is_valid_idno = is_valid
