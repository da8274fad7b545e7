"""Security and privacy: the token stays secret, admin commands stay admin-only, data stays minimal.

* BOT_TOKEN is part of every Bot API URL, and aiohttp quotes the URL in some errors (a malformed
  TELEGRAM_API_URL, say); `python -m bot` masks it in every log line (`bot.redaction`), and none
  of the bot's own error paths puts it into a message in the first place.
* /export and /reload answer only users in ADMIN_IDS; anyone else gets the ordinary "unknown
  command", so the commands are not even revealed.
* Of a Telegram user only the numeric id is stored (names only with STORE_USER_NAMES).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

import storage
from bot.redaction import MASK, TokenRedactor, install_token_redaction
from tests.bot_harness import TOKEN, RunningBot
from tests.fault_kit import (
    FakeModel,
    ask,
    bot_env,
    env,
    fake_bot_process,
    idle,
    model,
    running_fake_bot,
    sigterm,
    wait_for,
)
from tests.local_api import LocalBotApi

__all__ = ["env", "model"]

SECRET = TOKEN.split(":", 1)[1]
USER = 1101
ADMIN = 1199


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("x", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_redactor_masks_message_arguments_and_traceback() -> None:
    redactor = TokenRedactor(TOKEN)
    try:
        raise RuntimeError(f"cannot POST http://h/bot{TOKEN}/getMe")
    except RuntimeError as error:
        record = _record("failed: %s (secret %s)", f"/bot{TOKEN}/x", SECRET, exc=error)
    handler = logging.StreamHandler(stream := __import__("io").StringIO())
    handler.addFilter(redactor)
    logging.getLogger("redaction-test").addHandler(handler)
    try:
        handler.handle(record)
    finally:
        logging.getLogger("redaction-test").removeHandler(handler)
    text = stream.getvalue()
    assert SECRET not in text and TOKEN not in text
    assert f"/bot{MASK}/x" in text and f"secret {MASK}" in text and "RuntimeError" in text
    assert install_token_redaction(None) is None


async def test_error_paths_put_no_token_into_log_messages(
    env: RunningBot, model: FakeModel, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without any filter: failing sends, undecodable answers, flood control, a model that
    raises, a handler that crashes. Nothing logged (tracebacks included) carries the token."""
    caplog.set_level(logging.DEBUG)
    api = env.api
    api.faults.fail_next("sendMessage", "5xx", count=2)
    await ask(env, "Кот", USER)
    api.faults.fail_next("sendMessage", "html5xx", count=2)
    await ask(env, "Пёс", USER)
    api.faults.fail_next("sendMessage", "429", retry_after=3600)
    await ask(env, "Ёж", USER)
    api.faults.fail_next("getUpdates", "drop")
    model.mode = "raise"
    await ask(env, "Лис", USER)
    model.mode = "ok"

    async def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("handler crashed")

    monkeypatch.setattr(storage, "get_user_method", crash)
    await ask(env, "Ёрш", USER)
    assert env.app.errors.count == 4  # two failed sends, the flood ban, the crash
    assert "handler crashed" in caplog.text and "Traceback" in caplog.text
    assert SECRET not in caplog.text


async def test_python_m_bot_masks_the_token_in_its_logs(tmp_path: Path) -> None:
    """A malformed TELEGRAM_API_URL: aiohttp's error quotes the whole URL, token included."""
    env = bot_env("http://127.0.0.1:99999", tmp_path / "j.db")
    seen: list[str] = []

    async def read(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            seen.append(line.decode("utf-8", "replace"))

    async with fake_bot_process(env, "--log-level", "DEBUG") as proc:
        reader = asyncio.create_task(read(proc))  # ends with the process (its output closes)
        await wait_for(lambda: sum("cannot reach Telegram" in s for s in seen) >= 2, 60)
        code = await sigterm(proc)
        await reader
    output = "".join(seen)
    assert code == 0, output[-2000:]
    assert f"/bot{MASK}/getMe" in output  # the URL was logged, masked
    assert SECRET not in output


async def test_admin_commands_only_for_admins(api: LocalBotApi, tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    async with running_fake_bot(api, db, admin_ids=frozenset({ADMIN})) as env:
        for command in ("/export", "/reload"):
            reply = await ask(env, command, USER)
            assert reply.text == "Не знаю такой команды. Список команд — /help."
            api.send_text(USER, command, chat_id=-1101, chat_type="group")
        await idle(env)
        assert api.bot_messages(-1101) == []  # in groups: silence, as for any unknown command
        assert await ask(env, "/export", ADMIN) and "пока нет" in (
            api.last_bot_message(ADMIN).text or ""  # type: ignore[union-attr]
        )
        reload = await ask(env, "/reload", ADMIN)
        assert (reload.text or "").startswith("Готово.") and "gpt" in (reload.text or "")
        names = {c["command"] for c in api.my_commands()}
        assert not {"export", "reload"} & names  # not advertised


async def test_export_sends_the_ratings_as_jsonl_in_chunks(
    api: LocalBotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.handlers.admin as admin

    monkeypatch.setattr(admin, "CHUNK_CHARS", 400)
    db = tmp_path / "j.db"
    async with running_fake_bot(api, db, admin_ids=frozenset({ADMIN})) as env:
        for n in range(6):
            joke = await ask(env, f"Слово{n}", USER + n)
            query = api.press_button(USER + n, joke.message_id, text="👍 0")
            await api.wait_for_callback_answer(query)
        api.send_text(ADMIN, "/export")
        header = await api.wait_for_bot_message(ADMIN)
        await idle(env)
        assert "6 оценённых" in (header.text or "")
        chunks = [m.text or "" for m in api.bot_messages(ADMIN)[1:]]
        assert len(chunks) > 1 and all(len(c) <= 400 for c in chunks)
        records = [json.loads(line) for chunk in chunks for line in chunk.splitlines()]
        assert sorted(r["prompt"] for r in records) == [f"Слово{n}" for n in range(6)]
        assert all(r["likes"] == 1 for r in records)
        assert SECRET not in "".join(chunks)


async def test_only_the_user_id_is_stored(env: RunningBot) -> None:
    api = env.api
    api.send_text(USER, "Кот", first_name="Иван", username="ivan_petrov", language_code="ru")
    joke = await api.wait_for_bot_message(USER)
    query = api.press_button(USER, joke.message_id, text="👍 0", username="ivan_petrov")
    await api.wait_for_callback_answer(query)
    await idle(env)
    columns = [row[1] for row in env.rows("PRAGMA table_info(users)")]
    assert set(columns) == {"id", "method", "username", "first_seen", "last_seen"}
    assert env.rows("SELECT id, method, username FROM users") == [(USER, None, None)]
    dump = "\n".join(
        str(row) for table in ("users", "jokes", "votes")
        for row in env.rows(f"SELECT * FROM {table}")
    )
    assert "Иван" not in dump and "ivan_petrov" not in dump and SECRET not in dump
