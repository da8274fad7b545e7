"""`python -m tests.browser_screenshot`: the README's picture of the web chat (docs/webchat.png).

The same steps as tests/test_webchat_browser.py (its helpers, tests/webchat_browser.py), with the
shipped models instead of the tiny ones: a word, the joke with its buttons, 👍 and its toast.
Needs Chromium (scripts/setup-system.sh) and requirements-dev.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from settings import DEFAULT_DIFFUSEQ_MODEL, DEFAULT_GPT_MODEL, ROOT, Settings
from tests.bot_harness import TOKEN
from tests.local_api import LocalBotApi
from tests.webchat_browser import ChatPage, chat_bot, launch_browser

WORDS = ("Штирлиц", "Доктор")


async def shoot(out: Path, width: int, height: int, words: list[str]) -> Path:
    from playwright.async_api import expect

    api = LocalBotApi(token=TOKEN)
    await api.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            shipped = {  # the shipped models, decoded as the bot's defaults do
                "diffuseq_model": DEFAULT_DIFFUSEQ_MODEL,
                "gpt_num_beams": Settings.model_fields["gpt_num_beams"].default,
                "gpt_max_new_tokens": Settings.model_fields["gpt_max_new_tokens"].default,
                "torch_threads": 0,
            }
            async with (
                chat_bot(api, Path(folder), Path(DEFAULT_GPT_MODEL), **shipped),
                launch_browser() as browser,
            ):
                chat = await ChatPage.open(browser, api, {"width": width, "height": height})
                for index, word in enumerate(words):
                    await chat.type_and_send(word)
                    joke = await chat.wait_for_joke(word, after=index)
                await chat.button(joke, "👍 0").click()
                await expect(chat.page.locator("#toast")).to_have_text("Спасибо!")
                await expect(joke.locator(".keyboard button").first).to_have_text("👍 1")
                await chat.page.locator("#text").blur()
                await chat.page.mouse.move(0, 0)  # no hover shade on the pressed button
                return await chat.screenshot(out)
    finally:
        await api.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.browser_screenshot", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "webchat.png")
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=760)
    parser.add_argument("words", nargs="*", default=list(WORDS), help="what the person types")
    args = parser.parse_args(argv)
    path = asyncio.run(shoot(args.out, args.width, args.height, args.words))
    print(f"{path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
