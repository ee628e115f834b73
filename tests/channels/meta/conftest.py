"""Messenger and Instagram accounts against the fake Graph API, and helpers that post signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import accounts as channel_accounts
from channels.accounts_model import ChannelAccount
from channels.meta.adapter import SIGNATURE_HEADER
from channels.model import Channel
from channels.secrets import SecretBox
from switchboard.app import build_app
from switchboard.audit import SYSTEM
from switchboard.settings import Settings
from tests.fakes.meta import FakeGraph

FIXTURES = Path(__file__).parent / "fixtures"
Client = TestClient[web.Request, web.Application]
PAGE_ID = "104816512345678"
IG_ID = "17841400000000001"
PSID = "6789012345678901"
IGSID = "1122334455667788"
PAGE_TOKEN = "EAAGm0PX4ZCpsBAKZBZCx0ZAQpV3fakePageAccessToken0ZCZBvZCZBZBZD"
APP_SECRET = "d3b07384d113edec49eaa6238ad5ff00"
OWN_ID = {Channel.MESSENGER: PAGE_ID, Channel.INSTAGRAM: IG_ID}
CUSTOMER = {Channel.MESSENGER: PSID, Channel.INSTAGRAM: IGSID}


def fixture(name: str, mid: str | None = None) -> dict[str, Any]:
    """A recorded notification; `__MID__` in it stands for the id of a message the hub sent."""
    text = (FIXTURES / f"{name}.json").read_text()
    if mid is not None:
        text = text.replace("__MID__", mid)
    data: dict[str, Any] = json.loads(text)
    return data


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Meta:
    """One connected account: its channel, row and the fixture names of its channel."""

    channel: Channel
    account: ChannelAccount

    @property
    def name(self) -> str:
        return self.channel.value

    @property
    def own_id(self) -> str:
        return OWN_ID[self.channel]

    @property
    def customer(self) -> str:
        return CUSTOMER[self.channel]

    @property
    def path(self) -> str:
        return f"/webhooks/{self.channel.value}/{self.account.id}"

    def fixture(self, kind: str, mid: str | None = None) -> dict[str, Any]:
        return fixture(f"{self.channel.value}_{kind}", mid)


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraph]:
    server = FakeGraph(tokens={PAGE_TOKEN}, app_secret=APP_SECRET)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def meta_settings(settings: Settings, fake: FakeGraph) -> Settings:
    return settings.model_copy(
        update={
            "graph_api_base": fake.base_url,
            "graph_api_version": fake.version,
            "jobs_backoff_base_seconds": 0.01,
        }
    )


@pytest.fixture
async def meta_app(meta_settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> web.Application:
    return build_app(meta_settings)


@pytest.fixture
async def meta_client(aiohttp_client: Callable[..., Awaitable[Client]], meta_app: web.Application) -> Client:
    return await aiohttp_client(meta_app)


async def create(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, channel: Channel
) -> ChannelAccount:
    config: dict[str, object] = (
        {"page_id": PAGE_ID, "name": "Credit Expres"}
        if channel is Channel.MESSENGER
        else {"instagram_id": IG_ID, "username": "credit.expres"}
    )
    async with sessions() as db, db.begin():
        return await channel_accounts.create_account(
            db,
            SYSTEM,
            SecretBox(settings.secret),
            channel=channel,
            name=f"Credit Expres {channel.value}",
            secrets={"page_access_token": PAGE_TOKEN, "app_secret": APP_SECRET},
            config=config,
        )


@pytest.fixture(params=[Channel.MESSENGER, Channel.INSTAGRAM], ids=["messenger", "instagram"])
async def meta(
    request: pytest.FixtureRequest, sessions: async_sessionmaker[AsyncSession], meta_settings: Settings
) -> Meta:
    channel: Channel = request.param
    return Meta(channel, await create(sessions, meta_settings, channel))


@pytest.fixture
async def messenger(sessions: async_sessionmaker[AsyncSession], meta_settings: Settings) -> Meta:
    return Meta(Channel.MESSENGER, await create(sessions, meta_settings, Channel.MESSENGER))


@pytest.fixture
async def instagram(sessions: async_sessionmaker[AsyncSession], meta_settings: Settings) -> Meta:
    return Meta(Channel.INSTAGRAM, await create(sessions, meta_settings, Channel.INSTAGRAM))


async def post_hook(
    client: Client, meta: Meta, body: Any, *, signature: str | None = "right"
) -> tuple[int, str]:
    """POST a notification as Meta does: the raw bytes signed with the app secret (or not, or wrongly)."""
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "right":
        headers[SIGNATURE_HEADER] = sign(data)
    elif signature is not None:
        headers[SIGNATURE_HEADER] = signature
    response = await client.post(meta.path, data=data, headers=headers)
    return response.status, await response.text()
