"""Telegram misbehaving: 5xx, dropped connections, flood control, refusals of edits and answers.

Each test breaks one thing through the local server's fault switches and checks what the user
sees, what is stored, and that no update ended in the error handler (unless it had to).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from tests.bot_harness import TOKEN, RunningBot
from tests.fault_kit import (
    FakeModel,
    ask,
    env,
    errors,
    idle,
    model,
    running_fake_bot,
    wait_long_poll,
)
from tests.local_api import LocalBotApi

__all__ = ["env", "model"]

USER = 601
OTHER = 602


@pytest.mark.parametrize("kind", ["5xx", "drop", "html5xx", "429"])
async def test_polling_survives_failing_get_updates(env: RunningBot, kind: str) -> None:
    api = env.api
    await wait_long_poll(api)
    api.faults.fail_next("getUpdates", kind, count=3)
    joke = await ask(env, "Молоко", USER)
    assert (joke.text or "").startswith("Молоко")
    assert api.faults.count("getUpdates", kind) == 3
    assert errors(env) == 0


@pytest.mark.parametrize("kind", ["5xx", "drop", "html5xx"])
async def test_send_failing_once_is_retried_and_joke_arrives_once(
    env: RunningBot, kind: str
) -> None:
    env.api.faults.fail_next("sendMessage", kind)
    joke = await ask(env, "Кот", USER)
    assert (joke.text or "").startswith("Кот")
    assert [m.text for m in env.api.bot_messages(USER)] == [joke.text]
    await env.api.wait_until(
        lambda: env.rows("SELECT message_id FROM jokes") == [(joke.message_id,)], 5, "message id"
    )
    assert env.app.retry.retries == 1
    assert errors(env) == 0


async def test_lost_send_answer_duplicates_but_both_copies_vote_on_one_joke(
    env: RunningBot,
) -> None:
    """The documented price of retrying sendMessage: Telegram sent it, its answer was lost."""
    api = env.api
    api.faults.fail_next("sendMessage", "5xx", after=True)
    first = await ask(env, "Пёс", USER)
    copies = api.bot_messages(USER)
    assert len(copies) == 2 and copies[0].text == copies[1].text == first.text
    assert env.count("jokes") == 1
    answers = []
    for copy in copies:  # the same 👍 on each copy: one joke, so the second press un-likes
        query = api.press_button(USER, copy.message_id, text="👍 0")
        answers.append((await api.wait_for_callback_answer(query)).text)
    assert answers == ["Спасибо!", "Оценка снята"]
    assert env.count("votes") == 0
    assert errors(env) == 0


async def test_send_failing_twice_keeps_the_joke_and_bot_goes_on(env: RunningBot) -> None:
    """A 5xx does not prove the message was not sent, so the joke stays stored: if a copy did
    arrive, its buttons must find it."""
    api = env.api
    api.faults.fail_next("sendMessage", "5xx", count=2)
    api.send_text(USER, "Слон")
    await idle(env)
    assert env.count("jokes") == 1  # kept, with no message id: it may have been seen
    assert env.rows("SELECT message_id FROM jokes") in ([(None,)], [(0,)])
    assert errors(env) == 1  # the handler gave up; the error handler apologised
    apology = await api.wait_for_bot_message(USER)
    assert "Что-то пошло не так" in (apology.text or "")
    joke = await ask(env, "Слон", USER)
    assert (joke.text or "").startswith("Слон") and env.count("jokes") == 2


async def test_answers_lost_twice_leave_two_copies_whose_buttons_both_work(
    env: RunningBot,
) -> None:
    """Telegram sent the joke twice (first try and retry) and both answers were lost."""
    api = env.api
    api.faults.fail_next("sendMessage", "5xx", count=2, after=True)
    api.send_text(USER, "Ёж")
    await idle(env)
    copies = [m for m in api.bot_messages(USER) if (m.text or "").startswith("Ёж")]
    assert len(copies) == 2 and env.count("jokes") == 1
    answers = []
    for copy, button in zip(copies, ("👍 0", "👎 0"), strict=True):
        query = api.press_button(USER, copy.message_id, text=button)
        answers.append((await api.wait_for_callback_answer(query)).text)
    assert answers == ["Спасибо!", "Спасибо!"]  # a like, then switched to a dislike
    assert env.rows("SELECT value FROM votes") == [(-1,)]


async def test_flood_control_on_send_waits_retry_after_then_delivers(env: RunningBot) -> None:
    env.api.faults.fail_next("sendMessage", "429", retry_after=1)
    started = time.monotonic()
    joke = await ask(env, "Заяц", USER)
    assert time.monotonic() - started >= 1.0
    assert (joke.text or "").startswith("Заяц") and len(env.api.bot_messages(USER)) == 1
    assert errors(env) == 0


async def test_flood_control_longer_than_cap_is_not_waited_out(env: RunningBot) -> None:
    """Flood control is Telegram refusing the message: nothing was sent, so nothing is kept."""
    env.api.faults.fail_next("sendMessage", "429", retry_after=3600)
    started = time.monotonic()
    env.api.send_text(USER, "Волк")
    await idle(env)
    assert time.monotonic() - started < 5
    assert env.count("jokes") == 0 and errors(env) == 1


@pytest.mark.parametrize("kind", ["5xx", "drop", "429"])
async def test_vote_survives_failing_answer_and_edit(env: RunningBot, kind: str) -> None:
    api = env.api
    joke = await ask(env, "Лиса", USER)
    api.faults.fail_next("answerCallbackQuery", kind)
    api.faults.fail_next("editMessageReplyMarkup", kind)
    query = api.press_button(USER, joke.message_id, text="👍 0")
    assert (await api.wait_for_callback_answer(query)).text == "Спасибо!"
    await api.wait_until(
        lambda: api.message(USER, joke.message_id).button_texts[0] == "👍 1", 5, "new counts"
    )
    assert env.rows("SELECT user_id, value FROM votes") == [(USER, 1)]
    assert errors(env) == 0


async def test_lost_callback_answer_retried_is_too_old_and_that_is_fine(env: RunningBot) -> None:
    api = env.api
    joke = await ask(env, "Ёж", USER)
    api.faults.fail_next("answerCallbackQuery", "5xx", after=True)  # answered, answer lost
    query = api.press_button(USER, joke.message_id, text="👎 0")
    assert (await api.wait_for_callback_answer(query)).text == "Спасибо!"
    await idle(env)
    assert env.rows("SELECT value FROM votes") == [(-1,)]
    assert errors(env) == 0


async def test_message_not_modified_is_ignored(env: RunningBot) -> None:
    api = env.api
    joke = await ask(env, "Бобр", USER)
    query = api.press_button(USER, joke.message_id, text="👍 0")
    await api.wait_for_callback_answer(query)
    await api.wait_until(lambda: api.message(USER, joke.message_id).button_texts[0] == "👍 1")
    # the vote disappears behind the bot's back: the keyboard now shows a count that a new
    # like reproduces exactly, so the bot's edit changes nothing
    with sqlite3.connect(env.db_path) as con:
        con.execute("DELETE FROM votes")
    query = api.press_button(USER, joke.message_id, text="👍 1")  # counts stay "👍 1"
    assert (await api.wait_for_callback_answer(query)).text == "Спасибо!"
    await idle(env)
    refused = [c for c in api.calls_of("editMessageReplyMarkup") if c.status == 400]
    assert len(refused) == 1  # "message is not modified", swallowed
    assert errors(env) == 0


async def test_query_too_old_is_ignored_and_vote_kept(tmp_path: Path, model: FakeModel) -> None:
    async with (
        LocalBotApi(token=TOKEN, callback_timeout_s=0.3) as api,
        running_fake_bot(api, tmp_path / "jokes.db", model) as env,
    ):
        joke = await ask(env, "Кит", USER)
        api.faults.fail_next("answerCallbackQuery", "delay", delay=0.6)
        query = api.press_button(USER, joke.message_id, text="👍 0")
        await api.wait_until(
            lambda: api.message(USER, joke.message_id).button_texts[0] == "👍 1", 5, "edit"
        )
        await idle(env)
        assert api.callback_answer(query) is None  # too late: Telegram refused it
        assert env.rows("SELECT value FROM votes") == [(1,)]
        assert errors(env) == 0


async def test_random_faults_everywhere_every_word_answered(env: RunningBot) -> None:
    """1 call in 5 fails at random (5xx, drops, 429, HTML pages): every word is answered, with
    a joke, or with an apology where a send failed twice in a row."""
    api = env.api
    api.faults.random(0.2, ("5xx", "drop", "429", "html5xx"), seed=11)
    words = ["Арбуз", "Банан", "Вишня", "Груша", "Дыня", "Ель"]
    for n, word in enumerate(words):
        api.send_text(USER + 10 + n, word)
    for n, word in enumerate(words):
        reply = await api.wait_for_bot_message(USER + 10 + n, timeout=15)
        assert (reply.text or "").startswith(word) or "Что-то пошло не так" in (reply.text or "")
    await idle(env, timeout=15)
    assert api.faults.count() > 0
    assert env.count("jokes") == len(words) - errors(env)


async def test_start_rides_out_telegram_being_down(api: LocalBotApi, tmp_path: Path) -> None:
    """getMe failing at start is retried; a failing setMyCommands does not stop the start."""
    api.faults.fail_next("getMe", "5xx", count=3)
    api.faults.fail_next("setMyCommands", "drop", count=2)
    async with running_fake_bot(api, tmp_path / "j.db") as env:
        joke = await ask(env, "Утро", USER)
        assert (joke.text or "").startswith("Утро")
        assert api.faults.count("getMe") == 3 and api.my_commands() == []


async def test_rejected_token_stops_the_start_at_once(api: LocalBotApi, tmp_path: Path) -> None:
    from aiogram.exceptions import TelegramUnauthorizedError
    from pydantic import SecretStr

    from bot.app import create_app
    from tests.fault_kit import FAST_BACKOFF, fake_registry, fake_settings

    settings = fake_settings(api, tmp_path / "j.db", bot_token=SecretStr("100000:wrong"))
    app = await create_app(settings, registry=fake_registry(), backoff=FAST_BACKOFF)
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await asyncio.wait_for(app.run_polling(handle_signals=False), 5)
    finally:
        await app.close()


@pytest.mark.parametrize("method", ["answerCallbackQuery", "editMessageReplyMarkup"])
async def test_vote_answer_or_edit_lost_twice_is_not_reported_as_failure(
    env: RunningBot, method: str
) -> None:
    """The vote is stored; a lost toast or keyboard refresh must not turn into "went wrong"."""
    api = env.api
    joke = await ask(env, "Сом", USER)
    api.faults.fail_next(method, "5xx", count=2)
    query = api.press_button(USER, joke.message_id, text="👍 0")
    await idle(env)
    assert env.rows("SELECT value FROM votes") == [(1,)]
    answer = api.callback_answer(query)
    if method == "answerCallbackQuery":
        assert answer is None  # lost; the counts on the keyboard still show the vote
        assert api.message(USER, joke.message_id).button_texts[0] == "👍 1"
    else:
        assert answer is not None and answer.text == "Спасибо!"
    assert errors(env) == 0
