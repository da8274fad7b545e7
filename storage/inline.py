"""Inline mode's jokes: offered together as the answer to one inline query, one of them maybe
picked and posted into some chat.

Why they are stored when offered, before anyone picks: the result ids and the 👍/👎 buttons of
the posted message must carry a joke id, and Telegram gives the bot no second chance to change
them. Every joke of an offer is saved with `inline_chosen=False`, in one transaction, with one
`created_at`: an offer is the rows of one user with the same prompt and creation time, which is
how the export pairs the pick with what it was picked over. A pick sets `inline_chosen=True` and
remembers the posted message (`inline_message_id`); an inline message has no chat, so these rows
have `chat_id` 0 (`INLINE_CHAT_ID`), which no chat's button can match.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Select, case, func, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import StorageError
from storage.models import StoredJoke, Vote, utcnow
from storage.repository import _dislikes, _guard, _likes, _rated, _upsert_user
from storage.stats import RatedJoke

#: `chat_id` of jokes offered in inline mode: no chat has id 0
INLINE_CHAT_ID = 0


@dataclass(frozen=True, slots=True)
class OfferedJoke:
    """One joke of an inline answer, with what produced it (as `save_joke` takes it)."""

    text: str
    method: str
    model: str
    params: Mapping[str, Any] = field(default_factory=dict)
    latency_ms: float = 0.0
    candidate_rank: int | None = None
    candidates: int | None = None
    judge_score: float | None = None
    judge_version: str | None = None
    arm: str | None = None  # the experiment arm that wrote it


@_guard("save the offered jokes")
async def save_offer(
    session: AsyncSession, *, user_id: int, prompt: str, jokes: Sequence[OfferedJoke]
) -> list[int]:
    """Store the jokes of one inline answer, not chosen yet; returns their ids in order."""
    now = utcnow()
    await _upsert_user(session, user_id, now)
    rows = [
        StoredJoke(
            user_id=user_id,
            chat_id=INLINE_CHAT_ID,
            prompt=prompt,
            text=joke.text,
            method=joke.method,
            model=joke.model,
            params=dict(joke.params),
            latency_ms=round(joke.latency_ms),
            created_at=now,
            candidate_rank=joke.candidate_rank,
            candidates=joke.candidates,
            judge_score=joke.judge_score,
            judge_version=joke.judge_version,
            arm=joke.arm,
            inline_chosen=False,
        )
        for joke in jokes
    ]
    session.add_all(rows)
    await session.flush()
    ids = [row.id for row in rows]
    await session.commit()
    return ids


@_guard("mark the chosen joke")
async def mark_inline_chosen(
    session: AsyncSession,
    joke_id: int,
    *,
    inline_message_id: str | None,
    user_id: int | None = None,
) -> bool:
    """Record that joke `joke_id` was picked and posted as `inline_message_id`.

    False, changing nothing, when the joke was not offered inline (or not to `user_id`, when
    given), or when it already shows in another inline message (a second pick of a result
    Telegram had cached: the first message keeps the joke). Marking twice with the same message
    is harmless, so the pick's report and a first vote may come in either order.
    """
    conditions = [StoredJoke.id == joke_id, StoredJoke.inline_chosen.is_not(None)]
    if user_id is not None:
        conditions.append(StoredJoke.user_id == user_id)
    values: dict[str, Any] = {"inline_chosen": True}
    if inline_message_id is not None:
        conditions.append(
            or_(
                StoredJoke.inline_message_id.is_(None),
                StoredJoke.inline_message_id == inline_message_id,
            )
        )
        values["inline_message_id"] = inline_message_id
    result = await session.execute(
        update(StoredJoke).where(*conditions).values(**values),
        execution_options={"synchronize_session": False},
    )
    await session.commit()
    return bool(result.rowcount)


def _exported_jokes_query() -> Select[Any]:
    """Every joke with a vote, and every joke of an inline offer someone picked from."""
    counts = (
        select(Vote.joke_id, _likes().label("likes"), _dislikes().label("dislikes"))
        .group_by(Vote.joke_id)
        .subquery()
    )
    offer = (StoredJoke.user_id, StoredJoke.prompt, StoredJoke.created_at)
    offers = (
        select(
            StoredJoke.id.label("joke_id"),
            func.min(StoredJoke.id).over(partition_by=offer).label("offer"),
            func.max(case((StoredJoke.inline_chosen.is_(True), 1), else_=0))
            .over(partition_by=offer)
            .label("picked"),
        )
        .where(StoredJoke.inline_chosen.is_not(None))
        .subquery()
    )
    return (
        select(
            StoredJoke,
            func.coalesce(counts.c.likes, 0),
            func.coalesce(counts.c.dislikes, 0),
            offers.c.offer,
        )
        .outerjoin(counts, counts.c.joke_id == StoredJoke.id)
        .outerjoin(offers, offers.c.joke_id == StoredJoke.id)
        .where(or_(counts.c.joke_id.is_not(None), offers.c.picked == 1))
        .order_by(StoredJoke.id)
    )


async def iter_exported_jokes(session: AsyncSession) -> AsyncIterator[RatedJoke]:
    """What the export writes, oldest first, streamed: every rated joke (a vote, or a pick in
    inline mode), with `inline_chosen` and `inline_offer` (the first id of its offer) set for the
    jokes of inline offers, so each pick can be paired with the jokes it was picked over."""
    try:
        result = await session.stream(_exported_jokes_query())
        async for joke, likes, dislikes, offer in result:
            yield replace(
                _rated(joke, likes, dislikes),
                inline_chosen=joke.inline_chosen,
                inline_offer=offer,
            )
    except DBAPIError as exc:
        raise StorageError(f"Could not read the rated jokes: {exc.orig}") from exc


__all__ = [
    "INLINE_CHAT_ID",
    "OfferedJoke",
    "iter_exported_jokes",
    "mark_inline_chosen",
    "save_offer",
]
