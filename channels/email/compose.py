"""An agent's reply as an e-mail that threads under the customer's mail in their mail program: subject
"Re: <their subject>", In-Reply-To their Message-ID, References their references plus that id (RFC 5322
3.6.4), and a new Message-ID of our own domain, which is the id the hub keeps for the message.

`reply_to` is what the inbox hands over from the customer's latest mail (its `meta`: "subject",
"message_id", "references", in the normal id form of `parse.py`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from channels.email.parse import MAX_REFERENCES, bracketed, id_list, normal_id

_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|ответ|răspuns)\s*(\[\d+\])?\s*:", re.IGNORECASE)
MAX_SUBJECT = 250


@dataclass(frozen=True)
class OutgoingFile:
    data: bytes
    content_type: str
    filename: str


def reply_subject(subject: str, fallback: str) -> str:
    """ "Re: " once before the customer's subject; `fallback` when there is none to answer."""
    subject = " ".join(subject.split())[:MAX_SUBJECT]
    if not subject:
        return fallback
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}"


def thread_ids(reply_to: Mapping[str, object]) -> tuple[str | None, list[str]]:
    """(the id we answer, the References chain ending with it), in normal form."""
    answered = normal_id(str(reply_to.get("message_id") or ""))
    raw_refs = reply_to.get("references") or ()
    if isinstance(raw_refs, str):
        refs = list(id_list(raw_refs)) or [r for r in (normal_id(raw_refs),) if r]
    elif isinstance(raw_refs, Sequence):
        refs = [r for r in (normal_id(str(item)) for item in raw_refs) if r]
    else:
        refs = []
    chain = [r for r in dict.fromkeys([*refs, *([answered] if answered else [])]) if bracketed(r)]
    return (answered if answered and bracketed(answered) else None), chain[-MAX_REFERENCES:]


def compose(
    *,
    from_address: str,
    from_name: str,
    to: str,
    body: str,
    reply_to: Mapping[str, object],
    fallback_subject: str,
    files: Sequence[OutgoingFile] = (),
    now: dt.datetime | None = None,
) -> tuple[EmailMessage, str]:
    """The message, and its Message-ID in normal form."""
    message = EmailMessage(policy=policy.SMTP)
    local, _, domain = from_address.rpartition("@")
    message["From"] = Address(display_name=from_name, username=local, domain=domain)
    message["To"] = to
    message["Subject"] = reply_subject(str(reply_to.get("subject") or ""), fallback_subject)
    message["Date"] = format_datetime(now or dt.datetime.now(dt.UTC))
    message_id = make_msgid(domain=domain)
    message["Message-ID"] = message_id
    answered, chain = thread_ids(reply_to)
    if answered:
        message["In-Reply-To"] = f"<{answered}>"
    if chain:
        message["References"] = " ".join(f"<{ref}>" for ref in chain)
    message.set_content(body or "", charset="utf-8")
    for file in files:
        maintype, _, subtype = file.content_type.partition("/")
        message.add_attachment(
            file.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=file.filename or "file",
        )
    ident = normal_id(message_id)
    assert ident is not None
    return message, ident
