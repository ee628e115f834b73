"""Twilio test fixtures: the fake REST API, the app pointed at it, a WhatsApp and an SMS account on the same
Twilio number, and helpers that post webhooks signed as Twilio signs them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import accounts as channel_accounts
from channels.accounts_model import ChannelAccount
from channels.model import Channel
from channels.secrets import SecretBox
from channels.twilio.provider import prepare
from switchboard.app import build_app
from switchboard.audit import SYSTEM
from switchboard.settings import Settings
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, sign

FIXTURES = Path(__file__).parent / "fixtures"
PUBLIC = "https://hub.example.md"
NUMBER = "+37322123456"  # the business: one Twilio number for SMS and WhatsApp
CUSTOMER = "+37369123456"
TEMPLATES = (
    "Reminder | HX" + "1a" * 16 + " | Bună ziua, {{1}}! Rata de {{2}} lei este scadentă mâine.\n"
    "# a comment line\n"
    "Offer | HX" + "2b" * 16 + " | Avem o ofertă nouă pentru dumneavoastră."
)


def fixture(name: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    server = FakeTwilio()
    await server.start()
    server.add_number(NUMBER)
    yield server
    await server.close()


@pytest.fixture
def tw_settings(settings: Settings, fake: FakeTwilio) -> Settings:
    return settings.model_copy(
        update={"twilio_api_base": fake.base_url, "public_url": PUBLIC, "jobs_backoff_base_seconds": 0.01}
    )


@pytest.fixture
async def tw_app(tw_settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> web.Application:
    return build_app(tw_settings)


@pytest.fixture
async def tw_client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tw_app: web.Application
) -> TestClient:
    return await aiohttp_client(tw_app)


async def make_account(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, channel: Channel, **values: str
) -> ChannelAccount:
    form = {"account_sid": ACCOUNT_SID, "phone": NUMBER, **values}
    async with sessions() as db, db.begin():
        return await channel_accounts.create_account(
            db,
            SYSTEM,
            SecretBox(settings.secret),
            channel=channel,
            name=f"Credit Expres {channel.value}",
            secrets={"auth_token": AUTH_TOKEN},
            config=prepare(form),
        )


@pytest.fixture
async def whatsapp(sessions: async_sessionmaker[AsyncSession], tw_settings: Settings) -> ChannelAccount:
    return await make_account(sessions, tw_settings, Channel.WHATSAPP, templates=TEMPLATES)


@pytest.fixture
async def sms(sessions: async_sessionmaker[AsyncSession], tw_settings: Settings) -> ChannelAccount:
    return await make_account(sessions, tw_settings, Channel.SMS)


@pytest.fixture(params=[Channel.WHATSAPP, Channel.SMS], ids=["whatsapp", "sms"])
async def account(
    request: pytest.FixtureRequest, sessions: async_sessionmaker[AsyncSession], tw_settings: Settings
) -> ChannelAccount:
    """Each test that takes `account` runs once for a WhatsApp account and once for an SMS account."""
    channel = Channel(request.param)
    extra = {"templates": TEMPLATES} if channel is Channel.WHATSAPP else {}
    return await make_account(sessions, tw_settings, channel, **extra)


def hook_url(account: ChannelAccount) -> str:
    return f"{PUBLIC}/webhooks/{account.channel}/{account.id}"


@dataclass
class Answer:
    status: int
    text: str
    content_type: str

    def json(self) -> Any:
        return json.loads(self.text)


async def post_form(
    client: TestClient,
    account: ChannelAccount,
    form: dict[str, str] | bytes,
    *,
    signature: str | None = "right",
    token: str = AUTH_TOKEN,
) -> Answer:
    """POST a webhook as Twilio does: form-encoded, signed over the public URL it called and the form's
    parameters (for a raw body: the parameters a lenient reading finds in it)."""
    body = form if isinstance(form, bytes) else urlencode(form).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature == "right":
        params = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
        headers["X-Twilio-Signature"] = sign(hook_url(account), params, token)
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    response = await client.post(f"/webhooks/{account.channel}/{account.id}", data=body, headers=headers)
    return Answer(response.status, await response.text(), response.content_type)


def as_channel(form: dict[str, str], channel: str) -> dict[str, str]:
    """A fixture of one channel as the other would send it (SMS From is the bare number)."""
    changed = dict(form)
    for key in ("From", "To"):
        bare = changed[key].removeprefix("whatsapp:")
        changed[key] = f"whatsapp:{bare}" if channel == Channel.WHATSAPP else bare
    if channel == Channel.SMS:
        for key in ("ProfileName", "WaId", "MessageType", "ReferralNumMedia"):
            changed.pop(key, None)
    return changed


def inbound(account: ChannelAccount, kind: str = "text") -> dict[str, str]:
    """The documented inbound form of this account's channel."""
    return fixture(f"{account.channel}_{kind}")
