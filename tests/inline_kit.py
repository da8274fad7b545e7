"""Shared pieces of the inline-mode tests: the real bot on the local Bot API server with a small
fake model whose draws hold five different jokes, and the moves of a user in inline mode.

The bot, the generation service (best of N, admission, micro-batching), the throttling and the
database are the real ones; only the model, the reader's checks and the judge are fakes, so each
draw is known in advance: seed s writes the word and s % 5 times «ха», and the judge likes longer
jokes better, so the offer is always «… ха ха ха ха.», «… ха ха ха.», «… ха ха.».
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.resilience import polling_backoff
from generation.registry import MethodRegistry
from generation.selection import Selector
from local_telegram.inline_state import InlineAnswer
from tests.bot_harness import RunningBot, make_settings
from tests.generation_fakes import AcceptAll, LongerIsFunnier
from tests.local_api import LocalBotApi

GROUP = -100500
ALICE, BOB, CAROL = 701, 702, 703
METHOD = "Writer"  # the display name of the fake method


class Writer:
    """A sampling "model": seed s writes the word and s % 5 times «ха» (five distinct jokes).

    gate: when set to an unset Event, every call waits for it (a slow model the test releases);
    fail: every call raises (a broken model).
    """

    model_id = "writer-inline"

    def __init__(self) -> None:
        self.calls = 0
        self.gate: threading.Event | None = None
        self.started = threading.Event()
        self.fail = False

    def warmup(self) -> None:
        pass

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail:
            raise RuntimeError("the model fell over")
        pairs = zip(prompts, seeds, strict=True)
        return [f"{p} смеётся{' ха' * ((s or 0) % 5)}." for p, s in pairs]


def best_three(word: str) -> list[str]:
    return [f"{word} смеётся{' ха' * n}." for n in (4, 3, 2)]


@contextlib.asynccontextmanager
async def running_inline_bot(
    api: LocalBotApi, db: Path, writer: Writer, **overrides: Any
) -> AsyncIterator[RunningBot]:
    # the selector imports torch on its first draw, seconds on a busy machine: do it now, so
    # the first inline answer is not late for its deadline (bot/handlers/inline.py)
    import torch  # noqa: F401

    values: dict[str, Any] = {
        "default_method": "gpt-sample",
        "torch_threads": 0,
        "generation_timeout_s": 20.0,
        "shutdown_grace_s": 3.0,
    }
    values.update(overrides)
    settings = make_settings(api, db, Path("/nonexistent-model"), **values)
    registry = MethodRegistry()
    registry.add_backend("writer", writer)
    registry.add_method("gpt-sample", METHOD, "writer", {"do_sample": True}, candidates=5)
    judge = LongerIsFunnier("judge@inline")
    selector = Selector(None, None, judge_weight=1.0, checker=AcceptAll(), judge=judge)
    app = await create_app(
        settings, registry=registry, selector=selector, backoff=polling_backoff(0.05, 0.2)
    )
    task = asyncio.create_task(app.run_polling(handle_signals=False))
    try:
        await api.wait_for_call("getUpdates", timeout=10)
        yield RunningBot(api, app, task, db)
    finally:
        await app.stop()
        await asyncio.wait_for(task, timeout=10)
        await app.close()


@pytest.fixture
def writer() -> Writer:
    return Writer()


@pytest.fixture
async def env(api: LocalBotApi, tmp_path: Path, writer: Writer) -> AsyncIterator[RunningBot]:
    async with running_inline_bot(api, tmp_path / "jokes.db", writer) as running:
        yield running


async def idle(env: RunningBot, timeout: float = 10.0) -> None:
    """Every update fetched, confirmed and fully handled (looking every 10 ms: a confirming
    getUpdates does not wake the server's waiters)."""
    deadline = time.monotonic() + timeout
    while not env.api.all_updates_answered or env.app.dispatcher._handle_update_tasks:
        if time.monotonic() > deadline:
            raise TimeoutError("handlers still running")
        await asyncio.sleep(0.01)


async def ask_inline(
    env: RunningBot, user: int, query: str, **options: Any
) -> tuple[str, InlineAnswer]:
    """A user types `@bot <query>` (in GROUP unless `chat_id` says otherwise); returns the
    inline query's id and the answer, once the bot has finished with it."""
    options.setdefault("chat_id", GROUP)
    query_id = env.api.send_inline_query(user, query, **options)
    answer = await env.api.wait_for_inline_answer(query_id, timeout=10)
    await idle(env)
    return query_id, answer


def joke_rows(env: RunningBot) -> list[tuple[Any, ...]]:
    """(id, user_id, chat_id, prompt, text, inline_chosen, inline_message_id) of every joke."""
    return env.rows(
        "SELECT id, user_id, chat_id, prompt, text, inline_chosen, inline_message_id "
        "FROM jokes ORDER BY id"
    )


def errors(env: RunningBot) -> int:
    return env.app.errors.count


def descriptions(answer: InlineAnswer) -> list[str]:
    return [str(result.get("description")) for result in answer.results]


def button_texts(result_or_markup: Mapping[str, Any]) -> list[str]:
    markup = result_or_markup.get("reply_markup", result_or_markup) or {}
    return [str(b["text"]) for row in markup.get("inline_keyboard", []) for b in row]
