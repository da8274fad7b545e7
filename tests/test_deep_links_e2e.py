"""Sharing end to end: the 📤 button under jokes and deep links `t.me/bot?start=j<id>_<sig>`,
through the real bot, the local Bot API server over HTTP, and the web chat page's JSON; guessed
and forged references open nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

import storage
from bot.shared_jokes import ShareLinks
from local_telegram.records import ChatMessage
from tests.bot_harness import TOKEN, RunningBot, make_settings, running_bot
from tests.local_api import LocalBotApi

USER = 701
FRIEND = 702
GROUP = -100701
GREETING = "Привет! Я пишу короткие анекдоты."
LINKS = ShareLinks.from_secret(TOKEN)  # what the test bot signs with: no SHARE_SECRET set


@pytest.fixture
async def env(api: LocalBotApi, tmp_path: Path, tiny_gpt_dir: Path) -> AsyncIterator[RunningBot]:
    db = tmp_path / "jokes.db"
    async with running_bot(api, make_settings(api, db, tiny_gpt_dir), db) as running:
        yield running


async def ask(env: RunningBot, text: str, user: int = USER, count: int = 1) -> list[ChatMessage]:
    env.api.send_text(user, text)
    replies = await env.api.wait_for_bot_messages(user, count, timeout=30)
    await env.idle()
    return replies


async def press(env: RunningBot, user: int, message: ChatMessage, text: str | None = None,
                data: str | None = None, chat: int | None = None):
    query = env.api.press_button(
        user, message.message_id, data, text=text, chat_id=chat, strict=data is None
    )
    answer = await env.api.wait_for_callback_answer(query, timeout=10)
    await env.idle()
    return answer


def stored(env: RunningBot) -> tuple[list[tuple[object, ...]], ...]:
    return (
        env.rows("SELECT * FROM jokes ORDER BY id"),
        env.rows("SELECT * FROM votes ORDER BY id"),
        env.rows("SELECT id, method FROM users ORDER BY id"),
    )


def id_of(env: RunningBot, joke: ChatMessage) -> int:
    return int(env.rows("SELECT id FROM jokes WHERE message_id = ? AND chat_id = ?",
                        joke.message_id, joke.chat_id)[0][0])


async def test_new_joke_has_share_button_under_votes(env: RunningBot) -> None:
    (joke,) = await ask(env, "Молоко")
    await env.api.wait_until(lambda: env.rows("SELECT message_id FROM jokes")[0][0], 5, "msg id")
    assert [len(row) for row in joke.inline_keyboard] == [2, 2, 1]
    assert joke.button_texts == ["👍 0", "👎 0", "🔁 Ещё", "📤 Поделиться", "⚙️ GPT"]
    share = joke.button("📤 Поделиться")
    ref = LINKS.ref(id_of(env, joke))
    assert share == {"text": "📤 Поделиться", "switch_inline_query": ref}
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", ref) and ref != f"j{id_of(env, joke)}"


async def test_deep_link_opens_the_joke_with_buttons_and_votes_count(env: RunningBot) -> None:
    api = env.api
    (joke,) = await ask(env, "Кот")
    await press(env, USER, joke, text="👍 0")
    joke_id = id_of(env, joke)
    ref = joke.button("📤 Поделиться")["switch_inline_query"]  # the link the bot hands out

    (shared,) = await ask(env, f"/start {ref}", user=FRIEND)
    assert shared.text == joke.text
    assert [len(row) for row in shared.inline_keyboard] == [2, 1, 1]
    assert shared.button_texts == ["👍 1", "👎 0", "📤 Поделиться", "⚙️ GPT"]
    assert shared.button("📤 Поделиться")["switch_inline_query"] == ref == LINKS.ref(joke_id)
    assert env.rows("SELECT id FROM users WHERE id = ?", FRIEND) == [(FRIEND,)]
    assert env.count("jokes") == 1  # opening a link stores no joke

    answer = await press(env, FRIEND, shared, text="👍 1")
    assert answer.text == "Спасибо!" and not answer.show_alert
    await api.wait_until(
        lambda: api.message(FRIEND, shared.message_id).button_texts[:2] == ["👍 2", "👎 0"],
        5, "the shared view's counts",
    )
    assert env.rows("SELECT joke_id, user_id, value FROM votes ORDER BY id") == [
        (joke_id, USER, 1), (joke_id, FRIEND, 1),
    ]
    (liked,) = await ask(env, "/liked", user=FRIEND)  # a like from a link is a like
    assert f"1. {joke.text}\n👍 2 👎 0" in (liked.text or "")

    await press(env, FRIEND, shared, text="👍 2")  # pressed again: removed, as usual
    await press(env, FRIEND, shared, text="👎 0")
    assert env.rows("SELECT user_id, value FROM votes ORDER BY user_id") == [
        (USER, 1), (FRIEND, -1),
    ]
    assert api.message(FRIEND, shared.message_id).button_texts[:2] == ["👍 1", "👎 1"]

    await press(env, FRIEND, shared, text="⚙️ GPT")
    picker = api.last_bot_message(FRIEND)
    assert picker is not None and "Кто пишет анекдоты?" in (picker.text or "")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (LINKS.ref(999999), "Этого анекдота больше нет"),
        ("j999999", "Не понял ссылку"),
        (f"j999999_{LINKS.seal(1)}", "Не понял ссылку"),
        ("hello", "Не понял ссылку"),
        ("j0", "Не понял ссылку"),
        ("j" + "9" * 25, "Не понял ссылку"),
        ("j12abc", "Не понял ссылку"),
        ("-j1", "Не понял ссылку"),
    ],
)
async def test_link_to_nothing_gets_a_word_and_the_greeting(
    env: RunningBot, payload: str, expected: str
) -> None:
    (joke,) = await ask(env, "Кот")
    before = stored(env)
    sorry, greeting = await ask(env, f"/start {payload}", user=FRIEND, count=2)
    assert expected in (sorry.text or "") and sorry.inline_keyboard == []
    assert (greeting.text or "").startswith(GREETING)
    assert greeting.button_texts == ["✅ GPT", "GPT (sampling)"]
    jokes, votes, users = stored(env)
    assert (jokes, votes) == before[:2]
    assert users == [*before[2], (FRIEND, None)]  # only the usual user row
    assert joke.text


async def test_link_to_a_deleted_joke(env: RunningBot) -> None:
    (joke,) = await ask(env, "Пёс")
    joke_id = id_of(env, joke)
    async with env.app.sessionmaker() as session:  # as the bot does when Telegram refused it
        assert await storage.delete_joke(session, joke_id)
    before = stored(env)
    sorry, greeting = await ask(env, f"/start {LINKS.ref(joke_id)}", count=2)
    assert "Этого анекдота больше нет" in (sorry.text or "")
    assert (greeting.text or "").startswith(GREETING)
    assert stored(env)[:2] == before[:2]


async def test_guessed_and_forged_links_to_existing_jokes_open_nothing(env: RunningBot) -> None:
    """Ids are sequential: counting them, forging a signature or moving one to another id must
    not show a joke (it may be written from someone's private word)."""
    (cat,) = await ask(env, "Кот")
    (dog,) = await ask(env, "Пёс")
    cat_id, dog_id = id_of(env, cat), id_of(env, dog)
    sig = LINKS.seal(cat_id)
    forged = "-" * 12 if sig != "-" * 12 else "_" * 12
    before = stored(env)
    for payload in (
        f"j{cat_id}",  # guessed
        f"J{cat_id}",
        f"j{cat_id}_{forged}",  # forged
        f"j{dog_id}_{sig}",  # another joke's valid signature
        ShareLinks.from_secret("100000:another-bot").ref(cat_id),  # another key
    ):
        sorry, greeting = await ask(env, f"/start {payload}", user=FRIEND, count=2)
        assert "Не понял ссылку" in (sorry.text or ""), payload
        assert (greeting.text or "").startswith(GREETING), payload
        shown = [m.text for m in env.api.bot_messages(FRIEND)]
        assert cat.text not in shown and dog.text not in shown, payload
    jokes, votes, users = stored(env)
    assert (jokes, votes) == before[:2]
    assert users == [*before[2], (FRIEND, None)]


async def test_plain_start_and_group_start_are_unchanged(env: RunningBot) -> None:
    (greeting,) = await ask(env, "/start")
    assert (greeting.text or "").startswith(GREETING)
    (joke,) = await ask(env, "Кот")
    ref = LINKS.ref(id_of(env, joke))
    env.api.send_text(USER, f"/start {ref}", chat_id=GROUP, chat_type="group")
    reply = await env.api.wait_for_bot_message(GROUP, timeout=10)
    assert (reply.text or "").startswith(GREETING)  # deep links open in private chats only


async def test_forged_shared_votes_change_nothing(env: RunningBot) -> None:
    (joke,) = await ask(env, "Кот")
    joke_id = id_of(env, joke)
    (shared,) = await ask(env, f"/start {LINKS.ref(joke_id)}", user=FRIEND)
    env.api.send_text(USER, "/joke Пёс", chat_id=GROUP, chat_type="group")
    in_group = await env.api.wait_for_bot_message(GROUP, timeout=30)
    await env.idle()
    other = id_of(env, in_group)  # a joke FRIEND was never given a link to
    sig, missing = LINKS.seal(joke_id), joke_id + 999
    assert shared.inline_keyboard[0][0]["callback_data"] == f"sv:{joke_id}:1:{sig}"
    before = stored(env)
    forged = [
        (FRIEND, shared, f"sv:{missing}:1:{LINKS.seal(missing)}", None, "Анекдот не найден."),
        (FRIEND, shared, f"sv:{joke_id}:5:{sig}", None, "Эта кнопка устарела."),
        (USER, shared, f"sv:{joke_id}:1:{sig}", FRIEND, "Оценивать этот анекдот может только тот"),
        (USER, in_group, f"sv:{joke_id}:1:{sig}", GROUP, "Эта кнопка устарела."),
        # votes on a joke by its id alone would list it in /liked: refused like a missing joke
        (FRIEND, shared, f"sv:{other}:1:{sig}", None, "Анекдот не найден."),
        (FRIEND, shared, f"sv:{other}:1:{'A' * 12}", None, "Анекдот не найден."),
        (FRIEND, shared, f"sv:{other}:1", None, "Эта кнопка устарела."),
    ]
    for user, message, data, chat, alert in forged:
        answer = await press(env, user, message, data=data, chat=chat)
        assert answer.show_alert and (answer.text or "").startswith(alert), data
    assert stored(env) == before


async def test_web_chat_gets_the_share_button(env: RunningBot) -> None:
    """The web chat page gets the button's inline query, so a click can type `@bot j<id>`."""
    api = env.api
    api.send_text(api.web_user_id, "Кот")
    joke = await api.wait_for_bot_message(api.web_user_id, timeout=30)
    await env.idle()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{api.url}/ui/messages?since=0") as response:
            state = await response.json()
        async with http.get(api.page_url) as response:
            page = await response.text()
    assert state["bot"]["username"] == api.bot_username
    shown = next(m for m in state["messages"] if m["id"] == joke.message_id)
    assert shown["keyboard"][1][1] == {
        "text": "📤 Поделиться", "switch_inline_query": LINKS.ref(id_of(env, joke)),
    }
    assert "switch_inline_query" in page and "typeInline" in page
