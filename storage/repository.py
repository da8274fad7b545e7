"""What the bot asks of the database, one async function per question or change.

Style: every function takes an `AsyncSession` (from `storage.make_sessionmaker`). Writes commit
before they return, so a vote is durable by the time the bot answers the button press; reads
leave no transaction open. Every write transaction starts with a write statement (usually the
user upsert): SQLite then waits out a locked database with its busy timeout instead of failing
(see `storage.db`). Driver errors come out as `StorageWriteError`/`StorageError`, never as a
silent success; the session is rolled back first.

SQLite or PostgreSQL: upserts use the session's dialect's INSERT .. ON CONFLICT, and what else
differs (retries while PostgreSQL restarts, SQLite's disk-full recovery) is in
`storage.dialects`.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Select, case, delete, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialects import insert, retrying
from storage.errors import JokeNotFound, StorageError, StorageWriteError
from storage.models import StoredJoke, User, Vote, utcnow
from storage.stats import MethodStats, RatedJoke, VoteTally, wilson_lower_bound

P = ParamSpec("P")
R = TypeVar("R")

LIKE, DISLIKE = 1, -1


def _guard(
    action: str, error: type[StorageError] = StorageWriteError
) -> Callable[
    [Callable[Concatenate[AsyncSession, P], Awaitable[R]]],
    Callable[Concatenate[AsyncSession, P], Awaitable[R]],
]:
    """Roll back and re-raise driver errors as a storage error that says what failed; a call
    that failed transiently (PostgreSQL restarting) runs again within the busy timeout first."""

    def decorate(
        fn: Callable[Concatenate[AsyncSession, P], Awaitable[R]],
    ) -> Callable[Concatenate[AsyncSession, P], Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(session: AsyncSession, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await retrying(session, lambda: fn(session, *args, **kwargs))
            except (DBAPIError, OSError) as exc:  # rolled back by `retrying`
                raise error(f"Could not {action}: {getattr(exc, 'orig', None) or exc}") from exc

        return wrapper

    return decorate


async def _upsert_user(
    session: AsyncSession,
    user_id: int,
    now: datetime,
    *,
    method: str | None = None,
    set_method: bool = False,
    username: str | None = None,
) -> User:
    """Create the user or bump last_seen; returns the row as stored after the change."""
    values: dict[str, Any] = {"id": user_id, "first_seen": now, "last_seen": now}
    changes: dict[str, Any] = {"last_seen": now}
    if set_method:
        values["method"] = changes["method"] = method
    if username is not None:
        values["username"] = changes["username"] = username
    stmt = (
        insert(session, User)
        .values(**values)
        .on_conflict_do_update(index_elements=[User.id], set_=changes)
        .returning(User)
    )
    result = await session.execute(stmt, execution_options={"populate_existing": True})
    return result.scalar_one()


@_guard("save the user")
async def touch_user(session: AsyncSession, user_id: int, *, username: str | None = None) -> User:
    """Record that the user is active: create on first sight, else update last_seen.

    `username` is stored only when given; pass it only if the operator opted in to names.
    """
    user = await _upsert_user(session, user_id, utcnow(), username=username)
    await session.commit()
    return user


@_guard("read the user's method", StorageError)
async def get_user_method(session: AsyncSession, user_id: int) -> str | None:
    """The generation method the user chose, or None (unknown user or never chose)."""
    return await session.scalar(select(User.method).where(User.id == user_id))


@_guard("save the user's method")
async def set_user_method(session: AsyncSession, user_id: int, method: str | None) -> None:
    """Remember the user's method (None forgets it); creates the user if needed."""
    await _upsert_user(session, user_id, utcnow(), method=method, set_method=True)
    await session.commit()


@_guard("save the joke")
async def save_joke(
    session: AsyncSession,
    *,
    user_id: int,
    chat_id: int,
    prompt: str,
    text: str,
    method: str,
    model: str,
    params: Mapping[str, Any],
    latency_ms: float,
    candidate_rank: int | None = None,
    candidates: int | None = None,
    judge_score: float | None = None,
    judge_version: str | None = None,
    arm: str | None = None,
) -> int:
    """Store a generated joke before it is sent (message_id comes later); returns its id."""
    now = utcnow()
    await _upsert_user(session, user_id, now)
    joke = StoredJoke(
        user_id=user_id,
        chat_id=chat_id,
        prompt=prompt,
        text=text,
        method=method,
        model=model,
        params=dict(params),
        latency_ms=round(latency_ms),
        created_at=now,
        candidate_rank=candidate_rank,
        candidates=candidates,
        judge_score=judge_score,
        judge_version=judge_version,
        arm=arm,
    )
    session.add(joke)
    await session.flush()
    joke_id = joke.id
    await session.commit()
    return joke_id


@_guard("attach the message to the joke")
async def attach_message(
    session: AsyncSession, joke_id: int, chat_id: int, message_id: int
) -> None:
    """Remember which Telegram message shows the joke. Raises JokeNotFound for an unknown id."""
    result = await session.execute(
        update(StoredJoke)
        .where(StoredJoke.id == joke_id)
        .values(chat_id=chat_id, message_id=message_id),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount == 0:
        await session.rollback()
        raise JokeNotFound(joke_id)
    await session.commit()


@_guard("delete the joke")
async def delete_joke(session: AsyncSession, joke_id: int) -> bool:
    """Forget a joke and its votes (e.g. its message could not be sent); False if unknown."""
    result = await session.execute(
        delete(StoredJoke).where(StoredJoke.id == joke_id),
        execution_options={"synchronize_session": False},
    )
    await session.commit()
    return bool(result.rowcount)


@_guard("read the joke", StorageError)
async def get_joke(session: AsyncSession, joke_id: int) -> StoredJoke | None:
    return await session.get(StoredJoke, joke_id)


def _likes() -> Any:
    return func.coalesce(func.sum(case((Vote.value == LIKE, 1), else_=0)), 0)


def _dislikes() -> Any:
    return func.coalesce(func.sum(case((Vote.value == DISLIKE, 1), else_=0)), 0)


async def _tally(session: AsyncSession, joke_id: int, user_id: int | None) -> VoteTally:
    user_vote = (
        func.max(case((Vote.user_id == user_id, Vote.value))) if user_id is not None else None
    )
    columns = [_likes(), _dislikes()] + ([user_vote] if user_vote is not None else [])
    row = (await session.execute(select(*columns).where(Vote.joke_id == joke_id))).one()
    return VoteTally(
        likes=int(row[0]),
        dislikes=int(row[1]),
        user_vote=int(row[2]) if user_id is not None and row[2] is not None else None,
    )


@_guard("record the vote")
async def record_vote(
    session: AsyncSession, *, joke_id: int, user_id: int, value: int
) -> VoteTally:
    """Press of 👍 (+1) or 👎 (-1), committed before returning.

    Toggle semantics, one vote per user and joke: no vote → set it; the same value again →
    remove it; the other value → switch. The whole press is one write transaction, so
    concurrent presses apply one after another and leave at most one row.
    """
    if value not in (LIKE, DISLIKE):
        raise ValueError(f"vote value must be +1 or -1, got {value!r}")
    now = utcnow()
    await _upsert_user(session, user_id, now)  # a write first: takes the lock, busy timeout applies
    if await session.scalar(select(StoredJoke.id).where(StoredJoke.id == joke_id)) is None:
        await session.rollback()
        raise JokeNotFound(joke_id)
    removed = await session.execute(
        delete(Vote).where(Vote.joke_id == joke_id, Vote.user_id == user_id, Vote.value == value),
        execution_options={"synchronize_session": False},
    )
    if removed.rowcount == 0:
        stmt = insert(session, Vote).values(
            joke_id=joke_id, user_id=user_id, value=value, created_at=now, updated_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[Vote.joke_id, Vote.user_id],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        await session.execute(stmt)
    tally = await _tally(session, joke_id, user_id)
    await session.commit()
    return tally


@_guard("count the votes", StorageError)
async def vote_counts(
    session: AsyncSession, joke_id: int, *, user_id: int | None = None
) -> VoteTally:
    """Likes and dislikes of a joke; with `user_id`, also that user's current vote."""
    return await _tally(session, joke_id, user_id)


def _rated_jokes_query() -> Select[Any]:
    counts = (
        select(Vote.joke_id, _likes().label("likes"), _dislikes().label("dislikes"))
        .group_by(Vote.joke_id)
        .subquery()
    )
    return (
        select(StoredJoke, counts.c.likes, counts.c.dislikes)
        .join(counts, counts.c.joke_id == StoredJoke.id)
        .order_by(StoredJoke.id)
    )


def _rated(joke: StoredJoke, likes: int, dislikes: int) -> RatedJoke:
    return RatedJoke(
        id=joke.id,
        prompt=joke.prompt,
        text=joke.text,
        method=joke.method,
        model=joke.model,
        params=joke.params,
        likes=int(likes),
        dislikes=int(dislikes),
        created_at=joke.created_at,
        candidate_rank=joke.candidate_rank,
        candidates=joke.candidates,
        judge_score=joke.judge_score,
        judge_version=joke.judge_version,
    )


@_guard("rank the jokes", StorageError)
async def top_jokes(
    session: AsyncSession, limit: int = 10, *, method: str | None = None
) -> list[RatedJoke]:
    """The best jokes by the Wilson lower bound (z=1.96) of likes among votes; only jokes more
    people liked than disliked (a "best of" list with a 👎-only joke in it reads as a bug), and
    only `method`'s when given.

    Ties go to more votes, then the older joke. Ranking happens in Python over the per-joke vote
    counts only (two integers a joke), then only the winners' texts are loaded.
    """
    if limit <= 0:
        return []
    query = select(Vote.joke_id, _likes(), _dislikes()).group_by(Vote.joke_id)
    if method is not None:
        query = query.join(StoredJoke, StoredJoke.id == Vote.joke_id).where(
            StoredJoke.method == method
        )
    counts = [row for row in (await session.execute(query)).all() if row[1] > row[2]]
    ranked = sorted(
        counts,
        key=lambda row: (-wilson_lower_bound(row[1], row[1] + row[2]), -(row[1] + row[2]), row[0]),
    )[:limit]
    order = {row[0]: place for place, row in enumerate(ranked)}
    rows = (await session.execute(_rated_jokes_query().where(StoredJoke.id.in_(order)))).all()
    return sorted((_rated(*row) for row in rows), key=lambda joke: order[joke.id])


async def iter_rated_jokes(session: AsyncSession) -> AsyncIterator[RatedJoke]:
    """Every joke with at least one vote, oldest first, streamed (for the export)."""
    try:
        result = await session.stream(_rated_jokes_query())
        async for joke, likes, dislikes in result:
            yield _rated(joke, likes, dislikes)
    except DBAPIError as exc:
        raise StorageError(f"Could not read the rated jokes: {exc.orig}") from exc


@_guard("compute the method statistics", StorageError)
async def method_stats(session: AsyncSession) -> list[MethodStats]:
    """Per method: jokes generated, likes and dislikes they got (like_ratio on the result)."""
    stmt = (
        select(
            StoredJoke.method,
            func.count(func.distinct(StoredJoke.id)),
            _likes(),
            _dislikes(),
        )
        .outerjoin(Vote, Vote.joke_id == StoredJoke.id)
        .group_by(StoredJoke.method)
        .order_by(StoredJoke.method)
    )
    rows = (await session.execute(stmt)).all()
    return [
        MethodStats(method=m, jokes=int(j), likes=int(lk), dislikes=int(d)) for m, j, lk, d in rows
    ]
