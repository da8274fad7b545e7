"""The database misbehaving: locked by another writer, full, or not a database at all.

A vote is thanked only once it is committed; when it cannot be committed the user is told so.
A database the bot cannot open or migrate stops the start with one clear line and exit code 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

import storage
from tests.bot_harness import RunningBot
from tests.fault_kit import (
    ROOT,
    ask,
    bot_env,
    db_rows,
    env,
    errors,
    idle,
    model,
    running_fake_bot,
)
from tests.local_api import LocalBotApi

__all__ = ["env", "model"]

USER = 801
GROUP = -100801
VOTE_FAILED = "Не получилось сохранить оценку"


async def _like(env: RunningBot, message_id: int, text: str = "👍 0") -> str | None:
    query = env.api.press_button(USER, message_id, text=text)
    answer = await env.api.wait_for_callback_answer(query, timeout=10)
    await idle(env)
    return answer.text


@contextlib.asynccontextmanager
async def locked(db: Path, seconds: float) -> AsyncIterator[None]:
    """Another process holds the write lock (BEGIN IMMEDIATE) for `seconds`."""
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        release = asyncio.get_running_loop().call_later(seconds, con.rollback)
        yield
        await asyncio.sleep(max(0.0, seconds + 0.1))
        release.cancel()
    finally:
        con.close()


async def test_vote_waits_out_a_two_second_lock_and_is_stored(env: RunningBot) -> None:
    joke = await ask(env, "Кот", USER)
    started = time.monotonic()
    async with locked(env.db_path, 2.0):
        answer = await _like(env, joke.message_id)
        waited = time.monotonic() - started
    assert answer == "Спасибо!"
    assert 1.5 <= waited < 6  # within the busy timeout (5 s)
    assert env.rows("SELECT user_id, value FROM votes") == [(USER, 1)]
    assert errors(env) == 0


async def test_lock_longer_than_busy_timeout_is_an_error_alert_not_a_silent_success(
    api: LocalBotApi, tmp_path: Path
) -> None:
    db = tmp_path / "j.db"
    async with running_fake_bot(api, db, db_busy_timeout_ms=300) as env:
        joke = await ask(env, "Пёс", USER)
        async with locked(db, 1.5):
            query = api.press_button(USER, joke.message_id, text="👍 0")
            answer = await api.wait_for_callback_answer(query, timeout=5)
            assert answer.text is not None and VOTE_FAILED in answer.text and answer.show_alert
        assert env.count("votes") == 0
        assert await _like(env, joke.message_id) == "Спасибо!"  # the lock is gone: it works
        assert env.count("votes") == 1 and errors(env) == 0


async def test_disk_full_on_vote_is_reported(
    env: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    joke = await ask(env, "Лиса", USER)

    async def disk_full(*args: object, **kwargs: object) -> object:
        raise storage.StorageWriteError("Could not record the vote: database or disk is full")

    monkeypatch.setattr(storage, "record_vote", disk_full)
    answer = await _like(env, joke.message_id)
    assert answer is not None and VOTE_FAILED in answer
    assert env.count("votes") == 0 and errors(env) == 0


async def test_real_sqlite_full_on_vote_is_reported(env: RunningBot) -> None:
    """A real SQLITE_FULL: the bot's connections may not grow the file by one page, and group
    members keep voting until a vote needs a new page."""
    api = env.api
    api.send_text(USER, "/joke Заяц", chat_id=GROUP, chat_type="group")
    joke = await api.wait_for_bot_message(GROUP)
    await idle(env)
    data = f"v:{env.rows('SELECT id FROM jokes')[0][0]}:1"
    pages = env.rows("PRAGMA page_count")[0][0]

    def cap(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    engine = env.app.engine
    event.listen(engine.sync_engine, "connect", cap)
    await engine.dispose()  # pooled connections go; new ones get the cap
    answers: list[str | None] = []
    try:
        for n in range(400):
            query = api.press_button(USER + 1 + n, joke.message_id, data, chat_id=GROUP)
            answers.append((await api.wait_for_callback_answer(query)).text)
            if VOTE_FAILED in (answers[-1] or ""):
                break
        await idle(env)
        assert VOTE_FAILED in (answers[-1] or ""), answers[-3:]
        assert env.count("votes") == answers.count("Спасибо!")  # every thanked vote, no more
    finally:
        event.remove(engine.sync_engine, "connect", cap)
        await engine.dispose()
    query = api.press_button(USER, joke.message_id, data, chat_id=GROUP)  # votes work again
    assert (await api.wait_for_callback_answer(query)).text == "Спасибо!"
    assert errors(env) == 0


def _start_bot(db_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = bot_env("http://127.0.0.1:9", tmp_path / "unused.db", DATABASE_URL=db_url)
    return subprocess.run(
        [sys.executable, "-m", "bot"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("case", ["folder", "garbage", "newer-schema"])
def test_unusable_database_stops_the_start_with_a_clear_message(
    tmp_path: Path, case: str
) -> None:
    target = tmp_path / "jokes.db"
    if case == "folder":
        target.mkdir()
    elif case == "garbage":
        target.write_bytes(b"this is not a database, just some bytes\x00\x01" * 100)
    else:  # a schema revision this code does not know (a newer release ran on this file)
        with sqlite3.connect(target) as con:
            con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
            con.execute("INSERT INTO alembic_version VALUES ('9999_from_the_future')")
    result = _start_bot(f"sqlite+aiosqlite:///{target}", tmp_path)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Cannot start:") and str(target) in last
    assert "Traceback" not in result.stderr


async def test_a_slow_bookkeeping_write_does_not_hold_the_users_next_word(
    api: LocalBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message id is stored after the handler returns: a user who already has the joke is
    not told "уже пишу…" while the database takes its time; closing waits for the write."""
    real = storage.attach_message

    async def slow(*args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(1.5)
        await real(*args, **kwargs)

    monkeypatch.setattr(storage, "attach_message", slow)
    db = tmp_path / "j.db"
    async with running_fake_bot(api, db, throttle_rate_s=0.0) as env:
        api.send_text(801, "Кот")
        first = await api.wait_for_bot_message(801, timeout=5)
        api.send_text(801, "Пёс")  # the first joke's message id is still being stored
        second = await api.wait_for_bot_message(801, after=first.message_id, timeout=5)
        assert (first.text or "").startswith("Кот")
        assert (second.text or "").startswith("Пёс")
        assert errors(env) == 0
    stored = db_rows(db, "SELECT prompt, message_id FROM jokes ORDER BY id")
    assert stored == [("Кот", first.message_id), ("Пёс", second.message_id)]
