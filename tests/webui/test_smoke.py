from aiohttp.test_utils import TestClient

from tests.conftest import MakeUser, login


async def test_login_then_home(client: TestClient, make_user: MakeUser) -> None:
    person = await make_user("admin")
    r = await login(client, person.username)
    assert r.status == 302, await r.text()
    home = await client.get("/")
    assert home.status == 200
    text = await home.text()
    assert "Audit log" in text
