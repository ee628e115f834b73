"""A fake IMAP4rev1 server (RFC 3501) on 127.0.0.1 for aioimaplib: a real asyncio TCP server speaking the
part of the protocol polling uses.

Greeting, CAPABILITY, LOGIN (atoms or quoted strings; the password is checked), SELECT / EXAMINE,
SEARCH / UID SEARCH (ALL, UNSEEN, SEEN), FETCH / UID FETCH of UID, FLAGS, RFC822.SIZE, BODY[] /
BODY.PEEK[] / BODY.PEEK[HEADER] with literal framing (`BODY[] {n}\\r\\n<n bytes>`; a non-PEEK body sets
\\Seen as servers do), STORE / UID STORE of +FLAGS / -FLAGS / FLAGS (and .SILENT), NOOP, LOGOUT.

Mail is appended raw (`append(raw)` returns its UID); the test reads flags back (`seen(uid)`). Failures
on demand: `refuse_login`, `drop_on("UID FETCH", times=1)` closes the connection when that command
arrives, `hang_on(...)` never answers it, `fail_on(..., "NO ...")` answers it with an error. Serves TLS
from the first byte when started with an `ssl.SSLContext`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import re
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

USERNAME = "credite@banca-test.md"
PASSWORD = 'p@ss "w0rd" \\ secret'
_ANY_STATE = frozenset({"CAPABILITY", "NOOP", "LOGIN"})
_TOKEN_RE = re.compile(r'"((?:[^"\\]|\\.)*)"|(\()|(\))|([^\s()"]+)')


@dataclass
class Mail:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)
    received: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())  # INTERNALDATE


@dataclass
class _Trouble:
    command: str  # "LOGIN", "UID FETCH", "SELECT", …
    action: str  # drop, hang, answer
    times: int
    answer: str = ""


@dataclass
class FakeImap:
    username: str = USERNAME
    password: str = PASSWORD
    folders: dict[str, list[Mail]] = field(default_factory=lambda: {"INBOX": []})
    commands: list[str] = field(default_factory=list)  # "LOGIN", "UID FETCH 3 (BODY.PEEK[])", …
    refuse_login: bool = False
    logins: int = 0
    port: int = 0
    _next_uid: int = 1
    _trouble: list[_Trouble] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _closed: asyncio.Event = field(default_factory=asyncio.Event)

    # --- the test's side -----------------------------------------------------------------------------

    def append(
        self, raw: bytes, folder: str = "INBOX", *, seen: bool = False, received: dt.date | None = None
    ) -> int:
        uid = self._next_uid
        self._next_uid += 1
        mail = Mail(uid, raw, {"\\Seen"} if seen else set())
        if received is not None:
            mail.received = received
        self.folders.setdefault(folder, []).append(mail)
        return uid

    def mail(self, uid: int) -> Mail:
        return next(m for box in self.folders.values() for m in box if m.uid == uid)

    def seen(self, uid: int) -> bool:
        return "\\Seen" in self.mail(uid).flags

    def unsee_all(self) -> None:
        for box in self.folders.values():
            for mail in box:
                mail.flags.discard("\\Seen")

    def drop_on(self, command: str, *, times: int = 1) -> None:
        self._trouble.append(_Trouble(command.upper(), "drop", times))

    def hang_on(self, command: str, *, times: int = 1) -> None:
        self._trouble.append(_Trouble(command.upper(), "hang", times))

    def fail_on(self, command: str, answer: str, *, times: int = 1) -> None:
        self._trouble.append(_Trouble(command.upper(), "answer", times, answer))

    def commands_of(self, prefix: str) -> list[str]:
        return [c for c in self.commands if c.upper().startswith(prefix.upper())]

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        self._closed.set()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # --- the protocol --------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        session = _Session(self, writer)
        try:
            await session.send("* OK [CAPABILITY IMAP4rev1 UIDPLUS] Fake IMAP ready")
            while not writer.is_closing():
                line = await reader.readline()
                if not line:
                    break
                if not await session.handle(line.decode("utf-8", "replace").rstrip("\r\n")):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _trouble_for(self, command: str) -> _Trouble | None:
        for trouble in self._trouble:
            if command.upper().startswith(trouble.command):
                trouble.times -= 1
                if trouble.times <= 0:
                    self._trouble.remove(trouble)
                return trouble
        return None


class _Session:
    def __init__(self, server: FakeImap, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.writer = writer
        self.state = "NONAUTH"
        self.folder: list[Mail] | None = None

    async def send(self, line: str | bytes) -> None:
        self.writer.write((line.encode() if isinstance(line, str) else line) + b"\r\n")
        await self.writer.drain()

    async def handle(self, line: str) -> bool:
        """Answer one command line; False ends the connection."""
        tag, _, rest = line.partition(" ")
        tokens = tokenize(rest)
        if not tag or not tokens:
            await self.send(f"{tag or '*'} BAD empty command")
            return True
        name = str(tokens[0]).upper()
        by_uid = name == "UID" and len(tokens) > 1
        if by_uid:
            name = f"UID {str(tokens[1]).upper()}"
            args = tokens[2:]
        else:
            args = tokens[1:]
        self.server.commands.append(
            "LOGIN" if name == "LOGIN" else " ".join([name, *(_show(a) for a in args)])
        )
        trouble = self.server._trouble_for(name)
        if trouble is not None:
            if trouble.action == "drop":
                self.writer.close()
                return False
            if trouble.action == "hang":
                await self.server._closed.wait()
                return False
            await self.send(f"{tag} {trouble.answer}")
            return True
        handler = {
            "CAPABILITY": self._capability,
            "NOOP": self._noop,
            "LOGIN": self._login,
            "SELECT": self._select,
            "EXAMINE": self._select,
            "SEARCH": self._search,
            "UID SEARCH": self._search,
            "FETCH": self._fetch,
            "UID FETCH": self._fetch,
            "STORE": self._store,
            "UID STORE": self._store,
        }.get(name)
        if name == "LOGOUT":
            await self.send("* BYE Fake IMAP logging out")
            await self.send(f"{tag} OK LOGOUT completed")
            return False
        if handler is None:
            await self.send(f"{tag} BAD unknown command {name}")
            return True
        if name not in _ANY_STATE and self.state == "NONAUTH":
            await self.send(f"{tag} BAD not logged in")
            return True
        if name not in _ANY_STATE | {"SELECT", "EXAMINE"} and self.folder is None:
            await self.send(f"{tag} BAD no folder selected")
            return True
        await handler(tag, args, by_uid)
        return True

    async def _capability(self, tag: str, args: list[Token], by_uid: bool) -> None:
        await self.send("* CAPABILITY IMAP4rev1 UIDPLUS")
        await self.send(f"{tag} OK CAPABILITY completed")

    async def _noop(self, tag: str, args: list[Token], by_uid: bool) -> None:
        await self.send(f"{tag} OK NOOP completed")

    async def _login(self, tag: str, args: list[Token], by_uid: bool) -> None:
        self.server.logins += 1
        if len(args) != 2 or not all(isinstance(a, str) for a in args):
            await self.send(f"{tag} BAD LOGIN takes a user name and a password")
            return
        user, password = args
        if self.server.refuse_login or user != self.server.username or password != self.server.password:
            await self.send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)")
            return
        self.state = "AUTH"
        await self.send(f"{tag} OK [CAPABILITY IMAP4rev1 UIDPLUS] {user} authenticated (Success)")

    async def _select(self, tag: str, args: list[Token], by_uid: bool) -> None:
        name = args[0] if args and isinstance(args[0], str) else ""
        folder = next((box for key, box in self.server.folders.items() if _same(key, name)), None)
        if folder is None:
            self.folder = None
            await self.send(f"{tag} NO [NONEXISTENT] Unknown Mailbox: {name} (Failure)")
            return
        self.folder = folder
        unseen = [i for i, m in enumerate(folder, 1) if "\\Seen" not in m.flags]
        await self.send("* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen)")
        await self.send("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen \\*)] Flags")
        await self.send("* OK [UIDVALIDITY 3857529045] UIDs valid")
        await self.send(f"* {len(folder)} EXISTS")
        await self.send("* 0 RECENT")
        if unseen:
            await self.send(f"* OK [UNSEEN {unseen[0]}] first unseen")
        await self.send(f"* OK [UIDNEXT {self.server._next_uid}] Predicted next UID")
        await self.send(f"{tag} OK [READ-WRITE] {name} selected. (Success)")

    async def _search(self, tag: str, args: list[Token], by_uid: bool) -> None:
        assert self.folder is not None
        words = [str(a).upper() for a in args if isinstance(a, str)]
        if words[:1] == ["CHARSET"]:
            words = words[2:]
        since: dt.date | None = None
        if "SINCE" in words:
            at = words.index("SINCE")
            try:
                since = dt.datetime.strptime(words[at + 1].title(), "%d-%b-%Y").date()
            except (IndexError, ValueError):
                await self.send(f"{tag} BAD SINCE takes a date such as 1-Feb-1994")
                return
            del words[at : at + 2]
        if any(w not in {"ALL", "UNSEEN", "SEEN"} for w in words):
            await self.send(f"{tag} BAD this fake searches only ALL, SEEN, UNSEEN and SINCE")
            return
        found = []
        for seq, mail in enumerate(self.folder, 1):
            seen = "\\Seen" in mail.flags
            if ("UNSEEN" in words and seen) or ("SEEN" in words and not seen):
                continue
            if since is not None and mail.received < since:
                continue
            found.append(mail.uid if by_uid else seq)
        await self.send("* SEARCH" + "".join(f" {n}" for n in found))
        await self.send(f"{tag} OK SEARCH completed (Success)")

    def _selected(self, spec: str, by_uid: bool) -> list[tuple[int, Mail]]:
        assert self.folder is not None
        numbered = list(enumerate(self.folder, 1))
        if not numbered:
            return []
        highest = numbered[-1][1].uid if by_uid else numbered[-1][0]
        wanted: set[int] = set()
        for piece in spec.split(","):
            low, _, high = piece.partition(":")
            a = highest if low == "*" else int(low)
            b = a if not high else (highest if high == "*" else int(high))
            wanted.update(range(min(a, b), max(a, b) + 1))
        return [(seq, m) for seq, m in numbered if (m.uid if by_uid else seq) in wanted]

    async def _fetch(self, tag: str, args: list[Token], by_uid: bool) -> None:
        if len(args) < 2 or not isinstance(args[0], str):
            await self.send(f"{tag} BAD FETCH takes a message set and items")
            return
        items = [str(i).upper() for i in (args[1] if isinstance(args[1], list) else args[1:])]
        if by_uid and "UID" not in items:
            items.insert(0, "UID")
        for seq, mail in self._selected(args[0], by_uid):
            out = b""
            for item in items:
                if item == "UID":
                    out += f"UID {mail.uid} ".encode()
                elif item == "FLAGS":
                    out += f"FLAGS ({' '.join(sorted(mail.flags))}) ".encode()
                elif item == "RFC822.SIZE":
                    out += f"RFC822.SIZE {len(mail.raw)} ".encode()
                elif item in ("BODY[]", "BODY.PEEK[]", "RFC822"):
                    name = "RFC822" if item == "RFC822" else "BODY[]"
                    out += f"{name} {{{len(mail.raw)}}}\r\n".encode() + mail.raw + b" "
                    if item != "BODY.PEEK[]":
                        mail.flags.add("\\Seen")
                elif item in ("BODY.PEEK[HEADER]", "BODY[HEADER]", "RFC822.HEADER"):
                    head = _header_of(mail.raw)
                    name = "RFC822.HEADER" if item == "RFC822.HEADER" else "BODY[HEADER]"
                    out += f"{name} {{{len(head)}}}\r\n".encode() + head + b" "
                else:
                    await self.send(f"{tag} BAD this fake cannot fetch {item}")
                    return
            await self.send(f"* {seq} FETCH (".encode() + out.rstrip(b" ") + b")")
        await self.send(f"{tag} OK FETCH completed (Success)")

    async def _store(self, tag: str, args: list[Token], by_uid: bool) -> None:
        if len(args) != 3 or not isinstance(args[0], str) or not isinstance(args[1], str):
            await self.send(f"{tag} BAD STORE takes a message set, an action and flags")
            return
        action = args[1].upper()
        flags = {str(f) for f in (args[2] if isinstance(args[2], list) else [args[2]])}
        for seq, mail in self._selected(args[0], by_uid):
            if action.startswith("+FLAGS"):
                mail.flags |= flags
            elif action.startswith("-FLAGS"):
                mail.flags -= flags
            elif action.startswith("FLAGS"):
                mail.flags = set(flags)
            else:
                await self.send(f"{tag} BAD unknown STORE action {action}")
                return
            if not action.endswith(".SILENT"):
                uid = f"UID {mail.uid} " if by_uid else ""
                await self.send(f"* {seq} FETCH ({uid}FLAGS ({' '.join(sorted(mail.flags))}))")
        await self.send(f"{tag} OK STORE completed (Success)")


Token = str | list["Token"]


def tokenize(text: str) -> list[Token]:
    """Atoms, quoted strings (unescaped) and parenthesised lists of them."""
    stack: list[list[Token]] = [[]]
    for quoted, opening, closing, atom in _TOKEN_RE.findall(text):
        if opening:
            stack.append([])
        elif closing:
            if len(stack) > 1:
                inner = stack.pop()
                stack[-1].append(inner)
        elif atom:
            stack[-1].append(atom)
        else:
            stack[-1].append(re.sub(r"\\(.)", r"\1", quoted))
    return stack[0]


def _show(token: Token) -> str:
    return "(" + " ".join(_show(t) for t in token) + ")" if isinstance(token, list) else token


def _same(folder: str, name: str) -> bool:
    return folder.upper() == name.upper() if "INBOX" in (folder.upper(), name.upper()) else folder == name


def _header_of(raw: bytes) -> bytes:
    for separator in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(separator)
        if at >= 0:
            return raw[: at + len(separator)]
    return raw


def self_signed_context(hostname: str = "127.0.0.1") -> ssl.SSLContext:
    """A server TLS context with a throwaway self-signed certificate (which no client trusts)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(hostname))]), False)
        .sign(key, hashes.SHA256())
    )
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_path, key_path)
    return context
