"""Replicas on one machine: two bot replicas in webhook mode, PostgreSQL, Redis and two generation
servers, driven by simulated users through the local Bot API server.

    python -m bench.scale                          # 200 users, 3 minutes
    python -m bench.scale --kill                   # and SIGKILL a bot and a generation replica
    python -m bench.scale --users 5 --seconds 10 --gpt-model DIR --set BEST_OF_N=false

What runs (docker-compose.scale.yml's layout, as processes): PostgreSQL and Redis as
tests/servers.py starts them (one fresh database, migrated once by `python -m storage.upgrade`);
`--generation` servers (`python -m generation.server`, one torch thread each, DiffuSeq off);
`--bots` replicas (`python -m bot --webhook`, `GENERATION_URL` listing every generation server,
`DEFAULT_METHOD=--method`); and, in this process, the local Bot API server, which POSTs every
update to ONE URL: a round-robin proxy (bench/proxy.py, standing in for nginx) in front of the
bot replicas, passing a request to the next replica on a connection error, a timeout or a 502/503.

The users (bench/scale_users.py) write words, vote (sometimes twice) and press 🔁 for `--minutes`.
With `--kill`, at `--kill-at` of the run one bot replica and one generation server are SIGKILLed
(no grace), and started again `--down` seconds later; the users go on meanwhile.

Reported: jokes/s, p50/p95 answer time (joke, apology with 🔁, or "busy"), per phase; and the
checks (bench/scale_checks.py): every acknowledged vote stored as acknowledged in PostgreSQL
(0 lost, 0 applied twice), no update applied twice, every update confirmed, every user answered
(after the kill too). The exit code is 1 if any check failed. The machine load (`uptime`) is
printed at the start and the end. Results: docs/BENCHMARKS.md ("Replicas").
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import bench_parser, command_line, machine, machine_line  # noqa: E402
from bench.proxy import RoundRobinProxy  # noqa: E402
from bench.scale_cluster import TOKEN, Replica, Stores, bot_replica, generation_replica  # noqa: E402
from bench.scale_report import report  # noqa: E402
from bench.scale_users import Tally, run_users  # noqa: E402
from local_telegram import LocalBotApi  # noqa: E402
from tests.servers import free_port  # noqa: E402


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


class Cluster:
    """Every process of the run, started in order and stopped in reverse."""

    def __init__(self, args: Any, workdir: Path, api: LocalBotApi, stores: Stores) -> None:
        self.args, self.workdir, self.api, self.stores = args, workdir, api, stores
        settings = dict(item.split("=", 1) for item in args.set)
        if args.gpt_model:
            settings["GPT_MODEL"] = str(args.gpt_model)
        self.generation = [
            generation_replica(n, workdir, settings) for n in range(args.generation)
        ]
        self.bots: list[Replica] = []
        self.proxy: RoundRobinProxy | None = None
        self.settings = settings
        self.loads: list[float] = []
        self.killed_at: float | None = None

    async def start(self) -> None:
        for replica in self.generation:  # the bots ask for the methods until one answers
            await replica.start()
        proxy_url = f"http://127.0.0.1:{free_port()}"
        bot_settings = {
            "DEFAULT_METHOD": self.args.method,
            "GENERATION_TIMEOUT_S": str(self.args.timeout),
            **self.settings,
        }
        self.bots = [
            bot_replica(
                n,
                self.workdir,
                telegram_url=self.api.url,
                proxy_url=proxy_url,
                database_url=self.stores.database_url,
                redis_url=self.stores.redis.url,
                generation_urls=[r.base_url for r in self.generation],
                settings=bot_settings,
            )
            for n in range(self.args.bots)
        ]
        self.proxy = RoundRobinProxy(
            [r.base_url for r in self.bots], port=int(proxy_url.rsplit(":", 1)[1])
        )
        await self.proxy.start()
        for replica in self.bots:
            await replica.start()
        await asyncio.gather(*(r.wait_ready() for r in [*self.generation, *self.bots]))
        await self.api.wait_until(lambda: self.api.webhooks.active, 30, "the webhook")

    async def kill_and_restart(self, at: float, down: float) -> float:
        """SIGKILL the last bot replica and the last generation server at `at` (monotonic);
        start both again `down` seconds later; returns when they were killed."""
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        victims = [self.bots[-1], self.generation[-1]]
        for victim in victims:
            victim.kill()
        killed_at = self.killed_at = time.monotonic()
        print(f"killed {', '.join(v.name for v in victims)}; {uptime()}", flush=True)
        await asyncio.sleep(down)
        for victim in victims:
            await victim.proc.wait()  # type: ignore[union-attr]
            await victim.start()
        await asyncio.gather(*(v.wait_ready() for v in victims))
        print(f"restarted {', '.join(v.name for v in victims)}", flush=True)
        return killed_at

    async def sample_load(self) -> None:
        while True:
            self.loads.append(os.getloadavg()[0])
            await asyncio.sleep(10)

    async def stop(self) -> dict[str, int | None]:
        codes = {}
        for replica in [*self.bots, *self.generation]:
            codes[replica.name] = await replica.stop()
        if self.proxy is not None:
            await self.proxy.close()
        return codes


async def drive(cluster: Cluster, api: LocalBotApi, tally: Tally) -> dict[str, Any]:
    """The users' run (and the kill); then wait until every update is confirmed."""
    args = cluster.args
    seconds = args.seconds or args.minutes * 60
    sampler = asyncio.create_task(cluster.sample_load())
    began = time.monotonic()
    users = await run_users(api, args.users, seconds, args.seed, tally,
                            think=args.think, reply_timeout=args.timeout + 15)  # fmt: skip
    killer = (
        asyncio.create_task(cluster.kill_and_restart(began + seconds * args.kill_at, args.down))
        if args.kill else None
    )  # fmt: skip
    await asyncio.gather(*users)
    ended = time.monotonic()
    if killer is not None:
        await killer  # the restarted replicas are up, or it raises
    deadline = time.monotonic() + 60
    while api.pending and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)  # the last votes' commits
    sampler.cancel()
    return {"began": began, "ended": ended, "killed_at": cluster.killed_at, "loads": cluster.loads}


async def scale(args: Any) -> dict[str, Any]:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stores = Stores.start()
    try:
        stores.migrate()
        async with LocalBotApi(token=TOKEN, callback_timeout_s=30) as api:
            cluster = Cluster(args, workdir, api, stores)
            tally = Tally()
            try:
                await cluster.start()
                print(f"started; {uptime()}", flush=True)
                run = await drive(cluster, api, tally)
                run["uptime_end"] = uptime()
                result = report(args, api, stores.database_url, tally, run, cluster)
            finally:
                result_codes = await cluster.stop()
            result["exit codes"] = result_codes
            result["workdir"] = str(workdir)
            return result
    finally:
        stores.close()


def parse_args(argv: list[str] | None = None) -> Any:
    parser = bench_parser("bench.scale", __doc__)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=3.0, help="how long the users go on")
    parser.add_argument("--seconds", type=float, default=0.0, help="overrides --minutes")
    parser.add_argument("--kill", action="store_true", help="SIGKILL a bot and a generation "
                        "replica mid-run, then start them again")  # fmt: skip
    parser.add_argument("--kill-at", type=float, default=0.2, help="share of the run, default 0.2")
    parser.add_argument("--down", type=float, default=15.0, help="seconds before the restart")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bots", type=int, default=2)
    parser.add_argument("--generation", type=int, default=2)
    parser.add_argument("--method", default="gpt-sample", help="DEFAULT_METHOD of the bots")
    parser.add_argument("--think", type=float, default=5.0, help="mean pause between words, s")
    parser.add_argument("--timeout", type=float, default=30.0, help="GENERATION_TIMEOUT_S")
    parser.add_argument("--gpt-model", type=Path, help="GPT folder (default: the shipped one)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for every bot and generation replica")  # fmt: skip
    parser.add_argument("--workdir", help="logs go here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print(f"`{command_line('bench.scale', argv)}`\n\n{machine_line(info)}\n{uptime()}", flush=True)
    result = asyncio.run(scale(args))
    print(result.pop("markdown"))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
