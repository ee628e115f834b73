"""Signed, expiring public links to files in the store, for providers that fetch outbound media by URL
(Twilio `MediaUrl`, Viber `media`, Meta attachment `url`).

The token carries the stored path, content type and file name, and an HMAC over them with a key derived from
the hub's secret: nothing is looked up to serve it, and nobody can forge a link to another file. Links live
for a day: long enough for a provider's retries, short enough that a leaked link soon stops working.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from urllib.parse import quote

from channels.model import Attachment

_LABEL = b"switchboard-media-link:"
LIFETIME_SECONDS = 24 * 3600


@dataclass(frozen=True)
class LinkedFile:
    stored_path: str
    content_type: str
    filename: str


def _key(secret: bytes) -> bytes:
    return hashlib.sha256(_LABEL + secret).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign(secret: bytes, attachment: Attachment, *, now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + LIFETIME_SECONDS)
    body = json.dumps(
        [attachment.stored_path, attachment.content_type, attachment.filename, expires]
    ).encode()
    mac = hmac.new(_key(secret), body, hashlib.sha256).digest()[:18]
    return f"{_b64(body)}.{_b64(mac)}"


def verify(secret: bytes, token: str, *, now: float | None = None) -> LinkedFile | None:
    """The file a token names, or None when it is forged, malformed or expired."""
    try:
        body_part, mac_part = token.split(".", 1)
        body = base64.urlsafe_b64decode(body_part + "=" * (-len(body_part) % 4))
        mac = base64.urlsafe_b64decode(mac_part + "=" * (-len(mac_part) % 4))
    except ValueError:
        return None
    if not hmac.compare_digest(mac, hmac.new(_key(secret), body, hashlib.sha256).digest()[:18]):
        return None
    try:
        path, content_type, filename, expires = json.loads(body)
    except (ValueError, TypeError):
        return None
    if not isinstance(expires, int) or expires < (now if now is not None else time.time()):
        return None
    return LinkedFile(str(path), str(content_type), str(filename))


def public_url(base: str, secret: bytes, attachment: Attachment) -> str:
    """The link ends with the file name: Viber shows a picture inline only when the URL ends in .jpg."""
    name = quote(attachment.filename or "file", safe="")
    return f"{base.rstrip('/')}/media/{sign(secret, attachment)}/{name}"
