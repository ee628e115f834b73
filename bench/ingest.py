"""Inbound messages through the real HTTP path into a running hub on PostgreSQL, out of the agent's
WebSocket feed — against a bare aiohttp handler measured in the same run.

Prints (a) accepted webchat messages per second (closed loop), (b) p50/p99 from the POST leaving this
process to the frame arriving on the agent's WebSocket while offering 100 and 300 messages/s (open loop),
(c) the bare aiohttp "hello" throughput and the ratio a/c, then (d) accepted messages per second for each
provider's webhook payload shape (Telegram update, Twilio form, Viber callback, Meta event), each signed as
the provider signs it and each a new customer, with its ratio to (c). Set BENCH_DATABASE_URL to choose the
database; the default creates a fresh database on the local PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import socket
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

import aiohttp
import asyncpg

from bench import _payloads as payloads
from bench._load import run_load, wait_for
from channels import accounts as channel_accounts
from channels.model import Channel
from channels.secrets import SecretBox
from channels.webchat import create_widget
from switchboard import accounts, migrate
from switchboard.audit import SYSTEM
from switchboard.db import create_engine, create_sessionmaker, transaction

HERE = Path(__file__).parent
ORIGIN = "http://shop.bench.example"
RATES = [int(r) for r in os.environ.get("BENCH_RATES", "100,300").split(",")]
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
PASSWORD = "bench-password-123"
SECRET_KEY = "bench-secret-key-" + "x" * 32
WHATSAPP_NUMBER = "+37322123456"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def fresh_database() -> tuple[str, str | None]:
    """The database URL and, when this run created it, its name (dropped at the end)."""
    if url := os.environ.get("BENCH_DATABASE_URL"):
        return url, None
    name = f"sb_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass(frozen=True)
class Seeded:
    widget_key: str
    hooks: dict[str, tuple[str, payloads.Builder]]  # label -> (webhook path, builder)


async def seed(db_url: str) -> Seeded:
    await migrate.upgrade(db_url)
    engine = create_engine(db_url)
    box = SecretBox(SECRET_KEY.encode())
    try:
        async with transaction(create_sessionmaker(engine)) as db:
            await accounts.create_user(db, SYSTEM, username="bench", password=PASSWORD, role="admin")
            widget = await create_widget(db, name="bench", allowed_origins=[ORIGIN])

            async def account(
                channel: Channel, secrets: dict[str, str], config: dict[str, object]
            ) -> tuple[int, str]:
                row = await channel_accounts.create_account(
                    db,
                    SYSTEM,
                    box,
                    channel=channel,
                    name=f"bench {channel.value}",
                    secrets=secrets,
                    config=config,
                )
                return row.id, row.webhook_secret

            tg, tg_secret = await account(Channel.TELEGRAM, {"token": payloads.TELEGRAM_TOKEN}, {})
            vb, _ = await account(Channel.VIBER, {"token": payloads.VIBER_TOKEN}, {})
            wa, _ = await account(
                Channel.WHATSAPP,
                {"auth_token": payloads.TWILIO_TOKEN},
                {"account_sid": payloads.TWILIO_SID, "phone": WHATSAPP_NUMBER, "templates": []},
            )
            fb, _ = await account(
                Channel.MESSENGER,
                {"page_access_token": "bench-page-token", "app_secret": payloads.META_APP_SECRET},
                {"page_id": payloads.META_PAGE},
            )
            hooks: dict[str, tuple[str, payloads.Builder]] = {
                "Telegram update (JSON)": (
                    f"/webhooks/telegram/{tg}",
                    functools.partial(payloads.telegram, secret=tg_secret),
                ),
                "Twilio WhatsApp (form)": (
                    f"/webhooks/whatsapp/{wa}",
                    functools.partial(payloads.twilio_whatsapp, phone=WHATSAPP_NUMBER),
                ),
                "Viber callback (JSON)": (f"/webhooks/viber/{vb}", payloads.viber),
                "Meta Messenger event (JSON)": (f"/webhooks/messenger/{fb}", payloads.meta_messenger),
            }
            return Seeded(widget.public_key, hooks)
    finally:
        await engine.dispose()


async def agent_session(base: str) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies on 127.0.0.1
    html = await (await session.get(f"{base}/login")).text()
    token = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert token, "login page without CSRF field"
    response = await session.post(
        f"{base}/login", data={"username": "bench", "password": PASSWORD, "_csrf": token.group(1)}
    )
    assert response.status == 200, f"login failed: {response.status}"
    return session


def message(body: str) -> dict[str, str]:
    return {"visitor_id": str(uuid.uuid4()), "message_id": str(uuid.uuid4()), "body": body}


async def accepted_per_second(url: str, seconds: float, concurrency: int = 32) -> float:
    accepted = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(headers={"Origin": ORIGIN}) as session:

        async def worker() -> None:
            nonlocal accepted
            while time.perf_counter() < deadline:
                async with session.post(url, json=message("throughput")) as response:
                    await response.read()
                    accepted += response.status < 300

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return accepted / (time.perf_counter() - started)


async def webhooks_per_second(
    url: str, build: payloads.Builder, seconds: float, concurrency: int = 32
) -> tuple[float, int]:
    """Accepted provider webhooks per second and how many were refused (there should be none)."""
    accepted = refused = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal accepted, refused
            while time.perf_counter() < deadline:
                hook = build(url, "Bună ziua, vreau un credit")
                async with session.post(url, data=hook.body, headers=hook.headers) as response:
                    await response.read()
                    if response.status < 300:
                        accepted += 1
                    else:
                        refused += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return accepted / (time.perf_counter() - started), refused


async def latency_at_rate(
    url: str, live: aiohttp.ClientWebSocketResponse, rate: int
) -> tuple[list[float], int]:
    sent: dict[str, float] = {}
    latencies: list[float] = []
    all_seen = asyncio.Event()

    async def receive() -> None:
        async for frame in live:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            for token in re.findall(r"lat-[0-9a-f]{32}", frame.data):
                if token in sent:
                    latencies.append(time.perf_counter() - sent.pop(token))
            if not sent and finished_sending:
                all_seen.set()

    finished_sending = False
    receiver = asyncio.create_task(receive())
    errors = 0
    async with aiohttp.ClientSession(headers={"Origin": ORIGIN}) as session:

        async def post(token: str) -> None:
            nonlocal errors
            sent[token] = time.perf_counter()
            async with session.post(url, json=message(token)) as response:
                await response.read()
                errors += response.status >= 300

        tasks = []
        started = time.perf_counter()
        for i in range(int(rate * SECONDS)):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(post(f"lat-{uuid.uuid4().hex}")))
        await asyncio.gather(*tasks)
    finished_sending = True
    if sent:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_seen.wait(), timeout=5)
    receiver.cancel()
    return latencies, errors + len(sent)


async def main() -> None:
    db_url, created = await fresh_database()
    seeded = await seed(db_url)
    key = seeded.widget_key
    hub_port, bare_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {
            "SWITCHBOARD_DATABASE_URL": db_url,
            "SWITCHBOARD_DATA_DIR": tmp,
            "SWITCHBOARD_PORT": str(hub_port),
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
            "SWITCHBOARD_SECRET_KEY": SECRET_KEY,
            "SWITCHBOARD_RUN_WORKER": "false",  # no provider to fetch media from or send to here
        }
        procs = [
            await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard.cli", "serve", env=env),
            await asyncio.create_subprocess_exec(
                sys.executable, str(HERE / "bare_server.py"), str(bare_port)
            ),
        ]
        base = f"http://127.0.0.1:{hub_port}"
        try:
            await wait_for(f"{base}/healthz")
            await wait_for(f"http://127.0.0.1:{bare_port}/me")
            agent = await agent_session(base)
            live = await agent.ws_connect(f"{base}/live", headers={"Origin": base})
            url = f"{base}/widget/{key}/messages"
            print(f"Webchat ingest into a hub on {db_url.split(':', 1)[0]}, agent feed over WebSocket")
            a = await accepted_per_second(url, SECONDS)
            print(f"(a) accepted messages, closed loop 32     {a:8.0f} msg/s")
            for rate in RATES:
                await asyncio.sleep(2)  # let the previous phase's backlog (marks, autovacuum) settle
                latencies, lost = await latency_at_rate(url, live, rate)
                latencies.sort()
                p50 = statistics.median(latencies) * 1000
                p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000
                print(
                    f"(b) offered {rate:4d} msg/s: POST → agent frame  p50 {p50:8.2f} ms  p99 {p99:8.2f} ms"
                    f"  ({len(latencies)} seen, {lost} not seen)"
                )
            c = await run_load(f"http://127.0.0.1:{bare_port}/me", seconds=SECONDS, concurrency=32)
            print(f"(c) bare aiohttp hello, closed loop 32    {c.rps:8.0f} req/s")
            print(f"ratio a/c                                 {a / c.rps:8.3f}")
            for label, (path, build) in seeded.hooks.items():
                await asyncio.sleep(2)
                rate, refused = await webhooks_per_second(f"{base}{path}", build, SECONDS)
                print(
                    f"(d) {label:<30} {rate:8.0f} msg/s  ratio to (c) {rate / c.rps:6.3f}  refused {refused}"
                )
            await live.close()
            await agent.close()
        finally:
            for proc in procs:
                proc.terminate()
                await proc.wait()
            if created:
                await drop_database(created)


if __name__ == "__main__":
    asyncio.run(main())
