"""Messenger and Instagram as the admin page and the hub see them: a page (or Instagram professional account)
id, the page access token and the app secret. Meta has no API to set a page's callback URL, so the admin
pastes the hub's webhook address and the account's verify token into the Meta app dashboard."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from channels.meta.adapter import MetaAdapter
from channels.meta.client import GraphClient
from channels.model import Channel
from channels.provider_spec import AccountData, Field, Provider
from switchboard.errors import N_, Invalid
from switchboard.settings import Settings

OWN_ID_FIELD = {Channel.MESSENGER: "page_id", Channel.INSTAGRAM: "instagram_id"}


def build(account: AccountData, settings: Settings) -> MetaAdapter:
    app_secret = account.secrets.get("app_secret", "")
    client = GraphClient(
        account.secrets.get("page_access_token", ""),
        api_base=settings.graph_api_base,
        version=settings.graph_api_version,
        app_secret=app_secret,
    )
    return MetaAdapter(
        str(account.id),
        account.channel,
        own_id=str(account.config.get(OWN_ID_FIELD[account.channel], "")),
        verify_token=account.webhook_secret,
        app_secret=app_secret,
        client=client,
    )


def _prepare(channel: Channel) -> Callable[[Mapping[str, str]], dict[str, Any]]:
    """The page / Instagram id is a number: a page name or URL pasted instead is refused at once."""
    name = OWN_ID_FIELD[channel]

    def prepare(values: Mapping[str, str]) -> dict[str, Any]:
        own_id = values.get(name, "").strip()
        if not own_id.isdigit() or not own_id.isascii():
            raise Invalid(N_("Enter the numeric ID, not a name or an address."), field=name)
        return {**values, name: own_id}

    return prepare


_TOKEN = Field(
    "page_access_token",
    N_("Page access token"),
    secret=True,
    help=N_(
        "A long-lived Page access token with the pages_messaging permission (Meta app, Messenger settings)."
    ),
)
_APP_SECRET = Field(
    "app_secret",
    N_("App secret"),
    secret=True,
    help=N_("Meta app dashboard, App settings, Basic: proves that webhooks come from Meta."),
)
_WEBHOOK_NOTE = N_(
    "Meta cannot be told the webhook address through its API: after saving, paste the callback URL and "
    "the verify token shown for this account into the Webhooks settings of your Meta app."
)

MESSENGER = Provider(
    channel=Channel.MESSENGER,
    title="Facebook Messenger",
    build=build,
    fields=(
        Field(
            "page_id", N_("Page ID"), help=N_("The numeric ID of the Facebook Page (Page settings, About).")
        ),
        _TOKEN,
        _APP_SECRET,
    ),
    manual_webhook=True,
    shows_verify_token=True,
    prepare=_prepare(Channel.MESSENGER),
    icon="brand-messenger",
    notes=(
        _WEBHOOK_NOTE,
        N_(
            "Subscribe the Page object's messages, message_echoes, message_deliveries, message_reads and "
            "messaging_postbacks fields in the Meta app dashboard."
        ),
    ),
)

INSTAGRAM = Provider(
    channel=Channel.INSTAGRAM,
    title="Instagram",
    build=build,
    fields=(
        Field(
            "instagram_id",
            N_("Instagram account ID"),
            help=N_("The ID of the Instagram professional account linked to your Facebook Page."),
        ),
        Field(
            _TOKEN.name,
            _TOKEN.label,
            secret=True,
            help=N_(
                "A Page access token of the linked Facebook Page, "
                "with the instagram_manage_messages permission."
            ),
        ),
        _APP_SECRET,
    ),
    manual_webhook=True,
    shows_verify_token=True,
    prepare=_prepare(Channel.INSTAGRAM),
    icon="brand-instagram",
    notes=(
        _WEBHOOK_NOTE,
        N_(
            "Subscribe the Instagram object's messages, messaging_seen and messaging_postbacks fields in the "
            "Meta app dashboard."
        ),
    ),
)
