"""The main end-to-end tests (tests/test_bot_e2e.py) again, with the bot on PostgreSQL: the same
`create_app`, local Bot API server and tiny GPT, and `env.rows` reading the PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.bot_harness import RunningBot, make_settings, running_bot
from tests.local_api import LocalBotApi
from tests.servers import PostgresServer, pg_rows
from tests.test_bot_e2e import (
    test_bad_callbacks_get_alert_and_record_nothing,
    test_like_switch_and_remove_update_rows_and_buttons,
    test_more_button_writes_another_joke_for_same_word,
    test_word_gets_joke_starting_with_it_with_keyboard,
)

__all__ = [  # collected here a second time, on PostgreSQL
    "test_bad_callbacks_get_alert_and_record_nothing",
    "test_like_switch_and_remove_update_rows_and_buttons",
    "test_more_button_writes_another_joke_for_same_word",
    "test_word_gets_joke_starting_with_it_with_keyboard",
]


@dataclass
class PostgresRunningBot(RunningBot):
    url: str = ""

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return pg_rows(self.url, sql, *args)


@pytest.fixture
async def env(
    api: LocalBotApi, postgres_server: PostgresServer, tmp_path: Path, tiny_gpt_dir: Path
) -> AsyncIterator[RunningBot]:
    url = postgres_server.new_database()
    no_file = tmp_path / "not-used.db"
    settings = make_settings(api, no_file, tiny_gpt_dir, database_url=url)
    async with running_bot(api, settings, no_file) as running:
        yield PostgresRunningBot(running.api, running.app, running.task, no_file, url=url)
    assert not no_file.exists()  # the offset note is kept beside SQLite files only
