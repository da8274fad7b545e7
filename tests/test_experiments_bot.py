"""An experiment through the real bot: two tiny GPTs, users split between them, the arm stored.

The bot is `create_app` as `python -m bot` builds it (the registry from the settings, the second
version loaded from the second folder), driven over HTTP through the local Bot API server.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.arms import arm_of
from generation.gpt.loading import model_id_of
from tests.bot_harness import RunningBot, make_settings, running_bot
from tests.fixtures_models import make_tiny_gpt
from tests.local_api import LocalBotApi


@pytest.fixture(scope="module")
def two_gpts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Version A and version B: the same architecture and tokenizer, other weights."""
    root = tmp_path_factory.mktemp("versions")
    return make_tiny_gpt(root / "gpt", seed=0), make_tiny_gpt(root / "gpt-tuned", seed=1)


def experiment_of(two_gpts: tuple[Path, Path]) -> str:
    a, b = two_gpts
    return f"gpt:{a},{b}"


def users_in(experiment: str, arm: str, count: int) -> list[int]:
    return [user for user in range(600, 700) if arm_of(experiment, user) == arm][:count]


@pytest.fixture
async def env(
    api: LocalBotApi, tmp_path: Path, two_gpts: tuple[Path, Path]
) -> AsyncIterator[RunningBot]:
    db = tmp_path / "jokes.db"
    settings = make_settings(api, db, two_gpts[0], experiment=experiment_of(two_gpts))
    async with running_bot(api, settings, db) as running:
        yield running


async def joke_for(env: RunningBot, user: int, word: str = "Кот"):
    env.api.send_text(user, word)
    reply = await env.api.wait_for_bot_message(user, timeout=60)
    await env.idle(timeout=30)
    return reply


def stored(env: RunningBot, user: int) -> list[tuple[str, str, str | None]]:
    return env.rows("SELECT method, model, arm FROM jokes WHERE user_id = ? ORDER BY id", user)


async def test_each_user_gets_the_version_of_their_arm(
    env: RunningBot, two_gpts: tuple[Path, Path]
) -> None:
    experiment = experiment_of(two_gpts)
    version_a, version_b = (model_id_of(folder) for folder in two_gpts)
    assert version_a != version_b
    (in_a,), (in_b,) = users_in(experiment, "A", 1), users_in(experiment, "B", 1)
    for user in (in_a, in_b, in_b):  # asking again keeps the arm
        reply = await joke_for(env, user)
        assert reply.text and reply.text.startswith("Кот")
        assert "⚙️ GPT" in reply.button_texts  # the user sees the method, not the version
    assert stored(env, in_a) == [("gpt", version_a, "A")]
    assert stored(env, in_b) == [("gpt", version_b, "B")] * 2
    picker = await joke_for(env, in_a, "/method")
    assert [b for b in picker.button_texts if "[B]" in b] == []  # the version is not a method


async def test_a_failing_version_falls_back_to_the_default_and_logs_once(
    env: RunningBot, two_gpts: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    experiment = experiment_of(two_gpts)
    version_a = model_id_of(two_gpts[0])
    backend = env.app.registry.backend("gpt[B]")

    def broken(*args: object, **kwargs: object) -> list[str]:
        raise RuntimeError("out of memory")

    backend.generate = broken  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING, logger="bot.arms")
    users = users_in(experiment, "B", 2)
    for user in (*users, users[0]):
        reply = await joke_for(env, user)
        assert reply.text and reply.text.startswith("Кот")  # the user still gets a joke
    for user in users:  # written by the default version, which is arm A's
        assert {row for row in stored(env, user)} == {("gpt", version_a, "A")}
    warnings = [r for r in caplog.records if "gpt[B] failed" in r.getMessage()]
    assert len(warnings) == 1 and "out of memory" in warnings[0].getMessage()


async def test_stats_show_versions_arms_and_which_leads(
    env: RunningBot, two_gpts: tuple[Path, Path]
) -> None:
    experiment = experiment_of(two_gpts)
    version_a, version_b = (model_id_of(folder) for folder in two_gpts)
    (in_a,), (in_b,) = users_in(experiment, "A", 1), users_in(experiment, "B", 1)
    for user, button in ((in_a, "👎 0"), (in_b, "👍 0")):
        joke = await joke_for(env, user)
        query = env.api.press_button(user, joke.message_id, text=button)
        await env.api.wait_for_callback_answer(query, timeout=10)
    await env.idle()
    text = (await joke_for(env, in_a, "/stats")).text or ""
    assert "GPT: анекдотов 2, оценок 2, нравится 50% (95%: 9–91%)" in text
    assert f"  · {version_a} (A): анекдотов 1, оценок 1, нравится 0% (95%: 0–79%)" in text
    assert f"  · {version_b} (B): анекдотов 1, оценок 1, нравится 100% (95%: 21–100%)" in text
    assert f"Эксперимент «GPT»: A — {version_a}, B — {version_b}." in text
    assert "B: анекдотов 1, оценок 1, нравится 100% (95%: 21–100%)" in text
    assert text.rstrip().endswith("B впереди, но интервалы ещё пересекаются.")
