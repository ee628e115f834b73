"""Keep secrets out of logs: URL passwords, bearer tokens and password fields are masked."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

_MASK = "***"
_PATTERNS = (
    # scheme://user:password@host
    (re.compile(r"(?P<pre>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@\s]+(?P<post>@)", re.I), r"\g<pre>***\g<post>"),
    (re.compile(r"(?P<pre>\bBearer\s+)[A-Za-z0-9._~+/=\-]+", re.I), r"\g<pre>***"),
    (
        re.compile(
            r"(?P<pre>\b(?:password|passwd|secret|token|api_key)\b[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+", re.I
        ),
        r"\g<pre>***",
    ),
)


def redact_url(url: str) -> str:
    """`postgresql://u:pw@h/db` → `postgresql://u:***@h/db`; URLs without a password are unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{_MASK}@{netloc[-1]}"))


def redact_text(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in every record's final message, whatever logger or library emitted it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
