"""The web edge: aiohttp routes, server-rendered pages (Jinja2 + Tabler), the REST API `/api/v1`, the live
feed and provider webhooks. Every route is declared once in `routes.py` with the permission it needs."""
