"""The storage layer on a real PostgreSQL server: migrations, connection set-up, locks held too
long, and the server restarting under the bot (tests/servers.py starts it). The repository's own
behaviour runs on both databases in tests/test_storage.py."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import storage
from storage import dialects
from storage.db import parse_url, safe_url, sqlite_file
from storage.migrate import run_in_migration_transaction
from storage.models import Base
from tests.servers import PostgresServer, free_port

ROOT = Path(__file__).resolve().parents[1]
USER = 5


@pytest.fixture
async def pg(postgres_server: PostgresServer) -> AsyncIterator[tuple[str, async_sessionmaker]]:
    url = postgres_server.new_database()
    await storage.migrate(url)
    engine = storage.create_engine(url, busy_timeout_ms=5000)
    try:
        yield url, storage.make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def a_joke(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return await storage.save_joke(
            session, user_id=1, chat_id=1, prompt="Кот", text="Кот пришёл.", method="gpt",
            model="gpt@1", params={"note": "ёж"}, latency_ms=1.0,
        )  # fmt: skip


async def test_migrations_build_the_models_schema_and_take_turns(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.new_database()
    assert await storage.current_revision(url) is None
    await asyncio.gather(storage.migrate(url), storage.migrate(url), storage.migrate(url))
    assert await storage.current_revision(url) == storage.head_revision()

    def check(connection) -> list:
        assert {"users", "jokes", "votes", "alembic_version"} <= set(
            inspect(connection).get_table_names()
        )
        columns = {c["name"]: c["type"] for c in inspect(connection).get_columns("votes")}
        assert str(columns["joke_id"]) == "BIGINT"  # any id a button carries is a valid lookup
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert await run_in_migration_transaction(url, check) == []


def test_alembic_command_line_upgrade_and_downgrade(postgres_server: PostgresServer) -> None:
    url = postgres_server.new_database()
    database = url.rsplit("/", 1)[1]

    def alembic(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "-x", f"url={url}",
             *args],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    def tables() -> set[str]:
        listed = postgres_server.psql("SELECT tablename FROM pg_tables", database)
        return set(listed.split())

    alembic("upgrade", "head")
    assert {"users", "jokes", "votes", "alembic_version"} <= tables()
    alembic("downgrade", "base")  # batch_alter_table's drops work on PostgreSQL too
    assert not {"users", "jokes", "votes"} & tables()


async def test_connections_wait_for_locks_as_long_as_the_busy_timeout(pg) -> None:
    url, _ = pg
    engine = storage.create_engine(url, busy_timeout_ms=1234)
    try:
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("SHOW lock_timeout")).scalar() == "1234ms"
    finally:
        await engine.dispose()


async def test_schema_constraints_hold(pg) -> None:
    url, sessions = pg
    joke_id = await a_joke(sessions)
    engine = storage.create_engine(url)
    try:
        async with engine.connect() as conn:
            for bad, why in (
                (f"({joke_id}, 1, 0)", "ck_votes"),  # CHECK value IN (-1, 1)
                ("(999, 1, 1)", "fk_votes_joke_id_jokes"),  # no such joke
            ):
                with pytest.raises(Exception, match=why):
                    await conn.execute(
                        text(
                            "INSERT INTO votes (joke_id, user_id, value, created_at, updated_at) "
                            f"VALUES {bad[:-1]}, now(), now())"
                        )
                    )
                await conn.rollback()
    finally:
        await engine.dispose()


async def hold_user_row(url: str, user_id: int, seconds: float) -> asyncio.Task[None]:
    """Another client locks the user's row (as a vote in flight does) for `seconds`."""
    engine = storage.create_engine(url)
    locked = asyncio.Event()

    async def hold() -> None:
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text("SELECT id FROM users WHERE id = :id FOR UPDATE"), {"id": user_id}
                )
                locked.set()
                await asyncio.sleep(seconds)
        finally:
            await engine.dispose()

    task = asyncio.create_task(hold())
    await asyncio.wait_for(locked.wait(), 10)
    return task


async def test_a_lock_within_the_busy_timeout_is_waited_out(pg) -> None:
    url, sessions = pg
    joke_id = await a_joke(sessions)
    async with sessions() as session:
        await storage.touch_user(session, USER)
    holder = await hold_user_row(url, USER, 0.8)
    started = time.monotonic()
    async with sessions() as session:
        tally = await storage.record_vote(session, joke_id=joke_id, user_id=USER, value=1)
    await holder
    assert tally == storage.VoteTally(1, 0, 1)
    assert 0.6 < time.monotonic() - started < 5.0


async def test_a_lock_longer_than_the_busy_timeout_fails_the_write_and_saves_nothing(pg) -> None:
    url, sessions = pg
    joke_id = await a_joke(sessions)
    async with sessions() as session:
        await storage.touch_user(session, USER)
    engine = storage.create_engine(url, busy_timeout_ms=200)
    try:
        holder = await hold_user_row(url, USER, 1.0)
        async with storage.make_sessionmaker(engine)() as session:
            with pytest.raises(storage.StorageWriteError, match="lock timeout"):
                await storage.record_vote(session, joke_id=joke_id, user_id=USER, value=1)
            await holder
            assert await storage.vote_counts(session, joke_id) == storage.VoteTally(0, 0)
            # the session is usable again after the failure
            tally = await storage.record_vote(session, joke_id=joke_id, user_id=USER, value=1)
            assert tally.likes == 1
    finally:
        await engine.dispose()


async def test_a_write_while_the_server_restarts_is_retried_within_the_busy_timeout(
    pg,
    postgres_server: PostgresServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, sessions = pg
    monkeypatch.setattr(dialects, "_last_retry_log", [float("-inf")])  # one line per outage
    joke_id = await a_joke(sessions)  # the pool now holds a connection the restart will kill
    await asyncio.to_thread(postgres_server.stop)

    async def start_again() -> None:
        await asyncio.sleep(0.7)
        await asyncio.to_thread(postgres_server.start)

    restart = asyncio.create_task(start_again())
    with caplog.at_level(logging.WARNING, logger="storage.dialects"):
        async with sessions() as session:
            tally = await storage.record_vote(session, joke_id=joke_id, user_id=USER, value=1)
    await restart
    assert tally == storage.VoteTally(1, 0, 1)
    assert "database unavailable" in caplog.text


async def test_a_server_down_longer_than_the_busy_timeout_is_a_storage_error(
    pg, postgres_server: PostgresServer
) -> None:
    url, sessions = pg
    joke_id = await a_joke(sessions)
    engine = storage.create_engine(url, busy_timeout_ms=300)
    await asyncio.to_thread(postgres_server.stop)
    try:
        started = time.monotonic()
        async with storage.make_sessionmaker(engine)() as session:
            with pytest.raises(storage.StorageWriteError, match="Could not record the vote"):
                await storage.record_vote(session, joke_id=joke_id, user_id=USER, value=1)
            with pytest.raises(storage.StorageError, match="Could not read the joke"):
                await storage.get_joke(session, joke_id)
        assert time.monotonic() - started < 5.0
    finally:
        await asyncio.to_thread(postgres_server.start)
    async with storage.make_sessionmaker(engine)() as session:  # the same pool works again
        assert (await storage.record_vote(session, joke_id=joke_id, user_id=USER, value=1)).likes
    await engine.dispose()


async def test_an_unreachable_server_stops_the_start_with_a_clear_line() -> None:
    url = f"postgresql://bot:s3cret@127.0.0.1:{free_port()}/jokes"
    with pytest.raises(storage.DatabaseUnavailable, match="Cannot open or migrate") as caught:
        await storage.migrate(url, busy_timeout_ms=500)
    assert "s3cret" not in str(caught.value) and "127.0.0.1" in str(caught.value)


def test_urls_choose_the_async_driver_and_unknown_databases_are_refused() -> None:
    for given in ("postgres://u@h/db", "postgresql://u@h/db", "postgresql+asyncpg://u@h/db"):
        assert parse_url(given).drivername == "postgresql+asyncpg"
    assert safe_url("postgresql://u:pw@h/db") == "postgresql+asyncpg://u:***@h/db"
    assert sqlite_file("postgresql://u@h/db") is None  # no file beside it for the offset note
    with pytest.raises(storage.DatabaseUnavailable, match="Unsupported database 'mysql'"):
        storage.create_engine("mysql+aiomysql://u@h/db")
