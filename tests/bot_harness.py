"""Run the real bot (the same `create_app` as `python -m bot`) against the local Bot API server.

Only the models are small: a tiny GPT-2 built in a temp folder and loaded through the real
`from_pretrained` path.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.app import BotApp, create_app
from settings import Settings
from tests.local_api import LocalBotApi

TOKEN = "100000:e2e-test-token"


def make_settings(api: LocalBotApi, db_path: Path, gpt_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "bot_token": SecretStr(TOKEN),
        "telegram_api_url": api.url,
        "database_url": f"sqlite+aiosqlite:///{db_path}",
        "gpt_model": str(gpt_dir),
        "enable_diffuseq": False,
        "enable_classic": False,  # the generative methods only; tests/test_classic_bot.py: on
        "gpt_num_beams": 2,  # keeps beam search quick for the tiny model; the preset is the same
        "gpt_max_new_tokens": 24,
        "throttle_rate_s": 0.0,
        "polling_timeout_s": 1,
        "torch_threads": 1,
        "shutdown_grace_s": 5.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class RunningBot:
    api: LocalBotApi
    app: BotApp
    task: asyncio.Task[None]
    db_path: Path

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the database file directly, as an outsider would."""
        with contextlib.closing(sqlite3.connect(self.db_path)) as con:
            return con.execute(sql, args).fetchall()

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until every update the bot received has been fully handled."""
        await self.api.wait_all_updates_answered(timeout=timeout)
        await self.api.wait_until(
            lambda: not self.app.dispatcher._handle_update_tasks, timeout, "handlers to finish"
        )

    def count(self, table: str) -> int:
        return int(self.rows(f"SELECT COUNT(*) FROM {table}")[0][0])


@pytest.fixture
async def api() -> AsyncIterator[LocalBotApi]:
    """A local Bot API server for one test."""
    server = LocalBotApi(token=TOKEN)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def running_bot(
    api: LocalBotApi, settings: Settings, db_path: Path, **app_parts: Any
) -> AsyncIterator[RunningBot]:
    """`app_parts`: passed to `create_app` (a registry or selector of the test's own)."""
    app = await create_app(settings, **app_parts)
    polls_before = len(api.calls_of("getUpdates"))
    task = asyncio.create_task(app.run_polling(handle_signals=False))
    try:
        await api.wait_for_call("getUpdates", count=polls_before + 1, timeout=10)
        yield RunningBot(api, app, task, db_path)
    finally:
        with contextlib.suppress(RuntimeError):
            await app.stop()
        await asyncio.wait_for(task, timeout=10)
        await app.close()
