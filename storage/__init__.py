"""Storage of users, jokes and votes in SQLite (SQLAlchemy 2 async + aiosqlite, Alembic).

Typical use in the bot::

    await migrate(url, busy_timeout_ms=settings.db_busy_timeout_ms)  # DatabaseUnavailable: exit
    engine = create_engine(url, busy_timeout_ms=settings.db_busy_timeout_ms)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        tally = await record_vote(session, joke_id=joke_id, user_id=user_id, value=+1)
    ...
    await engine.dispose()
"""

from storage.db import (
    DEFAULT_BUSY_TIMEOUT_MS,
    DEFAULT_DATABASE_URL,
    create_engine,
    make_sessionmaker,
)
from storage.errors import DatabaseUnavailable, JokeNotFound, StorageError, StorageWriteError
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
    "Base",
    "DatabaseUnavailable",
    "JokeNotFound",
    "MethodStats",
    "RatedJoke",
    "StorageError",
    "StorageWriteError",
    "StoredJoke",
    "User",
    "Vote",
    "VoteTally",
    "attach_message",
    "create_engine",
    "current_revision",
    "delete_joke",
    "get_joke",
    "get_user_method",
    "head_revision",
    "iter_rated_jokes",
    "make_sessionmaker",
    "method_stats",
    "migrate",
    "record_vote",
    "save_joke",
    "set_user_method",
    "top_jokes",
    "touch_user",
    "upgrade_to_head",
    "vote_counts",
    "wilson_interval",
    "wilson_lower_bound",
]
