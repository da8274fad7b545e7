"""Plain result types of the repository and the rating formula, kept free of sessions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

WILSON_Z = 1.96  # 95 % confidence


def wilson_interval(likes: int, votes: int, z: float = WILSON_Z) -> tuple[float, float]:
    """The Wilson score interval for the share of likes: honest for few votes, where the plain
    share (1 of 1 = 100%) claims far too much. Zero votes give (0.0, 1.0): nothing is known."""
    if votes <= 0:
        return 0.0, 1.0
    p = likes / votes
    z2 = z * z
    centre = p + z2 / (2 * votes)
    margin = z * math.sqrt((p * (1 - p) + z2 / (4 * votes)) / votes)
    scale = 1 + z2 / votes
    return max(0.0, (centre - margin) / scale), min(1.0, (centre + margin) / scale)


def wilson_lower_bound(likes: int, votes: int, z: float = WILSON_Z) -> float:
    """Lower bound of the Wilson score interval for the share of likes.

    Ranks by "how sure are we the joke is liked", so 1 like of 1 ranks below 90 of 100.
    Zero votes give 0.0.
    """
    return wilson_interval(likes, votes, z)[0] if votes > 0 else 0.0


@dataclass(frozen=True, slots=True)
class VoteTally:
    """Votes of one joke, and the asking user's current vote (+1, -1 or None)."""

    likes: int
    dislikes: int
    user_vote: int | None = None


@dataclass(frozen=True, slots=True)
class RatedJoke:
    """A joke with at least one vote, as `top_jokes` and the export return it."""

    id: int
    prompt: str
    text: str
    method: str
    model: str
    params: dict[str, Any]
    likes: int
    dislikes: int
    created_at: datetime
    candidate_rank: int | None = None
    candidates: int | None = None
    judge_score: float | None = None
    judge_version: str | None = None
    # Inline mode (storage/inline.py): picked or only offered (None: not an inline joke), and
    # the first joke id of the offer it was part of.
    inline_chosen: bool | None = None
    inline_offer: int | None = None

    @property
    def votes(self) -> int:
        return self.likes + self.dislikes

    @property
    def wilson(self) -> float:
        return wilson_lower_bound(self.likes, self.votes)


@dataclass(frozen=True, slots=True)
class MethodStats:
    """Per generation method: jokes made and the votes they got."""

    method: str
    jokes: int
    likes: int
    dislikes: int

    @property
    def like_ratio(self) -> float | None:
        """Likes among votes; None while the method has no votes at all."""
        votes = self.likes + self.dislikes
        return self.likes / votes if votes else None
