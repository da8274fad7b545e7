"""Favourites and sharing: the jokes a user liked, and one joke by its id for a shared link.

A like is a 👍 vote (there is no separate ❤️): what a user liked is every joke they voted +1,
whoever it was written for, groups included. "Newest like first" orders by the vote's
`updated_at`, so switching 👎 to 👍 counts as liking it now.

Reads only: nothing here writes, so paging or opening a link never changes stored data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import StorageError
from storage.models import StoredJoke, Vote
from storage.repository import DISLIKE, LIKE, _guard

SQLITE_MAX_INT = 2**63


@dataclass(frozen=True, slots=True)
class JokeCard:
    """What showing a joke outside its own message needs: its text, method and vote counts.

    `liked_at`: when the asking user liked it (set by `liked_jokes` only).
    """

    id: int
    prompt: str
    text: str
    method: str
    likes: int
    dislikes: int
    liked_at: datetime | None = None


async def _tallies(session: AsyncSession, joke_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Likes and dislikes of just these jokes (the page shown, not every joke)."""
    if not joke_ids:
        return {}
    stmt = (
        select(
            Vote.joke_id,
            func.sum(case((Vote.value == LIKE, 1), else_=0)),
            func.sum(case((Vote.value == DISLIKE, 1), else_=0)),
        )
        .where(Vote.joke_id.in_(joke_ids))
        .group_by(Vote.joke_id)
    )
    return {jid: (int(lk), int(dk)) for jid, lk, dk in (await session.execute(stmt)).all()}


def _liked_by(user_id: int) -> tuple[object, ...]:
    return (Vote.user_id == user_id, Vote.value == LIKE)


@_guard("count the liked jokes", StorageError)
async def count_liked(session: AsyncSession, user_id: int) -> int:
    """How many jokes the user currently likes."""
    total = await session.scalar(select(func.count()).select_from(Vote).where(*_liked_by(user_id)))
    return int(total or 0)


@_guard("read the liked jokes", StorageError)
async def liked_jokes(
    session: AsyncSession, user_id: int, offset: int = 0, limit: int = 5
) -> list[JokeCard]:
    """One page of the user's liked jokes, newest like first (ties: the later vote first)."""
    if limit <= 0 or offset < 0:
        return []
    stmt = (
        select(
            StoredJoke.id, StoredJoke.prompt, StoredJoke.text, StoredJoke.method, Vote.updated_at
        )
        .join(Vote, Vote.joke_id == StoredJoke.id)
        .where(*_liked_by(user_id))
        .order_by(Vote.updated_at.desc(), Vote.id.desc())
        .offset(offset)
        .limit(limit)
    )
    rows = (await session.execute(stmt)).all()
    tallies = await _tallies(session, [row[0] for row in rows])
    return [
        JokeCard(jid, prompt, text, method, *tallies.get(jid, (0, 0)), liked_at=liked_at)
        for jid, prompt, text, method, liked_at in rows
    ]


@_guard("read the joke", StorageError)
async def joke_by_id(session: AsyncSession, joke_id: int) -> JokeCard | None:
    """The joke with its current counts, or None when there is no such joke (any more)."""
    if not 0 < joke_id < SQLITE_MAX_INT:  # the driver would raise on an id SQLite cannot hold
        return None
    row = (
        await session.execute(
            select(StoredJoke.id, StoredJoke.prompt, StoredJoke.text, StoredJoke.method).where(
                StoredJoke.id == joke_id
            )
        )
    ).one_or_none()
    if row is None:
        return None
    likes, dislikes = (await _tallies(session, [joke_id])).get(joke_id, (0, 0))
    return JokeCard(row[0], row[1], row[2], row[3], likes, dislikes)
