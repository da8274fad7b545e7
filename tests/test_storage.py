"""Repository behaviour against a real, migrated database: a SQLite file and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

import storage
from storage import dialects, export
from storage.models import User, Vote, utcnow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def db(database_url: str):
    url = database_url  # each test runs on SQLite and on PostgreSQL (tests/servers.py)
    await storage.migrate(url)
    engine = storage.create_engine(url)
    yield url, storage.make_sessionmaker(engine)
    await engine.dispose()


async def new_joke(sessions, *, user_id=1, method="gpt", text="Шутка", prompt="Молоко") -> int:
    async with sessions() as session:
        return await storage.save_joke(
            session,
            user_id=user_id,
            chat_id=100 + user_id,
            prompt=prompt,
            text=text,
            method=method,
            model=f"models/{method}",
            params={"temperature": 0.8, "note": "ёж"},
            latency_ms=12.6,
        )


async def add_votes(sessions, joke_id: int, likes: int, dislikes: int, first_user: int = 1000):
    """Bulk-insert votes from distinct users (fast setup for ranking tests)."""
    now = utcnow()
    values = [1] * likes + [-1] * dislikes
    users = [
        {"id": first_user + i, "first_seen": now, "last_seen": now} for i in range(len(values))
    ]
    votes = [
        {
            "joke_id": joke_id,
            "user_id": first_user + i,
            "value": v,
            "created_at": now,
            "updated_at": now,
        }
        for i, v in enumerate(values)
    ]
    async with sessions() as session:
        if users:
            users_once = dialects.insert(session, User).on_conflict_do_nothing()
            await session.execute(users_once, users)
            await session.execute(insert(Vote), votes)
        await session.commit()


async def test_touch_user_creates_then_updates_last_seen(db):
    _, sessions = db
    async with sessions() as session:
        first = await storage.touch_user(session, 7_000_000_001)
        first_seen, last_seen = first.first_seen, first.last_seen
        await asyncio.sleep(0.01)
        again = await storage.touch_user(session, 7_000_000_001)  # same object, refreshed
    assert again.id == 7_000_000_001  # Telegram ids exceed 32 bits
    assert again.first_seen == first_seen
    assert again.last_seen > last_seen
    assert again.last_seen.tzinfo is UTC
    assert again.username is None and again.method is None  # no names unless asked


async def test_user_method_persists_across_engines(db):
    url, sessions = db
    async with sessions() as session:
        assert await storage.get_user_method(session, 5) is None  # unknown user
        await storage.set_user_method(session, 5, "diffuseq")
        await storage.set_user_method(session, 5, "gpt")
    engine = storage.create_engine(url)
    try:
        async with storage.make_sessionmaker(engine)() as session:
            assert await storage.get_user_method(session, 5) == "gpt"
            await storage.set_user_method(session, 5, None)
            assert await storage.get_user_method(session, 5) is None
    finally:
        await engine.dispose()


async def test_save_attach_get_and_delete_joke(db):
    _, sessions = db
    joke_id = await new_joke(sessions, user_id=3)
    async with sessions() as session:
        joke = await storage.get_joke(session, joke_id)
        assert joke is not None and joke.message_id is None
        assert (joke.user_id, joke.chat_id, joke.latency_ms) == (3, 103, 13)
        assert joke.params == {"temperature": 0.8, "note": "ёж"}
        assert joke.created_at.tzinfo is UTC
    async with sessions() as session:
        await storage.attach_message(session, joke_id, 103, 555)
        assert (await storage.get_joke(session, joke_id)).message_id == 555
        with pytest.raises(storage.JokeNotFound):
            await storage.attach_message(session, 999, 103, 1)
        await storage.record_vote(session, joke_id=joke_id, user_id=4, value=1)
        assert await storage.delete_joke(session, joke_id)
        assert not await storage.delete_joke(session, joke_id)
        assert await storage.get_joke(session, joke_id) is None
        assert await session.scalar(select(func.count()).select_from(Vote)) == 0  # cascaded


async def test_vote_set_switch_and_remove(db):
    _, sessions = db
    joke_id = await new_joke(sessions)
    async with sessions() as session:
        # The voter never talked to the bot (e.g. a group member): created on the fly.
        assert await storage.record_vote(session, joke_id=joke_id, user_id=9, value=1) == (
            storage.VoteTally(likes=1, dislikes=0, user_vote=1)
        )
        assert await storage.record_vote(session, joke_id=joke_id, user_id=8, value=1) == (
            storage.VoteTally(2, 0, 1)
        )
        assert await storage.record_vote(session, joke_id=joke_id, user_id=9, value=-1) == (
            storage.VoteTally(1, 1, -1)
        )
        assert await storage.record_vote(session, joke_id=joke_id, user_id=9, value=-1) == (
            storage.VoteTally(1, 0, None)
        )
        assert await storage.vote_counts(session, joke_id) == storage.VoteTally(1, 0, None)
        assert await storage.vote_counts(session, joke_id, user_id=8) == storage.VoteTally(1, 0, 1)
        with pytest.raises(ValueError):
            await storage.record_vote(session, joke_id=joke_id, user_id=9, value=2)
        with pytest.raises(storage.JokeNotFound):
            await storage.record_vote(session, joke_id=12345, user_id=9, value=1)


async def test_vote_is_committed_before_return(db):
    url, sessions = db
    joke_id = await new_joke(sessions)
    async with sessions() as session:
        await storage.record_vote(session, joke_id=joke_id, user_id=2, value=-1)
        # Another engine (another connection) sees it while this session is still open.
        other = storage.create_engine(url)
        try:
            async with storage.make_sessionmaker(other)() as fresh:
                assert await storage.vote_counts(fresh, joke_id) == storage.VoteTally(0, 1)
        finally:
            await other.dispose()


async def press_concurrently(sessions, joke_id: int, values: list[int]) -> list[storage.VoteTally]:
    async def press(value: int) -> storage.VoteTally:
        async with sessions() as session:  # each press its own session and connection
            return await storage.record_vote(session, joke_id=joke_id, user_id=77, value=value)

    return await asyncio.gather(*(press(v) for v in values))


async def vote_rows(sessions, joke_id: int) -> list[int]:
    async with sessions() as session:
        return list(await session.scalars(select(Vote.value).where(Vote.joke_id == joke_id)))


async def test_concurrent_presses_by_one_user_apply_one_after_another(db):
    _, sessions = db
    joke_id = await new_joke(sessions)
    tallies = await press_concurrently(sessions, joke_id, [1] * 51)
    # Serial toggles alternate set/remove: 26 sets, 25 removals, ending with one like.
    assert sum(t.user_vote == 1 for t in tallies) == 26
    assert sum(t.user_vote is None for t in tallies) == 25
    assert all(t.likes + t.dislikes <= 1 and t.dislikes == 0 for t in tallies)
    assert await vote_rows(sessions, joke_id) == [1]

    mixed = [1, -1, -1, 1, 1] * 6
    tallies = await press_concurrently(sessions, joke_id, mixed)
    rows = await vote_rows(sessions, joke_id)
    assert len(rows) <= 1
    async with sessions() as session:
        final = await storage.vote_counts(session, joke_id, user_id=77)
    assert final == storage.VoteTally(rows.count(1), rows.count(-1), rows[0] if rows else None)
    assert all(t.likes + t.dislikes <= 1 for t in tallies)


def test_wilson_lower_bound_values():
    assert storage.wilson_lower_bound(90, 100) == pytest.approx(0.8256, abs=1e-4)
    assert storage.wilson_lower_bound(1, 1) == pytest.approx(0.2065, abs=1e-4)
    assert storage.wilson_lower_bound(0, 0) == 0.0


async def test_top_jokes_rank_by_wilson_lower_bound(db):
    _, sessions = db
    lucky = await new_joke(sessions, text="1 из 1")
    solid = await new_joke(sessions, text="90 из 100")
    bad = await new_joke(sessions, text="0 из 5")
    await new_joke(sessions, text="без голосов")
    await add_votes(sessions, lucky, 1, 0, first_user=1000)
    await add_votes(sessions, solid, 90, 10, first_user=2000)
    await add_votes(sessions, bad, 0, 5, first_user=3000)
    async with sessions() as session:
        top = await storage.top_jokes(session)
        # unvoted and more disliked than liked are left out: a "best" list shows no 👎-only joke
        assert [j.text for j in top] == ["90 из 100", "1 из 1"]
        assert (top[0].likes, top[0].dislikes, top[0].votes) == (90, 10, 100)
        assert top[0].wilson > top[1].wilson
        assert [j.id for j in await storage.top_jokes(session, limit=1)] == [solid]
        assert await storage.top_jokes(session, limit=0) == []


async def test_top_jokes_of_one_method(db):
    _, sessions = db
    mine = await new_joke(sessions, text="свой", method="diffuseq")
    other = await new_joke(sessions, text="чужой", method="gpt")
    even = await new_joke(sessions, text="поровну", method="diffuseq")
    await add_votes(sessions, mine, 2, 1, first_user=1000)
    await add_votes(sessions, other, 5, 0, first_user=2000)
    await add_votes(sessions, even, 1, 1, first_user=3000)
    async with sessions() as session:
        assert [j.text for j in await storage.top_jokes(session, method="diffuseq")] == ["свой"]
        assert await storage.top_jokes(session, method="nope") == []


def test_wilson_interval_brackets_the_share() -> None:
    low, high = storage.wilson_interval(1, 1)
    assert low == pytest.approx(0.2065, abs=1e-4) and high == 1.0
    low, high = storage.wilson_interval(90, 100)
    assert low < 0.9 < high and high - low < 0.13
    assert storage.wilson_interval(0, 0) == (0.0, 1.0)


async def test_method_stats(db):
    _, sessions = db
    a = await new_joke(sessions, method="gpt")
    await new_joke(sessions, method="gpt")
    await new_joke(sessions, method="diffuseq")
    await add_votes(sessions, a, 2, 1)
    async with sessions() as session:
        stats = await storage.method_stats(session)
    assert stats == [
        storage.MethodStats(method="diffuseq", jokes=1, likes=0, dislikes=0),
        storage.MethodStats(method="gpt", jokes=2, likes=2, dislikes=1),
    ]
    assert stats[0].like_ratio is None
    assert stats[1].like_ratio == pytest.approx(2 / 3)


async def test_export_writes_rated_jokes_only(db, tmp_path: Path):
    url, sessions = db
    rated = await new_joke(sessions, text="Колобок повесился")
    await new_joke(sessions, text="никто не голосовал")
    await add_votes(sessions, rated, 3, 1)
    out = tmp_path / "out" / "ratings.jsonl"
    assert await asyncio.to_thread(export.main, ["--out", str(out), "--database-url", url]) == 0
    raw = out.read_text(encoding="utf-8")
    assert "Колобок" in raw  # ensure_ascii=False
    records = [json.loads(line) for line in raw.splitlines()]
    assert len(records) == 1
    record = records[0]
    assert set(record) == {
        "id",
        "prompt",
        "text",
        "method",
        "model",
        "params",
        "likes",
        "dislikes",
        "created_at",
        "candidate_rank",
        "candidates",
        "judge_score",
        "judge_version",
        "inline_chosen",
        "inline_offer",
    }
    assert (record["inline_chosen"], record["inline_offer"]) == (None, None)  # not inline
    assert (record["id"], record["likes"], record["dislikes"]) == (rated, 3, 1)
    assert record["params"] == {"temperature": 0.8, "note": "ёж"}
    assert record["created_at"].endswith("+00:00")


def test_export_cli_reads_settings_and_hides_secrets(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    storage.upgrade_to_head(url)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": url,
        "BOT_TOKEN": "123:SECRET-TOKEN",
    }
    out = tmp_path / "ratings.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "storage.export", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text() == ""
    assert "SECRET" not in done.stdout + done.stderr

    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "storage.export",
            "--out",
            str(out),
            "--database-url",
            f"sqlite+aiosqlite:///{tmp_path / 'nope.db'}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1
    assert "nope.db" in missing.stderr
    assert not (tmp_path / "nope.db").exists()  # export never creates a database
