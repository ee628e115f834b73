"""Routes of channel administration (website chat widgets), the demo website and the contact quick edit
and link (merge).

The demo website is public and sessionless: it plays a customer's site, and answers 404 unless the hub
runs in demo mode. The contact edit, search and merge need CONTACTS_VIEW, and their handlers also insist
that the caller can see the customer's conversations.
"""

from __future__ import annotations

from switchboard.permissions import Action
from webui.routes_spec import PUBLIC, RouteSpec
from webui.views import channels_admin, contact_merge, contacts

_ONE = {"id": "999999"}

CHANNEL_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/admin/channels", channels_admin.channels_list, "channels", Action.CHANNELS_MANAGE),
    RouteSpec(
        "POST",
        "/admin/channels/widgets",
        channels_admin.widget_create,
        "channel_widget_create",
        Action.CHANNELS_MANAGE,
    ),
    RouteSpec(
        "GET",
        "/admin/channels/widgets/{id}",
        channels_admin.widget_detail,
        "channel_widget",
        Action.CHANNELS_MANAGE,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/admin/channels/widgets/{id}",
        channels_admin.widget_update,
        "channel_widget_update",
        Action.CHANNELS_MANAGE,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/admin/channels/widgets/{id}/key",
        channels_admin.widget_regenerate_key,
        "channel_widget_key",
        Action.CHANNELS_MANAGE,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/admin/channels/connect/{channel}",
        channels_admin.account_connect,
        "channel_account_connect",
        Action.CHANNELS_MANAGE,
        sample={"channel": "telegram"},
    ),
    RouteSpec(
        "POST",
        "/admin/channels/accounts/{id}/test",
        channels_admin.account_test,
        "channel_account_test",
        Action.CHANNELS_MANAGE,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/admin/channels/accounts/{id}/disconnect",
        channels_admin.account_disconnect,
        "channel_account_disconnect",
        Action.CHANNELS_MANAGE,
        sample=_ONE,
    ),
    RouteSpec("GET", "/demo/site", channels_admin.demo_site, "demo_site", PUBLIC, uses_session=False),
    RouteSpec(
        "GET",
        "/api/v1/contacts/search",
        contact_merge.contact_search_api,
        "api_contact_search",
        Action.CONTACTS_VIEW,
    ),
    RouteSpec(
        "POST",
        "/api/v1/contacts/{id}",
        contacts.contact_update_api,
        "api_contact_update",
        Action.CONTACTS_VIEW,
        sample=_ONE,
    ),
    RouteSpec(
        "POST",
        "/api/v1/contacts/{id}/merge",
        contact_merge.contact_merge_api,
        "api_contact_merge",
        Action.CONTACTS_VIEW,
        sample=_ONE,
    ),
)
