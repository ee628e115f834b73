"""WhatsApp and SMS through Twilio as the admin page and the hub see them: the Account SID, the auth token and
the sending number; WhatsApp accounts also list their approved templates, SMS accounts may send Romanian
text without diacritics (a GSM-7 SMS holds 160 characters, a UCS-2 one 70)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import phonenumbers

from channels.model import Channel
from channels.provider_spec import AccountData, Field, Provider
from channels.twilio.adapter import TwilioAdapter
from channels.twilio.client import TwilioClient
from channels.twilio.templates import parse_templates, templates_from_config
from switchboard.errors import N_, Invalid
from switchboard.settings import Settings

ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_CHECKED = ("on", "1", "true", "yes")


def build(account: AccountData, settings: Settings) -> TwilioAdapter:
    config = account.config
    account_sid = str(config.get("account_sid", ""))
    client = TwilioClient(account_sid, account.secrets.get("auth_token", ""), settings.twilio_api_base)
    return TwilioAdapter(
        str(account.id),
        account.channel,
        auth_token=account.secrets.get("auth_token", ""),
        phone=str(config.get("phone", "")),
        client=client,
        status_callback=status_callback(account, settings),
        templates=tuple(templates_from_config(config.get("templates"))),
        plain_sms=_checked(config.get("plain_sms")),
    )


def status_callback(account: AccountData, settings: Settings) -> str | None:
    """Where Twilio posts the status of our messages: the account's webhook address, as stored when it
    was connected, or as the hub's public URL makes it."""
    stored = account.config.get("webhook_url")
    if isinstance(stored, str) and stored:
        return stored
    if settings.public_url:
        return f"{settings.public_url.rstrip('/')}/webhooks/{account.channel.value}/{account.id}"
    return None


def prepare(values: Mapping[str, str]) -> dict[str, Any]:
    """The form's non-secret fields as the account's config: the SID checked, the number in E.164, the
    templates parsed (a list of {name, content_sid, body, variables}), the checkbox a bool."""
    config: dict[str, Any] = {
        "account_sid": account_sid_of(values.get("account_sid", "")),
        "phone": phone_of(values.get("phone", "")),
    }
    if "templates" in values:
        config["templates"] = [t.as_config() for t in parse_templates(values.get("templates", ""))]
    if "plain_sms" in values:
        config["plain_sms"] = _checked(values.get("plain_sms"))
    return config


def account_sid_of(value: str) -> str:
    value = value.strip()
    if not ACCOUNT_SID.fullmatch(value):
        raise Invalid(
            N_("The Account SID is AC followed by 32 hexadecimal digits (Twilio console, Account info)."),
            field="account_sid",
        )
    return value


def phone_of(value: str) -> str:
    """The sending number in E.164; Twilio numbers are written with their country code."""
    try:
        number = phonenumbers.parse(value.strip(), None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise Invalid(N_("Write the number in international format, e.g. +37322123456."), field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _checked(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in _CHECKED)


_ACCOUNT_SID = Field(
    "account_sid",
    N_("Account SID"),
    help=N_("Twilio console, Account info: AC followed by 32 letters and digits."),
)
_AUTH_TOKEN = Field(
    "auth_token",
    N_("Auth token"),
    secret=True,
    help=N_(
        "Twilio console, Account info, next to the Account SID; it also proves webhooks come from Twilio."
    ),
)

WHATSAPP = Provider(
    channel=Channel.WHATSAPP,
    title="WhatsApp (Twilio)",
    icon="brand-whatsapp",
    build=build,
    prepare=prepare,
    fields=(
        _ACCOUNT_SID,
        _AUTH_TOKEN,
        Field(
            "phone",
            N_("WhatsApp number"),
            help=N_("The WhatsApp sender registered in Twilio, in international format, e.g. +37322123456."),
        ),
        Field(
            "templates",
            N_("Approved templates"),
            required=False,
            kind="textarea",
            help=N_(
                "One per line: Name | Content SID (HX…) | the approved text with {{1}}, {{2}}. "
                "Outside the 24-hour window only these can be sent."
            ),
        ),
    ),
    manual_webhook=True,
    notes=(
        N_(
            "Twilio has no API to set a WhatsApp sender's webhook: paste the webhook address shown for this "
            "account into the Twilio console (Messaging, Senders, WhatsApp senders, your number, "
            "Webhook URL for incoming messages, method POST)."
        ),
    ),
)

SMS = Provider(
    channel=Channel.SMS,
    title="SMS (Twilio)",
    icon="device-mobile-message",
    build=build,
    prepare=prepare,
    fields=(
        _ACCOUNT_SID,
        _AUTH_TOKEN,
        Field(
            "phone",
            N_("Phone number"),
            help=N_("The Twilio number that sends the SMS, in international format, e.g. +37322123456."),
        ),
        Field(
            "plain_sms",
            N_("Send Romanian letters without diacritics"),
            required=False,
            kind="checkbox",
            help=N_("ă, â, î, ș, ț become a, a, i, s, t: an SMS then holds 160 characters instead of 70."),
        ),
    ),
    notes=(
        N_(
            "The hub points the number's incoming-message webhook at itself; the number must belong to this "
            "Twilio account."
        ),
    ),
)
