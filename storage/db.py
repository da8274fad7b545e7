"""Engine and session factory: the SQLite pragmas every connection needs, in one place.

Transactions are left to the driver's default (Python's sqlite3 opens a transaction only before
the first INSERT/UPDATE/DELETE), and every write in `storage.repository` starts with a write
statement. That matters: SQLite invokes the busy handler only when a transaction *starts* by
asking for the write lock; a transaction that read first and then wants to write fails at once
with "database is locked". Keeping reads outside transactions keeps the busy timeout effective.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.errors import DatabaseUnavailable

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/jokes.db"
DEFAULT_BUSY_TIMEOUT_MS = 5000


def parse_url(url: str | URL) -> URL:
    """Parse a database URL, turning a malformed one into a `DatabaseUnavailable`."""
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(f"Invalid database URL: {exc}") from None


def safe_url(url: str | URL) -> str:
    """The URL with any password masked, for messages and logs."""
    return parse_url(url).render_as_string(hide_password=True)


def sqlite_file(url: str | URL) -> Path | None:
    """The database file of a SQLite URL; None for in-memory or non-SQLite databases."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


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


WAL_CHECKPOINT_PAGES = 100
WAL_SIZE_LIMIT_BYTES = 512 * 1024


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _apply_sqlite_pragmas(busy_timeout_ms: int, foreign_keys: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # The busy timeout first: switching to WAL may itself wait for a lock.
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            # A small write-ahead log, checkpointed often and truncated back after a checkpoint:
            # by default it grows to 4 MB before its first checkpoint, so on a disk that had
            # filled up it takes every byte freed and fills the disk again before any write
            # can checkpoint it (the checkpoint itself needs a little room in the database).
            cursor.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            cursor.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
            cursor.close()
        except BaseException:
            # E.g. "file is not a database". Close gracefully so aiosqlite's worker thread ends
            # now, not after the event loop is gone (the pool would only terminate it).
            with contextlib.suppress(Exception):
                dbapi_connection.close()
            raise

    return on_connect


def create_engine(
    url: str | URL = DEFAULT_DATABASE_URL,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    echo: bool = False,
    foreign_keys: bool = True,
    **engine_kwargs: Any,
) -> AsyncEngine:
    """An async engine whose SQLite connections use WAL, a busy timeout and foreign keys.

    Creates the parent folder of a SQLite file. Connecting is lazy: a file that cannot be opened
    shows up on first use (`storage.migrate` turns that into a `DatabaseUnavailable`).
    `foreign_keys=False` is for migrations only (see `storage.migrate`). JSON is stored
    without escaping Cyrillic, so the file stays readable in the sqlite3 shell.
    """
    parsed = parse_url(url)
    ensure_parent_dir(parsed)
    engine_kwargs.setdefault("json_serializer", _json_dumps)
    engine = create_async_engine(parsed, echo=echo, **engine_kwargs)
    if parsed.get_backend_name() == "sqlite":
        # insert=True: before the dialect's own first-connect queries, so an unreadable file
        # fails here, where the connection is closed cleanly.
        event.listen(
            engine.sync_engine,
            "connect",
            _apply_sqlite_pragmas(busy_timeout_ms, foreign_keys),
            insert=True,
        )
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (repository writes commit themselves)."""
    return async_sessionmaker(engine, expire_on_commit=False)
