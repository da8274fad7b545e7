"""Shared pieces of the fault-injection tests: a scriptable fake model and a fast-failing bot.

The bot is the real one (`create_app`, aiogram over HTTP, the local Bot API server, SQLite);
only the model is a fake, registered in a real `MethodRegistry`, so a test decides when the
model is slow, raises or talks nonsense. No torch is imported, so each test takes a second or two.

`python -c "import tests.fault_kit as k; k.main()"` runs `python -m bot`'s own `main()` with that
fake model (see `main`): the shutdown and security tests drive the bot as a real process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotApp, create_app
from bot.resilience import polling_backoff
from generation.registry import MethodRegistry
from local_telegram import ChatMessage
from settings import Settings
from tests.bot_harness import TOKEN, RunningBot, make_settings
from tests.local_api import LocalBotApi

FAST_BACKOFF = polling_backoff(0.05, 0.2)
ROOT = Path(__file__).resolve().parent.parent


class FakeModel:
    """A backend whose behaviour the test sets: `mode` and `delay` can change between calls.

    modes: "ok" (prompt + a short punchline), "raise", "empty", "garbage" (special tokens and
    replacement characters only), "wrong-count" (one text too many), "torch" (as "ok", but the
    delay is spent computing in torch instead of sleeping).
    """

    model_id = "fake-model"

    def __init__(self, mode: str = "ok", delay: float = 0.0) -> None:
        self.mode = mode
        self.delay = delay
        self.calls = 0
        self.started = threading.Event()

    def warmup(self) -> None:
        pass

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        self.calls += 1
        self.started.set()
        if self.delay and self.mode == "torch":
            spin_torch(self.delay)
        elif self.delay:
            time.sleep(self.delay)
        if self.mode == "raise":
            raise RuntimeError("the model fell over")
        if self.mode == "empty":
            return ["" for _ in prompts]
        if self.mode == "garbage":
            return ["<|endoftext|>\ufffd\ufffd<pad>\x00" for _ in prompts]
        if self.mode == "wrong-count":
            return [f"{p} раз." for p in prompts] + ["лишний"]
        return [f"{p} — сказал кот. И ушёл спать." for p in prompts]


def spin_torch(seconds: float) -> None:
    """Busy inside torch's C++ runtime for `seconds`, like a real model call: a process that
    exits normally under such a thread is aborted by the runtime (SIGABRT)."""
    import torch

    matrix = torch.randn(256, 256)
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        matrix = torch.tanh(matrix @ matrix)


def fake_registry(model: FakeModel | None = None) -> MethodRegistry:
    """Two methods on one fake backend, named like the real ones so defaults resolve."""
    registry = MethodRegistry()
    registry.add_backend("fake", model or FakeModel())
    registry.add_method("gpt", "Фейк", "fake", {"do_sample": False})
    registry.add_method("gpt-sample", "Фейк (sampling)", "fake", {"do_sample": True})
    return registry


def fake_settings(api: LocalBotApi, db: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "shutdown_grace_s": 3.0,
        "generation_timeout_s": 5.0,
        "torch_threads": 0,  # the fake needs no torch: not even imported
    }
    values.update(overrides)
    return make_settings(api, db, Path("/nonexistent-model"), **values)


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


@contextlib.asynccontextmanager
async def running_fake_bot(
    api: LocalBotApi,
    db: Path,
    model: FakeModel | None = None,
    **overrides: Any,
) -> AsyncIterator[RunningBot]:
    """The real bot polling the local server, with a fake model and sub-second backoff."""
    settings = fake_settings(api, db, **overrides)
    app = await create_app(settings, registry=fake_registry(model), backoff=FAST_BACKOFF)
    async with polling(api, db, app) as bot:
        yield bot


@contextlib.asynccontextmanager
async def polling(api: LocalBotApi, db: Path, app: Any) -> AsyncIterator[RunningBot]:
    """`app` (from `create_app`) polling the local server until the block ends, then closed."""
    task = asyncio.create_task(app.run_polling(handle_signals=False))
    try:
        await wait_long_poll(api, timeout=10)
        yield RunningBot(api, app, task, db)
    finally:
        await app.stop()
        await asyncio.wait_for(task, timeout=10)
        await app.close()


@pytest.fixture
async def env(api: LocalBotApi, tmp_path: Path, model: FakeModel) -> AsyncIterator[RunningBot]:
    async with running_fake_bot(api, tmp_path / "jokes.db", model) as running:
        yield running


def errors(env: RunningBot | BotApp) -> int:
    """How many updates ended in the error handler."""
    app = env.app if isinstance(env, RunningBot) else env
    return app.errors.count


async def idle(env: RunningBot, timeout: float = 10.0) -> None:
    """Every update fetched, confirmed and fully handled: `RunningBot.idle`, but looking every
    10 ms, because neither a confirming getUpdates nor a handler ending wakes the server's
    waiters (the confirming poll only reports back when it ends, a polling timeout later)."""
    deadline = time.monotonic() + timeout
    while not env.api.all_updates_answered or env.app.dispatcher._handle_update_tasks:
        if time.monotonic() > deadline:
            raise TimeoutError("handlers still running")
        await asyncio.sleep(0.01)


async def ask(env: RunningBot, text: str, user: int, timeout: float = 10.0) -> ChatMessage:
    env.api.send_text(user, text)
    reply = await env.api.wait_for_bot_message(user, timeout=timeout)
    await idle(env)
    return reply


async def wait_for(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """Poll `predicate` every 10 ms (for conditions the server does not announce)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what or predicate}")
        await asyncio.sleep(0.01)


async def wait_long_poll(api: LocalBotApi, timeout: float = 5.0) -> None:
    """Until the bot sits in a long poll (so a fault planned now hits its *next* getUpdates)."""
    deadline = time.monotonic() + timeout
    while api._waiting_polls == 0:  # not a change the server announces: look every 10 ms
        if time.monotonic() > deadline:
            raise TimeoutError("the bot is not in a long poll")
        await asyncio.sleep(0.01)


def db_rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as con:
        return con.execute(sql, args).fetchall()


# --- the bot as a process ------------------------------------------------------------------------


def bot_env(api_url: str, db: Path, **extra: str) -> dict[str, str]:
    """Environment for `python -m bot` (or `main()` below) against the local server."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "DATABASE_", "ADMIN_"))
    }
    env.update(
        {
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api_url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            "ENABLE_DIFFUSEQ": "false",
            "THROTTLE_RATE_S": "0",
            "POLLING_TIMEOUT_S": "1",
            "SHUTDOWN_GRACE_S": "5",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


FAKE_BOT_CMD = "import tests.fault_kit as k; k.main()"


@contextlib.asynccontextmanager
async def fake_bot_process(
    env: dict[str, str], *args: str, log: Path | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`main()` below as a child process, `args` on its command line. Its output goes to the file
    `log`, or without one to a pipe at `proc.stdout`. Killed on the way out if still running."""
    stream = log.open("w") if log is not None else None
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FAKE_BOT_CMD,
        *args,
        cwd=ROOT,
        env=env,
        stdout=stream or asyncio.subprocess.PIPE,
        stderr=stream or asyncio.subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if stream is not None:
            stream.close()


async def sigterm(proc: asyncio.subprocess.Process, timeout: float = 20.0) -> int:
    """Stop the process as systemd or `docker stop` does; its exit code."""
    proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.wait(), timeout)


def main() -> None:
    """`python -m bot` with the fake model: `bot.__main__.main()` as is, `build_registry`
    replaced. FAKE_DELAY_S and FAKE_MODE set the model's delay and mode; the polling backoff is
    sub-second."""
    import bot.app

    model = FakeModel(os.environ.get("FAKE_MODE", "ok"), float(os.environ.get("FAKE_DELAY_S", "0")))
    bot.app.build_registry = lambda config: fake_registry(model)  # type: ignore[assignment]
    os.environ.setdefault("POLLING_BACKOFF_MIN_S", "0.05")
    os.environ.setdefault("POLLING_BACKOFF_MAX_S", "0.3")
    from bot.__main__ import main as bot_main

    logging.captureWarnings(True)
    sys.exit(bot_main(sys.argv[1:]))
