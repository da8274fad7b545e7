"""What differs between the two databases the bot runs on, SQLite and PostgreSQL, in one place.

Models, repository queries and Alembic migrations are written once for both; the few things that
cannot be are chosen here by the engine's dialect:

* connection set-up: SQLite's pragmas (WAL, busy timeout, foreign keys); PostgreSQL's lock
  timeout (its busy timeout), a short connect timeout and a ping before a pooled connection is
  reused (a restarted server leaves dead connections in the pool);
* `insert`: SQLite's or PostgreSQL's INSERT .. ON CONFLICT construct (the same API);
* migrations one process at a time: SQLite's BEGIN IMMEDIATE with foreign keys off and checked
  before the commit; a transaction-scoped advisory lock on PostgreSQL;
* after a failed write: SQLite checkpoints and truncates its log when the disk was full
  (`make_room`); PostgreSQL's connection errors (the server restarting) are retried within the
  busy timeout (`retrying`), as SQLite waits out a locked database;
* a file beside the database (SQLite only): the bot's update-offset note (bot/updates.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from storage.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

R = TypeVar("R")

#: The engine's execution option carrying its busy timeout, read back by `retrying`.
BUSY_TIMEOUT_OPTION = "storage_busy_timeout_ms"

WAL_CHECKPOINT_PAGES = 100
WAL_SIZE_LIMIT_BYTES = 512 * 1024


class Backend:
    """The SQLite behaviour is the reference; `Postgres` overrides what differs."""

    name: ClassVar[str]
    driver: ClassVar[str]
    insert: ClassVar[Callable[..., Any]]

    def url(self, url: URL) -> URL:
        """The URL with this backend's async driver (`postgres://` works as given by hosts)."""
        return url.set(drivername=f"{self.name}+{self.driver}")

    def engine_options(self, busy_timeout_ms: int) -> dict[str, Any]:
        return {}

    def on_engine(self, engine: AsyncEngine, busy_timeout_ms: int, foreign_keys: bool) -> None:
        """Hooks on a new engine's connections."""

    def local_file(self, url: URL) -> Path | None:
        """The database's file on this machine; None when it is not a local file."""
        return None

    def prepare_migration(self, engine: AsyncEngine) -> None:
        """Make the migration transaction exclusive (two bots starting at once take turns)."""

    def check_migration(self, connection: Connection) -> None:
        """Last check before a migration commits."""

    def transient(self, exc: BaseException) -> bool:
        """Whether the failed call is worth running again within the busy timeout."""
        return False

    async def recover(self, session: AsyncSession, exc: BaseException) -> None:
        """Best effort after a failed write, before the error is reported."""


class SQLite(Backend):
    name, driver = "sqlite", "aiosqlite"
    insert = staticmethod(sqlite.insert)

    def on_engine(self, engine: AsyncEngine, busy_timeout_ms: int, foreign_keys: bool) -> None:
        # insert=True: before the dialect's own first-connect queries, so an unreadable file
        # fails here, where the connection is closed cleanly.
        listener = _sqlite_pragmas(busy_timeout_ms, foreign_keys)
        event.listen(engine.sync_engine, "connect", listener, insert=True)

    def local_file(self, url: URL) -> Path | None:
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return None
        return Path(database)

    def prepare_migration(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "connect", _driver_leaves_transactions_to_us)
        event.listen(engine.sync_engine, "begin", _begin_immediate)

    def check_migration(self, connection: Connection) -> None:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise DatabaseUnavailable(f"Migration left broken foreign keys: {broken[:5]}")

    async def recover(self, session: AsyncSession, exc: BaseException) -> None:
        if isinstance(exc, DBAPIError) and "database or disk is full" in str(exc.orig).lower():
            await make_room(session)


#: PostgreSQL errors after which nothing was applied: the call can simply run again.
PG_NOTHING_APPLIED = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "53300",  # too_many_connections
    "57P03",  # cannot_connect_now: the server is starting up or shutting down
}
#: The connection was lost; safe to repeat only if it broke before the COMMIT was sent.
PG_CONNECTION_LOST = {"57P01", "57P02"}  # admin_shutdown, crash_shutdown; and class 08

#: An advisory lock id of our own: migrations of this database take turns on it.
PG_MIGRATION_LOCK = 0x4A0C3E5


class Postgres(Backend):
    name, driver = "postgresql", "asyncpg"
    insert = staticmethod(postgresql.insert)

    def engine_options(self, busy_timeout_ms: int) -> dict[str, Any]:
        return {
            "pool_pre_ping": True,  # a restart leaves dead connections in the pool
            "connect_args": {
                "timeout": max(1.0, busy_timeout_ms / 1000),
                # A write waiting for a row lock longer than the busy timeout fails, as on SQLite
                "server_settings": {
                    "lock_timeout": str(int(busy_timeout_ms)),
                    "application_name": "funny-and-tochka",
                },
            },
        }

    def prepare_migration(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "begin", _take_migration_lock)

    def transient(self, exc: BaseException) -> bool:
        if isinstance(exc, OSError):  # refused or timed out while connecting: nothing was sent
            return True
        if not isinstance(exc, DBAPIError):
            return False
        state = str(getattr(exc.orig, "sqlstate", None) or "")
        if state in PG_NOTHING_APPLIED:
            return True
        lost = exc.connection_invalidated or state in PG_CONNECTION_LOST or state[:2] == "08"
        # No statement: it broke in COMMIT, which may have been applied. Not repeated, so that
        # a toggle (a vote) is never applied twice; the caller reports the failure instead.
        return lost and exc.statement is not None


BACKENDS: dict[str, Backend] = {"sqlite": SQLite(), "postgresql": Postgres()}
ALIASES = {"postgres": "postgresql"}


def backend_for(url: URL) -> Backend:
    """The backend of a parsed URL; `DatabaseUnavailable` for databases the bot does not run on."""
    name = url.get_backend_name()
    backend = BACKENDS.get(ALIASES.get(name, name))
    if backend is None:
        raise DatabaseUnavailable(
            f"Unsupported database {name!r}: use sqlite+aiosqlite:///path or "
            "postgresql+asyncpg://user:password@host/database"
        )
    return backend


def normalise(url: URL) -> URL:
    """PostgreSQL URLs without a driver (or with the `postgres` scheme) get asyncpg."""
    name, _, driver = url.drivername.partition("+")
    if ALIASES.get(name, name) == "postgresql" and driver != "asyncpg":
        return BACKENDS["postgresql"].url(url)
    return url


def backend_of(session: AsyncSession) -> Backend:
    """The session's backend (SQLite's for a session without a bind: nothing to adapt then)."""
    dialect = getattr(session.bind, "dialect", None)
    return BACKENDS.get(getattr(dialect, "name", ""), BACKENDS["sqlite"])


def insert(session: AsyncSession, table: Any) -> Any:
    """INSERT .. ON CONFLICT for the session's database (`on_conflict_do_update`, `excluded`)."""
    return backend_of(session).insert(table)


def configure(
    engine: AsyncEngine, url: URL, *, busy_timeout_ms: int, foreign_keys: bool
) -> AsyncEngine:
    """Per-connection set-up of a new engine (see the module's docstring)."""
    backend_for(url).on_engine(engine, busy_timeout_ms, foreign_keys)
    return engine


async def retrying(session: AsyncSession, call: Callable[[], Awaitable[R]]) -> R:
    """`call()`, run again while it fails transiently (PostgreSQL restarting), for at most the
    engine's busy timeout; the session is rolled back before each new try. The last error is
    raised as it was; `recover` runs on it first."""
    deadline: float | None = None
    pause = 0.05
    while True:
        try:
            return await call()
        except (DBAPIError, OSError) as exc:
            with contextlib.suppress(DBAPIError, OSError):  # the first error is the one to report
                await session.rollback()
            backend, now = backend_of(session), time.monotonic()
            if deadline is None:
                deadline = now + _busy_timeout_s(session)
            if not backend.transient(exc) or now + pause > deadline:
                await backend.recover(session, exc)
                raise
            _note_retry(exc, now)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)


RETRY_LOG_EVERY_S = 10.0
_last_retry_log = [float("-inf")]


def _note_retry(exc: BaseException, now: float) -> None:
    """One warning per outage (at most every RETRY_LOG_EVERY_S), not one per waiting write."""
    quiet = now - _last_retry_log[0] < RETRY_LOG_EVERY_S
    if not quiet:
        _last_retry_log[0] = now
    level = logging.DEBUG if quiet else logging.WARNING
    log.log(level, "database unavailable (%s); retrying writes for a while", _brief(exc))


def _busy_timeout_s(session: AsyncSession) -> float:
    bind = session.bind
    options = bind.get_execution_options() if bind is not None else {}
    return float(options.get(BUSY_TIMEOUT_OPTION, 5000)) / 1000


def _brief(exc: BaseException) -> str:
    reason = getattr(exc, "orig", None) or exc
    return f"{type(reason).__name__}: {str(reason).splitlines()[0] if str(reason) else ''}"


async def make_room(session: AsyncSession) -> None:
    """After SQLITE_FULL: checkpoint the write-ahead log into the database and truncate it.

    Why: the WAL is only checkpointed every 1000 pages, so on a nearly full disk it grows into
    whatever space is freed and fills it again before any checkpoint runs; no write succeeds
    and nothing ever shrinks it. A truncating checkpoint needs little space (the log's pages
    mostly rewrite pages the database already has), so once some is free the next write has
    room. Best effort: it fails quietly while the disk is still full."""
    dialect = getattr(session.bind, "dialect", None)
    if dialect is None or dialect.name != "sqlite":
        return
    with contextlib.suppress(DBAPIError):
        await session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        await session.commit()


def _sqlite_pragmas(busy_timeout_ms: int, foreign_keys: bool) -> Any:
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


def _driver_leaves_transactions_to_us(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver stops opening transactions itself


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _take_migration_lock(connection: Connection) -> None:
    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})")
