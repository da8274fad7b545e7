"""The chart in Telegram: the local server's sendPhoto, and /chart for admins only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile

from bot import texts
from local_telegram.methods.media import image_size
from tests.bot_harness import RunningBot, make_settings, running_bot
from tests.local_api import LocalBotApi
from tests.test_report import assert_real_chart, png_size

ADMIN = 901
USER = 902
CHAT = 555


def tiny_png() -> bytes:
    from storage.chart import draw_chart

    return draw_chart([])  # empty axes: a real PNG, still small


# --- the local Bot API server -------------------------------------------------------------------


async def test_send_photo_uploads_the_file_and_keeps_it(api: LocalBotApi, bot: Bot) -> None:
    api.ensure_chat(CHAT)
    png = tiny_png()
    sent = await bot.send_photo(CHAT, BufferedInputFile(png, "c.png"), caption="  График  ")
    assert sent.caption == "График" and sent.text is None
    (size,) = sent.photo or []
    assert (size.width, size.height) == png_size(png) and size.file_size == len(png)
    record = api.message(CHAT, sent.message_id)
    assert record.from_bot and record.upload == png
    again = await bot.send_photo(CHAT, size.file_id)  # a file_id sends the same picture again
    assert api.message(CHAT, again.message_id).upload == png


@pytest.mark.parametrize(
    ("photo", "error"),
    [
        (BufferedInputFile(b"not an image at all", "x.png"), "IMAGE_PROCESS_FAILED"),
        ("photo-unknown", "wrong file identifier"),
    ],
)
async def test_send_photo_refuses_what_telegram_refuses(
    api: LocalBotApi, bot: Bot, photo: object, error: str
) -> None:
    api.ensure_chat(CHAT)
    with pytest.raises(TelegramBadRequest, match=error):
        await bot.send_photo(CHAT, photo)  # type: ignore[arg-type]
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(CHAT, BufferedInputFile(tiny_png(), "c.png"), caption="я" * 1025)
    assert api.bot_messages(CHAT) == []


def test_image_size_reads_png_and_jpeg_headers() -> None:
    assert image_size(tiny_png()) == png_size(tiny_png())
    jpeg = b"\xff\xd8" + b"\xff\xe0\x00\x04ab" + b"\xff\xc0\x00\x11\x08\x01\x2c\x02\x58" + b"\0" * 9
    assert image_size(jpeg) == (600, 300)
    assert image_size(b"GIF89a....") is None


# --- /chart through the bot -----------------------------------------------------------------------


@pytest.fixture
async def env(api: LocalBotApi, tmp_path: Path, tiny_gpt_dir: Path) -> AsyncIterator[RunningBot]:
    db = tmp_path / "jokes.db"
    settings = make_settings(api, db, tiny_gpt_dir, admin_ids=str(ADMIN))
    async with running_bot(api, settings, db) as running:
        yield running


async def say(env: RunningBot, user: int, text: str):
    env.api.send_text(user, text)
    reply = await env.api.wait_for_bot_message(user, timeout=60)
    await env.idle(timeout=30)
    return reply


async def test_admins_get_the_chart_others_do_not(env: RunningBot) -> None:
    empty = await say(env, ADMIN, "/chart")
    assert empty.text == texts.CHART_EMPTY
    joke = await say(env, USER, "Кот")
    query = env.api.press_button(USER, joke.message_id, text="👍 0")
    await env.api.wait_for_callback_answer(query, timeout=10)

    photo = await say(env, ADMIN, "/chart")
    assert photo.text is None and photo.extra["caption"] == texts.CHART_CAPTION
    assert photo.upload is not None
    assert_real_chart(photo.upload)

    refused = await say(env, USER, "/chart")
    assert refused.text == texts.UNKNOWN_COMMAND and refused.upload is None
    assert [m for m in env.api.bot_messages(USER) if m.upload is not None] == []


async def test_stats_offers_admins_the_chart_button(env: RunningBot) -> None:
    joke = await say(env, USER, "Молоко")
    query = env.api.press_button(USER, joke.message_id, text="👎 0")
    await env.api.wait_for_callback_answer(query, timeout=10)
    assert (await say(env, USER, "/stats")).buttons == []  # not for everyone
    stats = await say(env, ADMIN, "/stats")
    assert stats.button_texts == [texts.CHART_BUTTON]
    assert "GPT: анекдотов 1, оценок 1, нравится 0% (95%: 0–79%)" in (stats.text or "")
    assert "  версия gpt@" in (stats.text or "")  # one version: named, not repeated
    query = env.api.press_button(ADMIN, stats.message_id, text=texts.CHART_BUTTON)
    await env.api.wait_for_callback_answer(query, timeout=10)
    photo = await env.api.wait_for_bot_message(ADMIN, after=stats.message_id, timeout=30)
    assert photo.upload is not None
    assert_real_chart(photo.upload)
