"""The baseline: a bare aiohttp handler returning a small JSON body, nothing else."""

import sys

from aiohttp import web


async def handler(request: web.Request) -> web.Response:
    return web.json_response({"id": 1, "username": "baseline", "role": "agent"})


app = web.Application()
app.router.add_get("/me", handler)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
