"""Sending through the account's SMTP server with aiosmtplib: one connection per message (replies are
few and far between; a kept-open connection would be dropped by the server between them anyway).

aiosmtplib's errors become the hub's by the server's reply code: 5xx (recipient, sender or message refused,
login refused) can never succeed — `PermanentJobError` with the server's text; 4xx (greylisting, mailbox
busy, rate limits), a dropped connection and timeouts are `TransientChannelError`, retried with backoff.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage

import aiosmtplib
from aiosmtplib import (
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from channels.base import TransientChannelError
from channels.email.config import SmtpSecurity
from switchboard.jobs import PermanentJobError

DEFAULT_TIMEOUT = 30.0


class SmtpSender:
    def __init__(
        self,
        host: str,
        port: int,
        security: SmtpSecurity,
        username: str,
        password: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.host = host
        self.port = port
        self.security = security
        self._username = username
        self._password = password
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"SmtpSender({self.host!r}, {self.port}, {self.security.value})"

    def _client(self) -> aiosmtplib.SMTP:
        login = bool(self._password)
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.security is SmtpSecurity.SSL,
            start_tls=self.security is SmtpSecurity.STARTTLS,
            username=self._username if login else None,
            password=self._password if login else None,
            timeout=self._timeout,
        )

    @asynccontextmanager
    async def _connected(self) -> AsyncIterator[aiosmtplib.SMTP]:
        """Connected, secured and logged in as configured; any failure as the hub's error."""
        try:
            async with self._client() as client:
                yield client
        except SMTPException as exc:
            raise self._error(exc) from None
        except (OSError, TimeoutError) as exc:
            raise TransientChannelError(
                f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}"
            ) from None

    async def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> None:
        async with self._connected() as client:
            await client.send_message(message, sender=sender, recipients=recipients)

    async def check(self) -> None:
        """Connect, EHLO, STARTTLS / TLS and log in as configured: what every send will do."""
        async with self._connected() as client:
            await client.ehlo()

    def _error(self, exc: SMTPException) -> Exception:
        where = f"SMTP {self.host}:{self.port}"
        if isinstance(exc, SMTPRecipientsRefused):
            codes = [r.code for r in exc.recipients]
            text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            if codes and min(codes) >= 500:
                return PermanentJobError(f"the recipient was refused: {text}"[:1000])
            return TransientChannelError(f"{where}: the recipient was refused for now: {text}")
        if isinstance(exc, SMTPResponseException):
            text = f"{exc.code} {exc.message}".strip()
            if exc.code >= 500:
                return PermanentJobError(f"{_stage(exc)}: {text}"[:1000])
            return TransientChannelError(f"{where}: {_stage(exc)}: {text}")
        if isinstance(exc, SMTPNotSupported):  # no STARTTLS / AUTH where the account says there is
            return PermanentJobError(f"{where}: {exc.message}")
        if isinstance(exc, SMTPTimeoutError | SMTPServerDisconnected):
            return TransientChannelError(f"{where}: {exc.message or type(exc).__name__}")
        return TransientChannelError(f"{where}: {type(exc).__name__}: {exc.message}")


def _stage(exc: SMTPResponseException) -> str:
    """Which step the server refused, in words an admin can act on."""
    names = {
        "SMTPAuthenticationError": "the SMTP server refused the login",
        "SMTPSenderRefused": "the sender address was refused",
        "SMTPRecipientRefused": "the recipient was refused",
        "SMTPDataError": "the message was refused",
        "SMTPHeloError": "the SMTP server refused the greeting",
        "SMTPConnectResponseError": "the SMTP server refused the connection",
    }
    return names.get(type(exc).__name__, "the SMTP server refused")
