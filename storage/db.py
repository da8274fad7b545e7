"""Engine and session factory for SQLite or PostgreSQL; what differs is in `storage.dialects`.

Transactions are left to the driver's default (Python's sqlite3 opens a transaction only before
the first INSERT/UPDATE/DELETE), and every write in `storage.repository` starts with a write
statement. That matters: SQLite invokes the busy handler only when a transaction *starts* by
asking for the write lock; a transaction that read first and then wants to write fails at once
with "database is locked". Keeping reads outside transactions keeps the busy timeout effective.
On PostgreSQL the same first write (the user upsert) locks the user's row, so one user's writes
take turns there too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage import dialects
from storage.dialects import WAL_CHECKPOINT_PAGES, WAL_SIZE_LIMIT_BYTES  # noqa: F401 (re-export)
from storage.errors import DatabaseUnavailable

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/jokes.db"
DEFAULT_BUSY_TIMEOUT_MS = 5000


def parse_url(url: str | URL) -> URL:
    """Parse a database URL, turning a malformed one into a `DatabaseUnavailable`.

    `postgres://` and `postgresql://` get the asyncpg driver."""
    try:
        return dialects.normalise(make_url(url))
    except ArgumentError as exc:
        raise DatabaseUnavailable(f"Invalid database URL: {exc}") from None


def safe_url(url: str | URL) -> str:
    """The URL with any password masked, for messages and logs."""
    return parse_url(url).render_as_string(hide_password=True)


def sqlite_file(url: str | URL) -> Path | None:
    """The database file of a SQLite URL; None for in-memory or non-SQLite databases."""
    parsed = parse_url(url)
    try:
        return dialects.backend_for(parsed).local_file(parsed)
    except DatabaseUnavailable:  # a database the bot does not run on: create_engine says so
        return None


def ensure_parent_dir(url: str | URL) -> None:
    """Create the folder of a SQLite file so a fresh checkout starts without manual steps."""
    path = sqlite_file(url)
    if path is None:
        return
    if path.is_dir():  # caught here: the driver's error for this says only "unable to open"
        raise DatabaseUnavailable(f"The database path {str(path)!r} is a folder, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnavailable(
            f"Cannot create the folder {str(path.parent)!r} for the database {str(path)!r}: "
            f"{exc.strerror or exc}"
        ) from exc


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def create_engine(
    url: str | URL = DEFAULT_DATABASE_URL,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    echo: bool = False,
    foreign_keys: bool = True,
    **engine_kwargs: Any,
) -> AsyncEngine:
    """An async engine for SQLite (WAL, a busy timeout and foreign keys on every connection) or
    PostgreSQL (a lock timeout of `busy_timeout_ms`; see `storage.dialects`).

    Creates the parent folder of a SQLite file. Connecting is lazy: a database that cannot be
    opened shows up on first use (`storage.migrate` turns that into a `DatabaseUnavailable`).
    `foreign_keys=False` is for migrations on SQLite only (see `storage.migrate`). JSON is
    stored without escaping Cyrillic, so the file stays readable in the sqlite3 shell.
    """
    parsed = parse_url(url)
    backend = dialects.backend_for(parsed)
    ensure_parent_dir(parsed)
    engine_kwargs.setdefault("json_serializer", _json_dumps)
    for key, value in backend.engine_options(busy_timeout_ms).items():
        engine_kwargs.setdefault(key, value)
    options = {dialects.BUSY_TIMEOUT_OPTION: busy_timeout_ms}
    options.update(engine_kwargs.pop("execution_options", {}))
    engine = create_async_engine(parsed, echo=echo, execution_options=options, **engine_kwargs)
    return dialects.configure(
        engine, parsed, busy_timeout_ms=busy_timeout_ms, foreign_keys=foreign_keys
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (repository writes commit themselves)."""
    return async_sessionmaker(engine, expire_on_commit=False)
