"""Customer-service windows as the providers define them: how long after the customer's last message a
business may write freely, and what it may still send once that window has closed.

- WhatsApp: 24 hours; afterwards only an approved template (Twilio Content SID with variables).
- Messenger: 24 hours; afterwards a message tag — HUMAN_AGENT up to 7 days after the customer's last
  message, or ACCOUNT_UPDATE / CONFIRMED_EVENT_UPDATE / POST_PURCHASE_UPDATE for those non-promotional
  updates at any time.
- Instagram: 24 hours; afterwards only HUMAN_AGENT, up to 7 days.
Other channels have no window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from channels.model import Channel

DAY = dt.timedelta(hours=24)
HUMAN_AGENT = "HUMAN_AGENT"
HUMAN_AGENT_SPAN = dt.timedelta(days=7)
MESSENGER_TAGS = (HUMAN_AGENT, "ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE")
INSTAGRAM_TAGS = (HUMAN_AGENT,)


class Verdict(StrEnum):
    OPEN = "open"  # free-form text may be sent
    TEMPLATE = "template"  # only an approved template (WhatsApp)
    TAG = "tag"  # only with a message tag (Meta)
    CLOSED = "closed"  # nothing may be sent (the customer never wrote on this channel)


@dataclass(frozen=True)
class Window:
    verdict: Verdict
    closes_at: dt.datetime | None = None  # when the free-form window closes (None: no window)
    tags: tuple[str, ...] = ()  # the message tags allowed now


def takes_templates(channel: Channel | str) -> bool:
    """Whether templates (WhatsApp) or message tags (Meta) mean anything on this channel."""
    return channel in (Channel.WHATSAPP, Channel.MESSENGER, Channel.INSTAGRAM)


def window(channel: Channel | str, last_inbound_at: dt.datetime | None, now: dt.datetime) -> Window:
    """What may be sent to the customer on `channel` now, given when they last wrote there."""
    channel = Channel(channel)
    if not takes_templates(channel):
        return Window(Verdict.OPEN)
    if last_inbound_at is None:
        if channel is Channel.WHATSAPP:
            return Window(Verdict.TEMPLATE)
        tags = tuple(t for t in MESSENGER_TAGS if t != HUMAN_AGENT) if channel is Channel.MESSENGER else ()
        return Window(Verdict.TAG if tags else Verdict.CLOSED, tags=tags)
    closes_at = last_inbound_at + DAY
    if now < closes_at:
        return Window(Verdict.OPEN, closes_at)
    if channel is Channel.WHATSAPP:
        return Window(Verdict.TEMPLATE, closes_at)
    human = now < last_inbound_at + HUMAN_AGENT_SPAN
    allowed = MESSENGER_TAGS if channel is Channel.MESSENGER else INSTAGRAM_TAGS
    tags = tuple(t for t in allowed if t != HUMAN_AGENT or human)
    return Window(Verdict.TAG if tags else Verdict.CLOSED, closes_at, tags)
