"""Twilio's webhook forms (`application/x-www-form-urlencoded`) as typed records.

Two shapes come to the same address: an incoming message (`MessageSid`, `AccountSid`, `From`, `To`, `Body`,
`NumMedia`, `MediaUrl{N}`, `MediaContentType{N}`, and for WhatsApp `ProfileName`, `WaId`, `Latitude`,
`Longitude`, `OriginalRepliedMessageSid`) and a status callback of one of ours (`MessageSid`,
`MessageStatus`, `ErrorCode`, `ErrorMessage`). Twilio adds parameters without notice, so unknown ones are
ignored; missing or malformed required ones are `BadPayload`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from channels.base import BadPayload

WHATSAPP_PREFIX = "whatsapp:"
MAX_MEDIA = 10  # Twilio's limit per message
_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_ADDRESS = re.compile(r"\+?[0-9]{3,15}")
INBOUND_STATUSES = frozenset({"received", "receiving"})


@dataclass(frozen=True)
class Media:
    url: str
    content_type: str


@dataclass(frozen=True)
class Incoming:
    message_sid: str
    account_sid: str
    sender: str  # E.164 (or a short code), without `whatsapp:`
    whatsapp: bool
    body: str
    media: tuple[Media, ...]
    profile_name: str | None
    latitude: float | None
    longitude: float | None
    address: str | None
    label: str | None
    replied_to: str | None
    opt_out_type: str | None  # Advanced Opt-Out's verdict (STOP, START, HELP) when the service has it on


@dataclass(frozen=True)
class StatusCallback:
    message_sid: str
    account_sid: str
    status: str
    error_code: str | None
    error_message: str | None


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise BadPayload(f"the {name} field is missing")
    return value


def _sid(form: Mapping[str, str], name: str, pattern: re.Pattern[str] = _SID) -> str:
    value = _required(form, name)
    if not pattern.fullmatch(value):
        raise BadPayload(f"{name} is not a Twilio SID")
    return value


def _optional(form: Mapping[str, str], name: str) -> str | None:
    value = form.get(name, "").strip()
    return value or None


def parse_form(form: Mapping[str, str]) -> Incoming | StatusCallback:
    message_sid = _sid(form, "MessageSid")
    account_sid = _sid(form, "AccountSid", _ACCOUNT_SID)
    status = form.get("MessageStatus", "").strip().lower()
    if status and status not in INBOUND_STATUSES:
        return StatusCallback(
            message_sid,
            account_sid,
            status,
            _optional(form, "ErrorCode"),
            _optional(form, "ErrorMessage"),
        )
    return _incoming(form, message_sid, account_sid)


def _incoming(form: Mapping[str, str], message_sid: str, account_sid: str) -> Incoming:
    raw_from = _required(form, "From")
    whatsapp = raw_from.lower().startswith(WHATSAPP_PREFIX)
    sender = raw_from[len(WHATSAPP_PREFIX) :].strip() if whatsapp else raw_from
    if not _ADDRESS.fullmatch(sender):
        raise BadPayload("From is not a phone number")
    latitude, longitude = _coordinate(form, "Latitude", 90), _coordinate(form, "Longitude", 180)
    if (latitude is None) != (longitude is None):
        raise BadPayload("a location needs both Latitude and Longitude")
    return Incoming(
        message_sid=message_sid,
        account_sid=account_sid,
        sender=sender,
        whatsapp=whatsapp,
        body=form.get("Body", ""),
        media=_media(form),
        profile_name=_optional(form, "ProfileName"),
        latitude=latitude,
        longitude=longitude,
        address=_optional(form, "Address"),
        label=_optional(form, "Label"),
        replied_to=_optional(form, "OriginalRepliedMessageSid"),
        opt_out_type=(_optional(form, "OptOutType") or "").upper() or None,
    )


def _media(form: Mapping[str, str]) -> tuple[Media, ...]:
    raw = form.get("NumMedia", "0").strip() or "0"
    if not raw.isdigit() or int(raw) > MAX_MEDIA:
        raise BadPayload(f"NumMedia is not a number from 0 to {MAX_MEDIA}")
    found = []
    for n in range(int(raw)):
        url = _required(form, f"MediaUrl{n}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadPayload(f"MediaUrl{n} is not an http(s) address")
        content_type = (form.get(f"MediaContentType{n}") or "application/octet-stream").strip().lower()
        found.append(Media(url, content_type))
    return tuple(found)


def _coordinate(form: Mapping[str, str], name: str, limit: float) -> float | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadPayload(f"{name} is not a number") from None
    if not -limit <= value <= limit:
        raise BadPayload(f"{name} is out of range")
    return value
