"""Rated jokes put straight into a migrated database, for the statistics and chart tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import storage
from storage.models import User, Vote

Sessions = async_sessionmaker[AsyncSession]


@contextlib.asynccontextmanager
async def database(path: Path) -> AsyncIterator[tuple[str, Sessions]]:
    """A migrated SQLite file: (url, sessionmaker)."""
    url = f"sqlite+aiosqlite:///{path}"
    await storage.migrate(url)
    engine = storage.create_engine(url)
    try:
        yield url, storage.make_sessionmaker(engine)
    finally:
        await engine.dispose()


_next_voter = [10_000]


async def rated_joke(
    sessions: Sessions,
    *,
    method: str = "gpt",
    model: str = "gpt@aaaaaa",
    arm: str | None = None,
    likes: int = 0,
    dislikes: int = 0,
    day: str = "2026-01-01",
) -> int:
    """A joke with `likes` 👍 and `dislikes` 👎 from distinct users, cast at noon on `day`."""
    async with sessions() as session:
        joke_id = await storage.save_joke(
            session,
            user_id=1,
            chat_id=1,
            prompt="Кот",
            text="Кот пришёл.",
            method=method,
            model=model,
            params={},
            latency_ms=1.0,
            arm=arm,
        )
        when = datetime.fromisoformat(f"{day}T12:00:00").replace(tzinfo=UTC)
        values = [1] * likes + [-1] * dislikes
        if values:
            first = _next_voter[0]
            _next_voter[0] += len(values)
            users = [
                {"id": first + i, "first_seen": when, "last_seen": when} for i in range(len(values))
            ]
            votes = [
                {
                    "joke_id": joke_id,
                    "user_id": first + i,
                    "value": value,
                    "created_at": when,
                    "updated_at": when,
                }
                for i, value in enumerate(values)
            ]
            await session.execute(insert(User), users)
            await session.execute(insert(Vote), votes)
            await session.commit()
    return joke_id
