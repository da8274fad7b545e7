"""Sharing in the web chat page, in headless Chromium (tests/webchat_browser.py): a 📤 button
types `@bot j<id>_<sig>` into the input, as Telegram types it into the chat the user picks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.shared_jokes import ShareLinks
from tests.bot_harness import TOKEN, RunningBot
from tests.local_api import LocalBotApi
from tests.webchat_browser import DESKTOP, WAIT_MS, ChatPage, chat_bot, launch_browser


@pytest.fixture
async def env(api: LocalBotApi, tmp_path: Path, tiny_gpt_dir: Path) -> AsyncIterator[RunningBot]:
    async with chat_bot(api, tmp_path, tiny_gpt_dir) as running:
        yield running


async def test_share_buttons_type_the_inline_query(env: RunningBot) -> None:
    async with launch_browser() as browser:
        from playwright.async_api import expect

        chat = await ChatPage.open(browser, env.api, DESKTOP)
        await chat.type_and_send("Молоко")
        joke = await chat.wait_for_joke("Молоко", after=0)
        await env.idle()
        (joke_id,) = env.rows("SELECT id FROM jokes")[0]
        handle = f"@{env.api.bot_username}"
        ref = ShareLinks.from_secret(TOKEN).ref(joke_id)  # the test bot's key: from its token
        await chat.button(joke, "📤 Поделиться").click()
        await expect(chat.page.locator("#text")).to_have_value(f"{handle} {ref}")
        assert env.count("votes") == 0  # sharing is no vote

        await chat.page.locator("#text").fill("")
        await chat.button(joke, "👍 0").click()
        await expect(chat.button(joke, "👍 1")).to_be_visible(timeout=WAIT_MS)
        await chat.type_and_send("/liked")
        listing = chat.bot_row_with("Тебе понравилось (1)")
        await expect(listing.locator(".bubble")).to_contain_text("стр. 1/1")
        await chat.button(listing, "📤 1").click()
        await expect(chat.page.locator("#text")).to_have_value(f"{handle} {ref}")
