"""Real PostgreSQL and Redis servers for the tests, started from Debian's binaries in a temp folder.

`postgres_server` (one per test session: initdb takes a second or two) hands out a fresh, empty
database per test (`database_url` fixture, parametrised over SQLite and PostgreSQL). Redis starts
in milliseconds, so `redis_server` is one per test: a test may stop and restart its own.

A test that needs a server which cannot be started FAILS with the reason (never a silent skip):
CI installs the packages with scripts/setup-system.sh.

PostgreSQL refuses to run as root: as root the server runs as the `postgres` user the Debian
package creates (else `nobody`), in a folder made for it outside pytest's root-only tmp folders.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

START_TIMEOUT_S = 30.0
PG_USER = "postgres"  # the database superuser initdb creates (not the system user)


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binary(name: str, folders: list[str]) -> str | None:
    for folder in folders:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def _pg_bin_dirs() -> list[str]:
    """Debian keeps the server binaries off PATH, one folder per major version: newest first."""
    found = glob.glob("/usr/lib/postgresql/*/bin")
    return sorted(found, key=lambda p: int(Path(p).parent.name or 0), reverse=True)


def _service_user() -> list[str]:
    """The command prefix that drops root (`runuser -u postgres --`), or nothing when not root."""
    if os.geteuid() != 0:
        return []
    import pwd

    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"]
    pytest.fail("running as root and no `postgres` or `nobody` user to run PostgreSQL as")


def _wait_for(ready: Callable[[], bool], what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    pytest.fail(f"{what} did not start within {START_TIMEOUT_S:.0f} s\n{tail}")


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster: trust auth, TCP on 127.0.0.1 and a socket in its folder."""

    root: Path
    port: int
    bin_dir: str
    user: list[str]
    _names: Iterator[int] = field(default_factory=itertools.count)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [
                f"{self.bin_dir}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", str(self.root / "socket"), "-p", str(self.port), "-U", PG_USER,
                "-d", database, "-c", sql,
            ],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def new_database(self) -> str:
        """A fresh empty database; returns its URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        self.psql(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)

    def _ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.user, f"{self.bin_dir}/pg_ctl", "-D", str(self.root / "data"), *args],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.root / 'socket'} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200 -c shared_buffers=32MB"
        )
        log = self.root / "server.log"
        result = self._ctl("-l", str(log), "-o", options, "-w", "-t", "30", "start")
        if result.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            pytest.fail(f"PostgreSQL did not start: {result.stderr.strip()}\n{tail}")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "-t", "30", "stop")


def start_postgres() -> PostgresServer:
    bin_dirs = _pg_bin_dirs()
    initdb = _binary("initdb", bin_dirs)
    if initdb is None:
        pytest.fail(
            "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on PATH): "
            "run scripts/setup-system.sh"
        )
    bin_dir = str(Path(initdb).parent)
    user = _service_user()
    root = Path(tempfile.mkdtemp(prefix="pg-test-"))
    (root / "socket").mkdir()
    if user:
        subprocess.run(["chown", "-R", user[2], str(root)], check=True)
    result = subprocess.run(
        [*user, initdb, "-D", str(root / "data"), "-U", PG_USER, "--auth=trust",
         "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    if result.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")
    server = PostgresServer(root=root, port=free_port(), bin_dir=bin_dir, user=user)
    server.start()
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole test session (stopped and deleted after)."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, or a fresh database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'jokes.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()


@dataclass
class RedisServer:
    """A throwaway redis-server on 127.0.0.1 without persistence; `stop()`/`start()` for outages."""

    root: Path
    port: int
    binary: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _answers(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
        ):
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def start(self) -> None:
        log = self.root / "redis.log"
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.root), "--save", "", "--appendonly", "no", "--logfile", str(log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait_for(self._answers, "redis-server", log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test's own (stopped after it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run scripts/setup-system.sh")
    root = tmp_path / "redis"
    root.mkdir()
    server = RedisServer(root=root, port=free_port(), binary=binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def pg_rows(url: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Read a PostgreSQL database directly, as an outsider would (sqlite3-style `?` parameters),
    from synchronous test code, even inside a running event loop (in a thread of its own)."""
    import asyncio
    import re
    from concurrent.futures import ThreadPoolExecutor

    import asyncpg

    numbers = itertools.count(1)
    query = re.sub(r"\?", lambda _: f"${next(numbers)}", sql)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def fetch() -> list[tuple[object, ...]]:
        connection = await asyncpg.connect(dsn)
        try:
            return [tuple(row) for row in await connection.fetch(query, *args)]
        finally:
            await connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(fetch())).result()
