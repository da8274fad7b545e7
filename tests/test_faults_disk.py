"""A database that stays unwritable for a while: one log line per incident, and recovery without
a restart once the disk has room again."""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.incidents import StorageIncidents, kind_of
from bot.updates import OffsetFile
from local_telegram import ChatMessage
from storage.db import WAL_CHECKPOINT_PAGES, WAL_SIZE_LIMIT_BYTES, create_engine
from tests.bot_harness import RunningBot
from tests.fault_kit import idle, running_fake_bot
from tests.local_api import LocalBotApi

USER = 1301
GROUP = -1001301
VOTE_FAILED = "Не получилось сохранить оценку"


def storage_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bot.incidents"]


def test_one_line_per_incident_a_reminder_and_a_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    incidents = StorageIncidents(remind_s=60, clock=lambda: now[0])
    full = sqlite3.OperationalError("database or disk is full")
    with caplog.at_level(logging.INFO, logger="bot.incidents"):
        for _ in range(500):
            incidents.failed("store a vote", full)
            now[0] += 0.1  # 50 s of failures: no reminder yet
        assert len(storage_lines(caplog)) == 1
        now[0] += 20
        incidents.failed("store a vote", full)  # past a minute: one reminder with the count
        incidents.succeeded()  # writes succeed and fail by turns: still the same incident
        incidents.failed("store a vote", full)
        now[0] += 11
        incidents.succeeded()  # quiet for a while: over
        incidents.succeeded()  # nothing open any more: silent
    lines = [r.getMessage() for r in storage_lines(caplog)]
    assert len(lines) == 3 and "disk full" in lines[0]
    assert "501 failed writes" in lines[1] and "recovered from disk full after 502" in lines[2]
    assert all(r.exc_info is None for r in storage_lines(caplog))


def test_incident_kinds() -> None:
    assert kind_of(sqlite3.OperationalError("database is locked")) == "database locked"
    assert kind_of(RuntimeError("Could not x: database or disk is full")) == "disk full"
    assert kind_of(ValueError("something else")) == "ValueError"


async def test_a_small_write_ahead_log_that_shrinks_after_checkpoints(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'j.db'}")
    try:
        async with engine.connect() as connection:
            pages = (await connection.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar()
            limit = (await connection.exec_driver_sql("PRAGMA journal_size_limit")).scalar()
    finally:
        await engine.dispose()
    assert (pages, limit) == (WAL_CHECKPOINT_PAGES, WAL_SIZE_LIMIT_BYTES)


async def test_a_long_lock_is_logged_once_not_per_press(
    api: LocalBotApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "j.db"
    async with running_fake_bot(api, db, db_busy_timeout_ms=50) as env:
        joke = await group_joke(env, "Пёс")
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with caplog.at_level(logging.INFO):
                answers = [await _press(env, USER + 1 + n, joke.message_id) for n in range(6)]
        finally:
            holder.rollback()
            holder.close()
        with caplog.at_level(logging.INFO):
            assert await _press(env, USER, joke.message_id) == "Спасибо!"
    assert all(VOTE_FAILED in (answer or "") for answer in answers)
    lines = [r.getMessage() for r in storage_lines(caplog)]
    assert len(lines) == 1 and "database locked" in lines[0], lines
    assert not [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]


async def group_joke(env: RunningBot, word: str) -> ChatMessage:
    """A joke in a group, where anyone may vote (in a private chat only its owner can)."""
    env.api.send_text(USER, f"/joke {word}", chat_id=GROUP, chat_type="group")
    joke = await env.api.wait_for_bot_message(GROUP)
    await idle(env)
    return joke


async def _press(env: RunningBot, user: int, message_id: int) -> str | None:
    data = f"v:{env.rows('SELECT id FROM jokes')[0][0]}:1"
    query = env.api.press_button(user, message_id, data, chat_id=GROUP)
    answer = await env.api.wait_for_callback_answer(query, timeout=10)
    await idle(env)
    return answer.text


@contextlib.contextmanager
def tiny_filesystem(size_kb: int) -> Iterator[Path]:
    """A real filesystem of `size_kb` (tmpfs); skips where mounting is not allowed."""
    mount_point = Path("/tmp") / f"jokes-tiny-{uuid.uuid4().hex[:8]}"
    mount_point.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mount_point)]
    if shutil.which("mount") is None or subprocess.run(command, capture_output=True).returncode:
        mount_point.rmdir()
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)
        mount_point.rmdir()


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with contextlib.suppress(OSError), filler.open("wb", buffering=0) as out:
        while True:
            out.write(b"x" * 4096)
    return filler


async def test_a_full_disk_recovers_without_a_restart(
    api: LocalBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    """The disk fills up, votes fail (one log line), space is freed, and from then on every
    vote is stored: the write-ahead log does not eat the freed space again."""
    with tiny_filesystem(2048) as folder:
        async with running_fake_bot(api, folder / "j.db") as env:
            joke = await group_joke(env, "Кот")
            filler = fill(folder)
            with caplog.at_level(logging.INFO):
                failed = [await _press(env, USER + 1 + n, joke.message_id) for n in range(30)]
                filler.unlink()
                later = [await _press(env, USER + 100 + n, joke.message_id) for n in range(200)]
            stored = env.count("votes")
    assert any(VOTE_FAILED in (answer or "") for answer in failed)
    assert later == ["Спасибо!"] * 200
    assert stored == failed.count("Спасибо!") + 200  # every thanked vote, no more
    lines = [r.getMessage() for r in storage_lines(caplog)]
    assert "disk full" in lines[0] and all("recovered" in line for line in lines[1:]), lines
    assert len(lines) <= 2, lines  # one incident: its first line and, once quiet, its recovery


def test_an_offset_note_on_a_full_disk_leaves_no_temp_file(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with tiny_filesystem(64) as folder:
        note = OffsetFile.beside(folder / "j.db", bot_id=1)
        assert note is not None
        note.save(41)
        fill(folder)
        with caplog.at_level(logging.WARNING, logger="bot.updates"):
            note.save(42)  # no room for the new note
        leftovers = sorted(p.name for p in folder.iterdir() if p.name != "filler")
        assert leftovers == ["j.db-offset"], leftovers
        assert note.take() == 41  # the last complete note stands
    assert any("could not write" in r.getMessage() for r in caplog.records)
