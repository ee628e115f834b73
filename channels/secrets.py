"""Channel secrets (bot tokens, auth tokens, page tokens) encrypted at rest.

The Fernet key is derived from `Settings.secret` with its own label, so it differs from the session-cookie
key. Plain secrets never go to logs; the UI shows them masked (`mask()`: the last four characters).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

_LABEL = b"switchboard-channel-secrets:"


class SecretsError(Exception):
    """The stored secrets cannot be decrypted (the secret key changed)."""


class SecretBox:
    def __init__(self, secret: bytes) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(_LABEL + secret).digest())
        self._fernet = Fernet(key)

    def __repr__(self) -> str:
        return "SecretBox(***)"

    def encrypt(self, values: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode("ascii")

    def decrypt(self, token: str) -> dict[str, str]:
        if not token:
            return {}
        try:
            data: Any = json.loads(self._fernet.decrypt(token.encode("ascii")))
        except (InvalidToken, ValueError) as exc:
            raise SecretsError("channel secrets cannot be decrypted with this secret key") from exc
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def mask(value: str) -> str:
    """`••••abcd`: enough to recognise a token, never enough to use it."""
    if not value:
        return ""
    return "••••" + (value[-4:] if len(value) > 8 else "")
