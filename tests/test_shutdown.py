"""Stopping: SIGTERM with work in flight, the grace period, no update handled twice after a restart.

The promise: on SIGTERM the bot takes no new updates, finishes (or, past the grace period,
cancels with an apology) what is in flight, has committed every vote it thanked for, exits 0, and
after a restart nothing thanked for is missing or undone. The subtle part is Telegram's offsets:
updates are confirmed by the *next* getUpdates, so without care the last ones come again after a
restart and a 👍 toggle is applied twice (see `bot.updates`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.app import BotApp, create_app
from bot.resilience import polling_backoff
from bot.updates import OffsetFile
from tests.fault_kit import (
    FAST_BACKOFF,
    FakeModel,
    ask,
    bot_env,
    db_rows,
    fake_bot_process,
    fake_registry,
    fake_settings,
    idle,
    running_fake_bot,
    sigterm,
    wait_for,
    wait_long_poll,
)
from tests.local_api import LocalBotApi

USER = 901
GROUP = -100901


@contextlib.asynccontextmanager
async def started(
    api: LocalBotApi, db: Path, model: FakeModel, **overrides: Any
) -> AsyncIterator[tuple[BotApp, asyncio.Task[None]]]:
    """A bot whose stop and close the test does itself (no context manager doing it)."""
    backoff = overrides.pop("backoff", FAST_BACKOFF)
    app = await create_app(
        fake_settings(api, db, **overrides), registry=fake_registry(model), backoff=backoff
    )
    task = asyncio.create_task(app.run_polling(handle_signals=False))
    await wait_long_poll(api)
    try:
        yield app, task
    finally:
        if not task.done():
            await app.stop()
            await task
        await app.close()


async def _stop_during_a_generation(
    api: LocalBotApi, db: Path, word: str, *, delay: float, grace: float
) -> float:
    """A user asks for a joke the model takes `delay` s to write; once it has started, the bot
    stops and closes with `grace` s for work in flight. Returns how long stopping took."""
    model = FakeModel(delay=delay)
    async with started(api, db, model, shutdown_grace_s=grace) as (app, task):
        api.send_text(USER, word)
        await wait_for(model.started.is_set, 5, "the generation to start")
        began = time.monotonic()
        await app.stop()
        await task
        await app.close()
        return time.monotonic() - began


async def test_close_waits_for_a_generation_in_flight(api: LocalBotApi, tmp_path: Path) -> None:
    took = await _stop_during_a_generation(api, tmp_path / "j.db", "Кот", delay=0.8, grace=5.0)
    joke = api.last_bot_message(USER)
    assert joke is not None and (joke.text or "").startswith("Кот")
    assert 0.5 < took < 3
    assert db_rows(tmp_path / "j.db", "SELECT prompt, message_id FROM jokes") == [
        ("Кот", joke.message_id)
    ]
    assert api.all_updates_answered  # confirmed on the way out


async def test_generation_past_the_grace_period_gets_an_apology(
    api: LocalBotApi, tmp_path: Path
) -> None:
    took = await _stop_during_a_generation(api, tmp_path / "j.db", "Пёс", delay=3.0, grace=0.4)
    reply = api.last_bot_message(USER)
    assert reply is not None and "перезапускаюсь" in (reply.text or "")
    assert took < 2.0
    assert db_rows(tmp_path / "j.db", "SELECT COUNT(*) FROM jokes") == [(0,)]


async def _votes_then_outage(api: LocalBotApi, app: BotApp) -> dict[str, str | None]:
    """Jokes for 5 users; then getUpdates starts failing right after a batch of likes, so the
    bot handles and thanks them but cannot confirm them. Returns {query id: answer}."""
    messages = {}
    for n in range(5):
        api.send_text(USER + n, f"Слово{n}")
    for n in range(5):
        messages[USER + n] = (await api.wait_for_bot_message(USER + n)).message_id
    await wait_for(lambda: api.all_updates_answered and not app.dispatcher._handle_update_tasks)
    await wait_long_poll(api)
    api.faults.fail_next("getUpdates", "5xx", count=10_000)
    queries = [api.press_button(user, message, text="👍 0") for user, message in messages.items()]
    for query in queries:
        await api.wait_for_callback_answer(query)
    return {q: answer.text for q in queries if (answer := api.callback_answer(q))}


async def test_stop_confirms_handled_updates_so_a_restart_does_not_undo_votes(
    api: LocalBotApi, tmp_path: Path
) -> None:
    db = tmp_path / "j.db"
    slow = polling_backoff(3.0, 4.0)  # after one failed poll the loop sleeps: no confirmation
    async with started(api, db, FakeModel(), backoff=slow) as (app, _task):
        answers = await _votes_then_outage(api, app)
        api.faults.clear()  # Telegram is back, but the polling loop is still asleep
        assert not api.all_updates_answered
    assert set(answers.values()) == {"Спасибо!"}
    assert api.all_updates_answered  # close() confirmed them
    async with running_fake_bot(api, db) as env:  # restart: nothing comes again
        await idle(env)
        assert env.count("votes") == 5 and env.app.tracker.skipped == 0


async def test_offset_file_covers_a_stop_while_telegram_is_down(
    api: LocalBotApi, tmp_path: Path
) -> None:
    db = tmp_path / "j.db"
    async with started(api, db, FakeModel()) as (app, _task):
        answers = await _votes_then_outage(api, app)
    assert set(answers.values()) == {"Спасибо!"}
    assert not api.all_updates_answered  # the confirmation failed too
    saved = json.loads((tmp_path / "j.db-offset").read_text())
    assert saved["last_update_id"] == api.updates[-1].update_id
    api.faults.clear()
    async with running_fake_bot(api, db) as env:  # restart: the 5 likes come again, skipped
        await idle(env)
        assert env.app.tracker.skipped == 5
        assert env.count("votes") == 5
        joke = await ask(env, "Снова", USER)  # and new updates are handled as usual
        assert (joke.text or "").startswith("Снова")
    assert not (tmp_path / "j.db-offset.tmp").exists()


# long: one scenario read in order (start, votes and jokes in flight, SIGTERM, restart)
async def test_sigterm_mid_stream_exits_0_and_keeps_every_thanked_vote(
    api: LocalBotApi, tmp_path: Path
) -> None:
    """`python -m bot`'s main() as a process: votes and generations in flight, SIGTERM, then a
    restart that gets the unconfirmed updates again."""
    db = tmp_path / "j.db"
    env = bot_env(api.url, db, FAKE_DELAY_S="0.2", SHUTDOWN_GRACE_S="5")
    users = list(range(USER, USER + 8))
    async with fake_bot_process(env, log=tmp_path / "bot.log") as proc:
        await wait_long_poll(api, timeout=60)
        for user in users:  # a group where everybody asks for a joke
            api.send_text(user, f"/joke Кот{user}", chat_id=GROUP, chat_type="group")
        jokes = [m.message_id for m in await api.wait_for_bot_messages(GROUP, 8, timeout=20)]
        await wait_for(  # the handlers are done (else a second word is "already being written")
            lambda: db_rows(db, "SELECT COUNT(*) FROM jokes WHERE message_id > 0") == [(8,)], 10
        )
        await asyncio.sleep(0.2)
        await wait_long_poll(api)
        api.faults.fail_next("getUpdates", "5xx", count=10_000)  # nothing gets confirmed now
        presses = {}
        for n, user in enumerate(users):  # everyone votes once on three jokes
            for offset, text in ((0, "👍 0"), (1, "👎 0"), (2, "👍 0")):
                message = jokes[(n + offset) % len(jokes)]
                query = api.press_button(user, message, text=text, chat_id=GROUP)
                presses[query] = (user, message, 1 if text.startswith("👍") else -1)
        words = [  # and three more jokes are being written
            api.send_text(user, f"/joke Пёс{user}", chat_id=GROUP, chat_type="group")
            for user in users[:3]
        ]
        await api.wait_until(lambda: any(api.callback_answer(q) for q in presses), 10)
        began = time.monotonic()
        code = await sigterm(proc)  # votes and generations in flight
        took = time.monotonic() - began
    output = (tmp_path / "bot.log").read_text()
    assert code == 0, output[-3000:]
    assert took < 5 + 3, output[-2000:]
    replies = {m.reply_to.message_id for m in api.bot_messages(GROUP) if m.reply_to}
    assert {w.message_id for w in words} <= replies, output[-4000:]  # all answered before exit
    answers = {q: api.callback_answer(q) for q in presses}
    thanked = {presses[q] for q, a in answers.items() if a is not None and a.text == "Спасибо!"}
    assert thanked, "SIGTERM came too late to catch votes in flight"

    def stored() -> set[tuple[int, int, int]]:
        return set(
            db_rows(
                db,
                "SELECT v.user_id, j.message_id, v.value FROM votes v "
                "JOIN jokes j ON j.id = v.joke_id",
            )
        )

    assert stored() == thanked
    jokes_before = db_rows(db, "SELECT COUNT(*) FROM jokes")
    api.faults.clear()
    async with running_fake_bot(api, db) as restarted:  # the unconfirmed updates come again
        await idle(restarted)
        assert stored() == thanked  # nothing thanked for is missing or undone
        assert restarted.app.tracker.skipped == len(presses) + len(words)
    assert db_rows(db, "SELECT COUNT(*) FROM jokes") == jokes_before  # and nothing doubled


def test_offset_file_is_trusted_only_fresh_and_for_the_same_bot(tmp_path: Path) -> None:
    db = tmp_path / "jokes.db"
    note = OffsetFile.beside(db, bot_id=100000)
    assert note is not None and note.path == tmp_path / "jokes.db-offset"
    assert note.take() == 0  # no file
    note.save(41)
    assert note.take() == 41 and not note.path.exists()  # read once, then gone
    assert OffsetFile.beside(None, 1) is None  # an in-memory database has no place for it
    for payload in (
        {"bot_id": 999, "last_update_id": 41, "written_at": time.time()},  # another bot
        {"bot_id": 100000, "last_update_id": 41, "written_at": time.time() - 2 * 86400},  # stale
        {"bot_id": 100000, "last_update_id": "41", "written_at": time.time()},
        "garbage",
    ):
        note.path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
        assert note.take() == 0 and not note.path.exists()
    note.path.write_text(json.dumps({"bot_id": 100000, "last_update_id": 7, "written_at": 5.0e9}))
    assert note.take() == 7
    note.save(7, keep_date=True)  # carried over unchanged: keeps its age
    assert json.loads(note.path.read_text())["written_at"] == 5.0e9


async def test_sigterm_while_the_model_computes_past_the_grace_exits_0(
    api: LocalBotApi, tmp_path: Path
) -> None:
    """A generation still inside torch when the grace period ends: the user gets the apology
    and the process exits 0 (a normal interpreter exit under such a thread is a SIGABRT)."""
    env = bot_env(
        api.url, tmp_path / "j.db", FAKE_MODE="torch", FAKE_DELAY_S="60", SHUTDOWN_GRACE_S="0.5"
    )
    async with fake_bot_process(env, log=tmp_path / "bot.log") as proc:
        await wait_long_poll(api, timeout=60)
        api.send_text(USER, "Кот")
        await api.wait_for_chat_action(USER, timeout=10)  # "typing…": the model is at work
        await asyncio.sleep(0.5)
        code = await sigterm(proc)
    output = (tmp_path / "bot.log").read_text()
    assert code == 0, output[-3000:]
    assert "terminate called" not in output
    apology = api.last_bot_message(USER)
    assert apology is not None and "Кот" not in (apology.text or "")
