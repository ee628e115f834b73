"""The real thing: Debian's headless Chromium, driven by Playwright, against a served hub with the demo
users. Screenshots land in tests/artifacts/ for a person to look at."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from switchboard.cli import DEMO_USERS, seed_demo
from switchboard.permissions import Role
from switchboard.settings import Settings
from tests.conftest import ARTIFACTS, browser_login
from webui.navigation import navigation_for

pytestmark = pytest.mark.browser


async def test_each_demo_role_logs_in_and_sees_its_navigation(
    browser: Browser, live_hub: str, settings: Settings
) -> None:
    credentials = await seed_demo(settings)
    assert {role for _, _, role in credentials} == {role for _, role, _ in DEMO_USERS}
    ARTIFACTS.mkdir(exist_ok=True)
    seen_roles: set[Role] = set()
    for username, password, role in credentials:
        if role in seen_roles:
            continue
        seen_roles.add(role)
        context = await browser.new_context(locale="en-US", viewport={"width": 1366, "height": 800})
        page = await context.new_page()
        await browser_login(page, live_hub, username, password)
        links = await page.locator("#main-nav a[data-nav]").evaluate_all("els => els.map(e => e.dataset.nav)")
        assert links == [item.href for item in navigation_for(role)], role
        await page.screenshot(path=str(ARTIFACTS / f"home-{role.value}.png"), full_page=True)
        # The last link is a page this role may open; following it works.
        await page.click(f'#main-nav a[data-nav="{links[-1]}"]')
        await page.wait_for_url(f"{live_hub}{links[-1]}")
        assert await page.locator(".page-title").count() == 1
        # An address outside the role's navigation is refused with a readable page.
        if role is not Role.ADMIN:
            response = await page.goto(f"{live_hub}/admin/users")
            assert response is not None and response.status == 403
            assert (
                await page.locator(".empty-title").inner_text()
                == "You do not have permission to open this page."
            )
        await page.goto(f"{live_hub}/")
        await page.click("#logout")
        await page.wait_for_url(f"{live_hub}/login")
        await context.close()


async def test_a_wrong_password_shows_a_message_in_the_page(
    browser: Browser, live_hub: str, settings: Settings
) -> None:
    await seed_demo(settings)
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    await page.goto(f"{live_hub}/login")
    await page.fill("#username", "expert1")
    await page.fill("#password", "definitely wrong")
    await page.click("#login-submit")
    assert await page.locator("#login-error").inner_text() == "Wrong username or password."
    await page.screenshot(path=str(ARTIFACTS / "login-error.png"))
    await context.close()


async def test_switching_language_on_the_login_page_translates_it(browser: Browser, live_hub: str) -> None:
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    await page.goto(f"{live_hub}/login")
    assert await page.locator("#login-submit").inner_text() == "Log in"
    await page.click('button[data-lang="ro"]')
    await page.wait_for_url(f"{live_hub}/login")
    assert await page.locator("#login-submit").inner_text() == "Autentificare"
    await page.click('button[data-lang="ru"]')
    assert await page.locator("#login-submit").inner_text() == "Войти"
    await page.screenshot(path=str(ARTIFACTS / "login-ru.png"))
    await context.close()
