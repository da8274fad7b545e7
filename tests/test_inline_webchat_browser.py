"""Inline mode in the web chat, in a real browser (headless Debian Chromium through Playwright,
see tests/webchat_browser.py): typing `@bot Молоко` shows the bot's three results above the input,
a click posts one "via @bot", its 👍 counts, 🔁 types the query again; a query that is no word
shows the hint, and ordinary text closes the panel.

The bot is the real one with the fake model of tests/inline_kit.py, so the jokes are known.
"""

from __future__ import annotations

from pathlib import Path

from tests.inline_kit import Writer, best_three, idle, joke_rows, running_inline_bot
from tests.local_api import LocalBotApi
from tests.webchat_browser import DESKTOP, PHONE, ChatPage, launch_browser


async def test_the_inline_line_offers_posts_and_votes(api: LocalBotApi, tmp_path: Path) -> None:
    async with launch_browser() as browser:
        from playwright.async_api import expect

        async with running_inline_bot(api, tmp_path / "j.db", Writer()) as env:
            chat = await ChatPage.open(browser, api, PHONE)
            page = chat.page
            try:
                handle = f"@{api.bot_username}"
                await page.locator("#text").fill(f"{handle} Молоко")
                results = page.locator("#inline-results .inline-result")
                await expect(results).to_have_count(3)
                for place, text in enumerate(best_three("Молоко")):
                    await expect(results.nth(place)).to_contain_text(text)
                await expect(results.first).to_contain_text("Writer · вариант 1")
                assert (await chat.layout())["wide"] == []  # fits a 360 px screen

                await results.nth(1).click()
                await expect(page.locator("#inline-results")).to_be_hidden()
                await expect(page.locator("#text")).to_have_value("")
                posted = page.locator(".row.mine").last
                await expect(posted.locator(".via")).to_have_text(f"via {handle}")
                await expect(posted.locator(".bubble")).to_contain_text(best_three("Молоко")[1])
                await chat.button(posted, "👍 0").click()
                await expect(posted.locator(".keyboard button").first).to_have_text("👍 1")
                await expect(page.locator("#toast")).to_contain_text("Спасибо!")
                await chat.button(posted, "🔁 Ещё").click()
                await expect(page.locator("#text")).to_have_value(f"{handle} Молоко")
                await expect(results).to_have_count(3)

                await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
                await page.locator("#text").fill("@bot 😂")
                await expect(page.locator("#inline-results")).to_contain_text("Нужно слово")
                await page.locator("#text").fill("просто текст")
                await expect(page.locator("#inline-results")).to_be_hidden()
                await idle(env)
                chosen = [row[5] for row in joke_rows(env)]
                assert chosen == [0, 1, 0]
                assert env.rows("SELECT user_id, value FROM votes") == [(api.web_user_id, 1)]
            except BaseException:
                shot = await chat.screenshot(tmp_path / "inline-failure.png")
                print(f"screenshot of the failure: {shot}")
                raise
