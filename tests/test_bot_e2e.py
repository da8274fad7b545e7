"""The bot end to end: real dispatcher, real aiogram HTTP client, local Bot API server, tiny GPT."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot_harness import TOKEN, RunningBot, make_settings, running_bot
from tests.local_api import LocalBotApi

USER = 501
OTHER = 502


@pytest.fixture
async def env(api: LocalBotApi, tmp_path: Path, tiny_gpt_dir: Path) -> AsyncIterator[RunningBot]:
    db = tmp_path / "jokes.db"
    async with running_bot(api, make_settings(api, db, tiny_gpt_dir), db) as running:
        yield running


async def ask(env: RunningBot, text: str, user: int = USER):
    env.api.send_text(user, text)
    reply = await env.api.wait_for_bot_message(user, timeout=30)
    await env.idle()
    return reply


async def test_word_gets_joke_starting_with_it_with_keyboard(env: RunningBot) -> None:
    reply = await ask(env, "Молоко")
    assert reply.text is not None and reply.text.startswith("Молоко")
    assert len(reply.text) <= 4096
    assert reply.parse_mode is None
    assert [len(row) for row in reply.inline_keyboard] == [2, 2, 1]
    assert reply.button_texts == ["👍 0", "👎 0", "🔁 Ещё", "📤 Поделиться", "⚙️ GPT"]
    assert any(a.action == "typing" for a in env.api.chat_actions(USER))
    await env.api.wait_until(  # the message id is stored right after Telegram confirms the send
        lambda: env.rows("SELECT message_id FROM jokes") == [(reply.message_id,)], 5, "message id"
    )
    rows = env.rows("SELECT prompt, text, method, chat_id, message_id, params FROM jokes")
    assert len(rows) == 1
    prompt, text, method, chat_id, message_id, params = rows[0]
    assert (prompt, text, method, chat_id, message_id) == (
        "Молоко", reply.text, "gpt", USER, reply.message_id,
    )
    assert '"num_beams"' in params and '"do_sample": false' in params


async def test_like_switch_and_remove_update_rows_and_buttons(env: RunningBot) -> None:
    api = env.api
    joke = await ask(env, "Кот")
    steps = [("👍 0", "Спасибо!", ["👍 1", "👎 0"], [1]),
             ("👎 0", "Спасибо!", ["👍 0", "👎 1"], [-1]),
             ("👎 1", "Оценка снята", ["👍 0", "👎 0"], [])]
    for pressed, answer, shown, stored in steps:
        query = api.press_button(USER, joke.message_id, text=pressed)
        assert (await api.wait_for_callback_answer(query, timeout=10)).text == answer
        await api.wait_until(
            lambda shown=shown: api.message(USER, joke.message_id).button_texts[:2] == shown,
            5, f"buttons {shown}",
        )
        assert [v for (v,) in env.rows("SELECT value FROM votes")] == stored


async def test_more_button_writes_another_joke_for_same_word(env: RunningBot) -> None:
    joke = await ask(env, "Доктор")
    env.api.press_button(USER, joke.message_id, text="🔁 Ещё")
    second = await env.api.wait_for_bot_message(USER, after=joke.message_id, timeout=30)
    assert second.text is not None and second.text.startswith("Доктор")
    await env.idle()
    rows = env.rows("SELECT prompt, method, params FROM jokes ORDER BY id")
    assert [(prompt, method) for prompt, method, _ in rows] == [("Доктор", "gpt")] * 2
    # beam search is deterministic: 🔁 asks for the next-best beam, not the same joke again
    variants = [json.loads(params).get("variant") for _, _, params in rows]
    assert variants == [0, 1]


async def test_start_help_top_stats(env: RunningBot) -> None:
    start = await ask(env, "/start")
    assert "анекдот" in (start.text or "") and "GPT" in (start.text or "")
    assert start.button_texts == ["✅ GPT", "GPT (sampling)"]
    help_ = await ask(env, "/help")
    assert "/method" in (help_.text or "") and "Молоко" in (help_.text or "")
    assert "оценил" in ((await ask(env, "/top")).text or "")
    joke = await ask(env, "Школа")
    query = env.api.press_button(USER, joke.message_id, text="👍 0")
    await env.api.wait_for_callback_answer(query, timeout=10)
    top = await ask(env, "/top")
    assert joke.text in (top.text or "") and "👍 1" in (top.text or "")
    stats = await ask(env, "/stats")
    assert "GPT: анекдотов 1, оценок 1, нравится 100% (95%: 21–100%)" in (stats.text or "")
    assert joke.text in ((await ask(env, "/top gpt")).text or "")
    assert "Лучшие анекдоты (GPT):" in ((await ask(env, "/top GPT")).text or "")
    assert "оценил" in ((await ask(env, "/top gpt-sample")).text or "")  # none rated there
    unknown = (await ask(env, "/top шансон")).text or ""
    assert "Нет такой модели" in unknown and "/top gpt-sample" in unknown


async def test_method_choice_persists_across_restart(
    api: LocalBotApi, tmp_path: Path, tiny_gpt_dir: Path
) -> None:
    db = tmp_path / "jokes.db"
    settings = make_settings(api, db, tiny_gpt_dir)
    async with running_bot(api, settings, db) as env:
        picker = await ask(env, "/method")
        assert picker.button_texts == ["✅ GPT", "GPT (sampling)"]
        query = api.press_button(USER, picker.message_id, text="GPT (sampling)")
        assert "GPT (sampling)" in ((await api.wait_for_callback_answer(query, 10)).text or "")
        await api.wait_until(
            lambda: api.message(USER, picker.message_id).button_texts
            == ["GPT", "✅ GPT (sampling)"], 5, "picker updated in place",
        )
        assert api.message(USER, picker.message_id).text.endswith("Сейчас: GPT (sampling).")
    assert env.rows("SELECT id, method FROM users") == [(USER, "gpt-sample")]
    async with running_bot(api, settings, db) as env:
        picker = await ask(env, "/method")
        assert picker.button_texts == ["GPT", "✅ GPT (sampling)"]
        joke = await ask(env, "Вовочка")
        assert joke.button_texts[-1] == "⚙️ GPT (sampling)"
        assert env.rows("SELECT method FROM jokes") == [("gpt-sample",)]


async def test_gear_button_opens_picker(env: RunningBot) -> None:
    joke = await ask(env, "Кот")
    env.api.press_button(USER, joke.message_id, text="⚙️ GPT")
    picker = await env.api.wait_for_bot_message(USER, after=joke.message_id, timeout=10)
    assert picker.button_texts == ["✅ GPT", "GPT (sampling)"]


BAD_TEXTS = [
    ("\u200b\u200b", "Пришли слово"),
    ("а" * 65, "не больше 64 символов и 5 слов"),
    ("раз два три четыре пять шесть", "не больше 64 символов и 5 слов"),
    ("123 !!! 456", "ни одной буквы"),
    ("😂😂😂", "ни одной буквы"),
    ("/frobnicate", "Не знаю такой команды"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_TEXTS)
async def test_bad_text_gets_friendly_reply_and_writes_nothing(
    env: RunningBot, text: str, expected: str
) -> None:
    reply = await ask(env, text)
    assert expected in (reply.text or "")
    assert env.count("jokes") == 0 and env.count("votes") == 0


NON_TEXT = [
    {"sticker": {"file_id": "s1", "file_unique_id": "u1", "type": "regular", "width": 512,
                 "height": 512, "is_animated": False, "is_video": False}},
    {"photo": [{"file_id": "p1", "file_unique_id": "u2", "width": 90, "height": 90}]},
    {"voice": {"file_id": "v1", "file_unique_id": "u3", "duration": 2}},
    {"location": {"latitude": 55.75, "longitude": 37.62}},
]


@pytest.mark.parametrize("fields", NON_TEXT, ids=["sticker", "photo", "voice", "location"])
async def test_message_without_text_gets_friendly_reply(
    env: RunningBot, fields: dict[str, object]
) -> None:
    env.api.send_message(USER, **fields)
    reply = await env.api.wait_for_bot_message(USER, timeout=10)
    assert "только текст" in (reply.text or "")
    assert env.count("jokes") == 0


async def test_bad_callbacks_get_alert_and_record_nothing(env: RunningBot) -> None:
    api = env.api
    joke = await ask(env, "Кот")
    other_joke = await ask(env, "Пёс", user=OTHER)
    forged = [
        "garbage", "v:abc:1", "v:1:5", f"v:{joke.message_id + 999}:1", "r:nosuchtoken", "s:nope",
        f"v:{other_joke_id(env, OTHER)}:1",  # a real joke, but sent to another chat
    ]
    for data in forged:
        query = api.press_button(USER, joke.message_id, data, strict=False)
        answer = await api.wait_for_callback_answer(query, timeout=10)
        assert answer.show_alert, data
        assert answer.text, data
    assert env.count("votes") == 0
    assert env.rows("SELECT method FROM users WHERE id = ?", USER) == [(None,)]
    assert other_joke.text


def other_joke_id(env: RunningBot, user: int) -> int:
    return int(env.rows("SELECT id FROM jokes WHERE chat_id = ?", user)[0][0])


GROUP = -100200


async def test_group_answers_joke_command_and_mentions_only(env: RunningBot) -> None:
    api = env.api
    api.send_text(USER, "просто болтаем", chat_id=GROUP, chat_type="group")
    await api.assert_no_bot_message(GROUP, wait=0.5)
    api.send_text(USER, f"/joke@{api.bot_username} Штирлиц", chat_id=GROUP, chat_type="group")
    reply = await api.wait_for_bot_message(GROUP, timeout=30)
    assert (reply.text or "").startswith("Штирлиц")
    await env.idle()
    api.send_text(USER, f"@{api.bot_username} Колобок", chat_id=GROUP, chat_type="group")
    reply = await api.wait_for_bot_message(GROUP, timeout=30)
    assert (reply.text or "").startswith("Колобок")
    await env.idle()
    api.send_text(USER, "/joke", chat_id=GROUP, chat_type="group")
    usage = await api.wait_for_bot_message(GROUP, timeout=10)
    assert "/joke Молоко" in (usage.text or "")
    assert env.rows("SELECT chat_id, prompt FROM jokes ORDER BY id") == [
        (GROUP, "Штирлиц"), (GROUP, "Колобок"),
    ]


async def test_commands_are_registered(env: RunningBot) -> None:
    names = [c["command"] for c in env.api.my_commands()]
    assert {"start", "help", "method", "top", "stats", "joke"} <= set(names)


async def test_a_restarted_local_server_is_heard(tmp_path: Path, tiny_gpt_dir: Path) -> None:
    """`python -m bot --local` restarted: a new local server, the same database and offset file.
    Its update ids go on from the clock (as run_local starts it), so the bot, which remembers the
    last update it handled, answers the first message of the new run."""
    db = tmp_path / "jokes.db"
    for first_update_id in (1, int(time.time())):
        server = LocalBotApi(token=TOKEN, first_update_id=first_update_id)
        await server.start()
        try:
            async with running_bot(server, make_settings(server, db, tiny_gpt_dir), db) as env:
                for word in ("/start", "Кот"):
                    reply = await ask(env, word)
                    assert reply.text
        finally:
            await server.stop()
    assert env.count("jokes") == 2
