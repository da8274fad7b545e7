"""The collector is paused for start-up only: the bot's entry point pauses it, polling resumes
it with the start-up heap frozen, and code that did not pause it is left alone."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import startup_gc
from tests.bot_harness import TOKEN, make_settings, running_bot
from tests.local_api import LocalBotApi


@pytest.fixture(autouse=True)
def restore_collector() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    startup_gc._paused_here = False
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:  # pragma: no cover - pytest runs with the collector on
        gc.disable()


def test_pause_then_resume_freezes_the_start_up_heap() -> None:
    startup_gc.pause_collection()
    assert not gc.isenabled()
    survivor = [object() for _ in range(10)]  # start-up objects: live for good
    startup_gc.resume_collection()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(survivor)


def test_resume_leaves_a_collector_it_did_not_pause_alone() -> None:
    gc.disable()  # someone else's choice (an embedder, a profiler)
    startup_gc.pause_collection()
    startup_gc.resume_collection()
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0


async def test_the_bot_resumes_collection_once_it_polls(tmp_path: Path, tiny_gpt_dir: Path) -> None:
    api = LocalBotApi(token=TOKEN)
    await api.start()
    try:
        startup_gc.pause_collection()  # as `python -m bot` does first thing
        db = tmp_path / "jokes.db"
        async with running_bot(api, make_settings(api, db, tiny_gpt_dir), db) as env:
            assert gc.isenabled()
            assert gc.get_freeze_count() > 0
            env.api.send_text(501, "Молоко")
            assert (await env.api.wait_for_bot_message(501, timeout=30)).text
    finally:
        await api.stop()


def test_the_entry_point_pauses_collection_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m bot` without a token stops right after parsing: the pause came before."""
    import bot.__main__ as entry

    monkeypatch.delenv("BOT_TOKEN", raising=False)
    monkeypatch.setattr(entry, "get_settings", lambda: entry.Settings(bot_token=None))
    assert entry.main([]) == 2
    assert not gc.isenabled()
