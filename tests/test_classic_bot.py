"""«📚 Из сборника» end to end: the real bot, the local Bot API server, a tiny index and GPT."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import texts
from tests.bot_harness import RunningBot, make_settings, running_bot
from tests.classic_kit import ABOUT_KOT, STARTS_WITH_KOT, build_tiny_index
from tests.local_api import LocalBotApi

USER = 601
OTHER = 602
CLASSIC = "📚 Из сборника"


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("classic")
    build_tiny_index(folder)
    return folder


@pytest.fixture
async def env(
    api: LocalBotApi, tmp_path: Path, tiny_gpt_dir: Path, tiny_index: Path
) -> AsyncIterator[RunningBot]:
    db = tmp_path / "jokes.db"
    settings = make_settings(
        api, db, tiny_gpt_dir, enable_classic=True, classic_index=str(tiny_index)
    )
    async with running_bot(api, settings, db) as running:
        yield running


async def ask(env: RunningBot, text: str, user: int = USER):
    env.api.send_text(user, text)
    reply = await env.api.wait_for_bot_message(user, timeout=30)
    await env.idle()
    return reply


async def pick_classic(env: RunningBot, user: int = USER) -> None:
    picker = await ask(env, "/method", user)
    assert picker.button_texts == ["✅ GPT", "GPT (sampling)", CLASSIC]
    query = env.api.press_button(user, picker.message_id, text=CLASSIC)
    assert CLASSIC in ((await env.api.wait_for_callback_answer(query, 10)).text or "")
    await env.idle()


def sources(env: RunningBot, user: int = USER) -> list[str]:
    rows = env.rows("SELECT params FROM jokes WHERE user_id = ? ORDER BY id", user)
    return [json.loads(params)["source_id"] for (params,) in rows]


async def test_a_real_joke_labelled_stored_and_never_twice(env: RunningBot) -> None:
    await pick_classic(env)
    joke = await ask(env, "кота")
    assert joke.text is not None and joke.text.endswith(texts.CLASSIC_LABEL)
    assert joke.text.startswith(("Кот пришёл", "Кота спросили"))
    assert joke.button_texts[-1] == f"⚙️ {CLASSIC}"
    ((method, model, prompt, text),) = env.rows("SELECT method, model, prompt, text FROM jokes")
    assert (method, prompt) == ("classic", "кота") and model.startswith("classic@")
    assert joke.text == f"{text}\n\n{texts.CLASSIC_LABEL}"  # the label is not in the data
    # 🔁 Ещё: another joke on the word each time, starting ones first, until all were shown
    last = joke
    for _ in range(3):
        env.api.press_button(USER, last.message_id, text="🔁 Ещё")
        last = await env.api.wait_for_bot_message(USER, after=last.message_id, timeout=30)
        await env.idle()
    shown = sources(env)
    assert set(shown[:2]) == STARTS_WITH_KOT and set(shown[2:]) == ABOUT_KOT
    # all four seen: the least recently shown comes back, then the next
    for expected in shown[:2]:
        env.api.press_button(USER, last.message_id, text="🔁 Ещё")
        last = await env.api.wait_for_bot_message(USER, after=last.message_id, timeout=30)
        await env.idle()
        assert sources(env)[-1] == expected
    # another user starts afresh: their history is their own
    await pick_classic(env, OTHER)
    await ask(env, "Кот", OTHER)
    await ask(env, "Кот", OTHER)
    assert set(sources(env, OTHER)) == STARTS_WITH_KOT


async def test_votes_and_stats_count_the_classic_method(env: RunningBot) -> None:
    await pick_classic(env)
    joke = await ask(env, "Доктор")
    query = env.api.press_button(USER, joke.message_id, text="👍 0")
    assert (await env.api.wait_for_callback_answer(query, 10)).text == texts.VOTE_THANKS
    await env.api.wait_until(
        lambda: env.api.message(USER, joke.message_id).button_texts[0] == "👍 1", 5, "count"
    )
    assert env.api.message(USER, joke.message_id).text == joke.text  # the label stays
    stats = (await ask(env, "/stats")).text or ""
    assert CLASSIC in stats
    top = (await ask(env, "/top classic")).text or ""
    assert "Доктор, у меня кот болеет" in top


async def test_no_match_says_so_and_offers_the_ways_out(env: RunningBot) -> None:
    await pick_classic(env)
    answer = await ask(env, "Квазар")
    assert answer.text == texts.CLASSIC_NOTHING.format(prompt="Квазар")
    assert answer.button_texts == ["✍️ Сочинить: GPT", "⚙️ Выбрать способ"]
    assert env.count("jokes") == 0  # nothing sent, nothing stored, no apology
    env.api.press_button(USER, answer.message_id, text="✍️ Сочинить: GPT")
    written = await env.api.wait_for_bot_message(USER, after=answer.message_id, timeout=30)
    await env.idle()
    assert written.text is not None and written.text.startswith("Квазар")
    assert env.rows("SELECT method FROM jokes") == [("gpt",)]
    env.api.press_button(USER, answer.message_id, text="⚙️ Выбрать способ")
    picker = await env.api.wait_for_bot_message(USER, after=written.message_id, timeout=10)
    assert picker.button_texts == ["GPT", "GPT (sampling)", f"✅ {CLASSIC}"]


async def test_switched_off_it_is_not_offered(
    api: LocalBotApi, tmp_path: Path, tiny_gpt_dir: Path, tiny_index: Path
) -> None:
    db = tmp_path / "jokes.db"
    settings = make_settings(
        api, db, tiny_gpt_dir, enable_classic=False, classic_index=str(tiny_index)
    )
    async with running_bot(api, settings, db) as env:
        assert (await ask(env, "/method")).button_texts == ["✅ GPT", "GPT (sampling)"]


@pytest.mark.parametrize("problem", ["missing", "broken"])
async def test_without_a_usable_index_the_bot_starts_without_it(
    api: LocalBotApi,
    tmp_path: Path,
    tiny_gpt_dir: Path,
    caplog: pytest.LogCaptureFixture,
    problem: str,
) -> None:
    folder = tmp_path / "classic"
    if problem == "broken":
        build_tiny_index(folder)
        (folder / "lemmas.npz").write_bytes(b"broken")
    db = tmp_path / "jokes.db"
    settings = make_settings(api, db, tiny_gpt_dir, enable_classic=True, classic_index=str(folder))
    with caplog.at_level(logging.WARNING):
        async with running_bot(api, settings, db) as env:
            registry = env.app.registry
            await env.api.wait_until(lambda: "classic" not in registry.names(), 20, "dropped")
            assert (await ask(env, "/method")).button_texts == ["✅ GPT", "GPT (sampling)"]
            joke = await ask(env, "Кот")
            assert joke.text is not None and joke.text.startswith("Кот")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    lines = [r.getMessage() for r in warnings if "classic" in r.getMessage()]
    assert len(lines) == 1 and str(folder) in lines[0]  # one clear line, no traceback
    assert not any(r.exc_info for r in warnings if "classic" in r.getMessage())
