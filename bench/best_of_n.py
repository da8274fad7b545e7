"""What best of N costs: one joke alone and 32 users at once, best of N against one candidate.

    python -m bench.best_of_n [--methods gpt gpt-sample diffuseq] [--single 20] [--rounds 2]

For each method the bot is served twice, each in its own process, from the shipped settings
(`Settings`: models, presets, N per method, checks, judge): once as configured and once with
`BEST_OF_N=false` (one candidate per joke, the post-processor's checks only). Each run times
`--single` requests sent one after the other (what one user waits: p50, p95) and then 32 users
who each send `--rounds` requests, waiting for each joke (jokes per second, p50 under load).
Starting words come from `bench/common.WORDS`. Not a test: the figures depend on the machine and
on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from bench.common import WORDS, command_line, machine, percentile, print_report, run_child

USERS = 32
HEADER = ["method", "selection", "1 user p50 s", "1 user p95 s", "32 users jokes/s",
          "32 users p50 s", "apologies"]  # fmt: skip


def child(spec: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_serve(spec))


async def _serve(spec: dict[str, Any]) -> dict[str, Any]:
    from generation.registry import build_registry
    from generation.service import GenerationService
    from generation.types import GenerationError, GenerationRequest
    from settings import Settings

    config = Settings().generation(enable_diffuseq=spec["method"] == "diffuseq")
    registry = build_registry(config)
    service = GenerationService.from_config(
        registry, config, preload=[spec["method"]], queue_depth=512, timeout_s=600
    )
    await service.start()
    method = spec["method"]
    deterministic = registry.method(method).deterministic

    failures = 0

    async def one(word: str, seed: int) -> float:
        nonlocal failures
        request = GenerationRequest(word, method, seed=None if deterministic else seed)
        started = time.perf_counter()
        try:
            await service.generate(request)
        except GenerationError:  # an apology, not a joke: counted, and its time still counts
            failures += 1
        return time.perf_counter() - started

    try:
        single = [await one(WORDS[i % len(WORDS)], i) for i in range(spec["single"])]
        loaded: list[float] = []

        async def user(uid: int) -> None:
            for r in range(spec["rounds"]):
                loaded.append(await one(WORDS[(uid * 7 + r) % len(WORDS)], 1000 * uid + r))

        t0 = time.perf_counter()
        await asyncio.gather(*(user(uid) for uid in range(USERS)))
        wall = time.perf_counter() - t0
    finally:
        await service.stop()
    return {
        "status": service.selection_status,
        "p50": percentile(single, 50),
        "p95": percentile(single, 95),
        "jokes_per_s": len(loaded) / wall,
        "p50_loaded": percentile(loaded, 50),
        "failures": failures,
        "requests": len(single) + len(loaded),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.best_of_n", description=__doc__)
    ap.add_argument("--methods", nargs="+", default=["gpt", "gpt-sample", "diffuseq"])
    ap.add_argument("--single", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    rows = []
    for method in args.methods:
        for best in (True, False):
            spec = {"method": method, "single": args.single, "rounds": args.rounds}
            env = {"BEST_OF_N": "true" if best else "false"}
            result = run_child("bench.best_of_n", spec, env=env)
            rows.append(
                [
                    method,
                    result["status"],
                    f"{result['p50']:.3f}",
                    f"{result['p95']:.3f}",
                    f"{result['jokes_per_s']:.1f}",
                    f"{result['p50_loaded']:.2f}",
                    f"{result['failures']}/{result['requests']}",
                ]
            )
            print(f"{method} best_of_n={best}: {result}", file=sys.stderr, flush=True)
    print_report(command_line("bench.best_of_n", argv), machine(), None, HEADER, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
