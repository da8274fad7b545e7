"""Odd and hostile input that needs a bot of its own: stale, replayed and repeated buttons, votes
on jokes that are gone or not yours, votes by strangers, floods.

(The tables of update kinds, texts and forged callback data are in `test_hostile_tables.py`.)

Decisions pinned down here:
* Anyone who can press a vote button may vote: in a group, members who never wrote to the bot too
  (their Telegram id is all that is stored). A vote on a joke of another chat is refused.
* The very same callback query delivered again (a replay) counts once. Separate presses toggle:
  the stored state after any number of them is 0 or 1 vote and matches the answers given.
* A flood from one user gets one polite warning, whatever its size; others are not slowed down.
* In a private chat only its owner may vote: a stranger's press there can only be forged.
* Messages from other bots get no joke; an anonymous group admin (Telegram's stand-in bot with
  `sender_chat` set) is answered like anyone.
* A database that fails a command says so («База анекдотов сейчас недоступна…»), not «Что-то
  пошло не так».
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from tests.bot_harness import RunningBot
from tests.fault_kit import ask, env, errors, idle, model, running_fake_bot
from tests.local_api import LocalBotApi

__all__ = ["env", "model"]

USER = 1001
OTHER = 1002
GROUP = -1001001
CHAT = {"id": USER, "type": "private", "first_name": "Тестер"}
FROM = {"id": USER, "is_bot": False, "first_name": "Тестер"}


async def test_callback_from_an_inline_message_is_stale(env: RunningBot) -> None:
    env.api.send_update({"callback_query": {
        "id": "inline1", "from": FROM, "chat_instance": "1", "inline_message_id": "AAA",
        "data": "v:1:1"}})
    await idle(env)
    assert errors(env) == 0 and env.count("votes") == 0


async def test_vote_via_an_inaccessible_message_still_counts(env: RunningBot) -> None:
    """Telegram sends `date: 0` for messages too old to show; there are no edit methods on it."""
    api = env.api
    joke = await ask(env, "Кот", USER)
    joke_id = env.rows("SELECT id FROM jokes")[0][0]
    api.send_update({"callback_query": {
        "id": "old-1", "from": FROM, "chat_instance": "1", "data": f"v:{joke_id}:1",
        "message": {"message_id": joke.message_id, "date": 0, "chat": CHAT}}})
    await idle(env)
    assert env.rows("SELECT value FROM votes") == [(1,)] and errors(env) == 0


async def test_votes_on_deleted_and_foreign_jokes_are_refused(env: RunningBot) -> None:
    api = env.api
    mine = await ask(env, "Кот", USER)
    theirs = await ask(env, "Пёс", OTHER)
    their_id = env.rows("SELECT id FROM jokes WHERE chat_id = ?", OTHER)[0][0]
    query = api.press_button(USER, mine.message_id, f"v:{their_id}:1", strict=False)
    assert (await api.wait_for_callback_answer(query)).text == "Анекдот не найден."
    with sqlite3.connect(env.db_path) as con:
        con.execute("DELETE FROM jokes WHERE chat_id = ?", (USER,))
    query = api.press_button(USER, mine.message_id, text="👍 0")
    assert (await api.wait_for_callback_answer(query)).text == "Анекдот не найден."
    await idle(env)
    assert env.count("votes") == 0 and theirs.text and errors(env) == 0


async def test_group_member_who_never_wrote_may_vote_and_only_the_id_is_kept(
    env: RunningBot,
) -> None:
    api = env.api
    api.send_text(USER, "/joke Кот", chat_id=GROUP, chat_type="group")
    joke = await api.wait_for_bot_message(GROUP)
    await idle(env)
    stranger = 1077
    query = api.press_button(stranger, joke.message_id, text="👍 0", chat_id=GROUP,
                             first_name="Незнакомец", username="stranger")
    assert (await api.wait_for_callback_answer(query)).text == "Спасибо!"
    await idle(env)
    assert env.rows("SELECT id, username FROM users WHERE id = ?", stranger) == [(stranger, None)]
    assert env.rows("SELECT user_id, value FROM votes") == [(stranger, 1)]


async def test_one_press_replayed_100_times_counts_once(env: RunningBot) -> None:
    api = env.api
    joke = await ask(env, "Кот", USER)
    query = api.press_button(USER, joke.message_id, text="👍 0")
    payload = api.updates[-1].payload["callback_query"]
    for _ in range(99):  # the very same callback query (same id) delivered again and again
        api.send_update({"callback_query": payload})
    await idle(env)
    assert (api.callback_answer(query) or None) is not None
    assert env.rows("SELECT user_id, value FROM votes") == [(USER, 1)]
    assert env.app.tracker.skipped == 99 and errors(env) == 0


async def test_100_presses_toggle_consistently(env: RunningBot) -> None:
    api = env.api
    joke = await ask(env, "Кот", USER)
    data = f"v:{env.rows('SELECT id FROM jokes')[0][0]}:1"
    queries = [api.press_button(USER, joke.message_id, data) for _ in range(100)]
    await idle(env, timeout=30)
    answers = [(api.callback_answer(q) or None) for q in queries]
    texts = [a.text for a in answers if a is not None]
    assert len(texts) == 100
    thanks, removed = texts.count("Спасибо!"), texts.count("Оценка снята")
    assert thanks + removed == 100
    rows = env.count("votes")
    assert rows in (0, 1) and rows == thanks - removed
    assert errors(env) == 0


# --- floods -----------------------------------------------------------------------------------


async def test_flood_gets_one_polite_warning_and_others_are_unaffected(
    api: LocalBotApi, tmp_path: Path
) -> None:
    async with running_fake_bot(api, tmp_path / "j.db", throttle_rate_s=1.0) as env:
        for n in range(50):
            api.send_text(USER, f"Слово{n}")
        api.send_text(OTHER, "Кот")
        other = await api.wait_for_bot_message(OTHER)
        await idle(env)
        await asyncio.sleep(0.2)
        replies = [m.text or "" for m in api.bot_messages(USER)]
        assert len(replies) == 2, replies  # one joke, one warning, for 50 messages
        assert replies[0].startswith("Слово0") or replies[1].startswith("Слово0")
        assert any("Не так быстро" in r or "Уже пишу" in r for r in replies)
        assert (other.text or "").startswith("Кот")
        assert env.rows("SELECT chat_id FROM jokes ORDER BY chat_id") == [(USER,), (OTHER,)]
        assert errors(env) == 0


async def test_a_strangers_press_in_a_private_chat_is_refused(env: RunningBot) -> None:
    api = env.api
    joke = await ask(env, "Кот", USER)
    query = api.press_button(OTHER, joke.message_id, text="👍 0", chat_id=USER)
    answer = await api.wait_for_callback_answer(query)
    await idle(env)
    assert answer.text is not None and "только тот, кому он написан" in answer.text
    assert env.count("votes") == 0 and errors(env) == 0


async def test_a_bot_gets_no_joke_an_anonymous_admin_does(env: RunningBot) -> None:
    api = env.api
    group = {"id": GROUP, "type": "supergroup", "title": "Клуб"}
    robot = {"id": 5005, "is_bot": True, "first_name": "Робот"}
    api.send_update({"message": {"from": robot, "chat": group, "text": "/joke Кот"}})
    await idle(env)
    assert env.count("jokes") == 0 and errors(env) == 0
    anonymous = {"id": 1087968824, "is_bot": True, "first_name": "Group"}  # GroupAnonymousBot
    api.send_update({"message": {
        "from": anonymous, "sender_chat": group, "chat": group, "text": "/joke Пёс"}})
    reply = await api.wait_for_bot_message(GROUP)
    assert (reply.text or "").startswith("Пёс") and errors(env) == 0


async def test_start_while_the_database_fails_says_so(env: RunningBot) -> None:
    with sqlite3.connect(env.db_path) as con:
        con.execute("DROP TABLE users")  # every user lookup now fails in the database
    env.api.send_text(USER, "/start")
    reply = await env.api.wait_for_bot_message(USER)
    assert "База анекдотов сейчас недоступна" in (reply.text or "")
