"""The job that brings an inbound attachment from the provider into the file store.

Provider URLs expire (Twilio, Meta, Viber) or need the bot's token (Telegram), so a message's media are
fetched soon after it arrives, by a job: a provider that is down is retried with backoff, a file over the size
limit is refused for good. The fetch itself is a callable registered by the composition root
(`Fetcher`: channel, account id, url, size limit → bytes and content type), so the inbox never imports a
provider's SDK. Each attachment is replaced by its stored form once saved; the agents' screens get an
`inbox.status` event to show it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.model import Channel
from inbox.models import Conversation, Message
from inbox.service import MEDIA_JOB, Inbox, attachment_of, event_payload
from switchboard.errors import DomainError
from switchboard.files import FileStore
from switchboard.jobs import JobContext, JobRegistry, PermanentJobError

log = logging.getLogger(__name__)

Fetcher = Callable[[Channel, str, str, int], Awaitable[tuple[bytes, str | None]]]


class MediaFetch:
    def __init__(self, inbox: Inbox, files: FileStore, fetch: Fetcher) -> None:
        self.inbox = inbox
        self.files = files
        self.fetch = fetch

    def register(self, registry: JobRegistry) -> None:
        registry.add(MEDIA_JOB, self.run)

    async def run(self, context: JobContext, payload: dict[str, Any]) -> None:
        message_id = int(payload["message_id"])
        async with self.inbox.sessions() as session:
            message = await session.get(Message, message_id)
        if message is None or not message.channel:
            return
        channel = Channel(message.channel)
        stored: dict[int, dict[str, Any]] = {}
        try:
            for index, attachment in enumerate(message.attachments or []):
                url = attachment.get("url")
                if isinstance(url, str) and url and not attachment.get("stored_path"):
                    stored[index] = await self._fetch_one(channel, message, attachment)
        finally:  # what was fetched before a transient failure is kept; the retry fetches the rest
            if stored:
                await self._save(message_id, stored)

    async def _fetch_one(
        self, channel: Channel, message: Message, attachment: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            data, content_type = await self.fetch(
                channel, message.account_id or "", str(attachment["url"]), self.files.max_bytes
            )
            saved = await self.files.save(
                data, content_type or attachment.get("content_type"), attachment.get("filename")
            )
        except (PermanentJobError, DomainError) as exc:  # too large, a refused type, gone for good
            reason = exc.message if isinstance(exc, DomainError) else str(exc)
            log.warning("an attachment of message %s is not kept: %s", message.id, reason)
            return {**attachment, "url": None, "error": reason[:300]}
        return attachment_of(saved)

    async def _save(self, message_id: int, stored: dict[int, dict[str, Any]]) -> None:
        async with self.inbox.sessions() as session, session.begin():
            message = await session.get(Message, message_id, with_for_update=True)
            if message is None:
                return
            message.attachments = [stored.get(i, a) for i, a in enumerate(message.attachments or [])]
            conversation = await session.get(Conversation, message.conversation_id)
            assert conversation is not None
            payload = event_payload(message, conversation)
        await self.inbox.bus.publish("inbox.status", payload)
