"""The bot child of the soak test (`bench.soak`): `python -m bot`'s main() with a fake model, and
the parent's handle on it (start, SIGTERM, RSS).

The fake answers after SOAK_MODEL_DELAY_S seconds so that the soak run measures the bot, not the
model; SOAK_FAKE=0 keeps the real GPT (GPT_MODEL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the bot child imports this module too, and needs no server
    from local_telegram import LocalBotApi

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "100000:soak-test-token"


class _FakeModel:
    """Answers after `delay`; with probability `slow_rate` a call instead computes in torch for
    `slow_s` (past the joke's timeout: the user gets an apology, and a stop meanwhile finds the
    worker busy inside torch, as with a real model)."""

    model_id = "soak-fake"

    def __init__(self, delay: float, slow_rate: float = 0.0, slow_s: float = 0.0) -> None:
        self.delay = delay
        self.slow_rate = slow_rate
        self.slow_s = slow_s
        self.rng = random.Random(7)

    def warmup(self) -> None:
        pass

    def generate(self, prompts: Any, params: Any, seeds: Any) -> list[str]:
        if self.slow_rate and self.rng.random() < self.slow_rate:
            spin_torch(self.slow_s)
        else:
            time.sleep(self.delay)
        return [f"{p} — сказал кот. И ушёл спать." for p in prompts]


def spin_torch(seconds: float) -> None:
    """Compute in torch for `seconds`, checking for a stop between steps as the decoders do."""
    import torch

    from generation import interrupt

    matrix = torch.randn(256, 256)
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        interrupt.check()
        matrix = torch.tanh(matrix @ matrix)


def child() -> None:
    """`python -m bot`'s main() with the fake model unless GPT_MODEL is a real folder."""
    import bot.app
    from generation.registry import MethodRegistry

    if os.environ.get("SOAK_FAKE", "1") == "1":
        delay = float(os.environ.get("SOAK_MODEL_DELAY_S", "0.05"))
        slow_rate = float(os.environ.get("SOAK_SLOW_RATE", "0"))
        slow_s = float(os.environ.get("SOAK_SLOW_S", "0"))

        def registry(_settings: Any) -> MethodRegistry:
            reg = MethodRegistry()
            reg.add_backend("fake", _FakeModel(delay, slow_rate, slow_s))
            reg.add_method("gpt", "GPT", "fake", {"do_sample": False})
            reg.add_method("gpt-sample", "GPT (sampling)", "fake", {"do_sample": True})
            return reg

        bot.app.build_registry = registry  # type: ignore[assignment]
    from bot.__main__ import main

    sys.exit(main(["--log-level", os.environ.get("SOAK_LOG_LEVEL", "INFO")]))


class BotProcess:
    """The bot child: start, SIGTERM, RSS."""

    def __init__(self, api: LocalBotApi, workdir: Path, args: argparse.Namespace) -> None:
        self.api = api
        self.workdir = workdir
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None
        self.exit_codes: list[int] = []
        self.stop_seconds: list[float] = []
        self.starts = 0
        self.rss: list[dict[str, Any]] = []  # per process: MB after start, before stop, peak

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "DATABASE_"))}
        env.update(
            BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=self.api.url,
            DATABASE_URL=f"sqlite+aiosqlite:///{self.workdir / 'jokes.db'}",
            ENABLE_DIFFUSEQ="false",
            SHUTDOWN_GRACE_S="10",
            GENERATION_TIMEOUT_S=str(self.args.timeout),
            PYTHONPATH=str(ROOT),
            SOAK_MODEL_DELAY_S=str(self.args.model_delay),
            SOAK_SLOW_RATE=str(self.args.slow_rate),
            SOAK_SLOW_S=str(self.args.slow_s),
            SOAK_FAKE="0" if self.args.gpt_model else "1",
        )
        if self.args.gpt_model:
            env["GPT_MODEL"] = str(self.args.gpt_model)
        return env

    async def start(self) -> None:
        log = (self.workdir / "bot.log").open("a")
        polls = len(self.api.calls_of("getUpdates"))
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import bench.soak_bot as s; s.child()",
            cwd=ROOT, env=self.env(), stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        self.starts += 1
        deadline = time.monotonic() + 180
        while len(self.api.calls_of("getUpdates")) <= polls and self.api._waiting_polls == 0:
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bot did not start; see {self.workdir / 'bot.log'}")
            await asyncio.sleep(0.1)
        self.rss.append({"start": self.rss_mb(), "samples": []})

    async def sample_rss(self, every: float = 15.0) -> None:
        """RSS of the running process every `every` seconds (to see a trend, not just ends)."""
        while True:
            await asyncio.sleep(every)
            if self.rss and (mb := self.rss_mb()) is not None:
                self.rss[-1]["samples"].append(mb)

    async def stop(self) -> None:
        assert self.proc is not None
        if self.rss:
            self.rss[-1].update(end=self.rss_mb(), peak=self.rss_mb("VmHWM"))
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        self.stop_seconds.append(round(time.monotonic() - began, 2))
        self.exit_codes.append(code)

    def rss_mb(self, key: str = "VmRSS") -> float | None:
        if self.proc is None or self.proc.returncode is not None:
            return None
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
        return None
