"""E-mail as the hub sees it: `poll()` reads the mailbox, `send()` answers through SMTP.

Polling (RFC 3501): LOGIN, SELECT, `UID SEARCH UNSEEN`, then for each message, oldest first and at most
`batch` per round: `UID FETCH (BODY.PEEK[])` (it stays unseen), parse, hand the event to the inbox and
only once that returned `UID STORE +FLAGS (\\Seen)`. So a crash or a failed `handle()` leaves the mail
unseen and it is read again next round (stored once: its Message-ID is its external id), while a message
that cannot be read at all is logged and marked seen, so it never blocks the mailbox. A message that keeps
failing in `handle()` moves to the back of the queue, behind the new ones.

What comes in:
- a person's mail → `InboundMessage`: external id the Message-ID (normal form, see `parse.py`), the sender
  the From address in lower case, the body the text part (or text made from the HTML), `meta` the subject,
  message id, references and sanitised HTML, `in_reply_to` the ids it answers, attachments saved into the
  hub's file store at once (a part over the size limit, or of a type the store refuses, is left out with a
  note in the body);
- a bounce that quotes one of our messages → `DeliveryUpdate(FAILED)` with the server's diagnostic;
- auto-replies, bulk and list mail, other bounces → not stored, logged. Stored, they would open and reopen
  conversations, count as unread work, and make contacts and leads of mailer-daemons and no-reply
  addresses; an out-of-office note carries nothing an agent has to act on.
- mail from the account's own address (a copy of what we sent) → skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from channels.base import ChannelAdapter, Event, EventHandler
from channels.email.compose import OutgoingFile, compose
from channels.email.config import MailboxConfig
from channels.email.imap import ImapSession
from channels.email.parse import (
    ParsedMail,
    Part,
    Unreadable,
    header,
    id_list,
    normal_id,
    parse_email,
    parse_headers,
    raw_id,
)
from channels.email.smtp import SmtpSender
from channels.model import (
    Attachment,
    Channel,
    DeliveryStatus,
    DeliveryUpdate,
    InboundMessage,
    MessageKind,
    OutboundMessage,
    Sent,
)
from switchboard.errors import DomainError, NotFound
from switchboard.files import FileStore
from switchboard.jobs import PermanentJobError

log = logging.getLogger(__name__)

BATCH = 50
MAX_BODY = 10_000  # the inbox's limit on a message body
MIN_MESSAGE_BYTES = 30 * 1024 * 1024
_GIVE_UP_AFTER = 3  # handle() failing for this many messages in a row: the hub is in trouble, stop the round
_KINDS = {"image": MessageKind.IMAGE, "audio": MessageKind.AUDIO, "video": MessageKind.VIDEO}


@dataclass(frozen=True)
class _Read:
    """What one mailbox message became: the events to hand over and the files already stored."""

    events: tuple[Event, ...]
    stored: tuple[str, ...] = ()


class EmailAdapter(ChannelAdapter):
    channel = Channel.EMAIL
    polls = True

    def __init__(
        self,
        account_id: str,
        config: MailboxConfig,
        files: FileStore,
        *,
        batch: int = BATCH,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(account_id)
        self.config = config
        self.files = files
        self.batch = batch
        self.timeout = timeout
        # raw messages past this are not fetched whole: their header becomes a note
        self.max_message_bytes = max(MIN_MESSAGE_BYTES, 3 * files.max_bytes)
        self.smtp = SmtpSender(
            config.smtp_host,
            config.smtp_port,
            config.smtp_security,
            config.username,
            config.password,
            timeout=timeout,
        )
        self._failures: dict[int, int] = {}
        self._polling = asyncio.Lock()

    def __repr__(self) -> str:
        return f"EmailAdapter(account_id={self.account_id!r}, address={self.config.address!r})"

    def _imap(self) -> ImapSession:
        c = self.config
        return ImapSession(
            c.imap_host,
            c.imap_port,
            use_ssl=c.imap_ssl,
            username=c.username,
            password=c.password,
            folder=c.folder,
            timeout=self.timeout,
        )

    # --- in ------------------------------------------------------------------------------------------

    async def poll(self, handle: EventHandler) -> None:
        async with self._polling, self._imap() as box:
            unseen = await box.unseen(self.config.since)
            self._failures = {uid: n for uid, n in self._failures.items() if uid in unseen}
            batch = sorted(unseen, key=lambda uid: (self._failures.get(uid, 0), uid))[: self.batch]
            sizes = await box.sizes(batch)
            failed_in_a_row = 0
            for uid in batch:
                read = await self._read(box, uid, sizes.get(uid))
                if read is None:
                    await box.mark_seen(uid)
                    continue
                try:
                    for event in read.events:
                        await handle(event)
                except Exception as exc:
                    self._failures[uid] = self._failures.get(uid, 0) + 1
                    log.warning(
                        "e-mail uid %s of account %s was not stored (left unseen): %s",
                        uid,
                        self.account_id,
                        f"{type(exc).__name__}: {exc}"[:300],
                    )
                    await self._discard(read.stored)
                    failed_in_a_row += 1
                    if failed_in_a_row >= _GIVE_UP_AFTER:
                        return
                    continue
                failed_in_a_row = 0
                self._failures.pop(uid, None)
                await box.mark_seen(uid)

    async def _read(self, box: ImapSession, uid: int, size: int | None) -> _Read | None:
        """The events one message makes; None when there are none (unreadable, automatic, our own)."""
        if size is not None and size > self.max_message_bytes:
            raw = await box.fetch_header(uid)
            return self._too_large(uid, raw, size) if raw is not None else None
        raw = await box.fetch(uid)
        if raw is None:
            return None
        try:
            mail = await asyncio.to_thread(parse_email, raw)
        except Unreadable as exc:
            log.warning("e-mail uid %s of account %s skipped: %s", uid, self.account_id, exc)
            return None
        except Exception as exc:
            log.warning(
                "e-mail uid %s of account %s cannot be parsed, skipped: %s",
                uid,
                self.account_id,
                f"{type(exc).__name__}: {exc}"[:300],
            )
            return None
        return await self._events(uid, mail)

    async def _events(self, uid: int, mail: ParsedMail) -> _Read | None:
        if mail.sender == self.config.address.lower():
            log.info("e-mail uid %s of account %s is from our own address, skipped", uid, self.account_id)
            return None
        if mail.bounce is not None:
            log.info(
                "bounce for %s in account %s: %s",
                mail.bounce.original_ids,
                self.account_id,
                mail.bounce.reason,
            )
            return _Read(
                tuple(
                    DeliveryUpdate(
                        channel=Channel.EMAIL,
                        account_id=self.account_id,
                        external_id=original,
                        status=DeliveryStatus.FAILED,
                        reason=mail.bounce.reason,
                        at=mail.sent_at,
                    )
                    for original in mail.bounce.original_ids
                )
            )
        if mail.automatic is not None:
            log.info(
                "automatic e-mail from %s in account %s not stored (%s): %s",
                mail.sender,
                self.account_id,
                mail.automatic,
                mail.subject[:100],
            )
            return None
        attachments, notes = await self._store(mail.parts)
        body = "\n\n".join(part for part in (mail.text, *notes) if part)
        if not body and not attachments:
            body = mail.subject
        return _Read(
            (self._inbound(mail, _fit(body), attachments),),
            tuple(a.stored_path for a in attachments if a.stored_path),
        )

    def _inbound(self, mail: ParsedMail, body: str, attachments: list[Attachment]) -> InboundMessage:
        kind = MessageKind.TEXT
        if not body.strip() and attachments:
            kind = _KINDS.get(attachments[0].content_type.split("/", 1)[0], MessageKind.FILE)
        meta: dict[str, Any] = {
            "subject": mail.subject,
            "message_id": mail.message_id,
            "references": list(mail.references),
        }
        if mail.html:
            meta["html"] = mail.html
        return InboundMessage(
            channel=Channel.EMAIL,
            account_id=self.account_id,
            external_id=mail.message_id,
            sender_id=mail.sender,
            body=body,
            kind=kind,
            sender_name=mail.sender_name,
            attachments=tuple(attachments),
            sent_at=mail.sent_at,
            meta=meta,
            in_reply_to=mail.in_reply_to,
        )

    async def _store(self, parts: tuple[Part, ...]) -> tuple[list[Attachment], list[str]]:
        """Each part into the file store now (an IMAP message has no URL to fetch it from later)."""
        stored: list[Attachment] = []
        notes: list[str] = []
        for part in parts:
            if len(part.data) > self.files.max_bytes:
                log.info("attachment %r (%d bytes) over the limit, skipped", part.filename, len(part.data))
                notes.append(
                    f"[Attachment “{part.filename}” was not saved: it is larger than "
                    f"{self.files.limit_mb} MB.]"
                )
                continue
            try:
                saved = await self.files.save(part.data, part.content_type, part.filename)
            except DomainError as exc:
                log.info("attachment %r refused by the file store: %s", part.filename, exc.message)
                notes.append(f"[Attachment “{part.filename}” was not saved: {exc.message % exc.params}]")
                continue
            stored.append(Attachment(saved.content_type, saved.filename, saved.size, stored_path=saved.path))
        return stored, notes

    async def _discard(self, paths: tuple[str, ...]) -> None:
        """Files stored for a message the inbox did not take: it will be read, and stored, again."""
        for path in paths:
            with contextlib.suppress(Exception):
                await self.files.delete(path)

    def _too_large(self, uid: int, raw: bytes, size: int) -> _Read | None:
        try:
            head = parse_headers(raw)
        except Exception:
            return None
        name, address = parseaddr(header(head, "From"))
        address = address.strip().lower()
        if "@" not in address or len(address) > 100:
            return None
        subject = " ".join(header(head, "Subject").split())
        message_id = normal_id(header(head, "Message-ID")) or raw_id(raw)
        log.info(
            "e-mail uid %s of account %s is %d bytes: only its header is taken", uid, self.account_id, size
        )
        body = (
            f"[This e-mail is {size // (1024 * 1024)} MB, larger than the hub takes in "
            f"({self.max_message_bytes // (1024 * 1024)} MB): open it in the mailbox.]"
        )
        meta = {
            "subject": subject,
            "message_id": message_id,
            "references": list(id_list(header(head, "References"))),
        }
        thread = (*id_list(header(head, "In-Reply-To")), *reversed(meta["references"]))
        return _Read(
            (
                InboundMessage(
                    channel=Channel.EMAIL,
                    account_id=self.account_id,
                    external_id=message_id,
                    sender_id=address,
                    body=body,
                    sender_name=" ".join(name.split()) or None,
                    meta=meta,
                    in_reply_to=tuple(dict.fromkeys(thread)),
                ),
            )
        )

    # --- out -----------------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> Sent:
        recipient = message.recipient_id.strip()
        _, parsed = parseaddr(recipient)
        if "@" not in parsed or parsed != recipient:
            raise PermanentJobError(f"{recipient!r} is not an e-mail address")
        if not message.body.strip() and not message.attachments:
            raise PermanentJobError("an empty message cannot be sent")
        files = [await self._file(a) for a in message.attachments]
        email, message_id = compose(
            from_address=self.config.address,
            from_name=self.config.display_name,
            to=recipient,
            body=message.body,
            reply_to=message.reply_to,
            fallback_subject=self.config.display_name or self.config.address,
            files=files,
        )
        await self.smtp.send(email, self.config.address, [recipient])
        return Sent(message_id, {"message_id": message_id, "subject": str(email["Subject"])})

    async def _file(self, attachment: Attachment) -> OutgoingFile:
        if not attachment.stored_path:
            raise PermanentJobError(f"the attachment {attachment.filename!r} is not in the file store")
        try:
            path = self.files.locate(attachment.stored_path)
            data = await asyncio.to_thread(path.read_bytes)
        except (NotFound, FileNotFoundError):
            raise PermanentJobError(f"the attachment {attachment.filename!r} is gone") from None
        return OutgoingFile(data, attachment.content_type, attachment.filename)

    async def check(self) -> dict[str, Any]:
        async with self._imap():
            pass
        await self.smtp.check()
        return {"address": self.config.address}


def _fit(body: str) -> str:
    """The inbox refuses bodies past its limit, and a refused mail would be read again every round."""
    if len(body) <= MAX_BODY:
        return body
    note = "\n\n[The rest of this e-mail is too long to show here: open it in the mailbox.]"
    return body[: MAX_BODY - len(note)].rstrip() + note
