"""Inline mode end to end: the real bot over real HTTP, users typing `@bot Молоко` in a group.

query → three results → a pick → the message "via @bot" with 👍/👎 → votes from people who never
wrote to the bot → stored; the pick recorded (with inline feedback, and without it); the bot's
own chat; Telegram's cache and the bot's; a 📤 share query; the export.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from bot.shared_jokes import ShareLinks
from storage import export
from tests.bot_harness import TOKEN, RunningBot, make_settings, running_bot
from tests.inline_kit import (
    ALICE,
    BOB,
    CAROL,
    GROUP,
    METHOD,
    Writer,
    ask_inline,
    best_three,
    button_texts,
    descriptions,
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


def share_query(result: dict[str, Any]) -> str:
    """What the 📤 button under an inline result types into the chat the user picks."""
    buttons = [b for row in result["reply_markup"]["inline_keyboard"] for b in row]
    return next(str(b["switch_inline_query"]) for b in buttons if "switch_inline_query" in b)


async def vote(env: RunningBot, user: int, inline_id: str, button: str, thanks: str) -> list[str]:
    """Press a button under an inline message; returns its buttons once the bot has edited."""
    api = env.api
    message = api.inline_message(inline_id)
    edits = len(message.edits)
    query = api.press_inline_button(user, inline_id, text=button)
    answer = await api.wait_for_callback_answer(query, timeout=10)
    assert answer.text == thanks and not answer.show_alert
    await api.wait_until(lambda: len(message.edits) > edits, 5, "the inline message's new counts")
    await idle(env)
    return message.button_texts


async def test_query_pick_and_votes_from_strangers(env: RunningBot) -> None:
    api = env.api
    query_id, answer = await ask_inline(env, ALICE, "Молоко")
    assert descriptions(answer) == best_three("Молоко")
    assert [r["title"] for r in answer.results] == [f"{METHOD} · вариант {n}" for n in (1, 2, 3)]
    assert answer.cache_time == 5 and answer.is_personal
    rows = joke_rows(env)
    assert [str(row[0]) for row in rows] == [r["id"] for r in answer.results]
    assert {(row[1], row[2], row[3], row[5]) for row in rows} == {(ALICE, 0, "Молоко", 0)}
    for result in answer.results:
        assert button_texts(result) == ["👍 0", "👎 0", "🔁 Ещё", "📤 Поделиться"]
        assert result["input_message_content"]["message_text"] == result["description"]

    picked = answer.results[1]
    posted = api.choose_inline_result(query_id, picked["id"])
    await api.wait_all_updates_answered(timeout=10)
    await idle(env)
    message = posted.message
    assert message.chat_id == GROUP and message.sender_id == ALICE
    assert message.extra["via_bot"]["username"] == api.bot_username
    assert message.text == best_three("Молоко")[1]
    chosen = [(row[5], row[6]) for row in joke_rows(env)]
    assert chosen == [(0, None), (1, posted.inline_message_id), (0, None)]

    inline_id = posted.inline_message_id
    assert (await vote(env, BOB, inline_id, "👍 0", "Спасибо!"))[:2] == ["👍 1", "👎 0"]
    assert (await vote(env, CAROL, inline_id, "👍 1", "Спасибо!"))[:2] == ["👍 2", "👎 0"]
    assert (await vote(env, CAROL, inline_id, "👎 0", "Спасибо!"))[:2] == ["👍 1", "👎 1"]
    assert (await vote(env, BOB, inline_id, "👍 1", "Оценка снята"))[:2] == ["👍 0", "👎 1"]
    assert env.rows("SELECT joke_id, user_id, value FROM votes") == [(int(picked["id"]), CAROL, -1)]
    assert {BOB, CAROL} <= {user for (user,) in env.rows("SELECT id FROM users")}
    assert not [m for m in api.bot_messages(GROUP)]  # the bot wrote nothing into the group
    assert errors(env) == 0


async def test_pick_without_inline_feedback_is_marked_by_the_first_vote(
    env: RunningBot,
) -> None:
    api = env.api
    api.inline.feedback = False  # BotFather's inline feedback off: picks are not reported
    query_id, answer = await ask_inline(env, ALICE, "Кот")
    posted = api.choose_inline_result(query_id, answer.results[0]["id"])
    await idle(env)
    assert not [u for u in api.updates if u.kind == "chosen_inline_result"]
    assert [row[5] for row in joke_rows(env)] == [0, 0, 0]
    await vote(env, BOB, posted.inline_message_id, "👍 0", "Спасибо!")
    assert [(row[5], row[6]) for row in joke_rows(env)] == [
        (1, posted.inline_message_id),
        (0, None),
        (0, None),
    ]
    assert env.count("votes") == 1


async def test_a_pick_in_the_bots_own_chat_is_not_taken_for_a_word(env: RunningBot) -> None:
    api = env.api
    query_id, answer = await ask_inline(env, ALICE, "Кот", chat_id=None)
    assert api.inline_query_record(query_id).chat_type == "sender"
    posted = api.choose_inline_result(query_id, answer.results[2]["id"])
    assert posted.message.chat_id == ALICE
    assert [u.kind for u in api.updates[-2:]] == ["message", "chosen_inline_result"]
    await api.assert_no_bot_message(ALICE, after=posted.message.message_id)
    await idle(env)
    assert len(joke_rows(env)) == 3 and errors(env) == 0
    await vote(env, ALICE, posted.inline_message_id, "👍 0", "Спасибо!")


async def test_answers_are_cached_by_telegram_and_by_the_bot(
    env: RunningBot, writer: Writer
) -> None:
    api = env.api
    first_id, first = await ask_inline(env, ALICE, "Молоко")
    calls, updates = writer.calls, len(api.updates)
    # Telegram's cache (cache_time, per user): the same text again never reaches the bot
    again_id, again = await ask_inline(env, ALICE, "Молоко")
    assert api.inline_query_record(again_id).cached and len(api.updates) == updates
    assert again.results == first.results
    # the bot's: another spelling of the same word, moments later, is the same offer
    _, respelled = await ask_inline(env, ALICE, "  молоко ", use_cache=False)
    assert [r["id"] for r in respelled.results] == [r["id"] for r in first.results]
    assert writer.calls == calls and len(joke_rows(env)) == 3
    # personal: another user gets jokes of their own
    _, bobs = await ask_inline(env, BOB, "Молоко")
    assert not {r["id"] for r in bobs.results} & {r["id"] for r in first.results}
    assert len(joke_rows(env)) == 6
    # a pick is not offered again: the next answer is a fresh draw
    api.choose_inline_result(first_id, first.results[0]["id"])
    await idle(env)
    _, fresh = await ask_inline(env, ALICE, "Молоко", use_cache=False)
    assert not {r["id"] for r in fresh.results} & {r["id"] for r in first.results}


async def test_no_cache_when_the_setting_is_zero(
    api: LocalBotApi, tmp_path: Path, writer: Writer
) -> None:
    async with running_inline_bot(api, tmp_path / "j.db", writer, inline_cache_s=0) as env:
        _, first = await ask_inline(env, ALICE, "Молоко")
        _, second = await ask_inline(env, ALICE, "Молоко")
        assert first.cache_time == 0 and second.cache_time == 0
        assert len(joke_rows(env)) == 6 and writer.calls == 2


async def test_a_share_query_offers_the_stored_joke(env: RunningBot) -> None:
    api = env.api
    _, answer = await ask_inline(env, ALICE, "Кот")
    joke_id = answer.results[0]["id"]
    ref = share_query(answer.results[0])
    assert ref == LINKS.ref(int(joke_id))
    query_id, shared = await ask_inline(env, BOB, ref)
    assert share_query(shared.results[0]) == ref
    assert [r["id"] for r in shared.results] == [joke_id]
    assert shared.results[0]["title"] == f"Поделиться анекдотом · {METHOD}"
    assert shared.results[0]["input_message_content"]["message_text"] == best_three("Кот")[0]
    posted = api.choose_inline_result(query_id, joke_id)
    await idle(env)
    assert [row[5] for row in joke_rows(env)] == [0, 0, 0]  # Bob's share is not Alice's pick
    await vote(env, CAROL, posted.inline_message_id, "👍 0", "Спасибо!")
    _, gone = await ask_inline(env, BOB, "j999999")
    assert [r["id"] for r in gone.results] == ["hint"]
    assert gone.results[0]["title"] == "Такого анекдота нет"
    _, gone = await ask_inline(env, BOB, LINKS.ref(999999))  # signed, but no such joke
    assert [r["id"] for r in gone.results] == ["hint"]
    assert gone.results[0]["title"] == "Такого анекдота нет"


async def test_guessed_and_forged_share_queries_offer_nothing(
    env: RunningBot, writer: Writer
) -> None:
    """Counting ids, forging a signature or moving one to another id gets the missing-joke hint:
    no joke, no prompt, no model call, nothing stored."""
    _, answer = await ask_inline(env, ALICE, "Кот")
    ids = [int(r["id"]) for r in answer.results]
    rows, calls = joke_rows(env), writer.calls
    sig = LINKS.seal(ids[0])
    forged = "-" * 12 if sig != "-" * 12 else "_" * 12
    for query in (
        f"j{ids[0]}",  # guessed
        f"J{ids[1]}",
        f"j{ids[0]}_{forged}",  # forged
        f"j{ids[1]}_{sig}",  # another joke's valid signature
        f"j{ids[0]}_",
        ShareLinks.from_secret("100000:another-bot").ref(ids[0]),  # another key
    ):
        _, reply = await ask_inline(env, BOB, query)
        assert [r["id"] for r in reply.results] == ["hint"], query
        assert reply.results[0]["title"] == "Такого анекдота нет", query
        assert not set(descriptions(reply)) & set(descriptions(answer)), query
    assert joke_rows(env) == rows and writer.calls == calls


async def test_export_has_each_pick_with_what_it_was_picked_over(
    env: RunningBot, tmp_path: Path
) -> None:
    api = env.api
    query_id, answer = await ask_inline(env, ALICE, "Молоко")
    api.choose_inline_result(query_id, answer.results[2]["id"])
    await ask_inline(env, ALICE, "Кот")  # offered, nothing picked: not a rating
    await idle(env)
    out = tmp_path / "ratings.jsonl"
    url = f"sqlite+aiosqlite:///{env.db_path}"
    args = ["--out", str(out), "--database-url", url]
    assert await asyncio.to_thread(export.main, args) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    ids = [int(r["id"]) for r in answer.results]
    assert [r["id"] for r in records] == ids
    assert [r["inline_chosen"] for r in records] == [False, False, True]
    assert {r["inline_offer"] for r in records} == {ids[0]}
    assert all(r["likes"] == 0 and r["dislikes"] == 0 for r in records)


async def test_the_tiny_gpt_offers_jokes_that_start_with_the_word(
    api: LocalBotApi, tmp_path: Path, tiny_gpt_dir: Path
) -> None:
    db = tmp_path / "gpt.db"
    async with running_bot(api, make_settings(api, db, tiny_gpt_dir), db) as env:
        query_id, answer = await ask_inline(env, ALICE, "Молоко")
        texts = descriptions(answer)
        assert 1 <= len(texts) <= 3 and len(set(texts)) == len(texts)
        assert all(text.startswith("Молоко") for text in texts), texts
        assert all(r["title"].startswith("GPT · вариант") for r in answer.results)
        rows = joke_rows(env)
        assert [row[4] for row in rows] == texts and {row[5] for row in rows} == {0}
        api.choose_inline_result(query_id, answer.results[0]["id"])
        await idle(env)
        assert joke_rows(env)[0][5] == 1 and errors(env) == 0
