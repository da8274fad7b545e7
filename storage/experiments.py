"""How each model version is liked, and which arm of an A/B experiment leads.

Why per version, not only per method: a method keeps its name while its model is retrained, and
a like ratio over both models says nothing about either. The verdict on an experiment is
deliberately modest: an arm "leads" on its like ratio, and the lead means something only once the
two 95% Wilson intervals no longer overlap (a conservative test: overlapping intervals can still
hide a real difference, separate ones rarely lie).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import StorageError
from storage.models import StoredJoke, Vote
from storage.repository import _dislikes, _guard, _likes
from storage.stats import wilson_interval


@dataclass(frozen=True, slots=True)
class VersionStats:
    """Jokes and votes of one (method, model version), or of one experiment arm (`arm`)."""

    method: str
    model: str
    jokes: int
    likes: int
    dislikes: int
    arm: str | None = None

    @property
    def votes(self) -> int:
        return self.likes + self.dislikes

    @property
    def like_ratio(self) -> float | None:
        return self.likes / self.votes if self.votes else None

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% Wilson interval of the like ratio ((0, 1) without votes)."""
        return wilson_interval(self.likes, self.votes)


@dataclass(frozen=True, slots=True)
class ArmVerdict:
    """leader: the arm with the higher like ratio (None: a tie, or an arm without votes yet);
    overlap: whether the two intervals still overlap (the lead may be chance)."""

    leader: str | None
    overlap: bool
    compared: bool  # both arms have votes


def intervals_overlap(first: tuple[float, float], second: tuple[float, float]) -> bool:
    """Whether two closed intervals share a point."""
    return first[0] <= second[1] and second[0] <= first[1]


def compare_arms(a: VersionStats, b: VersionStats) -> ArmVerdict:
    if a.like_ratio is None or b.like_ratio is None:
        return ArmVerdict(leader=None, overlap=True, compared=False)
    overlap = intervals_overlap(a.interval, b.interval)
    if a.like_ratio == b.like_ratio:
        return ArmVerdict(leader=None, overlap=overlap, compared=True)
    leader = a if a.like_ratio > b.like_ratio else b
    return ArmVerdict(leader=leader.arm, overlap=overlap, compared=True)


def _tallies() -> tuple[Any, Any, Any]:
    return func.count(func.distinct(StoredJoke.id)), _likes(), _dislikes()


@_guard("read the statistics per version", StorageError)
async def version_stats(session: AsyncSession) -> list[VersionStats]:
    """Per method and model version: jokes and votes; each method's versions oldest first."""
    stmt = (
        select(StoredJoke.method, StoredJoke.model, *_tallies())
        .outerjoin(Vote, Vote.joke_id == StoredJoke.id)
        .group_by(StoredJoke.method, StoredJoke.model)
        .order_by(StoredJoke.method, func.min(StoredJoke.id))
    )
    rows = (await session.execute(stmt)).all()
    return [VersionStats(m, v, int(j), int(lk), int(d)) for m, v, j, lk, d in rows]


@_guard("read the statistics per arm", StorageError)
async def arm_stats(
    session: AsyncSession, method: str, versions: Mapping[str, str | None]
) -> dict[str, VersionStats]:
    """Per arm of an experiment on `method`: its jokes and votes. `versions`: {arm: the model
    version serving it now, or None for any}, so that an earlier experiment's rows with the
    same arm letters but other versions are left out. Every arm asked for gets an entry."""
    found: dict[str, VersionStats] = {}
    for arm, version in versions.items():
        stmt = (
            select(*_tallies())
            .outerjoin(Vote, Vote.joke_id == StoredJoke.id)
            .where(StoredJoke.method == method, StoredJoke.arm == arm)
        )
        if version is not None:
            stmt = stmt.where(StoredJoke.model == version)
        jokes, likes, dislikes = (await session.execute(stmt)).one()
        found[arm] = VersionStats(
            method, version or "", int(jokes), int(likes), int(dislikes), arm=arm
        )
    return found


__all__ = [
    "ArmVerdict",
    "VersionStats",
    "arm_stats",
    "compare_arms",
    "intervals_overlap",
    "version_stats",
]
