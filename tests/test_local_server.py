"""The local Bot API server, driven by a real aiogram Bot and Dispatcher over real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
)
from aiogram.utils.backoff import BackoffConfig

from local_telegram import LocalBotApi
from local_telegram.formatting import (
    ParseError,
    auto_entities,
    parse_html,
    parse_markdown_v2,
    utf16_len,
)

USER = 1001
FAST_BACKOFF = BackoffConfig(min_delay=0.05, max_delay=0.1, factor=1.1, jitter=0.0)


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d) for t, d in pairs]]
    )


@pytest.fixture
async def api() -> AsyncIterator[LocalBotApi]:
    async with LocalBotApi() as server:
        yield server


@pytest.fixture
async def bot(api: LocalBotApi) -> AsyncIterator[Bot]:
    instance = api.make_bot()
    yield instance
    await instance.session.close()


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

    html = await bot.send_message(USER, "<b>Жирный</b> &lt;кот&gt; 😀 <i>и</i>", parse_mode="HTML")
    assert html.text == "Жирный <кот> 😀 и"
    assert [(e.type, e.offset, e.length) for e in html.entities or []] == [
        ("bold", 0, 6),
        ("italic", 16, 1),  # the emoji counts as two UTF-16 units
    ]
    with pytest.raises(TelegramBadRequest, match="can't parse entities: Unsupported start tag"):
        await bot.send_message(USER, "1 <2 и 3> 2", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match=r"Character '\.' is reserved"):
        await bot.send_message(USER, "Конец.", parse_mode="MarkdownV2")


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
        await message.answer(
            f"Про {message.text}: <b>смешно</b>", reply_markup=keyboard(("👍 0", "like"))
        )

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
    bot = api.make_bot(default=DefaultBotProperties(parse_mode="HTML"))
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


def test_formatting_helpers() -> None:
    assert utf16_len("😀a") == 3
    text, entities = parse_html(
        '<a href="https://t.me">ссылка</a> <pre><code class="language-py">x</code></pre>'
    )
    assert text == "ссылка x"
    assert entities == [
        {"type": "text_link", "url": "https://t.me", "offset": 0, "length": 6},
        {"type": "pre", "offset": 7, "length": 1, "language": "py"},
    ]
    with pytest.raises(ParseError, match='Unmatched end tag at byte offset 7, expected "</b>"'):
        parse_html("<b>жи</i>")
    with pytest.raises(ParseError, match='Can\'t find end tag corresponding to start tag "b"'):
        parse_html("<b>жирный")
    assert parse_markdown_v2(r"*жирный* и \. `код\``") == (
        "жирный и . код`",
        [{"type": "bold", "offset": 0, "length": 6}, {"type": "code", "offset": 11, "length": 4}],
    )
    assert [e["type"] for e in auto_entities("@funny_tochka_bot /joke кот #тег")] == [
        "mention",
        "bot_command",
        "hashtag",
    ]
