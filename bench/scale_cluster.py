"""The processes of `bench.scale`: PostgreSQL and Redis (started as tests/servers.py starts them),
generation servers (`python -m generation.server`) and bot replicas (`python -m bot --webhook`),
each a child process with a log file of its own that can be SIGKILLed and started again.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.servers import PostgresServer, RedisServer, free_port, start_postgres

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "100000:scale-bench-token"
SECRET = "scale-bench-secret"
#: Variables of the caller's environment that would point a child at something else.
OWN_PREFIXES = ("BOT_", "DATABASE_", "REDIS_", "GENERATION_", "WEBHOOK_", "TELEGRAM_")


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    env.update(extra)
    return env


@dataclass
class Replica:
    """One child process: started, checked ready at `health_url`, SIGKILLed, started again."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    health_url: str
    base_url: str
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    kills: int = 0
    ready_s: list[float] = field(default_factory=list)  # start → healthy, per start

    async def start(self) -> None:
        with self.log.open("a") as log:
            log.write(f"\n--- start {self.starts + 1} ---\n")
            log.flush()
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.starts += 1

    async def wait_ready(self, timeout: float = 180.0) -> None:
        began = time.monotonic()
        async with aiohttp.ClientSession() as http:
            while time.monotonic() - began < timeout:
                if self.proc is None or self.proc.returncode is not None:
                    break
                try:
                    async with http.get(self.health_url, timeout=aiohttp.ClientTimeout(2)) as r:
                        if r.status == 200:
                            self.ready_s.append(round(time.monotonic() - began, 1))
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.3)
        tail = self.log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{self.name} did not become ready; {self.log}:\n{tail}")

    def kill(self) -> None:
        """SIGKILL: no grace, nothing finished or apologised for."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            self.kills += 1

    async def stop(self) -> int | None:
        """SIGTERM and wait (SIGKILL after 30 s); the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        return proc.returncode


def generation_replica(index: int, workdir: Path, settings: Mapping[str, str]) -> Replica:
    port = free_port()
    env = child_env({"ENABLE_DIFFUSEQ": "false", "TORCH_THREADS": "1", **settings})
    argv = [sys.executable, "-m", "generation.server", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    return Replica(f"generation-{index}", argv, env, workdir / f"generation-{index}.log",
                   f"{url}/health", url)  # fmt: skip


def bot_replica(
    index: int,
    workdir: Path,
    *,
    telegram_url: str,
    proxy_url: str,
    database_url: str,
    redis_url: str,
    generation_urls: list[str],
    settings: Mapping[str, str],
) -> Replica:
    port = free_port()
    env = child_env(
        {
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": telegram_url,
            "WEBHOOK_URL": proxy_url,
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_HOST": "127.0.0.1",
            "WEBHOOK_PORT": str(port),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "GENERATION_URL": ",".join(generation_urls),
            **settings,
        }
    )
    argv = [sys.executable, "-m", "bot", "--webhook", "--log-level", "INFO"]
    url = f"http://127.0.0.1:{port}"
    return Replica(f"bot-{index}", argv, env, workdir / f"bot-{index}.log", f"{url}/healthz", url)


@dataclass
class Stores:
    """PostgreSQL (one fresh database) and Redis, both thrown away at the end."""

    postgres: PostgresServer
    redis: RedisServer
    database_url: str

    @classmethod
    def start(cls) -> Stores:
        postgres = start_postgres()
        binary = shutil.which("redis-server")
        if binary is None:
            postgres.stop("immediate")
            raise RuntimeError("redis-server is not installed: run scripts/setup-system.sh")
        redis = RedisServer(Path(tempfile.mkdtemp(prefix="redis-bench-")), free_port(), binary)
        redis.start()
        return cls(postgres, redis, postgres.new_database())

    def migrate(self) -> None:
        """`python -m storage.upgrade` once, as the compose file's `migrate` service does."""
        subprocess.run(
            [sys.executable, "-m", "storage.upgrade", "--database-url", self.database_url],
            cwd=ROOT, env=child_env({}), check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def close(self) -> None:
        self.redis.stop()
        shutil.rmtree(self.redis.root, ignore_errors=True)
        self.postgres.stop("immediate")
        shutil.rmtree(self.postgres.root, ignore_errors=True)
