"""Inline mode under bad input and load: every query gets an answer, never an error.

Empty, over-long, letterless and markup queries get one hint and cost nothing; a busy service,
a user over their limits (the same as in chats) and a broken model get a hint too. Presses under
inline messages for jokes that are gone, forged picks, and buttons the bot does not know: a
friendly answer, or nothing, and no stored change.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.keyboards import inline_joke_keyboard
from bot.shared_jokes import ShareLinks
from tests.bot_harness import TOKEN, RunningBot
from tests.inline_kit import (
    ALICE,
    BOB,
    CAROL,
    GROUP,
    Writer,
    ask_inline,
    best_three,
    env,
    errors,
    idle,
    joke_rows,
    running_inline_bot,
    writer,
)
from tests.local_api import LocalBotApi

__all__ = ["env", "writer"]  # fixtures
LINKS = ShareLinks.from_secret(TOKEN)  # what the test bot signs with: no SHARE_SECRET set

HINTS = [
    ("", "Напиши слово — сочиню анекдот"),
    ("   ", "Напиши слово — сочиню анекдот"),
    ("а" * 65, "Слишком длинно"),
    ("раз два три четыре пять шесть", "Слишком длинно"),
    ("😂😂😂", "Нужно слово"),
    ("123 456", "Нужно слово"),
    ("<b>Молоко</b>", "Только слово, без разметки"),
    ("<script>alert(1)</script>", "Только слово, без разметки"),
    ("Молоко &amp; кот", "Только слово, без разметки"),
]


def snapshot(env: RunningBot) -> tuple[object, ...]:
    return (joke_rows(env), env.rows("SELECT * FROM votes"), env.count("users"))


@pytest.mark.parametrize(("query", "title"), HINTS)
async def test_a_query_that_is_no_word_gets_a_hint(
    env: RunningBot, writer: Writer, query: str, title: str
) -> None:
    api = env.api
    query_id, answer = await ask_inline(env, ALICE, query)
    assert [r["id"] for r in answer.results] == ["hint"]
    hint = answer.results[0]
    assert hint["title"] == title and "reply_markup" not in hint
    text = hint["input_message_content"]["message_text"]
    assert f"@{api.bot_username} Молоко" in text and "<" not in text
    assert answer.cache_time == 60  # depends on the text alone
    assert writer.calls == 0 and joke_rows(env) == [] and errors(env) == 0
    posted = api.choose_inline_result(query_id, "hint")  # tapped anyway: it only explains
    await idle(env)
    assert posted.message.text == text and posted.message.reply_markup is None
    assert joke_rows(env) == [] and errors(env) == 0


async def test_limits_are_the_chats_and_are_answered_with_hints(
    api: LocalBotApi, tmp_path: Path, writer: Writer
) -> None:
    async with running_inline_bot(api, tmp_path / "j.db", writer, throttle_rate_s=60) as env:
        _, first = await ask_inline(env, ALICE, "Молоко")
        assert [r["description"] for r in first.results] == best_three("Молоко")
        _, fast = await ask_inline(env, ALICE, "Кот")
        assert [r["title"] for r in fast.results] == ["Не так быстро 🙂 Подожди секунду."]
        assert fast.cache_time == 0  # about the moment: typed again later, it is asked anew
        # one rate per user, chat and inline together
        api.send_text(ALICE, "Кот")
        reply = await api.wait_for_bot_message(ALICE, timeout=10)
        assert reply.text == "Не так быстро 🙂 Подожди секунду."
        # answers that cost no model call are not held back: hints and the bot's cache
        _, hint = await ask_inline(env, ALICE, "")
        assert hint.results[0]["title"] == "Напиши слово — сочиню анекдот"
        _, cached = await ask_inline(env, ALICE, "молоко", use_cache=False)
        assert cached.results == first.results
        # others are not affected
        _, bobs = await ask_inline(env, BOB, "Кот")
        assert [r["description"] for r in bobs.results] == best_three("Кот")
        assert len(joke_rows(env)) == 6 and errors(env) == 0


async def test_one_request_in_flight_per_user_and_busy_when_full(
    api: LocalBotApi, tmp_path: Path, writer: Writer
) -> None:
    writer.gate = threading.Event()
    async with running_inline_bot(api, tmp_path / "j.db", writer, queue_depth=1) as env:
        slow = api.send_inline_query(ALICE, "Молоко", chat_id=GROUP)
        await asyncio.to_thread(writer.started.wait, 10)
        writing = await api.wait_for_inline_answer(
            api.send_inline_query(ALICE, "Кот", chat_id=GROUP), timeout=10
        )
        assert [r["title"] for r in writing.results] == ["Уже пишу…"]
        busy = await api.wait_for_inline_answer(
            api.send_inline_query(BOB, "Кот", chat_id=GROUP), timeout=10
        )
        assert [r["title"] for r in busy.results] == ["Сейчас много желающих посмеяться"]
        assert busy.cache_time == 0
        writer.gate.set()
        answer = await api.wait_for_inline_answer(slow, timeout=10)
        assert [r["description"] for r in answer.results] == best_three("Молоко")
        await idle(env)
        assert len(joke_rows(env)) == 3 and errors(env) == 0


async def test_a_broken_model_gets_a_hint_and_stores_nothing(
    env: RunningBot, writer: Writer
) -> None:
    writer.fail = True
    _, answer = await ask_inline(env, ALICE, "Молоко")
    assert [r["title"] for r in answer.results] == ["Анекдот не сложился"]
    assert answer.cache_time == 0 and joke_rows(env) == [] and errors(env) == 0


async def test_presses_for_jokes_that_are_gone_change_nothing(env: RunningBot) -> None:
    api = env.api
    query_id, answer = await ask_inline(env, ALICE, "Молоко")
    posted = api.choose_inline_result(query_id, answer.results[0]["id"])
    await idle(env)
    joke_id = int(answer.results[0]["id"])
    with contextlib.closing(sqlite3.connect(env.db_path)) as con, con:
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("DELETE FROM jokes WHERE id = ?", (joke_id,))
    before = snapshot(env)
    press = api.press_inline_button(BOB, posted.inline_message_id, text="👍 0")
    gone = await api.wait_for_callback_answer(press, timeout=10)
    assert (gone.text, gone.show_alert) == ("Анекдот не найден.", True)
    never_stored = inline_joke_keyboard(10**9, 0, 0, "Молоко", LINKS)  # as the bot signs it
    like = str(never_stored.inline_keyboard[0][0].callback_data)
    forged = api.press_inline_button(  # a message Telegram never had, a joke never stored
        CAROL, "AgAAAnot-a-message", like, strict=False
    )
    unknown = await api.wait_for_callback_answer(forged, timeout=10)
    assert (unknown.text, unknown.show_alert) == ("Анекдот не найден.", True)
    await idle(env)
    assert snapshot(env) == before and not posted.message.edits and errors(env) == 0


async def test_other_buttons_and_forged_data_under_inline_messages(env: RunningBot) -> None:
    api = env.api
    query_id, answer = await ask_inline(env, ALICE, "Кот")
    joke_id = answer.results[0]["id"]
    posted = api.choose_inline_result(query_id, joke_id)
    await idle(env)
    before = snapshot(env)
    sig = LINKS.seal(int(joke_id))
    for data in (
        f"m:{joke_id}",
        "p",
        f"v:{joke_id}:5",
        "v:abc:1",
        "x" * 64,
        f"iv:{joke_id}:5:{sig}",
        f"iv:{joke_id}:1:{sig}x",
        f"iv:{joke_id}:1",
    ):
        press = api.press_inline_button(BOB, posted.inline_message_id, data, strict=False)
        reply = await api.wait_for_callback_answer(press, timeout=10)
        assert (reply.text, reply.show_alert) == ("Эта кнопка устарела.", True), data
    await idle(env)
    assert snapshot(env) == before and errors(env) == 0


async def test_forged_picks_change_nothing(env: RunningBot) -> None:
    api = env.api
    _, answer = await ask_inline(env, ALICE, "Молоко")
    api.send_text(CAROL, "Кот")  # a joke in Carol's own chat
    await api.wait_for_bot_message(CAROL, timeout=10)
    await idle(env)
    before = snapshot(env)
    alices = answer.results[0]["id"]
    carols = str(joke_rows(env)[-1][0])
    for result_id, sender in (
        (alices, BOB),  # Alice's offer, "picked" by Bob
        (carols, CAROL),  # a chat joke is no inline offer
        ("hint", ALICE),
        ("abc", ALICE),
        ("9" * 25, ALICE),
        ("999999", ALICE),
    ):
        user = {"id": sender, "is_bot": False, "first_name": "X"}
        chosen = {"result_id": result_id, "from": user, "query": "Молоко"}
        api.send_update({"chosen_inline_result": {**chosen, "inline_message_id": "AgAAAx"}})
    await idle(env)
    assert snapshot(env) == before and errors(env) == 0
