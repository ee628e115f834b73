"""Telegram as the admin page and the hub see it: a bot token is all it takes."""

from __future__ import annotations

from channels.provider_spec import AccountData, Field, Provider
from channels.telegram.adapter import TelegramAdapter
from channels.telegram.client import TelegramClient
from switchboard.errors import N_
from switchboard.files import FileStore
from switchboard.settings import Settings


def build(account: AccountData, settings: Settings) -> TelegramAdapter:
    files = FileStore(settings.files_root, settings.max_upload_bytes)
    client = TelegramClient(account.secrets.get("token", ""), settings.telegram_api_base, locate=files.locate)
    return TelegramAdapter(str(account.id), account.webhook_secret, client)


PROVIDER = Provider(
    channel=TelegramAdapter.channel,
    title="Telegram",
    icon="brand-telegram",
    build=build,
    fields=(
        Field(
            "token",
            N_("Bot token"),
            secret=True,
            help=N_("From @BotFather: /newbot, then copy the token it gives you."),
        ),
    ),
)
