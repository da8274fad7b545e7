"""Driving the local Bot API server: faults, shutdown, a real Dispatcher end to end, the web chat.

The methods one by one: test_local_server.py.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.backoff import BackoffConfig

from local_telegram.entities import auto_entities, utf16_len
from tests.local_api import LocalBotApi, keyboard

USER = 1001
FAST_BACKOFF = BackoffConfig(min_delay=0.05, max_delay=0.1, factor=1.1, jitter=0.0)


async def test_faults_reach_aiogram_as_the_right_exceptions(api: LocalBotApi, bot: Bot) -> None:
    api.send_text(USER, "кот")
    api.faults.fail_next("sendMessage", "5xx")
    with pytest.raises(TelegramServerError, match="Bad Gateway"):
        await bot.send_message(USER, "x")
    api.faults.fail_next("sendMessage", "drop")
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(USER, "x")
    api.faults.fail_next("sendMessage", "429", retry_after=3)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(USER, "x")
    assert caught.value.retry_after == 3 and "retry after 3" in caught.value.message
    api.faults.fail_next("getMe", "html5xx")
    with pytest.raises(ClientDecodeError):
        await bot.get_me()
    assert api.bot_messages(USER) == []  # nothing above was sent

    # the answer is lost but the message went out: what makes retries duplicate messages
    api.faults.fail_next("sendMessage", "5xx", after=True)
    with pytest.raises(TelegramServerError):
        await bot.send_message(USER, "дошло")
    assert [m.text for m in api.bot_messages(USER)] == ["дошло"]

    api.faults.fail_next("*", "delay", delay=0.3)
    started = time.monotonic()
    await bot.get_me()
    assert time.monotonic() - started >= 0.3
    assert await bot.send_message(USER, "ok")
    assert api.faults.count() == 6 and api.faults.count("sendMessage", "5xx") == 2
    assert [c.status for c in api.calls_of("sendMessage")] == [502, 0, 429, 502, 200]

    def draws(seed: int) -> list[str | None]:
        api.faults.random(0.5, kinds=("5xx", "drop", "429"), seed=seed)
        kinds = [
            fault.kind if (fault := api.faults.take("sendMessage")) else None for _ in range(20)
        ]
        api.faults.clear()
        return kinds

    assert draws(7) == draws(7) != draws(8)
    assert None in draws(7) and {k for k in draws(7) if k} <= {"5xx", "drop", "429"}


async def test_stop_ends_a_long_poll_quickly(api: LocalBotApi, bot: Bot) -> None:
    polling = asyncio.create_task(bot.get_updates(timeout=30))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await api.stop()
    assert time.monotonic() - started < 1.5
    assert await polling == []


def build_dispatcher() -> Dispatcher:
    router = Router()

    @router.message(Command("joke"))
    async def joke(message: Message) -> None:
        await message.answer(f"Анекдот про {message.text.split()[-1] if message.text else '?'}")

    @router.message(F.text)
    async def word(message: Message, bot: Bot) -> None:
        await bot.send_chat_action(message.chat.id, "typing")
        await message.answer(f"Про {message.text}: смешно", reply_markup=keyboard(("👍 0", "like")))

    @router.message()
    async def other(message: Message) -> None:
        await message.answer("Пришлите слово")

    @router.callback_query(F.data == "like")
    async def like(query: CallbackQuery) -> None:
        await query.answer("Спасибо!")
        assert isinstance(query.message, Message)
        await query.message.edit_reply_markup(reply_markup=keyboard(("👍 1", "like")))

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    return dispatcher


async def test_end_to_end_with_a_real_dispatcher(api: LocalBotApi) -> None:
    bot = api.make_bot()
    dispatcher = build_dispatcher()
    api.faults.fail_next("getUpdates", "drop")  # polling must survive a dropped long poll
    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_signals=False, polling_timeout=1, backoff_config=FAST_BACKOFF
        )
    )
    try:
        api.send_text(USER, "кот")
        reply = await api.wait_for_bot_message(USER, timeout=5)
        assert reply.text == "Про кот: смешно" and reply.button_texts == ["👍 0"]
        assert api.chat_actions(USER)[-1].action == "typing"

        query_id = api.press_button(USER, reply.message_id, text="👍 0")
        edit = await api.wait_for_edit(USER, reply.message_id, timeout=5)
        assert edit.reply_markup is not None and reply.button_texts == ["👍 1"]
        assert (await api.wait_for_callback_answer(query_id)).text == "Спасибо!"

        api.send_text(USER + 1, "/joke@funny_tochka_bot Молоко", chat_id=-42, chat_type="group")
        assert (await api.wait_for_bot_message(-42)).text == "Анекдот про Молоко"

        api.send_message(
            USER,
            sticker={
                "file_id": "x",
                "file_unique_id": "y",
                "type": "regular",
                "width": 1,
                "height": 1,
                "is_animated": False,
                "is_video": False,
            },
        )
        last = await api.wait_for_bot_message(USER)
        assert last.text == "Пришлите слово"
        await api.wait_all_updates_answered()
        await api.assert_no_bot_message(USER, after=last.message_id, wait=0.1)  # no duplicates
        assert api.faults.count("getUpdates", "drop") == 1
    finally:
        await dispatcher.stop_polling()
        await polling
        await bot.session.close()


async def test_web_chat_page_and_endpoints(api: LocalBotApi, bot: Bot) -> None:
    async with aiohttp.ClientSession(base_url=api.url) as http:
        async with http.get("/") as response:
            page = await response.text()
        assert response.status == 200 and page.startswith("<!doctype html>")
        assert "textContent" in page and "innerHTML" not in page
        assert "src=" not in page and 'href="http' not in page  # no external assets

        async with http.post("/ui/send", json={"text": "кот"}) as response:
            sent = await response.json()
        assert api.pending_updates()[0]["message"]["text"] == "кот"
        message = await bot.send_message(
            api.web_user_id, "Про <кот>", reply_markup=keyboard(("👍 0", "like"))
        )
        await bot.send_chat_action(api.web_user_id, "typing")
        async with http.get("/ui/messages", params={"since": "0"}) as response:
            state = await response.json()
        assert [(m["id"], m["from_bot"], m["text"]) for m in state["messages"]] == [
            (sent["message_id"], False, "кот"),
            (message.message_id, True, "Про <кот>"),
        ]
        assert state["messages"][1]["keyboard"] == [[{"text": "👍 0", "data": "like"}]]
        assert state["typing_ms"] > 0

        async with http.post(
            "/ui/press", json={"message_id": message.message_id, "data": "like"}
        ) as response:
            query_id = (await response.json())["callback_query_id"]
        assert api.callback_queries[query_id].data == "like"
        async with http.post("/ui/press", json={"message_id": 999, "data": "x"}) as response:
            assert response.status == 400

        # a long poll for changes wakes up on the bot's edit and carries only what changed
        async def edit_soon() -> None:
            await asyncio.sleep(0.1)
            await bot.answer_callback_query(query_id, text="Спасибо!")
            await bot.edit_message_reply_markup(
                chat_id=api.web_user_id,
                message_id=message.message_id,
                reply_markup=keyboard(("👍 1", "like")),
            )

        editing = asyncio.create_task(edit_soon())
        since = state["seq"]
        changed: list[dict] = []
        toasts: list[dict] = []
        while not changed:
            async with http.get("/ui/messages", params={"since": since, "wait": "5"}) as response:
                update = await response.json()
            changed, since = update["messages"], update["seq"]
            toasts += update["toasts"]
        await editing
        assert [(m["id"], m["edited"], m["keyboard"][0][0]["text"]) for m in changed] == [
            (message.message_id, True, "👍 1")
        ]
        assert toasts == [{"text": "Спасибо!", "show_alert": False}]
        await bot.send_message(api.web_user_id, "ещё")
        async with http.get("/ui/messages", params={"since": since}) as response:
            update = await response.json()
        assert update["typing_ms"] == 0  # the bot's new message ends the typing indicator


def test_entity_helpers() -> None:
    assert utf16_len("😀a") == 3
    assert [e["type"] for e in auto_entities("@funny_tochka_bot /joke кот #тег")] == [
        "mention",
        "bot_command",
        "hashtag",
    ]
