"""The shape of a provider's description (`channels/<provider>/provider.py` exposes one `PROVIDER`): the
fields an admin fills in to connect an account, and how to build the account's adapter."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from channels.base import ChannelAdapter
from channels.model import Channel
from switchboard.settings import Settings


@dataclass(frozen=True)
class AccountData:
    """One channel account as an adapter needs it: secrets already decrypted."""

    id: int
    channel: Channel
    name: str
    config: Mapping[str, Any]  # what may be shown: phone number, page id, bot username, templates
    secrets: Mapping[str, str]  # tokens and passwords
    webhook_secret: str  # a random value of the hub's own (Telegram's secret-token header)


@dataclass(frozen=True)
class Field:
    """One input of the connect form. `secret` fields are stored encrypted and never shown again in full;
    the others go to the account's config."""

    name: str
    label: str  # an N_() message id, translated by the page
    secret: bool = False
    required: bool = True
    help: str = ""  # an N_() message id
    kind: str = "text"  # text, password, email, number, textarea, checkbox, select
    default: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) for kind "select"


@dataclass(frozen=True)
class Provider:
    channel: Channel
    title: str  # "Viber", "WhatsApp (Twilio)"…
    fields: tuple[Field, ...]
    build: Callable[[AccountData, Settings], ChannelAdapter]
    # the webhook address the admin must paste at the provider, when the hub cannot register it itself
    manual_webhook: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)  # N_() message ids shown under the form
    # checks and shapes the non-secret fields into the account's config; raises switchboard.errors.Invalid
    prepare: Callable[[Mapping[str, str]], dict[str, Any]] | None = None
    icon: str = "message"  # a Tabler icon name (ti-<icon>) for the admin page
    # the Meta-style verify token (the account's webhook_secret) must be shown to the admin
    shows_verify_token: bool = False
