"""The model misbehaving: raising, saying nothing, talking nonsense, too slow, a full queue.

The user always gets a sentence (an apology with a 🔁 button where retrying makes sense), nothing
half-made is stored, and the bot keeps serving: the next request works once the model does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.bot_harness import RunningBot
from tests.fault_kit import (
    FakeModel,
    ask,
    env,
    errors,
    idle,
    model,
    running_fake_bot,
    wait_for,
)
from tests.local_api import LocalBotApi

__all__ = ["env", "model"]

USER = 701
APOLOGY = "Извини, анекдот не сложился"


@pytest.mark.parametrize("mode", ["raise", "empty", "garbage", "wrong-count"])
async def test_broken_model_gets_apology_with_retry_button_and_stores_nothing(
    env: RunningBot, model: FakeModel, mode: str
) -> None:
    api = env.api
    model.mode = mode
    apology = await ask(env, "Молоко", USER)
    assert APOLOGY in (apology.text or "")
    assert apology.button_texts == ["🔁 Ещё раз"]
    assert env.count("jokes") == 0 and env.count("votes") == 0
    assert errors(env) == 0
    model.mode = "ok"  # the model recovers; the 🔁 button repeats the same word
    api.press_button(USER, apology.message_id, text="🔁 Ещё раз")
    joke = await api.wait_for_bot_message(USER, after=apology.message_id)
    assert (joke.text or "").startswith("Молоко")
    await idle(env)
    assert env.rows("SELECT prompt FROM jokes") == [("Молоко",)]


async def test_model_over_time_limit_gets_apology_and_bot_goes_on(
    api: LocalBotApi, tmp_path: Path
) -> None:
    model = FakeModel(delay=0.6)
    async with running_fake_bot(api, tmp_path / "j.db", model, generation_timeout_s=0.2) as env:
        apology = await ask(env, "Кот", USER)
        assert APOLOGY in (apology.text or "") and apology.button_texts == ["🔁 Ещё раз"]
        assert env.count("jokes") == 0
        model.delay = 0.0
        await asyncio.sleep(0.6)  # the worker finishes the abandoned call (its result is dropped)
        joke = await ask(env, "Пёс", USER, timeout=5)
        assert (joke.text or "").startswith("Пёс")
        assert errors(env) == 0


async def test_full_queue_says_busy_to_the_extra_user(api: LocalBotApi, tmp_path: Path) -> None:
    model = FakeModel(delay=0.5)
    async with running_fake_bot(api, tmp_path / "j.db", model, queue_depth=1) as env:
        api.send_text(USER, "Кот")
        await wait_for(model.started.is_set, 5, "the generation to start")
        api.send_text(USER + 1, "Пёс")
        busy = await api.wait_for_bot_message(USER + 1)
        assert "много желающих" in (busy.text or "")
        joke = await api.wait_for_bot_message(USER, timeout=5)
        assert (joke.text or "").startswith("Кот")
        await idle(env)
        assert env.rows("SELECT prompt FROM jokes") == [("Кот",)]


async def test_failed_save_tells_the_user_and_sends_no_orphan_joke(
    env: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storage

    async def disk_full(*args: object, **kwargs: object) -> int:
        raise storage.StorageWriteError("Could not save the joke: database or disk is full")

    monkeypatch.setattr(storage, "save_joke", disk_full)
    reply = await ask(env, "Слон", USER)
    assert "не сохранился" in (reply.text or "") and not reply.button_texts
    assert env.count("jokes") == 0 and errors(env) == 0
