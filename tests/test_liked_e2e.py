"""/liked end to end: the real bot, the local Bot API server over HTTP, the tiny GPT.

👍 is the like: /liked lists the jokes a user gave a 👍 (groups included), newest like first,
five a page; ◀️ ▶️ edit the page in place; a stale ▶️ never fails and never writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.shared_jokes import ShareLinks
from local_telegram.records import ChatMessage
from tests.bot_harness import TOKEN, RunningBot, make_settings, running_bot
from tests.local_api import LocalBotApi

USER = 601
OTHER = 602
GROUP = -100601
WORDS = ["Кот", "Пёс", "Доктор", "Школа", "Молоко", "Штирлиц", "Колобок"]
LINKS = ShareLinks.from_secret(TOKEN)  # what the test bot signs with: no SHARE_SECRET set


@pytest.fixture
async def env(api: LocalBotApi, tmp_path: Path, tiny_gpt_dir: Path) -> AsyncIterator[RunningBot]:
    db = tmp_path / "jokes.db"
    async with running_bot(api, make_settings(api, db, tiny_gpt_dir), db) as running:
        yield running


async def ask(env: RunningBot, text: str, user: int = USER, chat: int | None = None):
    chat_id = user if chat is None else chat
    kind = "private" if chat is None else "group"
    env.api.send_text(user, text, chat_id=chat_id, chat_type=kind)
    reply = await env.api.wait_for_bot_message(chat_id, timeout=30)
    await env.idle()
    return reply


async def press(env: RunningBot, user: int, message: ChatMessage, *, text: str | None = None,
                data: str | None = None, chat: int | None = None):
    query = env.api.press_button(
        user, message.message_id, data, text=text, chat_id=chat, strict=data is None
    )
    answer = await env.api.wait_for_callback_answer(query, timeout=10)
    await env.idle()
    return answer


async def like(env: RunningBot, joke: ChatMessage, user: int = USER, chat: int | None = None):
    answer = await press(env, user, joke, text=joke.button(startswith="👍")["text"], chat=chat)
    assert answer.text in ("Спасибо!", "Оценка снята")
    return answer


def page_texts(message: ChatMessage, jokes: list[ChatMessage]) -> list[str]:
    """The jokes a /liked page shows, in its order, as the texts of the joke messages."""
    text = message.text or ""
    return [j.text or "" for j in sorted(jokes, key=lambda j: text.find(f". {j.text}\n"))
            if f". {j.text}\n" in text]


def joke_id(env: RunningBot, joke: ChatMessage) -> int:
    return int(env.rows("SELECT id FROM jokes WHERE text = ? AND chat_id = ?",
                        joke.text, joke.chat_id)[0][0])


def votes(env: RunningBot) -> list[tuple[int, int, int]]:
    return env.rows("SELECT joke_id, user_id, value FROM votes ORDER BY id")


async def test_empty_list_gets_a_hint(env: RunningBot) -> None:
    reply = await ask(env, "/liked")
    assert "👍" in (reply.text or "") and "Пока пусто" in (reply.text or "")
    assert reply.inline_keyboard == []
    assert env.count("votes") == 0 and env.count("jokes") == 0


async def test_seven_likes_page_forward_back_and_stale_buttons(env: RunningBot) -> None:
    api = env.api
    jokes = [await ask(env, word) for word in WORDS]
    assert len({j.text for j in jokes}) == len(jokes)  # page_texts tells them apart by text
    disliked = jokes[0]
    await press(env, USER, disliked, text="👎 0")  # a 👎 is no like
    for joke in jokes[1:]:
        await like(env, joke)
    await like(env, disliked)  # 👎 switched to 👍: the newest like
    newest_first = [disliked, *reversed(jokes[1:])]

    first = await ask(env, "/liked")
    assert (first.text or "").startswith("Тебе понравилось (7) — стр. 1/2:")
    assert page_texts(first, jokes) == [j.text for j in newest_first[:5]]
    assert "1. " in (first.text or "") and "5. " in (first.text or "")
    assert [len(row) for row in first.inline_keyboard] == [5, 1]
    shares = first.inline_keyboard[0]
    assert [b["text"] for b in shares] == [f"📤 {n}" for n in range(1, 6)]
    assert [b["switch_inline_query"] for b in shares] == [
        j.button("📤 Поделиться")["switch_inline_query"] for j in newest_first[:5]
    ] == [LINKS.ref(joke_id(env, j)) for j in newest_first[:5]]
    assert first.button_texts[-1] == "▶️"

    stored = votes(env)
    answer = await press(env, USER, first, text="▶️")
    assert not answer.show_alert
    second = api.message(USER, first.message_id)  # the same message, edited in place
    assert (second.text or "").startswith("Тебе понравилось (7) — стр. 2/2:")
    assert page_texts(second, jokes) == [j.text for j in newest_first[5:]]
    assert "6. " in (second.text or "") and "7. " in (second.text or "")
    assert second.button_texts == ["📤 6", "📤 7", "◀️"]
    assert api.bot_messages(USER)[-1].message_id == first.message_id  # nothing new was sent

    await press(env, USER, second, text="◀️")
    back = api.message(USER, first.message_id)
    assert (back.text or "").startswith("Тебе понравилось (7) — стр. 1/2:")
    assert page_texts(back, jokes) == [j.text for j in newest_first[:5]]
    assert votes(env) == stored  # turning pages writes nothing

    for joke in newest_first[:3]:  # unlike three: four left, one page
        await like(env, joke)
    stored = votes(env)
    answer = await press(env, USER, back, text="▶️")  # stale: page 2 is gone
    assert answer.text == "Список изменился — вот последняя страница." and not answer.show_alert
    last = api.message(USER, first.message_id)
    assert (last.text or "").startswith("Тебе понравилось (4) — стр. 1/1:")
    assert page_texts(last, jokes) == [j.text for j in newest_first[3:]]
    assert last.button_texts == ["📤 1", "📤 2", "📤 3", "📤 4"]
    assert votes(env) == stored

    for joke in newest_first[3:]:
        await like(env, joke)
    answer = await press(env, USER, last, data=f"lp:{USER}:2")  # an old ▶️, nothing liked now
    assert not answer.show_alert
    assert "Пока пусто" in (api.message(USER, first.message_id).text or "")
    assert api.message(USER, first.message_id).inline_keyboard == []
    assert env.count("votes") == 0


async def test_group_likes_count_and_only_the_owner_turns_pages(env: RunningBot) -> None:
    group_joke = await ask(env, "/joke Штирлиц", chat=GROUP)
    await like(env, group_joke, chat=GROUP)
    for word in WORDS[:5]:
        await like(env, await ask(env, word))
    listing = await ask(env, "/liked", chat=GROUP)
    assert (listing.text or "").startswith("Тебе понравилось (6) — стр. 1/2:")
    stored = votes(env)
    answer = await press(env, OTHER, listing, text="▶️", chat=GROUP)
    assert answer.show_alert and (answer.text or "").startswith("Это чужой список.")
    assert "стр. 1/2" in (env.api.message(GROUP, listing.message_id).text or "")
    await press(env, USER, listing, text="▶️", chat=GROUP)
    page2 = env.api.message(GROUP, listing.message_id)
    assert "стр. 2/2" in (page2.text or "") and f". {group_joke.text}\n" in (page2.text or "")
    assert votes(env) == stored
    mine = await ask(env, "/liked", user=OTHER)
    assert "Пока пусто" in (mine.text or "")


async def test_forged_page_buttons_change_nothing(env: RunningBot) -> None:
    await like(env, await ask(env, "Кот"))
    listing = await ask(env, "/liked")
    stored = votes(env)
    for data in ("lp:601:0", "lp:601:-1", "lp:601:x", "lp:0:1", f"lp:{OTHER}:1", "lp:601"):
        answer = await press(env, USER, listing, data=data)
        assert answer.show_alert and answer.text, data
    assert votes(env) == stored
    assert (env.api.message(USER, listing.message_id).text or "") == listing.text


async def test_help_lists_liked_and_says_a_like_is_a_thumbs_up(env: RunningBot) -> None:
    help_ = (await ask(env, "/help")).text or ""
    assert "/liked" in help_ and "👍 — это «нравится»" in help_ and "📤" in help_
