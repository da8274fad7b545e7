"""Bring a database to the newest schema with Alembic; the bot calls `migrate` at start.

Migrations run on their own engine in one transaction around the whole upgrade, so DDL is
atomic, and two processes starting at once take turns instead of both creating tables: on SQLite
the transaction is a `BEGIN IMMEDIATE`, with foreign keys OFF as SQLite's ALTER procedure asks
(recreating a table must not cascade-delete its children) and `PRAGMA foreign_key_check` before
the commit instead; on PostgreSQL it takes an advisory lock (`storage.dialects`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from storage import dialects
from storage.db import DEFAULT_BUSY_TIMEOUT_MS, create_engine, parse_url, safe_url
from storage.errors import DatabaseUnavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: The newest revision in storage/migrations (a test keeps it equal to Alembic's head). Knowing it
#: without Alembic lets a restart skip importing Alembic, a noticeable part of start-up
#: (docs/BENCHMARKS.md §7), when the database is already there.
KNOWN_HEAD = "0003_arms_and_inline"


def alembic_config(url: str) -> Any:
    """An Alembic config for this package's migrations, independent of the working folder."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "storage/migrations has no revisions"
    return head


async def run_in_migration_transaction(
    url: str, fn: Callable[[Connection], Any], *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
) -> Any:
    """Run `fn(sync_connection)` inside one exclusive transaction (on SQLite: BEGIN IMMEDIATE,
    foreign keys off).

    Shared by `migrate` and `alembic` on the command line (storage/migrations/env.py).
    Driver errors (and an unreachable server) become `DatabaseUnavailable` with the URL named.
    """
    backend = dialects.backend_for(parse_url(url))
    engine = create_engine(
        url, busy_timeout_ms=busy_timeout_ms, foreign_keys=False, poolclass=NullPool
    )
    backend.prepare_migration(engine)

    def run(connection: Connection) -> Any:
        result = fn(connection)
        backend.check_migration(connection)
        return result

    try:
        async with engine.begin() as connection:
            return await connection.run_sync(run)
    except (DBAPIError, sqlite3.Error, OSError) as exc:
        reason = getattr(exc, "orig", None) or exc
        raise DatabaseUnavailable(
            f"Cannot open or migrate the database {safe_url(url)}: {reason}"
        ) from exc
    finally:
        await engine.dispose()


async def _at_known_head(url: str, busy_timeout_ms: int) -> bool:
    """Whether the database already carries `KNOWN_HEAD` (False on any doubt or error)."""
    engine = create_engine(url, busy_timeout_ms=busy_timeout_ms, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return [row[0] for row in rows] == [KNOWN_HEAD]
    except Exception:  # no table yet, unreadable file...: the full path below decides
        return False
    finally:
        await engine.dispose()


async def migrate(url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
    """Create or upgrade the schema to the newest revision; a no-op when already there.

    Raises `DatabaseUnavailable` (a `StorageError`) with a human message when the file cannot
    be created, opened or migrated, or when it carries a revision this code does not know.
    """
    if await _at_known_head(url, busy_timeout_ms):
        return
    from alembic import command
    from alembic.util import CommandError

    config = alembic_config(url)

    def upgrade(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    try:
        await run_in_migration_transaction(url, upgrade, busy_timeout_ms=busy_timeout_ms)
    except CommandError as exc:
        raise DatabaseUnavailable(
            f"Cannot migrate the database {safe_url(url)}: {exc} "
            "(is it from a newer version of the bot?)"
        ) from exc


def upgrade_to_head(url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
    """Synchronous `migrate`, for scripts outside an event loop."""
    asyncio.run(migrate(url, busy_timeout_ms=busy_timeout_ms))


async def current_revision(url: str) -> str | None:
    """The revision the database is at; None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    return await run_in_migration_transaction(
        url, lambda connection: MigrationContext.configure(connection).get_current_revision()
    )

