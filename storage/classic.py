"""Which jokes of the collection a user has been shown (the `classic` method, generation/classic).

Why here and not in the generation layer: generation never reads the database. The bot asks this
before a classic lookup and passes the answer on in the request, so a user does not get the same
real joke twice while others match their word.

A classic joke's row keeps the collection's id of the joke in `params["source_id"]`.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import StorageError
from storage.models import StoredJoke
from storage.repository import _guard

CLASSIC = "classic"
SOURCE_KEY = "source_id"


@_guard("read the classic jokes shown", StorageError)
async def shown_classic_ids(
    session: AsyncSession, user_id: int, *, method: str = CLASSIC
) -> list[str]:
    """The source ids of the `method` jokes sent to `user_id`, least recently shown first
    (each once, at its latest showing)."""
    source = StoredJoke.params[SOURCE_KEY].as_string()
    latest = func.max(StoredJoke.id)
    rows = await session.execute(
        select(source)
        .where(StoredJoke.user_id == user_id, StoredJoke.method == method, source.is_not(None))
        .group_by(source)
        .order_by(latest)
    )
    return [str(value) for value in rows.scalars()]


__all__ = ["shown_classic_ids"]
