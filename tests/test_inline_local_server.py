"""The local Bot API server's inline mode answers a real aiogram Bot over HTTP as Telegram does:
inline queries, answerInlineQuery and its checks, Telegram's cache, picking a result (the message
"via @bot", chosen_inline_result), presses and edits by inline_message_id, and the web chat's
inline line.
"""

from __future__ import annotations

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
)

from tests.local_api import LocalBotApi, keyboard

USER, OTHER, GROUP = 1001, 1002, -1005


def article(result_id: str, text: str = "Анекдот", **extra: object) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(
        id=result_id,
        title=f"Вариант {result_id}",
        description=text,
        input_message_content=InputTextMessageContent(message_text=text),
        **extra,  # type: ignore[arg-type]
    )


async def next_update(bot: Bot, kind: str):  # type: ignore[no-untyped-def]
    updates = await bot.get_updates(timeout=1)
    assert updates, f"no {kind} update"
    await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    return getattr(updates[-1], kind)


async def test_query_answer_choose_press_and_edit(api: LocalBotApi, bot: Bot) -> None:
    query_id = api.send_inline_query(USER, "Молоко", chat_id=GROUP)
    query = await next_update(bot, "inline_query")
    assert (query.id, query.query, query.chat_type, query.from_user.id) == (
        query_id,
        "Молоко",
        "group",
        USER,
    )
    buttons = keyboard(("👍 0", "v:1:1"))
    assert await bot.answer_inline_query(
        query_id,
        [article("1", reply_markup=buttons), article("2")],
        cache_time=7,
        is_personal=True,
    )
    answer = api.inline_query_record(query_id).answer
    assert answer is not None and [r["id"] for r in answer.results] == ["1", "2"]
    assert (answer.cache_time, answer.is_personal) == (7, True)

    posted = api.choose_inline_result(query_id, "1")
    message = posted.message
    assert (message.chat_id, message.sender_id, message.text) == (GROUP, USER, "Анекдот")
    assert message.extra["via_bot"]["id"] == api.bot_id and message.callback_data == ["v:1:1"]
    chosen = await next_update(bot, "chosen_inline_result")
    assert (chosen.result_id, chosen.query, chosen.from_user.id) == ("1", "Молоко", USER)
    assert chosen.inline_message_id == posted.inline_message_id

    press = api.press_inline_button(OTHER, posted.inline_message_id, text="👍 0")
    callback = await next_update(bot, "callback_query")
    assert callback.message is None and callback.inline_message_id == posted.inline_message_id
    assert (callback.data, callback.from_user.id) == ("v:1:1", OTHER)
    assert await bot.answer_callback_query(press, text="Спасибо!")
    assert api.callback_queries[press].chat_id == GROUP

    new = keyboard(("👍 1", "v:1:1"))
    edited = await bot.edit_message_reply_markup(
        inline_message_id=posted.inline_message_id, reply_markup=new
    )
    assert edited is True and message.button_texts == ["👍 1"] and len(message.edits) == 1
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(
            inline_message_id=posted.inline_message_id, reply_markup=new
        )
    assert await bot.edit_message_text(
        "Другой", inline_message_id=posted.inline_message_id, reply_markup=new
    )
    assert message.text == "Другой"
    with pytest.raises(TelegramBadRequest, match="MESSAGE_ID_INVALID"):
        await bot.edit_message_reply_markup(inline_message_id="AgAAAgone", reply_markup=new)

    # a result without a keyboard: Telegram names no message in the report
    second = api.choose_inline_result(query_id, "2")
    assert second.message.reply_markup is None
    assert (await next_update(bot, "chosen_inline_result")).inline_message_id is None


async def test_answer_checks_in_telegrams_words(api: LocalBotApi, bot: Bot) -> None:
    cases = [
        ([article("1"), article("1")], "RESULT_ID_DUPLICATE"),
        ([article("x" * 65)], "RESULT_ID_INVALID"),
        ([article(str(n)) for n in range(51)], "RESULTS_TOO_MUCH"),
        ([article("1").model_copy(update={"title": " "})], "RESULT_TITLE_EMPTY"),
        ([article("1", text="x" * 4097)], "message is too long"),
        ([article("1", reply_markup=keyboard(("b", "x" * 65)))], "BUTTON_DATA_INVALID"),
        (
            [
                article(
                    "1",
                    reply_markup=InlineKeyboardMarkup(
                        inline_keyboard=[[InlineKeyboardButton(text="только текст")]]
                    ),
                )
            ],
            "Text buttons are unallowed",
        ),
    ]
    for results, error in cases:
        query_id = api.send_inline_query(USER, "кот", chat_id=GROUP)
        with pytest.raises(TelegramBadRequest, match=error):
            await bot.answer_inline_query(query_id, results)
        assert api.inline_query_record(query_id).answer is None
    query_id = api.send_inline_query(USER, "кот", chat_id=GROUP)
    assert await bot.answer_inline_query(query_id, [], cache_time=0)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_inline_query(query_id, [])  # once only
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_inline_query("424242", [])
    api.inline.query_timeout_s = 0.0
    late = api.send_inline_query(USER, "пёс", chat_id=GROUP)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_inline_query(late, [])
    with pytest.raises(ValueError, match="256"):
        api.send_inline_query(USER, "ы" * 257)


async def test_telegrams_cache_personal_or_shared(api: LocalBotApi, bot: Bot) -> None:
    first = api.send_inline_query(USER, "кот", chat_id=GROUP)
    await bot.answer_inline_query(first, [article("1")], cache_time=60, is_personal=True)
    updates = len(api.updates)
    again = api.send_inline_query(USER, "кот", chat_id=GROUP)
    assert api.inline_query_record(again).cached and len(api.updates) == updates
    assert (await api.wait_for_inline_answer(again)).results[0]["id"] == "1"
    other = api.send_inline_query(OTHER, "кот", chat_id=GROUP)  # personal: not for others
    assert not api.inline_query_record(other).cached
    await bot.answer_inline_query(other, [article("2")], cache_time=60)  # not personal
    third = api.send_inline_query(USER + 5, "кот", chat_id=GROUP)
    assert api.inline_query_record(third).cached
    assert api.inline_query_record(third).answer.results[0]["id"] == "2"  # type: ignore[union-attr]
    fresh = api.send_inline_query(USER, "кот", chat_id=GROUP, use_cache=False)
    assert not api.inline_query_record(fresh).cached


async def test_feedback_off_and_the_bots_own_chat(api: LocalBotApi, bot: Bot) -> None:
    api.inline.feedback = False
    query_id = api.send_inline_query(USER, "", chat_id=None)
    query = await next_update(bot, "inline_query")
    assert (query.query, query.chat_type) == ("", "sender")
    await bot.answer_inline_query(query_id, [article("1", reply_markup=keyboard(("👍", "v")))])
    posted = api.choose_inline_result(query_id, "1")
    update = await next_update(bot, "message")  # the bot's own chat: it sees the message
    assert update.via_bot is not None and update.via_bot.id == api.bot_id
    assert update.chat.id == USER and update.text == "Анекдот"
    assert not [u for u in api.updates if u.kind == "chosen_inline_result"]
    with pytest.raises(ValueError, match="no result"):
        api.choose_inline_result(query_id, "nope")
    with pytest.raises(ValueError, match="no inline message"):
        api.press_inline_button(USER, "AgAAAunknown", "v")
    forged = api.press_inline_button(USER, "AgAAAunknown", "v", strict=False)
    assert api.callback_queries[forged].chat_id == 0
    assert api.inline_message(posted.inline_message_id) is posted.message


async def test_web_chat_inline_line(api: LocalBotApi, bot: Bot) -> None:
    async with aiohttp.ClientSession(base_url=api.url) as http:
        async with http.get("/") as response:
            page = await response.text()
        assert 'id="inline-results"' in page and "function renderInline" in page
        assert "__CHAT_INLINE_JS__" not in page and "src=" not in page

        async with http.post("/ui/inline", json={"query": "Молоко"}) as response:
            query_id = (await response.json())["inline_query_id"]
        record = api.inline_query_record(query_id)
        assert (record.user_id, record.chat_id, record.chat_type) == (
            api.web_user_id,
            api.web_user_id,
            "sender",
        )
        async with http.get("/ui/messages", params={"since": "0"}) as response:
            waiting = (await response.json())["inline"]
        assert (waiting["id"], waiting["status"], waiting["results"]) == (query_id, "waiting", [])

        await bot.answer_inline_query(
            query_id,
            [article("7", "Молоко <b>скисло</b>", reply_markup=keyboard(("👍 0", "v:7:1")))],
        )
        async with http.get("/ui/messages", params={"since": "0"}) as response:
            answered = (await response.json())["inline"]
        assert answered["status"] == "answered"
        assert answered["results"] == [
            {"id": "7", "title": "Вариант 7", "description": "Молоко <b>скисло</b>"}
        ]

        async with http.post(
            "/ui/choose", json={"inline_query_id": query_id, "result_id": "x"}
        ) as response:
            assert response.status == 400  # no such result
        async with http.post(
            "/ui/choose", json={"inline_query_id": query_id, "result_id": "7"}
        ) as response:
            inline_id = (await response.json())["inline_message_id"]
        async with http.get("/ui/messages", params={"since": "0"}) as response:
            shown = (await response.json())["messages"][-1]
        assert (shown["from_bot"], shown["text"]) == (False, "Молоко <b>скисло</b>")
        assert (shown["inline_message_id"], shown["via_bot"]) == (inline_id, api.bot_username)

        async with http.post(
            "/ui/press-inline", json={"inline_message_id": inline_id, "data": "v:7:1"}
        ) as response:
            press = (await response.json())["callback_query_id"]
        assert api.callback_queries[press].inline_message_id == inline_id
        for path, body in (
            ("/ui/press-inline", {"inline_message_id": "AgAAAgone", "data": "v"}),
            ("/ui/choose", {"inline_query_id": "nope", "result_id": "7"}),
            ("/ui/inline", ["not", "an", "object"]),
        ):
            async with http.post(path, json=body) as response:
                assert response.status == 400, path
