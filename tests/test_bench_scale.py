"""`python -m bench.scale`'s pieces: the round-robin proxy standing in for nginx passes a request
over a dead or refusing replica, and a tiny whole run (two bot replicas in webhook mode, a
generation server with the tiny GPT, PostgreSQL and Redis; five users for a few seconds) passes
its own checks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.proxy import RoundRobinProxy
from bench.scale import parse_args, scale
from tests.servers import free_port


async def upstream(status: int, seen: Counter[str], name: str) -> web.AppRunner:
    async def answer(request: web.Request) -> web.Response:
        seen[name] += 1
        body = await request.json()
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        return web.json_response({"by": name, "got": body, "secret": secret}, status=status)

    app = web.Application()
    app.router.add_post("/telegram", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def url_of(runner: web.AppRunner) -> str:
    return f"http://127.0.0.1:{runner.addresses[0][1]}"


async def test_the_proxy_passes_over_a_dead_and_a_refusing_replica() -> None:
    seen: Counter[str] = Counter()
    live = await upstream(200, seen, "live")
    stopping = await upstream(503, seen, "stopping")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    try:
        async with (
            RoundRobinProxy([dead, url_of(stopping), url_of(live)]) as proxy,
            aiohttp.ClientSession() as http,
        ):
            for n in range(6):
                async with http.post(
                    f"{proxy.url}/telegram",
                    json={"update_id": n},
                    headers={"X-Telegram-Bot-Api-Secret-Token": "s"},
                ) as response:
                    assert response.status == 200
                    assert await response.json() == {
                        "by": "live", "got": {"update_id": n}, "secret": "s",
                    }  # fmt: skip
            assert seen["live"] == 6 and 0 < seen["stopping"] < 6
            assert proxy.counts["forwarded"] == 6
            assert proxy.counts["connection error or timeout"] > 0
    finally:
        await live.cleanup()
        await stopping.cleanup()


async def test_the_proxy_answers_502_when_no_replica_answers() -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    async with (
        RoundRobinProxy(dead) as proxy,
        aiohttp.ClientSession() as http,
        http.post(f"{proxy.url}/telegram", json={}) as response,
    ):
        assert response.status == 502
    assert proxy.counts["every upstream failed"] == 1


async def test_a_tiny_run_passes_its_checks(tiny_gpt_dir: Path, tmp_path: Path) -> None:
    args = parse_args(
        [
            "--users", "5", "--seconds", "6", "--think", "0.5", "--generation", "1",
            "--gpt-model", str(tiny_gpt_dir), "--workdir", str(tmp_path),
            "--set", "BEST_OF_N=false", "--set", "ENABLE_CLASSIC=false",
            "--set", "GPT_MAX_NEW_TOKENS=24",
            "--set", "THROTTLE_RATE_S=0",  # else a quick second word is refused, then silence
        ]
    )  # fmt: skip
    result = await scale(args)
    checks = result["checks"]
    assert result["ok"], result["failures"]
    assert result["exit codes"] == {"bot-0": 0, "bot-1": 0, "generation-0": 0}
    assert checks["users"] == 5 and checks["USERS WITHOUT AN ANSWER"] == 0
    assert checks["votes thanked"] > 0 and checks["of them stored"] == checks["votes thanked"]
    assert result["replies"]["joke"] > 0 and result["replies"].get("no reply", 0) == 0
    assert checks["APPLIED TWICE: callback queries answered twice"] == 0
    assert checks["UPDATES NOT CONFIRMED AT THE END"] == 0
    assert result["proxy"]["forwarded"] == checks["updates"]  # every update through the proxy
    logs = {p.name for p in tmp_path.iterdir()}
    assert {"bot-0.log", "bot-1.log", "generation-0.log"} <= logs
    # both replicas took updates
    assert all("Update id=" in (tmp_path / f"bot-{n}.log").read_text() for n in (0, 1))
