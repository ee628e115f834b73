"""Provider webhooks: public, sessionless and without CSRF tokens — each adapter checks the provider's
own proof (secret-token header or signature) instead. One address per channel account."""

from __future__ import annotations

from webui.routes_spec import PUBLIC, RouteSpec
from webui.views import webhooks

_ACCOUNT = {"channel": "telegram", "account_id": "999999"}

WEBHOOK_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec(
        "POST",
        "/webhooks/{channel}/{account_id}",
        webhooks.receive,
        "webhook",
        PUBLIC,
        csrf=False,
        uses_session=False,
        sample=_ACCOUNT,
    ),
    RouteSpec(
        "GET",
        "/webhooks/{channel}/{account_id}",
        webhooks.handshake,
        "webhook_handshake",
        PUBLIC,
        csrf=False,
        uses_session=False,
        sample=_ACCOUNT,
    ),
)
