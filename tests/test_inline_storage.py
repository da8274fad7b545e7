"""Inline mode's storage (storage/inline.py) against a real, migrated SQLite file: offers saved
as not chosen, picks marked only where they belong, and the export's pairs of pick and offer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import storage
from storage import export


@pytest.fixture
async def db(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'jokes.db'}"
    await storage.migrate(url)
    engine = storage.create_engine(url)
    yield url, storage.make_sessionmaker(engine)
    await engine.dispose()


def offered(text: str, rank: int) -> storage.OfferedJoke:
    return storage.OfferedJoke(
        text=text,
        method="gpt",
        model="gpt@abc123",
        params={"seed": rank, "note": "ёж"},
        latency_ms=12.4,
        candidate_rank=rank,
        candidates=10,
        judge_score=0.5,
        judge_version="judge@1",
        arm="A",
    )


async def offer(sessions, user_id: int, prompt: str, count: int = 3) -> list[int]:
    async with sessions() as session:
        return await storage.save_offer(
            session,
            user_id=user_id,
            prompt=prompt,
            jokes=[offered(f"{prompt} {n}", n) for n in range(count)],
        )


async def test_an_offer_is_stored_not_chosen_in_no_chat(db) -> None:
    _, sessions = db
    ids = await offer(sessions, 7, "Молоко")
    assert ids == sorted(ids) and len(ids) == 3
    async with sessions() as session:
        jokes = [await storage.get_joke(session, joke_id) for joke_id in ids]
    assert all(j is not None for j in jokes)
    assert {(j.user_id, j.chat_id, j.prompt, j.inline_chosen, j.arm) for j in jokes} == {
        (7, storage.INLINE_CHAT_ID, "Молоко", False, "A")
    }
    assert [j.candidate_rank for j in jokes] == [0, 1, 2]
    assert len({j.created_at for j in jokes}) == 1  # one offer, one time
    assert jokes[0].message_id is None and jokes[0].latency_ms == 12


async def test_a_pick_is_marked_only_where_it_belongs(db) -> None:
    _, sessions = db
    ids = await offer(sessions, 7, "Кот")
    async with sessions() as session:
        chat_joke = await storage.save_joke(
            session,
            user_id=7,
            chat_id=7,
            prompt="Кот",
            text="Кот.",
            method="gpt",
            model="m",
            params={},
            latency_ms=1,
        )
        mark = storage.mark_inline_chosen
        assert not await mark(session, ids[0], inline_message_id="m1", user_id=8)  # not Bob's
        assert not await mark(session, chat_joke, inline_message_id="m1")  # no inline offer
        assert not await mark(session, 10**9, inline_message_id="m1")  # no such joke
        assert await mark(session, ids[0], inline_message_id="m1", user_id=7)
        assert await mark(session, ids[0], inline_message_id="m1")  # again: harmless
        assert not await mark(session, ids[0], inline_message_id="m2")  # another message
        assert await mark(session, ids[1], inline_message_id=None, user_id=7)  # no keyboard
        rows = [await storage.get_joke(session, joke_id) for joke_id in [*ids, chat_joke]]
    assert [(j.inline_chosen, j.inline_message_id) for j in rows if j is not None] == [
        (True, "m1"),
        (True, None),
        (False, None),
        (None, None),
    ]


async def test_export_pairs_each_pick_with_its_offer(db, tmp_path: Path) -> None:
    url, sessions = db
    picked_from = await offer(sessions, 7, "Молоко")
    await offer(sessions, 7, "Кот")  # nothing picked: no rating, not exported
    bobs = await offer(sessions, 8, "Молоко")  # the same word, another user's offer
    async with sessions() as session:
        voted = await storage.save_joke(
            session,
            user_id=9,
            chat_id=9,
            prompt="Пёс",
            text="Пёс.",
            method="gpt",
            model="m",
            params={},
            latency_ms=1,
        )
        await storage.record_vote(session, joke_id=voted, user_id=9, value=1)
        await storage.mark_inline_chosen(session, picked_from[1], inline_message_id="m1")
        await storage.record_vote(session, joke_id=picked_from[1], user_id=10, value=-1)
        await storage.mark_inline_chosen(session, bobs[2], inline_message_id="m2")
    out = tmp_path / "ratings.jsonl"
    args = ["--out", str(out), "--database-url", url]
    assert await asyncio.to_thread(export.main, args) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    got = [
        (r["id"], r["inline_chosen"], r["inline_offer"], r["likes"], r["dislikes"]) for r in records
    ]
    assert got == [
        (picked_from[0], False, picked_from[0], 0, 0),
        (picked_from[1], True, picked_from[0], 0, 1),
        (picked_from[2], False, picked_from[0], 0, 0),
        (bobs[0], False, bobs[0], 0, 0),
        (bobs[1], False, bobs[0], 0, 0),
        (bobs[2], True, bobs[0], 0, 0),
        (voted, None, None, 1, 0),
    ]
    assert records[1]["params"] == {"seed": 1, "note": "ёж"} and "ёж" in out.read_text("utf-8")
