"""How much the hub's web edge costs per request, against a bare aiohttp handler measured in the same run.

Both servers run as separate processes on this machine; the load comes from this process. Figures:
- baseline: a bare aiohttp JSON handler;
- `/healthz`: the full middleware stack (errors, metrics, session cookie, permission check) plus a
  `SELECT 1`;
- `/api/v1/me` with a Bearer token: the same stack plus the token lookup in the database — the cost every
  authenticated API call pays.
Ratios are hub ÷ baseline, so they stay comparable on a noisy machine.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench._load import run_load, wait_for
from switchboard import accounts, migrate
from switchboard.audit import SYSTEM
from switchboard.db import create_engine, create_sessionmaker, transaction

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def make_token(db_url: str) -> str:
    await migrate.upgrade(db_url)
    engine = create_engine(db_url)
    try:
        async with transaction(create_sessionmaker(engine)) as db:
            user = await accounts.create_user(
                db, SYSTEM, username="bench", password="bench-password", role="admin"
            )
            _, token = await accounts.create_api_token(db, SYSTEM, user.id, "bench")
            return token
    finally:
        await engine.dispose()


async def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "4"))
    with tempfile.TemporaryDirectory() as tmp:
        db_url = os.environ.get("BENCH_DATABASE_URL", f"sqlite+aiosqlite:///{tmp}/bench.db")
        token = await make_token(db_url)
        bare_port, hub_port = free_port(), free_port()
        env = os.environ | {
            "SWITCHBOARD_DATABASE_URL": db_url,
            "SWITCHBOARD_DATA_DIR": tmp,
            "SWITCHBOARD_PORT": str(hub_port),
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
        }
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, str(HERE / "bare_server.py"), str(bare_port)
            ),
            await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard.cli", "serve", env=env),
        ]
        try:
            await wait_for(f"http://127.0.0.1:{bare_port}/me")
            await wait_for(f"http://127.0.0.1:{hub_port}/healthz")
            backend = db_url.split(":", 1)[0]
            print(f"HTTP edge, {seconds:.0f} s per figure, 16 concurrent clients, database {backend}")
            base = await run_load(f"http://127.0.0.1:{bare_port}/me", seconds=seconds)
            print(base.line("baseline: bare aiohttp handler"))
            health = await run_load(f"http://127.0.0.1:{hub_port}/healthz", seconds=seconds)
            print(health.line("hub /healthz"))
            me = await run_load(
                f"http://127.0.0.1:{hub_port}/api/v1/me",
                seconds=seconds,
                headers={"Authorization": f"Bearer {token}"},
            )
            print(me.line("hub /api/v1/me (Bearer token)"))
            print(f"ratio /healthz ÷ baseline throughput:   {health.rps / base.rps:5.2f}")
            print(f"ratio /api/v1/me ÷ baseline throughput: {me.rps / base.rps:5.2f}")
            print(f"ratio /api/v1/me ÷ baseline p50:        {me.p50_ms / base.p50_ms:5.2f}")
        finally:
            for proc in procs:
                proc.terminate()
                await proc.wait()


if __name__ == "__main__":
    asyncio.run(main())
