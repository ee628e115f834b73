"""Every provider the hub speaks, by channel: the admin page, the webhook endpoint and the senders are
written once against this table (`channels.provider_spec.Provider`)."""

from __future__ import annotations

from channels.email.provider import PROVIDER as EMAIL
from channels.meta.provider import INSTAGRAM, MESSENGER
from channels.model import Channel
from channels.provider_spec import Provider
from channels.telegram.provider import PROVIDER as TELEGRAM
from channels.twilio.provider import SMS, WHATSAPP
from channels.viber.provider import PROVIDER as VIBER

PROVIDERS: dict[Channel, Provider] = {
    p.channel: p for p in (TELEGRAM, VIBER, WHATSAPP, SMS, MESSENGER, INSTAGRAM, EMAIL)
}


def provider_of(channel: Channel | str) -> Provider | None:
    try:
        return PROVIDERS.get(Channel(channel))
    except ValueError:
        return None
