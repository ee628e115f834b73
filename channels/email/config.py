"""An e-mail account's settings as the admin form gives them: checked and completed with defaults once, so
the adapter never guesses (`prepare_config`), then read into one frozen `MailboxConfig`."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from switchboard.errors import N_, Invalid

DEFAULT_IMAP_PORT = 993
DEFAULT_SMTP_PORT = 587
DEFAULT_FOLDER = "INBOX"
_ADDRESS_RE = re.compile(r"^[^@\s<>\"',;]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]{2,}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$|^\[?[0-9a-fA-F:.]+\]?$")


class SmtpSecurity(StrEnum):
    NONE = "none"  # plain text: a relay on the same machine or network only
    STARTTLS = "starttls"  # port 587: plain connection upgraded with STARTTLS (the usual submission port)
    SSL = "ssl"  # port 465: TLS from the first byte


@dataclass(frozen=True)
class MailboxConfig:
    address: str
    imap_host: str
    smtp_host: str
    username: str
    password: str
    imap_port: int = DEFAULT_IMAP_PORT
    imap_ssl: bool = True
    smtp_port: int = DEFAULT_SMTP_PORT
    smtp_security: SmtpSecurity = SmtpSecurity.STARTTLS
    folder: str = DEFAULT_FOLDER
    display_name: str = ""
    since: dt.date | None = None  # mail received before the mailbox was connected is not taken in

    def __repr__(self) -> str:
        return f"MailboxConfig(address={self.address!r}, imap_host={self.imap_host!r})"

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[-1]

    @classmethod
    def from_account(
        cls, config: Mapping[str, Any], secrets: Mapping[str, str], display_name: str = ""
    ) -> MailboxConfig:
        """Read a stored account (already `prepare_config`d); bad values fall back to the defaults."""
        address = str(config.get("address", "")).strip()
        return cls(
            address=address,
            imap_host=str(config.get("imap_host", "")).strip(),
            smtp_host=str(config.get("smtp_host", "")).strip(),
            username=str(config.get("username") or address).strip(),
            password=secrets.get("password", ""),
            imap_port=_port(config.get("imap_port"), DEFAULT_IMAP_PORT),
            imap_ssl=_flag(config.get("imap_ssl", True)),
            smtp_port=_port(config.get("smtp_port"), DEFAULT_SMTP_PORT),
            smtp_security=_security(config.get("smtp_security")),
            folder=str(config.get("folder") or DEFAULT_FOLDER).strip() or DEFAULT_FOLDER,
            display_name=display_name,
            since=_date(config.get("since")),
        )


def prepare_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The connect form's values checked and normalised (ports as numbers, the checkbox as a bool, blanks
    replaced by the defaults); `Invalid` names the field that is wrong."""
    address = str(config.get("address", "")).strip()
    if not _ADDRESS_RE.fullmatch(address):
        raise Invalid(N_("This is not an e-mail address."), field="address")
    prepared: dict[str, Any] = {"address": address}
    for name in ("imap_host", "smtp_host"):
        host = str(config.get(name, "")).strip()
        if not _HOST_RE.fullmatch(host):
            raise Invalid(N_("This is not a server name."), field=name)
        prepared[name] = host
    for name, default in (("imap_port", DEFAULT_IMAP_PORT), ("smtp_port", DEFAULT_SMTP_PORT)):
        raw = str(config.get(name, "") or "").strip()
        if not raw:
            prepared[name] = default
        elif raw.isdigit() and 0 < int(raw) < 65536:
            prepared[name] = int(raw)
        else:
            raise Invalid(N_("A port is a number from 1 to 65535."), field=name)
    prepared["imap_ssl"] = _flag(config.get("imap_ssl", False))
    security = str(config.get("smtp_security", "") or SmtpSecurity.STARTTLS.value).strip().lower()
    if security not in {s.value for s in SmtpSecurity}:
        raise Invalid(N_("Choose none, starttls or ssl."), field="smtp_security")
    prepared["smtp_security"] = security
    username = str(config.get("username", "") or "").strip()
    prepared["username"] = username or address
    folder = str(config.get("folder", "") or "").strip() or DEFAULT_FOLDER
    if len(folder) > 200 or any(ord(c) < 0x20 for c in folder):
        raise Invalid(N_("This is not a folder name."), field="folder")
    prepared["folder"] = folder
    since = config.get("since")
    prepared["since"] = (
        since if isinstance(since, str) and since else dt.datetime.now(dt.UTC).date().isoformat()
    )
    return prepared


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _flag(value: Any) -> bool:
    """A checkbox: the form posts "on" (or nothing); a stored config holds a bool."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"on", "true", "1", "yes"}


def _port(value: Any, default: int) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        return default
    return port if 0 < port < 65536 else default


def _security(value: Any) -> SmtpSecurity:
    try:
        return SmtpSecurity(str(value or SmtpSecurity.STARTTLS.value).lower())
    except ValueError:
        return SmtpSecurity.STARTTLS
