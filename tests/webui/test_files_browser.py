"""Attachments in Debian's Chromium: the paperclip uploads, a picture shows as a thumbnail loaded through
`/files/…` with the agent's session, other files as links named by text, a refused file explains why."""

from __future__ import annotations

import struct
import zlib

import pytest
from playwright.async_api import Browser, expect

from channels.model import Channel, InboundMessage
from switchboard.permissions import Role
from tests.conftest import ARTIFACTS, PASSWORD, Hub, MakeUser, open_in_inbox
from webui import keys

pytestmark = pytest.mark.browser


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def test_an_agent_attaches_files_from_the_reply_box(
    browser: Browser, served_hub: Hub, make_user: MakeUser
) -> None:
    agent = await make_user(Role.AGENT)
    got = await served_hub.app[keys.INBOX].ingest(
        InboundMessage(Channel.WEBCHAT, "site", "ext-1", "visitor", body="Trimiteți contractul, vă rog")
    )
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    try:
        await page.goto(f"{served_hub.url}/login")
        await page.fill("#username", agent.username)
        await page.fill("#password", PASSWORD)
        await page.click("#login-submit")
        await page.wait_for_url(f"{served_hub.url}/")
        await open_in_inbox(page, served_hub.url, got.conversation_id)
        await expect(page.locator("#thread .message")).to_have_count(1)

        await page.fill("#reply-body", "Iată schița")
        await page.set_input_files(
            "#attach-input", files=[{"name": "schita.png", "mimeType": "image/png", "buffer": tiny_png()}]
        )
        image = page.locator("#thread .message-image")
        await expect(image).to_have_count(1)
        await expect(page.locator("#thread .message-out .message-body")).to_have_text("Iată schița")
        await expect(page.locator("#reply-body")).to_have_value("")
        await page.wait_for_function("document.querySelector('#thread .message-image').naturalWidth === 4")

        name = '<img src=x onerror="window.__xss=1">.pdf'
        await page.set_input_files(
            "#attach-input", files=[{"name": name, "mimeType": "application/pdf", "buffer": b"%PDF-1.4 x"}]
        )
        link = page.locator("#thread .message-attachment-link")
        await expect(link).to_have_count(1)
        assert (await link.get_attribute("href") or "").startswith("/files/")
        assert "img src" in (await link.text_content() or "")  # the name as text, sanitised, never markup
        assert await page.evaluate("window.__xss") is None

        await page.set_input_files(
            "#attach-input",
            files=[
                {"name": "page.png", "mimeType": "image/png", "buffer": b"<html><script>1</script></html>"}
            ],
        )
        await expect(page.locator("#reply-error")).to_contain_text("Web pages")
        await expect(page.locator("#thread .message")).to_have_count(3)
        await page.screenshot(path=str(ARTIFACTS / "inbox-attachments.png"))
    finally:
        await context.close()
