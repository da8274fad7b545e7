"""Engine, migrations and failure modes of the storage layer on real SQLite files."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, func, inspect, select, text

import storage
from storage.migrate import run_in_migration_transaction
from storage.models import Base, StoredJoke, Vote

ROOT = Path(__file__).resolve().parents[1]


def url_of(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def db(tmp_path: Path):
    path = tmp_path / "jokes.db"
    await storage.migrate(url_of(path))
    engine = storage.create_engine(url_of(path), busy_timeout_ms=5000)
    sessions = storage.make_sessionmaker(engine)
    async with sessions() as session:
        joke_id = await storage.save_joke(
            session,
            user_id=1,
            chat_id=1,
            prompt="п",
            text="т",
            method="gpt",
            model="m",
            params={},
            latency_ms=1,
        )
    yield path, engine, sessions, joke_id
    await engine.dispose()


async def test_migrate_from_empty_creates_schema_at_head(tmp_path: Path):
    url = url_of(tmp_path / "new" / "folder" / "jokes.db")  # parent folders are created
    assert await storage.current_revision(url) is None
    await storage.migrate(url)
    await storage.migrate(url)  # idempotent
    assert await storage.current_revision(url) == storage.head_revision() == "0003_arms_and_inline"

    def check(connection) -> list:
        tables = set(inspect(connection).get_table_names())
        assert {"users", "jokes", "votes", "alembic_version"} <= tables
        # The hand-written migration and the models describe the same schema.
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert await run_in_migration_transaction(url, check) == []


async def test_concurrent_migrations_take_turns(tmp_path: Path):
    url = url_of(tmp_path / "jokes.db")
    await asyncio.gather(storage.migrate(url), storage.migrate(url), storage.migrate(url))
    assert await storage.current_revision(url) == storage.head_revision()


def test_alembic_command_line_upgrade_and_downgrade(tmp_path: Path):
    url = url_of(tmp_path / "cli.db")

    def alembic(*args: str) -> str:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "alembic",
                "-c",
                str(ROOT / "alembic.ini"),
                "-x",
                f"url={url}",
                *args,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    def tables_and_revision() -> tuple[set[str], list]:
        with sqlite3.connect(tmp_path / "cli.db") as conn:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            return names, conn.execute("SELECT version_num FROM alembic_version").fetchall()

    alembic("upgrade", "head")
    names, revision = tables_and_revision()
    assert {"users", "jokes", "votes"} <= names and revision == [(storage.head_revision(),)]
    alembic("downgrade", "base")
    names, revision = tables_and_revision()
    assert not {"users", "jokes", "votes"} & names and revision == []


async def test_connections_use_wal_busy_timeout_and_foreign_keys(db):
    _, engine, _, _ = db
    async with engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 5000
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1


async def test_schema_constraints_hold(db):
    _, engine, _, joke_id = db
    async with engine.connect() as conn:
        for bad in (
            f"INSERT INTO votes (joke_id, user_id, value, created_at, updated_at) "
            f"VALUES ({joke_id}, 1, 0, '2020-01-01', '2020-01-01')",  # CHECK value IN (-1, 1)
            "INSERT INTO votes (joke_id, user_id, value, created_at, updated_at) "
            "VALUES (999, 1, 1, '2020-01-01', '2020-01-01')",  # no such joke
        ):
            with pytest.raises(Exception, match="constraint failed"):
                await conn.execute(text(bad))
            await conn.rollback()


@pytest.mark.parametrize("kind", ["parent_is_file", "directory", "garbage"])
async def test_unopenable_database_gives_storage_error(tmp_path: Path, kind: str):
    if kind == "parent_is_file":
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "jokes.db"
    elif kind == "directory":
        path = tmp_path / "adir"
        path.mkdir()
    else:
        path = tmp_path / "garbage.db"
        path.write_bytes(b"this is not a database, just text " * 200)
    with pytest.raises(storage.DatabaseUnavailable) as caught:
        await storage.migrate(url_of(path))
    assert isinstance(caught.value, storage.StorageError)
    assert str(path.name) in str(caught.value)


async def test_database_from_newer_code_gives_storage_error(tmp_path: Path):
    path = tmp_path / "jokes.db"
    await storage.migrate(url_of(path))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
    with pytest.raises(storage.DatabaseUnavailable, match="9999_future"):
        await storage.migrate(url_of(path))


def hold_write_lock(path: Path, seconds: float) -> sqlite3.Connection:
    """Another process-like writer: BEGIN IMMEDIATE now, COMMIT after `seconds` on the loop."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute(
        "INSERT INTO users (id, first_seen, last_seen) VALUES (42, '2020-01-01', '2020-01-01')"
    )
    asyncio.get_running_loop().call_later(seconds, holder.execute, "COMMIT")
    return holder


async def test_locked_database_is_ridden_out_by_busy_timeout(db):
    path, _, sessions, joke_id = db
    holder = hold_write_lock(path, 1.5)
    try:
        started = time.monotonic()
        async with sessions() as session:
            # Readers are not blocked by the writer (WAL).
            assert await storage.vote_counts(session, joke_id) == storage.VoteTally(0, 0)
            assert time.monotonic() - started < 1.0
            tally = await storage.record_vote(session, joke_id=joke_id, user_id=5, value=1)
        waited = time.monotonic() - started
    finally:
        holder.close()
    assert tally == storage.VoteTally(1, 0, 1)
    assert 1.3 < waited < 5.0
    async with sessions() as session:
        assert await storage.vote_counts(session, joke_id) == storage.VoteTally(1, 0)


async def test_lock_longer_than_busy_timeout_raises_and_saves_nothing(db):
    path, _, _, joke_id = db
    engine = storage.create_engine(url_of(path), busy_timeout_ms=100)
    holder = hold_write_lock(path, 0.6)
    try:
        async with storage.make_sessionmaker(engine)() as session:
            with pytest.raises(storage.StorageWriteError, match="locked"):
                await storage.record_vote(session, joke_id=joke_id, user_id=5, value=1)
        await asyncio.sleep(0.8)
        async with storage.make_sessionmaker(engine)() as session:
            assert await storage.vote_counts(session, joke_id) == storage.VoteTally(0, 0)
            # The session is usable again after the failure.
            assert (await storage.record_vote(session, joke_id=joke_id, user_id=5, value=1)).likes
    finally:
        holder.close()
        await engine.dispose()


async def test_full_disk_on_write_raises(db):
    path, _, sessions, _ = db
    engine = storage.create_engine(url_of(path))

    @event.listens_for(engine.sync_engine, "connect")
    def cap_size(dbapi_connection, _record) -> None:  # the file may not grow: "disk is full"
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    try:
        async with storage.make_sessionmaker(engine)() as session:
            with pytest.raises(storage.StorageWriteError, match="full"):
                await storage.save_joke(
                    session,
                    user_id=1,
                    chat_id=1,
                    prompt="п",
                    text="ж" * 200_000,
                    method="gpt",
                    model="m",
                    params={},
                    latency_ms=1,
                )
    finally:
        await engine.dispose()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(StoredJoke)) == 1
        assert await session.scalar(select(func.count()).select_from(Vote)) == 0


def test_known_head_is_alembics_head() -> None:
    """`migrate` skips Alembic when a database carries KNOWN_HEAD: it must be the real head."""
    from storage.migrate import KNOWN_HEAD

    assert storage.head_revision() == KNOWN_HEAD
