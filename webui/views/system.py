"""Health check for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import text

from webui import keys

log = logging.getLogger(__name__)


async def healthz(request: web.Request) -> web.StreamResponse:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2):
            async with request.app[keys.ENGINE].connect() as conn:
                await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not healthy", whatever the driver raised
        log.warning("health check: database unavailable: %s", type(exc).__name__)
        checks["database"] = "unavailable"
    checks["bus"] = "ok" if await request.app[keys.BUS].healthy() else "unavailable"
    healthy = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
    )
