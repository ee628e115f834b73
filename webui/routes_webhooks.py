"""Provider webhooks: public, sessionless and without CSRF tokens — each adapter checks the provider's
own proof (secret-token header or signature) instead."""

from __future__ import annotations

from webui.routes_spec import PUBLIC, RouteSpec
from webui.views import webhooks

_ACCOUNT = {"account_id": "999999"}

WEBHOOK_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec(
        "POST",
        "/webhooks/telegram/{account_id}",
        webhooks.telegram,
        "webhook_telegram",
        PUBLIC,
        csrf=False,
        uses_session=False,
        sample=_ACCOUNT,
    ),
)
