"""The local Bot API server's methods answer a real aiogram Bot over HTTP the way Telegram does.

Faults, shutdown, a real Dispatcher end to end and the web chat: test_local_server_driving.py.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    Message,
    MessageEntity,
    ReplyParameters,
)

from tests.local_api import LocalBotApi, keyboard

USER = 1001


async def test_get_me_send_message_with_keyboard(api: LocalBotApi, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.is_bot and me.id == api.bot_id and me.username == api.bot_username

    api.send_text(USER, "привет")  # the user starts the chat
    sent = await bot.send_message(USER, "  Анекдот  ", reply_markup=keyboard(("👍 0", "v:1:1")))
    assert isinstance(sent, Message)
    assert sent.text == "Анекдот"  # trimmed like Telegram does
    assert sent.from_user is not None and sent.from_user.id == api.bot_id
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "v:1:1"

    record = api.last_bot_message(USER)
    assert record is not None and record.message_id == sent.message_id
    assert record.text == "Анекдот" and record.callback_data == ["v:1:1"]
    assert [m.from_bot for m in api.messages(USER)] == [False, True]


async def test_edits_and_not_modified(api: LocalBotApi, bot: Bot) -> None:
    api.send_text(USER, "кот")
    sent = await bot.send_message(USER, "раз", reply_markup=keyboard(("👍 0", "v")))

    edited = await bot.edit_message_reply_markup(
        chat_id=USER, message_id=sent.message_id, reply_markup=keyboard(("👍 1", "v"))
    )
    assert isinstance(edited, Message) and edited.edit_date is not None
    record = api.message(USER, sent.message_id)
    assert record.button_texts == ["👍 1"] and len(record.edits) == 1

    with pytest.raises(TelegramBadRequest, match="message is not modified: specified new"):
        await bot.edit_message_reply_markup(
            chat_id=USER, message_id=sent.message_id, reply_markup=keyboard(("👍 1", "v"))
        )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "раз", chat_id=USER, message_id=sent.message_id, reply_markup=keyboard(("👍 1", "v"))
        )
    # editing the text without reply_markup drops the keyboard, as on Telegram
    await bot.edit_message_text("два", chat_id=USER, message_id=sent.message_id)
    assert record.text == "два" and record.reply_markup is None and len(record.edits) == 2

    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=999)
    user_message_id = api.user_messages(USER)[0].message_id
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=USER, message_id=user_message_id)


async def test_validation_like_telegram(api: LocalBotApi, bot: Bot) -> None:
    api.send_text(USER, "кот")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(USER, "   ")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "а" * 4097)
    await bot.send_message(USER, "а" * 4096)
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "x", reply_markup=keyboard(("b", "я" * 33)))  # 66 bytes
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(777, "x")
    api.block_user(USER)
    with pytest.raises(TelegramForbiddenError, match="blocked"):
        await bot.send_message(USER, "x")
    api.block_user(USER, blocked=False)


async def test_text_kept_as_sent_entities_follow_trim(api: LocalBotApi, bot: Bot) -> None:
    api.send_text(USER, "кот")
    # the bot sends plain text; markup is recorded, never parsed
    marked = await bot.send_message(USER, "<b>кот</b>", parse_mode="HTML")
    assert marked.text == "<b>кот</b>" and not marked.entities
    record = api.last_bot_message(USER)
    assert record is not None and record.parse_mode == "HTML"
    spaced = await bot.send_message(
        USER, "  😀 кот", entities=[MessageEntity(type="bold", offset=5, length=3)]
    )
    assert spaced.text == "😀 кот"
    assert [(e.type, e.offset, e.length) for e in spaced.entities or []] == [
        ("bold", 3, 3)  # the emoji counts as two UTF-16 units
    ]


async def test_long_polling_and_offset_confirmation(api: LocalBotApi, bot: Bot) -> None:
    async def later() -> None:
        await asyncio.sleep(0.2)
        api.send_text(USER, "/joke@funny_tochka_bot кот", chat_id=-500, chat_type="group")

    started = time.monotonic()
    pushing = asyncio.create_task(later())
    updates = await bot.get_updates(timeout=5)
    elapsed = time.monotonic() - started
    await pushing
    assert 0.15 < elapsed < 2.0, elapsed
    assert len(updates) == 1 and updates[0].message is not None
    message = updates[0].message
    assert message.chat.type == "group" and message.chat.id == -500
    assert message.text == "/joke@funny_tochka_bot кот"
    assert [(e.type, e.offset, e.length) for e in message.entities or []] == [
        ("bot_command", 0, 22)
    ]

    # delivered but not confirmed: returned again until a higher offset is asked for
    assert not api.all_updates_answered and len(api.pending_updates()) == 1
    again = await bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [updates[0].update_id]
    assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == []
    assert api.all_updates_answered and api.pending_updates() == []

    # limit, and an empty answer once the timeout passes
    for word in ("а", "б", "в"):
        api.send_text(USER, word)
    first_two = await bot.get_updates(limit=2, timeout=0)
    assert [u.message.text for u in first_two if u.message] == ["а", "б"]
    rest = await bot.get_updates(offset=first_two[-1].update_id + 1, timeout=0)
    assert [u.message.text for u in rest if u.message] == ["в"]
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        url = f"{api.url}/bot{api.token}/getUpdates"
        params = {"offset": str(rest[-1].update_id + 1), "timeout": "0.3"}
        async with http.post(url, data=params) as response:
            assert await response.json() == {"ok": True, "result": []}
        assert 0.25 < time.monotonic() - started < 1.5


async def test_replies_raw_updates_and_allowed_updates(api: LocalBotApi, bot: Bot) -> None:
    asked = api.send_text(USER, "кот")
    reply = await bot.send_message(
        USER, "ответ", reply_parameters=ReplyParameters(message_id=asked.message_id)
    )
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.message_id == asked.message_id
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(USER, "x", reply_parameters=ReplyParameters(message_id=999))

    joined = api.send_message(
        USER,
        chat_id=-77,
        chat_type="group",
        chat_title="Шутники",
        new_chat_members=[api.bot_user],
    )
    member = {"user": api.bot_user, "status": "member"}
    api.send_update(
        {
            "my_chat_member": {
                "chat": {"id": -77, "type": "group", "title": "Шутники"},
                "from": {"id": USER, "is_bot": False, "first_name": "A"},
                "date": 0,
                "old_chat_member": {**member, "status": "left"},
                "new_chat_member": member,
            }
        }
    )
    api.send_update({"chat_member": {}})  # not asked for: Telegram never sends it
    edited = api.edit_user_message(USER, asked.message_id, "кошка")
    updates = await bot.get_updates(timeout=0)
    assert [u.event_type for u in updates] == [
        "message",
        "message",
        "my_chat_member",
        "edited_message",
    ]
    group_message = updates[1].message
    assert group_message is not None and group_message.chat.title == "Шутники"
    assert group_message.message_id == joined.message_id
    assert [u.id for u in group_message.new_chat_members or []] == [api.bot_id]
    assert updates[3].edited_message is not None
    assert updates[3].edited_message.text == "кошка" == edited.text
    await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    assert api.all_updates_answered and api.updates[-2].dropped


async def test_second_poller_ends_the_first_with_conflict(api: LocalBotApi, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(bot.get_updates(timeout=5))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await first
    api.send_text(USER, "кот")
    assert len(await second) == 1


async def test_press_button_and_answer_callback(api: LocalBotApi, bot: Bot) -> None:
    api.send_text(USER, "кот")
    sent = await bot.send_message(USER, "Анекдот", reply_markup=keyboard(("👍 0", "v:1")))
    with pytest.raises(ValueError, match="no button"):
        api.press_button(USER, sent.message_id, "forged")
    query_id = api.press_button(USER, sent.message_id, "v:1")
    updates = await bot.get_updates(timeout=1)
    query = updates[-1].callback_query
    assert isinstance(query, CallbackQuery)
    assert query.id == query_id and query.data == "v:1" and query.from_user.id == USER
    assert isinstance(query.message, Message) and query.message.message_id == sent.message_id

    with pytest.raises(TelegramBadRequest, match="Bad Request: MESSAGE_TOO_LONG"):
        await bot.answer_callback_query(query_id, text="я" * 201)
    assert await bot.answer_callback_query(query_id, text="Спасибо!", show_alert=True)
    answer = await api.wait_for_callback_answer(query_id, timeout=1)
    assert answer.text == "Спасибо!" and answer.show_alert
    with pytest.raises(TelegramBadRequest, match="query is too old and response timeout expired"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("12345")


async def test_commands_actions_webhook_and_harmless_methods(api: LocalBotApi, bot: Bot) -> None:
    commands = [BotCommand(command="joke", description="Анекдот по слову")]
    assert await bot.set_my_commands(commands)
    assert [c.command for c in await bot.get_my_commands()] == ["joke"]
    assert api.my_commands() == [{"command": "joke", "description": "Анекдот по слову"}]
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Шутка", description="x")])

    api.send_text(USER, "кот")
    assert await bot.send_chat_action(USER, "typing")
    assert (await api.wait_for_chat_action(USER, "typing", timeout=1)).action == "typing"
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert api.all_updates_answered and await bot.get_updates(timeout=0) == []
    assert await bot.log_out() and await bot.close()


async def test_unknown_method_and_wrong_token(api: LocalBotApi) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{api.url}/bot{api.token}/sendDice", json={}) as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        # method names ignore case; GET with a query string works too
        async with http.get(f"{api.url}/bot{api.token}/GETME") as response:
            assert (await response.json())["result"]["id"] == api.bot_id
    stranger = Bot("999:wrong", session=api.make_bot().session)
    with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
        await stranger.get_me()
    await stranger.session.close()
