"""Settings read from `SWITCHBOARD_*` environment variables (and an optional `.env` file).

Secrets are `SecretStr` and URLs with passwords are redacted by `safe_dump()`, so that printing or logging
the effective configuration never leaks them.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from switchboard.redact import redact_url

Locale = Literal["ro", "en", "ru"]
SUPPORTED_LOCALES: tuple[str, ...] = ("ro", "en", "ru")


class Settings(BaseSettings):
    """Every knob of a hub process. The README's configuration table is generated from these fields."""

    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        "sqlite+aiosqlite:///./var/switchboard.db",
        description="SQLAlchemy async URL: `sqlite+aiosqlite:///path` or `postgresql+asyncpg://user@host/db`.",
    )
    data_dir: Path = Field(Path("./var"), description="Where the SQLite file, the secret key and files live.")
    host: str = Field("127.0.0.1", description="Address `serve` listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port `serve` listens on.")
    secret_key: SecretStr | None = Field(
        None,
        description="Key for session cookies and encrypted secrets. Unset: generated once into "
        "`<data_dir>/secret.key`. Set it (same value) on every process behind one load balancer.",
    )
    bus: Literal["memory", "redis"] = Field(
        "memory", description="Event bus: `memory` (one process) or `redis`."
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis for the bus when `bus=redis`.")
    default_locale: Locale = Field("ro", description="UI language before a user picks one (ro, en, ru).")
    log_level: str = Field("INFO", description="Python logging level.")
    auto_migrate: bool = Field(True, description="Apply Alembic migrations when `serve` / `demo` start.")
    run_worker: bool = Field(True, description="Run the durable-jobs worker inside this `serve` process.")
    session_idle_minutes: int = Field(60, ge=1, description="A web session ends after this long unused.")
    session_max_hours: int = Field(
        12, ge=1, description="A web session ends this long after login, used or not."
    )
    cookie_secure: bool = Field(
        False, description="Send the session cookie only over HTTPS (set behind TLS)."
    )
    login_max_failures: int = Field(
        5, ge=1, description="Failed logins before an account locks (one address: 4 times as many)."
    )
    login_lockout_minutes: int = Field(15, ge=1, description="Window and lockout length for failed logins.")
    jobs_concurrency: int = Field(4, ge=1, description="Jobs one worker runs at the same time.")
    jobs_poll_seconds: float = Field(0.5, gt=0, description="How often an idle worker looks for due jobs.")
    jobs_lease_seconds: float = Field(60.0, gt=0, description="A claimed job is re-claimable after this.")
    jobs_max_attempts: int = Field(8, ge=1, description="Attempts before a job is marked dead.")
    jobs_backoff_base_seconds: float = Field(
        2.0, gt=0, description="First retry delay; doubles each attempt."
    )
    jobs_backoff_max_seconds: float = Field(3600.0, gt=0, description="Longest retry delay.")
    metrics_token: SecretStr | None = Field(
        None, description="If set, `/metrics` requires `Authorization: Bearer <token>`."
    )
    default_region: str = Field("MD", description="Region for phone numbers written without a country code.")
    merge_undo_days: int = Field(
        30, ge=0, le=3650, description="A contact merge can be undone for this many days (0: not at all)."
    )
    export_max_rows: int = Field(
        100000, ge=1, le=1_000_000, description="Most rows one export of a filtered list may hold."
    )
    demo: bool = Field(
        False, description="Demo mode: also serve a sample website with the chat widget at `/demo/site`."
    )
    files_dir: Path | None = Field(
        None, description="Where uploaded attachments are stored. Unset: `<data_dir>/files`."
    )
    max_upload_mb: int = Field(20, ge=1, description="Largest attachment one upload may carry, in MiB.")
    import_max_mb: int = Field(
        20, ge=1, le=200, description="Largest CSV or XLSX file an import may upload, in MiB."
    )
    import_batch_rows: int = Field(
        500, ge=10, le=5000, description="Rows an import writes per transaction (a crash resumes after it)."
    )
    public_url: str | None = Field(
        None,
        description="The hub's public HTTPS address, for provider webhooks. "
        "Unset: taken from the admin's request.",
    )
    telegram_api_base: str = Field(
        "https://api.telegram.org", description="Telegram Bot API server (a local Bot API server or a fake)."
    )
    viber_api_base: str = Field("https://chatapi.viber.com/pa", description="Viber REST bot API.")
    twilio_api_base: str = Field(
        "https://api.twilio.com", description="Twilio REST API (WhatsApp and SMS messages)."
    )
    graph_api_base: str = Field(
        "https://graph.facebook.com", description="Meta Graph API (Messenger and Instagram)."
    )
    graph_api_version: str = Field("v21.0", description="Meta Graph API version used in request paths.")
    email_poll_seconds: float = Field(30.0, gt=0, description="How often each IMAP mailbox is checked.")
    routing: bool = Field(
        True,
        description="Route each new conversation with the router (sticky owner, least busy, queue). "
        "Off: it goes to the customer's responsible expert or stays unassigned.",
    )
    routing_tick_seconds: float = Field(
        2.0, gt=0, description="How often the router checks offer timeouts, overflow and absences."
    )
    routing_default_capacity: int = Field(
        5, ge=0, le=50, description="Chats an agent holds at once until a supervisor sets their own capacity."
    )
    routing_wrap_up_seconds: int = Field(
        30,
        ge=0,
        le=3600,
        description="After-call work after a call ends; the agent is online again after it.",
    )
    routing_absence_grace_seconds: int = Field(
        120,
        ge=0,
        description="An agent away or offline this long has their unanswered conversations given to others.",
    )
    routing_give_back: bool = Field(
        True, description="An agent back online gets back the unanswered items taken away for absence."
    )
    routing_idle_away_seconds: int = Field(
        90, ge=15, description="An online agent whose browser stopped signalling this long is set away."
    )
    media_max_mb: int = Field(
        25, ge=1, description="Largest inbound attachment downloaded from a provider, in MiB."
    )
    ami_host: str | None = Field(
        None, description="Asterisk's AMI address. Unset: telephony is off (no AMI connection)."
    )
    ami_port: int = Field(5038, ge=1, le=65535, description="Asterisk's AMI port.")
    ami_username: str = Field("hub", description="AMI user (a `manager.conf` section).")
    ami_secret: SecretStr | None = Field(None, description="AMI user's secret.")
    ami_ping_seconds: float = Field(
        10.0, gt=0, description="AMI watchdog: ping this often; no answer within as long means reconnect."
    )
    ami_reconnect_max_seconds: float = Field(
        30.0, gt=0, description="Longest wait between AMI reconnect attempts (backoff doubles up to it)."
    )
    ami_originate_context: str = Field(
        "outbound",
        pattern=r"^[A-Za-z0-9_-]{1,80}$",
        description="Dialplan context a click-to-call runs in once the agent answers (dials the customer's "
        "E.164 digits without `+`).",
    )
    recordings_dir: Path | None = Field(
        None,
        description="Where the hub sees Asterisk's MixMonitor recordings (shared with the PBX). "
        "Unset: calls carry only the PBX's own path.",
    )
    agi_enabled: bool = Field(
        False, description="Answer Asterisk's `AGI(agi://HUB:PORT/route)`: which endpoint to dial for a call."
    )
    agi_host: str = Field("127.0.0.1", description="Address the FastAGI server listens on.")
    agi_port: int = Field(4573, ge=0, le=65535, description="Port the FastAGI server listens on.")
    agi_budget_ms: int = Field(
        300,
        ge=10,
        le=10000,
        description="Longest a FastAGI routing answer may take; past it the hub answers an empty target "
        "(reason `timeout`) so the dialplan's fallback runs.",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value.startswith(("postgres://", "postgresql://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite://") and not value.startswith("sqlite+aiosqlite://"):
            return "sqlite+aiosqlite://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def files_root(self) -> Path:
        """The effective file store directory."""
        return self.files_dir if self.files_dir is not None else self.data_dir / "files"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def import_max_bytes(self) -> int:
        return self.import_max_mb * 1024 * 1024

    @property
    def media_max_bytes(self) -> int:
        return self.media_max_mb * 1024 * 1024

    @cached_property
    def secret(self) -> bytes:
        """The effective secret key, creating `<data_dir>/secret.key` (mode 0600) on first use."""
        if self.secret_key is not None:
            value = self.secret_key.get_secret_value()
            if len(value) < 32:
                raise ValueError("SWITCHBOARD_SECRET_KEY must be at least 32 characters")
            return value.encode()
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_bytes().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48).encode()
        path.touch(mode=0o600)
        path.write_bytes(key)
        return key

    def safe_dump(self) -> dict[str, Any]:
        """The settings with secrets masked: safe to print or log."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "**********"
            elif name.endswith("_url") and isinstance(value, str):
                value = redact_url(value)
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


def env_name(field: str) -> str:
    return f"SWITCHBOARD_{field.upper()}"
