"""One IMAP session through aioimaplib: connect (TLS from the first byte, or plain), LOGIN, SELECT the folder,
then the few commands polling needs — `UID SEARCH UNSEEN`, `UID FETCH` of sizes, headers and whole
messages (`BODY.PEEK[]`, which leaves the message unseen), `UID STORE +FLAGS (\\Seen)`, LOGOUT.

Errors become the hub's: a refused login or folder is a `PermanentJobError` carrying the server's words
(trying again will not help until the admin fixes the account); a connection refused, dropped or timed out
is a `TransientChannelError`. aioimaplib leaves a command waiting when the server hangs up, so every command
here also races the connection-lost callback: a dropped connection fails at once, not after the timeout.

The password never reaches a log: aioimaplib masks it in its debug log only when it appears verbatim, so
a filter drops that log line whatever the password holds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import re
import ssl
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, TypeVar

import aioimaplib  # type: ignore[import-untyped]

from channels.base import TransientChannelError
from switchboard.jobs import PermanentJobError

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0
_SIZE_RE = re.compile(rb"RFC822\.SIZE (\d+)")
_UID_RE = re.compile(rb"UID (\d+)")


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def imap_date(day: dt.date) -> str:
    """RFC 3501's date (`23-Nov-2026`), with English month names whatever the process's locale."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


class _NoLoginLines(logging.Filter):
    """Drops aioimaplib's debug line of the LOGIN command (it may hold the password)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return " LOGIN " not in str(record.msg)


logging.getLogger(aioimaplib.__name__ + ".aioimaplib").addFilter(_NoLoginLines())


def quoted(text: str) -> str:
    """An IMAP quoted string (RFC 3501 section 9)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mailbox_name(folder: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3), quoted: "Clienți" → "Clien&Ahs-i"."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).rstrip(b"=")
            out.append("&" + encoded.replace(b"/", b",").decode("ascii") + "-")
            pending.clear()

    for char in folder:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return quoted("".join(out))


class ImapSession:
    """`async with ImapSession(...) as box:` — logged in, the folder selected; logged out on exit."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        use_ssl: bool,
        username: str,
        password: str,
        folder: str,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.use_ssl = use_ssl
        self.folder = folder
        self._username = username
        self._password = password
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._client: Any = None
        self._lost = asyncio.Event()

    def __repr__(self) -> str:
        return f"ImapSession({self.host!r}, {self.port}, folder={self.folder!r})"

    async def __aenter__(self) -> ImapSession:
        try:
            await self.open()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        context = self._ssl_context
        if self.use_ssl and context is None:
            context = ssl.create_default_context()  # what aioimaplib.IMAP4_SSL would build
        self._client = aioimaplib.IMAP4(
            host=self.host,
            port=self.port,
            timeout=self._timeout,
            conn_lost_cb=self._on_lost,
            ssl_context=context if self.use_ssl else None,
        )
        await self._call(self._client.wait_hello_from_server(), "connecting")
        login = await self._call(self._client.login(quoted(self._username), self._password), "LOGIN")
        if login.result != "OK":
            raise PermanentJobError(f"the IMAP server refused the login: {_text(login)}")
        selected = await self._call(self._client.select(mailbox_name(self.folder)), "SELECT")
        if selected.result != "OK":
            raise PermanentJobError(f"the folder {self.folder!r} cannot be opened: {_text(selected)}")

    async def unseen(self, since: dt.date | None = None) -> list[int]:
        """The UIDs of the unseen messages of the folder (received on or after `since`), oldest first."""
        criteria = ["UNSEEN"] if since is None else ["UNSEEN", "SINCE", imap_date(since)]
        response = await self._ok(self._client.uid_search(*criteria, charset=None), "UID SEARCH")
        uids = {
            int(token)
            for line in response.lines[:-1]
            if isinstance(line, bytes)
            for token in line.split()
            if token.isdigit()
        }
        return sorted(uids)

    async def sizes(self, uids: list[int]) -> dict[int, int]:
        """RFC822.SIZE of each message: read before a message is fetched whole."""
        if not uids:
            return {}
        response = await self._ok(
            self._client.uid("fetch", ",".join(map(str, uids)), "(UID RFC822.SIZE)"), "UID FETCH"
        )
        found: dict[int, int] = {}
        for line in response.lines:
            if not isinstance(line, bytes):
                continue
            uid, size = _UID_RE.search(line), _SIZE_RE.search(line)
            if uid and size:
                found[int(uid.group(1))] = int(size.group(1))
        return found

    async def fetch(self, uid: int) -> bytes | None:
        """The whole message, leaving it unseen; None when it is gone (expunged meanwhile)."""
        return await self._literal(uid, "BODY.PEEK[]")

    async def fetch_header(self, uid: int) -> bytes | None:
        return await self._literal(uid, "BODY.PEEK[HEADER]")

    async def _literal(self, uid: int, item: str) -> bytes | None:
        response = await self._ok(self._client.uid("fetch", str(uid), f"({item})"), "UID FETCH")
        for line in response.lines:
            if isinstance(line, bytearray):  # aioimaplib hands a `{n}` literal over as a bytearray
                return bytes(line)
        return None

    async def mark_seen(self, uid: int) -> None:
        await self._ok(self._client.uid("store", str(uid), "+FLAGS", "(\\Seen)"), "UID STORE")

    async def close(self) -> None:
        """LOGOUT when still connected, then close the socket whatever happened."""
        client, self._client = self._client, None
        if client is None:
            return
        if not self._lost.is_set() and client.get_state() in ("AUTH", "SELECTED", "NONAUTH"):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.logout(), min(self._timeout, 5.0))
        transport = getattr(client.protocol, "transport", None)
        if transport is not None:
            transport.close()
        task = getattr(client, "_client_task", None)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    def _scrub(self, text: str) -> str:
        for secret in (quoted(self._password), self._password):
            if secret and secret != '""':
                text = text.replace(secret, "***")
        return text

    def _on_lost(self, exc: Exception | None) -> None:
        self._lost.set()

    async def _ok(self, call: Awaitable[Any], what: str) -> Any:
        response = await self._call(call, what)
        if response.result != "OK":
            raise TransientChannelError(
                f"the IMAP server answered {what} with {response.result}: {_text(response)}"
            )
        return response

    async def _call(self, call: Awaitable[T], what: str) -> T:
        """Run one aioimaplib call; the connection dropping or the server going quiet fails it."""
        task = asyncio.ensure_future(call)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait(
                {task, lost}, timeout=self._timeout + 5, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            lost.cancel()
        if task in done:
            try:
                return task.result()
            except PermanentJobError:
                raise
            except (OSError, TimeoutError, aioimaplib.AioImapException, EOFError) as exc:
                # before ValueError: a certificate that fails verification is both
                detail = self._scrub(_describe(exc))
                raise TransientChannelError(
                    f"IMAP {self.host}:{self.port}: {what} failed: {detail}"
                ) from None
            except ValueError as exc:  # aioimaplib refuses CR / LF / NUL in an argument (the password)
                raise PermanentJobError(f"IMAP {what}: {self._scrub(str(exc))}") from None
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        why = "closed the connection" if self._lost.is_set() else "did not answer"
        raise TransientChannelError(f"IMAP {self.host}:{self.port}: the server {why} during {what}")


def _text(response: Any) -> str:
    """The server's words from a tagged response (its last line)."""
    lines = [line for line in response.lines if isinstance(line, bytes)]
    text = lines[-1].decode("utf-8", "replace").strip() if lines else ""
    return text[:300] or str(response.result)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aioimaplib.CommandTimeout):
        return "timed out"  # its text would repeat the command, arguments and all
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:300]
