"""Storage of users, jokes and votes in SQLite or PostgreSQL (SQLAlchemy 2 async + aiosqlite or
asyncpg, Alembic); what differs between the two is in `storage.dialects`.

Typical use in the bot::

    await migrate(url, busy_timeout_ms=settings.db_busy_timeout_ms)  # DatabaseUnavailable: exit
    engine = create_engine(url, busy_timeout_ms=settings.db_busy_timeout_ms)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        tally = await record_vote(session, joke_id=joke_id, user_id=user_id, value=+1)
    ...
    await engine.dispose()
"""

from storage.classic import shown_classic_ids
from storage.db import (
    DEFAULT_BUSY_TIMEOUT_MS,
    DEFAULT_DATABASE_URL,
    create_engine,
    make_sessionmaker,
)
from storage.errors import DatabaseUnavailable, JokeNotFound, StorageError, StorageWriteError
from storage.experiments import ArmVerdict, VersionStats, arm_stats, compare_arms, version_stats
from storage.favourites import JokeCard, count_liked, joke_by_id, liked_jokes
from storage.health import database_problem
from storage.inline import (
    INLINE_CHAT_ID,
    OfferedJoke,
    iter_exported_jokes,
    mark_inline_chosen,
    save_offer,
)
from storage.migrate import current_revision, head_revision, migrate, upgrade_to_head
from storage.models import Base, StoredJoke, User, Vote
from storage.repository import (
    attach_message,
    delete_joke,
    get_joke,
    get_user_method,
    iter_rated_jokes,
    method_stats,
    record_vote,
    save_joke,
    set_user_method,
    top_jokes,
    touch_user,
    vote_counts,
)
from storage.stats import MethodStats, RatedJoke, VoteTally, wilson_interval, wilson_lower_bound

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "DEFAULT_DATABASE_URL",
    "INLINE_CHAT_ID",
    "ArmVerdict",
    "Base",
    "DatabaseUnavailable",
    "JokeCard",
    "JokeNotFound",
    "MethodStats",
    "OfferedJoke",
    "RatedJoke",
    "StorageError",
    "StorageWriteError",
    "StoredJoke",
    "User",
    "VersionStats",
    "Vote",
    "VoteTally",
    "arm_stats",
    "attach_message",
    "compare_arms",
    "count_liked",
    "create_engine",
    "current_revision",
    "database_problem",
    "delete_joke",
    "get_joke",
    "get_user_method",
    "head_revision",
    "iter_exported_jokes",
    "iter_rated_jokes",
    "joke_by_id",
    "liked_jokes",
    "make_sessionmaker",
    "mark_inline_chosen",
    "method_stats",
    "migrate",
    "record_vote",
    "save_joke",
    "save_offer",
    "set_user_method",
    "shown_classic_ids",
    "top_jokes",
    "touch_user",
    "upgrade_to_head",
    "version_stats",
    "vote_counts",
    "wilson_interval",
    "wilson_lower_bound",
]
