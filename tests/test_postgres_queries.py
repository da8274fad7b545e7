"""The other storage modules' queries (favourites, inline offers, classic, statistics per version,
the chart's history) on PostgreSQL: their own tests, run again here with fixtures of the same
names on a fresh PostgreSQL database (their modules run them on SQLite)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import storage
from storage import report
from tests.ratings_kit import rated_joke
from tests.servers import PostgresServer
from tests.test_classic import test_shown_classic_ids_least_recently_shown_first
from tests.test_inline_storage import (
    test_a_pick_is_marked_only_where_it_belongs,
    test_an_offer_is_stored_not_chosen_in_no_chat,
    test_export_pairs_each_pick_with_its_offer,
)
from tests.test_liked_storage import (
    test_a_page_of_the_longest_jokes_fits_one_message,
    test_bad_paging_arguments_read_nothing,
    test_joke_by_id_and_shared_references,
    test_newest_like_first_across_chats_with_counts_and_pages,
)

Sessions = async_sessionmaker[AsyncSession]

__all__ = [  # collected here a second time, on PostgreSQL
    "test_a_page_of_the_longest_jokes_fits_one_message",
    "test_a_pick_is_marked_only_where_it_belongs",
    "test_an_offer_is_stored_not_chosen_in_no_chat",
    "test_bad_paging_arguments_read_nothing",
    "test_export_pairs_each_pick_with_its_offer",
    "test_joke_by_id_and_shared_references",
    "test_newest_like_first_across_chats_with_counts_and_pages",
    "test_shown_classic_ids_least_recently_shown_first",
]


@pytest.fixture
async def db(postgres_server: PostgresServer) -> AsyncIterator[tuple[str, Sessions]]:
    """(url, sessionmaker) of a fresh, migrated PostgreSQL database."""
    url = postgres_server.new_database()
    await storage.migrate(url)
    engine = storage.create_engine(url)
    try:
        yield url, storage.make_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def sessions(db: tuple[str, Sessions]) -> Sessions:
    return db[1]


async def test_statistics_per_version_and_arm(sessions: Sessions) -> None:
    await rated_joke(sessions, model="gpt@a", arm="A", likes=3, dislikes=1)
    await rated_joke(sessions, model="gpt@b", arm="B", likes=1, dislikes=2)
    await rated_joke(sessions, method="diffuseq", model="diffuseq@1")
    async with sessions() as session:
        versions = await storage.version_stats(session)
        arms = await storage.arm_stats(session, "gpt", {"A": "gpt@a", "B": None, "C": None})
    assert [(v.method, v.model, v.jokes, v.likes, v.dislikes) for v in versions] == [
        ("diffuseq", "diffuseq@1", 1, 0, 0),
        ("gpt", "gpt@a", 1, 3, 1),
        ("gpt", "gpt@b", 1, 1, 2),
    ]
    assert {arm: (s.jokes, s.likes, s.dislikes) for arm, s in arms.items()} == {
        "A": (1, 3, 1), "B": (1, 1, 2), "C": (0, 0, 0),
    }  # fmt: skip


async def test_the_charts_history_counts_votes_per_day(sessions: Sessions) -> None:
    await rated_joke(sessions, model="gpt@a", likes=1, dislikes=1, day="2026-03-01")
    await rated_joke(sessions, model="gpt@a", likes=2, dislikes=0, day="2026-03-03")
    async with sessions() as session:
        (series,) = await report.like_history(session)
    assert series.days == [date(2026, 3, 1), date(2026, 3, 3)]
    assert (series.likes, series.votes) == ([1, 3], [2, 4])
