"""A fake SMTP submission server: aiosmtpd's `SMTP` protocol served on 127.0.0.1 from the test's own event
loop (no thread), with AUTH PLAIN / LOGIN against one user name and password (over plain text, as a test
allows), recording every accepted message (envelope and parsed message).

Failures on demand, answered at the SMTP step they name: `fail("RCPT", 450, times=2)` (greylisting),
`fail("DATA", 554, "5.7.1 Message rejected as spam")`, `fail("MAIL", 421)`; `drop("DATA")` hangs up
instead of answering.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USERNAME = "credite@banca-test.md"
PASSWORD = "smtp-secret-9f3a"
_TEXTS = {
    421: "4.3.2 Service not available, closing transmission channel",
    450: "4.2.0 Greylisted, please try again later",
    451: "4.3.0 Temporary server error",
    452: "4.3.1 Insufficient system storage",
    535: "5.7.8 Username and Password not accepted",
    550: "5.1.1 The email account that you tried to reach does not exist",
    552: "5.3.4 Message size exceeds fixed limit",
    554: "5.7.1 Message rejected",
}


class _NoLegacyNotice(logging.Filter):
    """aiosmtpd 1.4 sets its deprecated `Session.login_data` itself on every AUTH and then warns about it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in str(record.msg)


logging.getLogger("mail.log").addFilter(_NoLegacyNotice())


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage
    login: str | None


@dataclass
class _Failure:
    stage: str
    code: int
    text: str
    times: int
    drop: bool = False


@dataclass
class FakeSmtp:
    username: str = USERNAME
    password: str = PASSWORD
    messages: list[Received] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=lambda: {"MAIL": 0, "RCPT": 0, "DATA": 0})
    port: int = 0
    _failures: list[_Failure] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _protocols: list[SMTP] = field(default_factory=list)

    def fail(self, stage: str, code: int, text: str | None = None, *, times: int = 1) -> None:
        self._failures.append(_Failure(stage.upper(), code, text or _TEXTS.get(code, "Error"), times))

    def drop(self, stage: str, *, times: int = 1) -> None:
        self._failures.append(_Failure(stage.upper(), 0, "", times, drop=True))

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def _protocol(self) -> SMTP:
        protocol = SMTP(
            self,
            hostname="smtp.banca-test.md",
            authenticator=self._authenticate,
            auth_require_tls=False,  # a test on the loopback; auth_required stays off (see handle_MAIL)
            loop=asyncio.get_running_loop(),
        )
        self._protocols.append(protocol)
        return protocol

    async def close(self) -> None:
        for protocol in self._protocols:
            if protocol.transport is not None:
                protocol.transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.sleep(0)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login.decode() == self.username and auth_data.password.decode() == self.password
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None)

    def _failure(self, stage: str, server: SMTP) -> str | None:
        self.attempts[stage] += 1
        for failure in self._failures:
            if failure.stage == stage:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                if failure.drop:
                    if server.transport is not None:
                        server.transport.close()
                    return "421 4.4.2 Connection dropped"
                return f"{failure.code} {failure.text}"
        return None

    # aiosmtpd handler hooks

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.password and not session.authenticated:
            return "530 5.7.0 Authentication required"
        failure = self._failure("MAIL", server)
        if failure:
            return failure
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        failure = self._failure("RCPT", server)
        if failure:
            return failure
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        failure = self._failure("DATA", server)
        if failure:
            return failure
        data = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(data)
        assert isinstance(message, EmailMessage)
        login = session.auth_data if isinstance(session.auth_data, str) else None
        self.messages.append(
            Received(envelope.mail_from or "", list(envelope.rcpt_tos), data, message, login)
        )
        return "250 2.0.0 OK queued as FAKE" + str(len(self.messages))
