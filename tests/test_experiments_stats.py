"""Statistics per model version and per experiment arm, and when a lead means something."""

from __future__ import annotations

from pathlib import Path

import pytest

import storage
from storage.experiments import (
    VersionStats,
    arm_stats,
    compare_arms,
    intervals_overlap,
    version_stats,
)
from tests.ratings_kit import database, rated_joke


def arm(name: str, likes: int, dislikes: int) -> VersionStats:
    return VersionStats("gpt", f"gpt@{name.lower() * 6}", 1, likes, dislikes, arm=name)


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ((0.1, 0.5), (0.4, 0.9), True),
        ((0.4, 0.9), (0.1, 0.5), True),
        ((0.1, 0.5), (0.5, 0.9), True),  # touching counts: a shared point
        ((0.1, 0.3), (0.4, 0.9), False),
        ((0.6, 0.9), (0.1, 0.3), False),
        ((0.2, 0.8), (0.4, 0.5), True),  # one inside the other
    ],
)
def test_intervals_overlap(first, second, overlap: bool) -> None:
    assert intervals_overlap(first, second) is overlap


def test_a_lead_on_few_votes_still_overlaps() -> None:
    verdict = compare_arms(arm("A", 2, 2), arm("B", 3, 1))
    assert (verdict.leader, verdict.overlap, verdict.compared) == ("B", True, True)


def test_a_lead_on_many_votes_stands_apart() -> None:
    verdict = compare_arms(arm("A", 90, 10), arm("B", 30, 70))
    assert (verdict.leader, verdict.overlap, verdict.compared) == ("A", False, True)
    a, b = arm("A", 90, 10).interval, arm("B", 30, 70).interval
    assert a[0] > b[1]  # the Wilson intervals themselves: A's low end above B's high end


def test_no_verdict_before_both_arms_have_votes_and_a_tie_has_no_leader() -> None:
    waiting = compare_arms(arm("A", 0, 0), arm("B", 5, 0))
    assert (waiting.leader, waiting.compared) == (None, False)
    tie = compare_arms(arm("A", 3, 1), arm("B", 6, 2))
    assert (tie.leader, tie.overlap, tie.compared) == (None, True, True)


async def test_stats_per_version_and_per_arm(tmp_path: Path) -> None:
    async with database(tmp_path / "jokes.db") as (_, sessions):
        await rated_joke(sessions, model="gpt@old000", likes=1, dislikes=3)  # before the experiment
        await rated_joke(sessions, model="gpt@old000", arm="A", likes=2, dislikes=2)
        await rated_joke(sessions, model="gpt@new111", arm="B", likes=4, dislikes=0)
        await rated_joke(sessions, model="gpt@new111", arm="B")
        await rated_joke(sessions, model="gpt@zzz999", arm="B", likes=9)  # an earlier experiment
        await rated_joke(sessions, method="diffuseq", model="diffuseq@941a6e", likes=1)
        async with sessions() as session:
            versions = await version_stats(session)
            arms = await arm_stats(session, "gpt", {"A": "gpt@old000", "B": "gpt@new111"})
            any_version = await storage.arm_stats(session, "gpt", {"B": None})
    assert [(v.method, v.model, v.jokes, v.likes, v.dislikes) for v in versions] == [
        ("diffuseq", "diffuseq@941a6e", 1, 1, 0),
        ("gpt", "gpt@old000", 2, 3, 5),
        ("gpt", "gpt@new111", 2, 4, 0),
        ("gpt", "gpt@zzz999", 1, 9, 0),
    ]
    assert (arms["A"].jokes, arms["A"].likes, arms["A"].dislikes) == (1, 2, 2)
    assert (arms["B"].jokes, arms["B"].likes, arms["B"].dislikes) == (2, 4, 0)
    assert arms["B"].like_ratio == 1.0 and arms["A"].interval == storage.wilson_interval(2, 4)
    assert (any_version["B"].jokes, any_version["B"].likes) == (3, 13)


async def test_an_arm_without_jokes_is_still_reported(tmp_path: Path) -> None:
    async with database(tmp_path / "jokes.db") as (_, sessions), sessions() as session:
        arms = await arm_stats(session, "gpt", {"A": "gpt@a", "B": "gpt@b"})
    assert [(a.arm, a.jokes, a.votes, a.like_ratio) for a in arms.values()] == [
        ("A", 0, 0, None),
        ("B", 0, 0, None),
    ]
