"""A raw RFC 5322 message as the hub reads it (stdlib `email`, `policy.default`): who wrote, what they wrote
(the text/plain part, or text made from the HTML), the sanitised HTML, the files, the thread it belongs to,
and whether a person wrote it at all.

Message ids have one normal form everywhere (inbound external ids, `in_reply_to`, our own `Sent` ids): the
id between the angle brackets, without them (`abc@mail.example`). An id longer than the hub keeps becomes
`sha256:<hex>` — the same way wherever it is seen, so threading still matches.

Pure functions only (no I/O): the adapter runs `parse_email` in a thread, since a large message takes a
while to decode.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses, parseaddr

from channels.email.sanitize import MAX_HTML_CHARS, html_to_text, sanitize_html

MAX_ID = 200  # the inbox's limit on an external id
MAX_ADDRESS = 100  # the inbox's limit on a sender id
MAX_REFERENCES = 20
_ID_RE = re.compile(r"<([^<>]+)>")
_AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_DAEMONS = frozenset({"mailer-daemon", "postmaster"})


class Unreadable(ValueError):
    """The message cannot become an inbox message (no sender address, not a message at all)."""


@dataclass(frozen=True)
class Part:
    """An attachment as it came: its decoded bytes, declared type and file name."""

    data: bytes
    content_type: str
    filename: str


@dataclass(frozen=True)
class Bounce:
    """A delivery status notification: our messages it reports on, and why they failed."""

    original_ids: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class ParsedMail:
    message_id: str  # normal form; a hash of the raw bytes when the message has no Message-ID
    sender: str  # the From address, lower-cased
    sender_name: str | None
    subject: str
    text: str
    html: str | None  # sanitised
    in_reply_to: tuple[str, ...]  # In-Reply-To first, then References newest first
    references: tuple[str, ...]  # as the References header lists them, oldest first
    sent_at: dt.datetime | None
    parts: tuple[Part, ...] = ()
    automatic: str | None = None  # why no person wrote it (auto-reply, bulk, bounce), or None
    bounce: Bounce | None = None


# --- message ids ----------------------------------------------------------------------------------------


def normal_id(value: str) -> str | None:
    """One message id in normal form: `<abc@host>` → `abc@host`; None when there is none."""
    match = _ID_RE.search(value)
    ident = "".join((match.group(1) if match else value).split()).strip("<>")
    if not ident:
        return None
    if len(ident) > MAX_ID:
        return "sha256:" + hashlib.sha256(ident.encode("utf-8", "replace")).hexdigest()
    return ident


def id_list(value: str) -> tuple[str, ...]:
    """Every `<id>` of an In-Reply-To or References header, in order, each once."""
    found: list[str] = []
    for raw in _ID_RE.findall(value):
        ident = normal_id(f"<{raw}>")
        if ident and ident not in found:
            found.append(ident)
    return tuple(found)


def raw_id(raw: bytes) -> str:
    """The stand-in id of a message without a Message-ID: the same bytes always give the same id."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def bracketed(ident: str) -> str | None:
    """An id in normal form as a header writes it; None for the hash stand-ins, which are not ids."""
    return None if ident.startswith("sha256:") or "@" not in ident else f"<{ident}>"


# --- the message ----------------------------------------------------------------------------------------


def parse_email(raw: bytes) -> ParsedMail:
    """Read a whole message; `Unreadable` when it has no sender the inbox can key a contact on."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    sender, name = _sender(message)
    if not sender:
        raise Unreadable("the message has no usable From address")
    message_id = normal_id(header(message, "Message-ID")) or raw_id(raw)
    in_reply_to = id_list(header(message, "In-Reply-To"))
    references = id_list(header(message, "References"))
    thread = tuple(dict.fromkeys((*in_reply_to, *reversed(references))))
    subject = " ".join(header(message, "Subject").split())
    plain = _body_part(message, "plain")
    html_part = _body_part(message, "html")
    text = text_of(plain) if plain is not None else ""
    html_source = text_of(html_part) if html_part is not None else ""
    if not text.strip() and html_source:
        text = html_to_text(html_source)
    extra_text, parts = _attachments(message, {id(plain), id(html_part)})
    if extra_text:
        text = "\n\n".join(t for t in (text.rstrip(), *extra_text) if t)
    html = sanitize_html(html_source) if html_source else None
    if html is not None and (not html or len(html) > MAX_HTML_CHARS):
        html = None
    return ParsedMail(
        message_id=message_id,
        sender=sender,
        sender_name=name,
        subject=subject,
        text=text.strip(),
        html=html,
        in_reply_to=thread[:MAX_REFERENCES],
        references=references[-MAX_REFERENCES:],
        sent_at=_date(message),
        parts=tuple(parts),
        automatic=automatic(message, sender),
        bounce=bounce_of(message, sender),
    )


def parse_headers(raw: bytes) -> EmailMessage:
    """Only the header of a message (what is fetched of one too large to take in whole)."""
    message = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
    assert isinstance(message, EmailMessage)
    return message


def header(message: Message, name: str) -> str:
    """A header's value as text ("" when absent). A header the parser chokes on is read raw: a broken
    header must not make the whole message unreadable."""
    try:
        value = message.get(name)
    except Exception:  # the stdlib header parser raises on some malformed input
        value = None
        for key, raw in message.raw_items():
            if key.lower() == name.lower():
                value = str(raw)
                break
    return str(value) if value is not None else ""


def _sender(message: EmailMessage) -> tuple[str, str | None]:
    try:
        addresses = getattr(message.get("From"), "addresses", ())
    except Exception:
        addresses = ()
    if addresses:
        name, address = str(addresses[0].display_name), str(addresses[0].addr_spec)
    else:
        raw = header(message, "From")
        pairs = getaddresses([raw]) if raw else []
        name, address = pairs[0] if pairs else parseaddr(raw)
    address = address.strip().lower()
    if "@" not in address or len(address) > MAX_ADDRESS or any(c.isspace() for c in address):
        return "", None
    clean_name = " ".join(name.split()).strip("\"' ")
    return address, (clean_name or None)


def _date(message: EmailMessage) -> dt.datetime | None:
    try:
        value = message.get("Date")
        when = getattr(value, "datetime", None)
    except Exception:
        return None
    if not isinstance(when, dt.datetime):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _body_part(message: EmailMessage, subtype: str) -> EmailMessage | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except Exception:
        return None
    return part if isinstance(part, EmailMessage) and part.get_content_subtype() == subtype else None


def text_of(part: Message) -> str:
    """A text part decoded by its charset (utf-8, then latin-1 when the label is wrong or unknown)."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    for candidate in (charset, "utf-8"):
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def _attachments(message: EmailMessage, bodies: set[int]) -> tuple[list[str], list[Part]]:
    """The files of a message, and any further inline text parts (Apple Mail splits the text around an
    inline picture). Inline pictures are files too: the sanitised HTML never loads them."""
    texts: list[str] = []
    parts: list[Part] = []
    for part in _leaves(message):
        if id(part) in bodies:
            continue
        ctype = part.get_content_type()
        filename = _filename(part)
        inline_text = not filename and part.get_content_disposition() != "attachment"
        if ctype == "text/plain" and inline_text:
            texts.append(text_of(part).strip())
            continue
        if ctype == "text/html" and inline_text:
            continue  # an alternative rendering of text we already have
        if ctype.startswith("message/"):
            data = _attached_message(part)
            filename = filename or "message.eml"
        else:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
        if data:
            parts.append(Part(data, ctype, filename or _default_name(ctype)))
    return texts, parts


def _attached_message(part: Message) -> bytes:
    inner = part.get_payload()
    first = inner[0] if isinstance(inner, list) and inner else None
    if not isinstance(first, Message):
        return b""
    try:
        return first.as_bytes()
    except Exception:  # a forwarded message too broken to write out again
        return b""


def _leaves(part: Message) -> list[Message]:
    """The message's parts in order, not descending into attached messages (they are files)."""
    if part.get_content_maintype() == "multipart":
        payload = part.get_payload()
        children = payload if isinstance(payload, list) else []
        return [leaf for child in children if isinstance(child, Message) for leaf in _leaves(child)]
    return [part]


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        return ""
    return " ".join(str(name).split()) if name else ""


def _default_name(content_type: str) -> str:
    major, _, minor = content_type.partition("/")
    return f"{major or 'file'}.{minor or 'bin'}".replace("+", ".")


# --- mail no person wrote -------------------------------------------------------------------------------


def automatic(message: Message, sender: str) -> str | None:
    """Why this message was sent by a machine (RFC 3834 Auto-Submitted, Precedence, the vacation
    headers some servers add, a bounce), or None for a person's mail."""
    auto = header(message, "Auto-Submitted").split(";", 1)[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = header(message, "Precedence").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response"):
        if header(message, name):
            return name
    if _is_report(message) or sender.split("@", 1)[0] in _DAEMONS:
        return "delivery status notification"
    return None


def _is_report(message: Message) -> bool:
    return message.get_content_type() == "multipart/report"


def bounce_of(message: Message, sender: str) -> Bounce | None:
    """A bounce (RFC 3464 delivery status notification, or a mailer-daemon's mail) that reports a failure,
    with the ids of the original messages it quotes. A "delayed" notice is not a failure."""
    if not _is_report(message) and sender.split("@", 1)[0] not in _DAEMONS:
        return None
    ids: list[str] = [*id_list(header(message, "In-Reply-To")), *id_list(header(message, "References"))]
    actions: list[str] = []
    reasons: list[str] = []
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            for block in part.get_payload() if isinstance(part.get_payload(), list) else []:
                if not isinstance(block, Message):
                    continue
                action = header(block, "Action").strip().lower()
                if action:
                    actions.append(action)
                    diagnostic = header(block, "Diagnostic-Code") or header(block, "Status")
                    if action == "failed" and diagnostic:
                        reasons.append(" ".join(diagnostic.split()).removeprefix("smtp; "))
        elif ctype in ("message/rfc822", "message/rfc822-headers", "text/rfc822-headers"):
            original = _original_headers(part)
            if original is not None:
                ident = normal_id(header(original, "Message-ID"))
                if ident:
                    ids.append(ident)
    if actions and "failed" not in actions:
        return None
    originals = tuple(dict.fromkeys(i for i in ids if not i.startswith("sha256:")))
    if not originals:
        return None
    subject = " ".join(header(message, "Subject").split())
    reason = "; ".join(dict.fromkeys(reasons)) or subject or "the message could not be delivered"
    return Bounce(originals, reason[:500])


def _original_headers(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    if isinstance(payload, str):
        return HeaderParser(policy=policy.default).parsestr(text_of(part) or payload)
    return None
