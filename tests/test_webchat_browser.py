"""The web chat page in a real browser: headless Debian Chromium, driven through Playwright, on
the page the local Bot API server serves, with the real bot (tiny models) answering over HTTP.

What a person does there: types a word and gets a joke with its buttons, presses 👍 (the toast
and the count), picks DiffuSeq in the picker, uses a command chip, writes an inline query; and a
phone's 360 px width shows all of it without cutting anything off. Chromium comes from
scripts/setup-system.sh; without it these tests fail, saying so (tests/webchat_browser.py).
On failure the page's screenshot is saved and its path printed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.bot_harness import RunningBot
from tests.local_api import LocalBotApi
from tests.webchat_browser import DESKTOP, PHONE, ChatPage, chat_bot, launch_browser

if TYPE_CHECKING:
    from playwright.async_api import Browser

expect: Any = None  # playwright's expect, imported by the `browser` fixture (it may be missing)


@pytest.fixture
async def env(api: LocalBotApi, tmp_path: Path, tiny_gpt_dir: Path) -> AsyncIterator[RunningBot]:
    async with chat_bot(api, tmp_path, tiny_gpt_dir) as running:
        yield running


@pytest.fixture
def viewport() -> dict[str, int]:
    return DESKTOP


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Chromium, started before the bot: a missing browser fails (or skips) the test at once."""
    global expect
    async with launch_browser() as started:
        from playwright.async_api import expect as playwright_expect

        expect = playwright_expect
        yield started


@pytest.fixture
async def chat(
    browser: Browser,
    env: RunningBot,
    viewport: dict[str, int],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> AsyncIterator[ChatPage]:
    """The chat page open in Chromium; a failing test leaves its screenshot in tmp_path."""
    failed_before = request.session.testsfailed
    page = await ChatPage.open(browser, env.api, viewport)
    yield page
    if request.session.testsfailed > failed_before:  # this test's call just failed
        shot = await page.screenshot(tmp_path / f"{request.node.name}.png")
        print(f"screenshot of the page at the failure: {shot}")


async def test_joke_vote_method_picker_and_command_chip(chat: ChatPage, env: RunningBot) -> None:
    page = chat.page
    await chat.type_and_send("Молоко")
    await expect(page.locator(".row.mine .bubble").last).to_have_text("Молоко")
    joke = await chat.wait_for_joke("Молоко", after=0)
    buttons = joke.locator(".keyboard button")
    await expect(buttons).to_contain_text(["👍 0", "👎 0", "🔁 Ещё", "⚙️ GPT"])  # in this order
    await expect(buttons.first).to_have_text("👍 0")

    await chat.button(joke, "👍 0").click()
    await expect(page.locator("#toast")).to_have_text("Спасибо!")
    await expect(page.locator("#toast")).to_have_class(re.compile(r"\bon\b"))
    await expect(buttons.first).to_have_text("👍 1")
    await expect(buttons.nth(1)).to_have_text("👎 0")
    assert env.rows("SELECT value FROM votes") == [(1,)]

    await chat.button(joke, "⚙️ GPT").click()
    picker = chat.bot_row_with("Кто пишет анекдоты?")
    await expect(picker.locator(".keyboard button")).to_have_text(
        ["✅ GPT", "GPT (sampling)", "DiffuSeq"]
    )
    await chat.button(picker, "DiffuSeq").click()
    await expect(page.locator("#toast")).to_have_text("Теперь пишет DiffuSeq")
    await expect(picker.locator(".keyboard button")).to_have_text(
        ["GPT", "GPT (sampling)", "✅ DiffuSeq"]
    )
    await chat.type_and_send("Кот")
    second = await chat.wait_for_joke("Кот", after=2)
    await expect(second.locator(".keyboard button")).to_contain_text(["⚙️ DiffuSeq"])
    await env.idle()
    assert [m for (m,) in env.rows("SELECT method FROM jokes ORDER BY id")] == ["gpt", "diffuseq"]

    await page.locator("#chips .chip", has_text="/stats").click()
    await expect(page.locator(".row.mine .bubble").last).to_have_text("/stats")
    stats = chat.bot_row_with("Статистика по моделям:")
    await expect(stats.locator(".bubble")).to_contain_text("GPT: анекдотов 1, оценок 1")
    await expect(stats.locator(".bubble")).to_contain_text("DiffuSeq: анекдотов 1, оценок 0")


@pytest.mark.parametrize("viewport", [PHONE], ids=["360x740"])
async def test_phone_width_cuts_nothing_off(chat: ChatPage) -> None:
    """At 360 px the placeholder fits its input and nothing is wider than the screen: long
    messages, the chips, the joke's keyboard and the picker wrap instead."""
    page = chat.page
    before = await chat.layout()
    assert before["placeholder"] <= before["room"], before
    assert before["input_scroll"] <= before["input_client"], before
    await chat.type_and_send("Молоко")
    joke = await chat.wait_for_joke("Молоко", after=0)
    await chat.button(joke, "⚙️ GPT").click()
    await expect(chat.bot_row_with("Кто пишет").locator(".keyboard button")).to_have_count(3)
    long_word = "Сверхдлинноеслово" * 12  # no spaces: must still wrap inside the bubble
    await chat.type_and_send(long_word + " и ещё много слов " * 20)
    await expect(page.locator(".row.mine .bubble").last).to_contain_text(long_word)
    await chat.type_and_send("/help")
    await expect(chat.bot_row_with("/method").locator(".bubble")).to_be_visible()
    after = await chat.layout()
    assert after["page_scroll"] <= after["page_client"], after
    assert after["wide"] == [], f"wider than the 360 px screen: {after['wide']}"
    for button in await page.locator(".keyboard button, #sendbtn, .chip").all():
        box = await button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, box


async def test_inline_query_shows_results_and_posts_the_chosen_one(
    chat: ChatPage, env: RunningBot
) -> None:
    """As in Telegram: "@bot word" typed (not sent) asks the bot; a chosen result is posted."""
    page = chat.page
    assert "inline-results" in await page.content(), "the page has no #inline-results line"
    await page.locator("#text").fill(f"@{env.api.bot_username} Молоко")
    offered = page.locator("#inline-results .inline-result")
    await expect(offered.first).to_be_visible()
    await expect(offered.first.locator(".description")).to_have_text(re.compile("^Молоко"))
    joke = await offered.first.locator(".description").inner_text()
    await offered.first.click()
    await expect(page.locator("#inline-results")).to_be_hidden()
    await expect(page.locator("#text")).to_have_value("")
    posted = page.locator(".row").filter(has=page.locator(".bubble", has_text=joke)).last
    await expect(posted.locator(".keyboard button").first).to_contain_text("👍")
