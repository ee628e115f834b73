"""Channel accounts: one row per connected bot, number, page or mailbox.

`config` holds what may be shown (bot username, phone number); `secrets` holds the tokens, encrypted with
`channels.secrets.SecretBox`; `webhook_secret` is the random value the provider echoes back (Telegram's
secret-token header) so that a webhook can be told from a forgery.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)  # 43 characters of [A-Za-z0-9_-], as Telegram allows


class ChannelAccount(Base):
    __tablename__ = "channel_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="SET NULL"))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets: Mapped[str] = mapped_column(Text, default="")
    webhook_secret: Mapped[str] = mapped_column(String(64), default=new_webhook_secret)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:  # never the secrets
        return f"ChannelAccount(id={self.id!r}, channel={self.channel!r}, name={self.name!r})"
