"""The web chat in a real browser: Debian's Chromium driven through Playwright's Python API.

Playwright talks to the system browser (`/usr/bin/chromium`, from `scripts/setup-system.sh`) by
`executable_path`; its own browser download (`playwright install`) is never used. Used by
tests/test_webchat_browser.py and by `python -m tests.browser_screenshot` (docs/webchat.png).

A browser that cannot start fails the tests with a message saying what to install. Only where
`WEBCHAT_BROWSER=skip` is set (a developer's machine without Chromium, never CI) do they skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.bot_harness import RunningBot, make_settings, running_bot
from tests.local_api import LocalBotApi

if TYPE_CHECKING:
    from playwright.async_api import Browser, Locator, Page

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SKIP_ENV = "WEBCHAT_BROWSER"  # "skip": skip the browser tests when Chromium cannot start
DESKTOP = {"width": 900, "height": 800}
PHONE = {"width": 360, "height": 740}
WAIT_MS = 20_000  # a joke from the tiny models comes in well under a second; CI machines are busy
MISSING = (
    "Chromium for the web chat's browser test cannot start ({error}). Install it with "
    "scripts/setup-system.sh (Debian's chromium and fonts-noto-color-emoji) and the Python "
    "package with scripts/setup.sh requirements-dev.txt; or set CHROMIUM to a Chromium binary. "
    f"On a machine without a browser, {SKIP_ENV}=skip skips these tests (never in CI)."
)


def _unavailable(error: str) -> None:
    """Fail, or skip where the developer asked for it (not in CI)."""
    message = MISSING.format(error=error)
    if os.environ.get(SKIP_ENV) == "skip" and not os.environ.get("CI"):
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


@contextlib.asynccontextmanager
async def launch_browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium under Playwright, or a clear failure saying what is missing."""
    try:
        from playwright.async_api import Error, async_playwright, expect
    except ImportError as error:
        _unavailable(f"no Python package playwright: {error}")
    expect.set_options(timeout=WAIT_MS)  # its assertions' own default is 5 s
    if shutil.which(CHROMIUM) is None:
        _unavailable(f"no browser at {CHROMIUM}")
    async with async_playwright() as playwright:
        try:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        except Error as error:
            _unavailable(str(error).splitlines()[0])
        try:
            yield browser
        finally:
            await browser.close()


def save_tiny_diffuseq(tokenizer_dir: Path, folder: Path) -> Path:
    """A seeded, untrained one-layer DiffuSeq on the tiny GPT's tokenizer: loads through the real
    `from_pretrained` path, so the bot offers the DiffuSeq method."""
    import torch
    from transformers import AutoTokenizer

    from generation.diffuseq.checkpoint import save_pretrained
    from generation.diffuseq.model import DiffuSeqModel
    from tests.diffuseq_helpers import tiny_config

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = tiny_config(tokenizer, emb_dim=8, hidden=32, layers=1, ffn=64, time_dim=16)
    torch.manual_seed(0)
    save_pretrained(DiffuSeqModel(config).eval(), tokenizer, folder)
    return folder


@contextlib.asynccontextmanager
async def chat_bot(
    api: LocalBotApi, folder: Path, gpt_dir: Path, **overrides: Any
) -> AsyncIterator[RunningBot]:
    """The real bot on the local server (as `python -m bot --local` runs it), with the tiny GPT
    and a tiny DiffuSeq; `overrides`: settings (the screenshot uses the shipped models)."""
    db = folder / "jokes.db"
    values: dict[str, Any] = {"enable_diffuseq": True, "diffuseq_steps": 4, "diffuseq_mbr": 1}
    if "diffuseq_model" not in overrides:
        values["diffuseq_model"] = str(save_tiny_diffuseq(gpt_dir, folder / "diffuseq"))
    values.update(overrides)
    async with running_bot(api, make_settings(api, db, gpt_dir, **values), db) as running:
        yield running


class ChatPage:
    """What a person does on the chat page and what they see, in the page's own terms."""

    def __init__(self, page: Page) -> None:
        self.page = page

    @classmethod
    async def open(cls, browser: Browser, api: LocalBotApi, viewport: dict[str, int]) -> ChatPage:
        page = await browser.new_page(viewport=viewport)  # type: ignore[arg-type]
        page.set_default_timeout(WAIT_MS)
        await page.goto(api.page_url)
        chat = cls(page)
        await chat.expect_visible(page.locator("#chips .chip").first)  # the page is polling
        return chat

    async def expect_visible(self, locator: Locator) -> None:
        from playwright.async_api import expect

        await expect(locator).to_be_visible(timeout=WAIT_MS)

    async def type_and_send(self, text: str) -> None:
        await self.page.locator("#text").fill(text)
        await self.page.locator("#text").press("Enter")

    def bot_rows(self) -> Locator:
        return self.page.locator(".row.theirs")

    def bot_row_with(self, text: str) -> Locator:
        """The last bot message whose text contains `text`."""
        return self.bot_rows().filter(has=self.page.locator(".bubble", has_text=text)).last

    def button(self, row: Locator, text: str) -> Locator:
        return row.locator(".keyboard button").filter(has_text=text)

    async def button_texts(self, row: Locator) -> list[str]:
        return [t.strip() for t in await row.locator(".keyboard button").all_inner_texts()]

    async def wait_for_joke(self, word: str, after: int) -> Locator:
        """The bot's first message starting with `word` among its messages after the `after`th."""
        from playwright.async_api import expect

        joke = self.bot_rows().nth(after)
        await expect(joke.locator(".bubble")).to_have_text(_starts_with(word), timeout=WAIT_MS)
        return joke

    async def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(path))
        return path

    async def layout(self) -> dict[str, Any]:
        """Widths that show a layout cut off or scrolling sideways on a narrow screen."""
        return dict(await self.page.evaluate(_LAYOUT_JS))


def _starts_with(word: str) -> Any:
    import re

    return re.compile("^" + re.escape(word))


# The placeholder's own width, measured with the input's font (an input's scrollWidth does not
# count its placeholder), against the room inside the input; and anything wider than the page.
_LAYOUT_JS = """() => {
  const input = document.getElementById("text");
  const style = getComputedStyle(input);
  const ctx = document.createElement("canvas").getContext("2d");
  ctx.font = style.font;
  const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const wide = [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
    .map((e) => e.id || e.className || e.tagName);
  return {
    placeholder: ctx.measureText(input.placeholder).width, room,
    input_scroll: input.scrollWidth, input_client: input.clientWidth,
    page_scroll: document.documentElement.scrollWidth,
    page_client: document.documentElement.clientWidth, wide,
  };
}"""
