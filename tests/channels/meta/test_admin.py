"""An admin connects, tests and disconnects a Messenger page and an Instagram account from the channels page:
the credentials are proven with Graph before anything is stored, the page is subscribed, and the page shows
the webhook address and verify token to paste into the Meta app dashboard."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.accounts_model import ChannelAccount
from channels.model import Channel
from channels.secrets import mask
from switchboard.permissions import Role
from tests.channels.meta.conftest import APP_SECRET, IG_ID, PAGE_ID, PAGE_TOKEN, Client
from tests.conftest import MakeUser, login, page_csrf
from tests.fakes.meta import IG_USERNAME, PAGE_NAME, FakeGraph

CASES = [
    (Channel.MESSENGER, "page_id", PAGE_ID, PAGE_ID, PAGE_NAME),
    (Channel.INSTAGRAM, "instagram_id", IG_ID, "me", IG_USERNAME),
]


@pytest.mark.parametrize(
    ("channel", "field", "own_id", "node", "shown"), CASES, ids=["messenger", "instagram"]
)
async def test_an_admin_connects_tests_and_disconnects_a_meta_account(
    meta_client: Client,
    fake: FakeGraph,
    make_user: MakeUser,
    sessions: async_sessionmaker[AsyncSession],
    channel: Channel,
    field: str,
    own_id: str,
    node: str,
    shown: str,
) -> None:
    admin = await make_user(Role.ADMIN)
    await login(meta_client, admin.username)
    csrf = await page_csrf(meta_client, "/admin/channels")
    url = f"/admin/channels/connect/{channel.value}"
    form = {"name": "Credit Expres", field: own_id, "page_access_token": PAGE_TOKEN, "app_secret": APP_SECRET}

    not_a_number = await meta_client.post(
        url, data={**form, field: "facebook.com/creditexpres", "_csrf": csrf}
    )
    assert not_a_number.status == 422 and "numeric ID" in await not_a_number.text()
    refused = await meta_client.post(url, data={**form, "page_access_token": "EAAwrong", "_csrf": csrf})
    assert refused.status == 422 and "Invalid OAuth access token" in await refused.text()
    async with sessions() as db:
        assert (await db.scalars(select(ChannelAccount))).all() == []

    done = await meta_client.post(url, data={**form, "_csrf": csrf}, allow_redirects=False)
    assert done.status == 302, await done.text()
    async with sessions() as db:
        [account] = (await db.scalars(select(ChannelAccount))).all()
    assert account.config[field] == own_id and shown in account.config.values()
    assert PAGE_TOKEN not in account.secrets and APP_SECRET not in account.secrets
    [subscribe] = fake.calls_of("subscribed_apps", "POST")
    assert subscribe.node == node and "messages" in subscribe.query["subscribed_fields"]
    page = await (await meta_client.get("/admin/channels")).text()
    assert f"/webhooks/{channel.value}/{account.id}" in page and account.webhook_secret in page
    assert mask(PAGE_TOKEN) in page and PAGE_TOKEN not in page and APP_SECRET not in page

    tested = await meta_client.post(f"/admin/channels/accounts/{account.id}/test", data={"_csrf": csrf})
    assert tested.status == 200 and shown in await tested.text()
    gone = await meta_client.post(f"/admin/channels/accounts/{account.id}/disconnect", data={"_csrf": csrf})
    assert gone.status == 200
    [unsubscribe] = fake.calls_of("subscribed_apps", "DELETE")
    assert unsubscribe.node == node
    async with sessions() as db:
        stored = await db.get(ChannelAccount, account.id)
    assert stored is not None and stored.active is False
