"""Viber as the admin page and the hub see it: the bot's authentication token; the account's name is the
sender name Viber shows above every message (28 characters at most)."""

from __future__ import annotations

from channels.provider_spec import AccountData, Field, Provider
from channels.viber.adapter import ViberAdapter
from channels.viber.client import ViberClient
from switchboard.errors import N_
from switchboard.settings import Settings


def build(account: AccountData, settings: Settings) -> ViberAdapter:
    token = account.secrets.get("token", "")
    client = ViberClient(token, settings.viber_api_base)
    return ViberAdapter(str(account.id), token, account.name, client)


PROVIDER = Provider(
    channel=ViberAdapter.channel,
    title="Viber",
    icon="brand-viber",
    build=build,
    fields=(
        Field(
            "token",
            N_("Authentication token"),
            secret=True,
            help=N_(
                "From the Viber Admin Panel, or in Viber: More → Settings → Bots → Edit info → Your app key."
            ),
        ),
    ),
    notes=(
        N_(
            "The account's name is shown to customers as the sender of every message (28 characters at most)."
        ),
        N_("Viber fetches the files you send from the hub itself: set the hub's public https address first."),
    ),
)
