"""Votes under inline-posted jokes carry the joke id's signature (`InlineVoteCb`).

The chat of an inline message is unknown, so anyone may vote there; what stops a modified client
from voting on any joke by its id (listing someone's private joke in its own /liked, reading the
joke's starting word off the «🔁 Ещё» it is then shown) is the signature the bot puts in the
buttons. End to end: the real bot over real HTTP through the local Bot API server.
"""

from __future__ import annotations

from bot.callbacks import InlineVoteCb
from bot.keyboards import inline_joke_keyboard
from bot.shared_jokes import ShareLinks
from local_telegram.records import ChatMessage
from tests.bot_harness import TOKEN, RunningBot
from tests.inline_kit import (
    ALICE,
    BOB,
    CAROL,
    Writer,
    ask_inline,
    best_three,
    env,
    errors,
    idle,
    joke_rows,
    writer,
)

__all__ = ["env", "writer"]  # fixtures
LINKS = ShareLinks.from_secret(TOKEN)  # what the test bot signs with: no SHARE_SECRET set
ANOTHER_BOT = ShareLinks.from_secret("100000:another-bot")
MALLORY = 704  # runs a modified client
NOT_FOUND = ("Анекдот не найден.", True)
STALE = ("Эта кнопка устарела.", True)


def snapshot(env: RunningBot) -> tuple[object, ...]:
    return (joke_rows(env), env.rows("SELECT * FROM votes"), env.count("users"))


def signed(joke_id: int) -> list[str]:
    """The 👍 and 👎 data of a joke's inline buttons, as the bot must sign them."""
    return [f"iv:{joke_id}:{value}:{LINKS.seal(joke_id)}" for value in (1, -1)]


async def liked(env: RunningBot, user: int) -> str:
    """What /liked shows `user` in their private chat."""
    env.api.send_text(user, "/liked")
    reply = await env.api.wait_for_bot_message(user, timeout=10)
    return reply.text or ""


async def press(env: RunningBot, user: int, inline_id: str, button: str) -> tuple[str, ChatMessage]:
    """Press a button (by its text) under an inline message; the answer once the bot has edited."""
    api = env.api
    message = api.inline_message(inline_id)
    edits = len(message.edits)
    query = api.press_inline_button(user, inline_id, text=button)
    answer = await api.wait_for_callback_answer(query, timeout=10)
    assert not answer.show_alert, answer.text
    await api.wait_until(lambda: len(message.edits) > edits, 5, "the inline message's new counts")
    await idle(env)
    return str(answer.text), message


def test_the_longest_vote_data_fits_in_telegrams_64_bytes() -> None:
    longest = 2**63 - 1  # 19 digits, the largest id SQLite holds
    markup = inline_joke_keyboard(longest, 10**6, 10**6, "Молоко", LINKS)
    data = [str(b.callback_data) for row in markup.inline_keyboard for b in row if b.callback_data]
    assert data == signed(longest)
    assert max(len(d.encode()) for d in data) == 38 <= 64
    assert InlineVoteCb.unpack(data[1]) == InlineVoteCb(
        joke_id=longest, value=-1, sig=LINKS.seal(longest)
    )


async def test_forged_presses_vote_on_nothing_and_liked_stays_empty(
    env: RunningBot, writer: Writer
) -> None:
    api = env.api
    query_id, answer = await ask_inline(env, ALICE, "Молоко")
    posted = api.choose_inline_result(query_id, answer.results[0]["id"])
    api.send_text(CAROL, "Кот")  # a joke written from Carol's private word
    carols_reply = await api.wait_for_bot_message(CAROL, timeout=10)
    await idle(env)
    posted_id, unpicked = int(answer.results[0]["id"]), int(answer.results[1]["id"])
    carols = next(row[0] for row in joke_rows(env) if row[2] == CAROL)
    assert posted.message.callback_data == signed(posted_id)
    before, calls = snapshot(env), writer.calls
    sig = LINKS.seal(posted_id)
    for target in (carols, unpicked):  # Carol's private joke; an offer Alice did not post
        real = LINKS.seal(target)
        wrong = "-" * 12 if real != "-" * 12 else "_" * 12
        cases = (
            (f"iv:{target}:1:{sig}", NOT_FOUND),  # the posted joke's valid signature
            (f"iv:{target}:1:{wrong}", NOT_FOUND),  # valid-looking, wrong
            (f"iv:{target}:-1:{ANOTHER_BOT.seal(target)}", NOT_FOUND),  # another bot's key
            (f"iv:{target}:1:{real[:-1]}", STALE),  # too short for a signature
            (f"iv:{target}:1", STALE),  # no signature
            (f"v:{target}:1", STALE),  # the old unsigned format
        )
        for data, expected in cases:
            for inline_id in (posted.inline_message_id, "AgAAAnot-a-message"):
                query = api.press_inline_button(MALLORY, inline_id, data, strict=False)
                reply = await api.wait_for_callback_answer(query, timeout=10)
                assert (reply.text, reply.show_alert) == expected, (data, inline_id)
    await idle(env)
    assert snapshot(env) == before and writer.calls == calls
    assert not posted.message.edits  # its 🔁 still types Alice's word, and only hers
    assert errors(env) == 0
    shown = await liked(env, MALLORY)
    assert "Пока пусто" in shown
    assert carols_reply.text not in shown and best_three("Молоко")[1] not in shown
    assert env.rows("SELECT * FROM votes") == []


async def test_signed_presses_toggle_and_switch_as_before(env: RunningBot) -> None:
    api = env.api
    query_id, answer = await ask_inline(env, ALICE, "Молоко")
    for result in answer.results:
        data = [
            b["callback_data"]
            for row in result["reply_markup"]["inline_keyboard"]
            for b in row
            if "callback_data" in b
        ]
        assert data == signed(int(result["id"]))
    joke_id = int(answer.results[2]["id"])
    posted = api.choose_inline_result(query_id, str(joke_id))
    await idle(env)
    inline_id = posted.inline_message_id
    steps = (
        (BOB, "👍 0", "Спасибо!", ["👍 1", "👎 0"]),
        (CAROL, "👍 1", "Спасибо!", ["👍 2", "👎 0"]),
        (CAROL, "👎 0", "Спасибо!", ["👍 1", "👎 1"]),  # switched
        (BOB, "👍 1", "Оценка снята", ["👍 0", "👎 1"]),  # toggled off
        (CAROL, "👎 1", "Оценка снята", ["👍 0", "👎 0"]),
        (CAROL, "👍 0", "Спасибо!", ["👍 1", "👎 0"]),
    )
    for user, button, thanks, counts in steps:
        said, message = await press(env, user, inline_id, button)
        assert said == thanks and message.button_texts[:2] == counts, (user, button)
        assert message.callback_data == signed(joke_id)  # the edited buttons are signed too
        assert message.buttons[2]["switch_inline_query_current_chat"] == "Молоко"
    assert env.rows("SELECT joke_id, user_id, value FROM votes") == [(joke_id, CAROL, 1)]
    assert best_three("Молоко")[2] in await liked(env, CAROL)
    assert "Пока пусто" in await liked(env, BOB)
    assert errors(env) == 0
