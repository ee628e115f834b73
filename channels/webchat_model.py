"""The website chat widgets: one row per `<script>` embed, holding its public key, the origins allowed to
use it and how it looks. The key is public (it sits in the site's HTML), so the origin allow-list is what
keeps other sites from using someone else's widget."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import Boolean, ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow

ANY_ORIGIN = "*"


def new_public_key() -> str:
    return secrets.token_urlsafe(18)  # 24 url-safe characters, 144 random bits


class WebchatWidget(Base):
    __tablename__ = "webchat_widgets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64), unique=True, default=new_public_key)
    name: Mapped[str] = mapped_column(String(120))
    # Exact origins ("https://example.md"); empty refuses every site, ["*"] allows any (development only).
    allowed_origins: Mapped[list[str]] = mapped_column(default=list)
    colour: Mapped[str] = mapped_column(String(7), default="#206bc4")
    greeting: Mapped[str] = mapped_column(String(300), default="")
    language: Mapped[str] = mapped_column(String(5), default="ro")
    position: Mapped[str] = mapped_column(String(5), default="right")  # left, right
    prechat: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
