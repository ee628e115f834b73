"""Channel accounts: create, list, find, deactivate; and `Adapters`, the live adapter of each account.

`Adapters` keeps one adapter (with its one HTTP client session) per account, rebuilt when the account's
row changes (`updated_at`, so an edit in another process is seen too) and closed on shutdown. The row is
read again at most every `RECHECK_SECONDS` rather than on every webhook: an edit or a disconnect made in
another process takes effect within that time (in this process, at once).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import media_links
from channels.accounts_model import ChannelAccount
from channels.base import ChannelAdapter
from channels.model import Channel, OutboundMessage, Sent
from channels.provider_spec import AccountData
from channels.providers import provider_of
from channels.secrets import SecretBox, mask
from switchboard import audit
from switchboard.audit import Actor, AuditAction, Category
from switchboard.errors import N_, NotFound
from switchboard.jobs import PermanentJobError
from switchboard.settings import Settings

log = logging.getLogger(__name__)
RECHECK_SECONDS = 5.0
AUDIT_RECORD = "channel_account"


@dataclass(frozen=True)
class AccountView:
    """What the admin page shows of an account: never a secret in full."""

    id: int
    channel: str
    name: str
    active: bool
    config: dict[str, object]
    masked_secrets: dict[str, str]
    created_at: dt.datetime

    @property
    def username(self) -> str:
        return str(self.config.get("username", ""))

    @property
    def masked_token(self) -> str:
        return self.masked_secrets.get("token", "")


def view_of(account: ChannelAccount, box: SecretBox) -> AccountView:
    return AccountView(
        id=account.id,
        channel=account.channel,
        name=account.name,
        active=account.active,
        config=dict(account.config),
        masked_secrets={key: mask(value) for key, value in box.decrypt(account.secrets).items()},
        created_at=account.created_at,
    )


def data_of(account: ChannelAccount, box: SecretBox) -> AccountData:
    return AccountData(
        id=account.id,
        channel=Channel(account.channel),
        name=account.name,
        config=dict(account.config),
        secrets=box.decrypt(account.secrets),
        webhook_secret=account.webhook_secret,
    )


async def list_accounts(session: AsyncSession, channel: Channel | None = None) -> list[ChannelAccount]:
    stmt = select(ChannelAccount).order_by(ChannelAccount.active.desc(), ChannelAccount.name)
    if channel is not None:
        stmt = stmt.where(ChannelAccount.channel == channel.value)
    return list(await session.scalars(stmt))


async def get_account(session: AsyncSession, account_id: int) -> ChannelAccount:
    account = await session.get(ChannelAccount, account_id)
    if account is None:
        raise NotFound(N_("This channel account does not exist."))
    return account


async def create_account(
    session: AsyncSession,
    actor: Actor,
    box: SecretBox,
    *,
    channel: Channel,
    name: str,
    secrets: dict[str, str],
    config: dict[str, object] | None = None,
    branch_id: int | None = None,
) -> ChannelAccount:
    account = ChannelAccount(
        channel=channel.value,
        name=name,
        branch_id=branch_id,
        config=dict(config or {}),
        secrets=box.encrypt(secrets),
    )
    session.add(account)
    await session.flush()
    await audit.record(
        session,
        actor,
        category=Category.ADMIN,
        module="channels",
        action=AuditAction.CREATE,
        record_type=AUDIT_RECORD,
        record_id=account.id,
        changes={"channel": [None, channel.value], "name": [None, name]},
    )
    return account


async def set_active(session: AsyncSession, actor: Actor, account_id: int, active: bool) -> ChannelAccount:
    account = await get_account(session, account_id)
    if account.active != active:
        account.active = active
        await audit.record(
            session,
            actor,
            category=Category.ADMIN,
            module="channels",
            action=AuditAction.UPDATE,
            record_type=AUDIT_RECORD,
            record_id=account.id,
            changes={"active": [not active, active]},
        )
    return account


async def delete_account(session: AsyncSession, actor: Actor, account_id: int) -> None:
    """Remove an account that never worked (the provider refused its webhook right after it was made)."""
    account = await get_account(session, account_id)
    await session.delete(account)
    await audit.record(
        session,
        actor,
        category=Category.ADMIN,
        module="channels",
        action=AuditAction.DELETE,
        record_type=AUDIT_RECORD,
        record_id=account_id,
        changes={"channel": [account.channel, None], "name": [account.name, None]},
    )


async def record_test(session: AsyncSession, actor: Actor, account_id: int, outcome: str) -> None:
    await audit.record(
        session,
        actor,
        category=Category.ADMIN,
        module="channels",
        action=AuditAction.READ,
        record_type=AUDIT_RECORD,
        record_id=account_id,
        detail=f"connection test: {outcome}"[:2000],
    )


# --- the live adapters ------------------------------------------------------------------------------------


class Adapters:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], box: SecretBox, settings: Settings
    ) -> None:
        self.sessions = sessions
        self.box = box
        self.settings = settings
        self._live: dict[int, tuple[dt.datetime, ChannelAdapter]] = {}
        self._checked: dict[int, float] = {}  # when each live adapter's row was last read

    def build(self, account: ChannelAccount) -> ChannelAdapter:
        """A fresh adapter for an account row (the caller closes it). ValueError: bad credentials' shape."""
        return self.build_data(data_of(account, self.box))

    def build_data(self, account: AccountData) -> ChannelAdapter:
        provider = provider_of(account.channel)
        if provider is None:
            raise ValueError(f"no adapter for the {account.channel} channel")
        return provider.build(account, self.settings)

    async def active(self) -> list[ChannelAdapter]:
        """The adapters of every active account (the e-mail poller walks these)."""
        async with self.sessions() as session:
            result = await session.execute(
                select(ChannelAccount.id, ChannelAccount.channel).where(ChannelAccount.active)
            )
            pairs = [(row.id, row.channel) for row in result]
        found = [await self.get(Channel(channel), account_id) for account_id, channel in pairs]
        return [adapter for adapter in found if adapter is not None]

    async def get(self, channel: Channel, account_id: int | str) -> ChannelAdapter | None:
        """The adapter of an active account of this channel, or None."""
        try:
            key = int(account_id)
        except ValueError:
            return None
        live = self._live.get(key)
        now = time.monotonic()
        if live is not None and now - self._checked.get(key, -RECHECK_SECONDS) < RECHECK_SECONDS:
            return live[1] if live[1].channel == channel else None
        async with self.sessions() as session:
            account = await session.get(ChannelAccount, key)
        if account is None or not account.active or account.channel != channel.value:
            await self.forget(key)
            return None
        if live is not None and live[0] == account.updated_at:
            self._checked[key] = now
            return live[1]
        await self.forget(key)
        adapter = self.build(account)
        self._live[key] = (account.updated_at, adapter)
        self._checked[key] = now
        return adapter

    async def forget(self, account_id: int) -> None:
        self._checked.pop(account_id, None)
        live = self._live.pop(account_id, None)
        if live is not None:
            await live[1].close()

    async def close(self) -> None:
        for key in list(self._live):
            await self.forget(key)

    def sender(self, channel: Channel) -> Callable[[OutboundMessage], Awaitable[Sent]]:
        async def send(message: OutboundMessage) -> Sent:
            adapter = await self.get(channel, message.account_id)
            if adapter is None:
                raise PermanentJobError(f"the {channel.value} account {message.account_id} is not connected")
            return await adapter.send(self._with_links(message))

        return send

    def _with_links(self, message: OutboundMessage) -> OutboundMessage:
        """Stored files get a signed public address the provider can fetch (when the hub has one)."""
        base = self.settings.public_url
        if not base or not any(a.stored_path for a in message.attachments):
            return message
        linked = tuple(
            replace(a, url=media_links.public_url(base, self.settings.secret, a)) if a.stored_path else a
            for a in message.attachments
        )
        return replace(message, attachments=linked)

    async def fetch_media(
        self, channel: Channel, account_id: str, url: str, max_bytes: int
    ) -> tuple[bytes, str | None]:
        """For the inbox's media job: an inbound attachment's bytes, through its account's adapter."""
        adapter = await self.get(channel, account_id)
        if adapter is None:
            raise PermanentJobError(f"the {channel.value} account {account_id} is not connected")
        return await adapter.fetch_media(url, max_bytes)
