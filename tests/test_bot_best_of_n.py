"""Best of N in the bot: the best candidate is sent, 🔁 sends the next one of the same draw
without generating again, the rows record rank and judge, and /reload tells how jokes are picked.

The model, the checks and the judge are small fakes here (their real versions have their own
tests), so every draw holds five different jokes; the bot, the service and the database are real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from generation.registry import MethodRegistry
from generation.selection import Selector
from tests.bot_harness import RunningBot, make_settings, running_bot
from tests.generation_fakes import AcceptAll, LongerIsFunnier
from tests.local_api import LocalBotApi

USER = 601
ADMIN = 602


class Writer:
    """A sampling "model": seed s writes the word and s % 5 times «ха» (five distinct jokes)."""

    model_id = "writer-1"

    def __init__(self) -> None:
        self.calls = 0

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        self.calls += 1
        pairs = zip(prompts, seeds, strict=True)
        return [f"{p} смеётся{' ха' * ((s or 0) % 5)}." for p, s in pairs]

    def warmup(self) -> None:
        pass


@pytest.fixture
async def env(api: LocalBotApi, tmp_path: Path, tiny_gpt_dir: Path) -> AsyncIterator[RunningBot]:
    db = tmp_path / "jokes.db"
    settings = make_settings(
        api,
        db,
        tiny_gpt_dir,
        default_method="gpt-sample",
        admin_ids=frozenset({ADMIN}),
    )
    selector = Selector(None, None, judge_weight=1.0, checker=AcceptAll(), judge=LongerIsFunnier())
    registry = MethodRegistry()
    registry.add_backend("writer", Writer())
    registry.add_method("gpt-sample", "Writer", "writer", {"do_sample": True}, candidates=5)
    async with running_bot(api, settings, db, selector=selector, registry=registry) as running:
        yield running


async def test_the_best_is_sent_and_more_shows_the_runner_up(env: RunningBot) -> None:
    env.api.send_text(USER, "Молоко")
    first = await env.api.wait_for_bot_message(USER, timeout=30)
    await env.idle()
    rows = env.rows("SELECT candidate_rank, candidates, judge_score, judge_version FROM jokes")
    assert len(rows) == 1
    rank, drawn, score, version = rows[0]
    assert (rank, drawn, version) == (0, 5, "judge@e2e000")
    assert score == pytest.approx(min(1.0, len(first.text or "") / 200))
    typing_before = len(env.api.chat_actions(USER))

    env.api.press_button(USER, first.message_id, text="🔁 Ещё")
    second = await env.api.wait_for_bot_message(USER, after=first.message_id, timeout=30)
    await env.idle()
    assert second.text is not None and second.text.startswith("Молоко")
    assert first.text == "Молоко смеётся ха ха ха ха."  # the longest of the five
    assert second.text == "Молоко смеётся ха ха ха."  # the runner-up
    rows = env.rows("SELECT candidate_rank, candidates, latency_ms FROM jokes ORDER BY id")
    assert [(r, n) for r, n, _ in rows] == [(0, 5), (1, 5)]
    assert rows[1][2] == 0  # from the draw: no model call, no wait
    assert len(env.api.chat_actions(USER)) == typing_before  # no "typing…": nothing generated


async def test_reload_says_how_jokes_are_picked(env: RunningBot) -> None:
    env.api.send_text(ADMIN, "/reload")
    reply = await env.api.wait_for_bot_message(ADMIN, timeout=30)
    assert reply.text is not None and "best of N, judge@e2e000" in reply.text
