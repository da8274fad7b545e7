"""DiffuSeq throughput and latency through our service, by denoising steps and concurrency.

    python -m bench.diffuseq [--quick] [--model models/diffuseq | random] [--threads T]
        [--steps 10,20,100] [--full-requests N]

For each number of denoising steps (10, 20, 100 with the default DPM-Solver sampler; 2000 =
DiffuSeq's full ancestral chain, measured on `--full-requests` requests only), N users (1, 8, 32)
each send a request and wait for the joke, then send the next; the service batches what arrives
together. Without a shipped models/diffuseq a random-weight model of the trainer's "gpu" preset is
built in a temp folder (speed does not depend on the weights). Each steps setting runs in its own
process. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    WORDS,
    machine,
    machine_line,
    peak_rss_mb,
    percentile,
    quiet_logs,
    run_child,
    table,
)
from settings import ROOT

CONCURRENCY = (1, 8, 32)
FULL_STEPS = 2000


def child(spec: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_service(spec))


async def _service(spec: dict[str, Any]) -> dict[str, Any]:
    from generation.registry import DIFFUSEQ, build_registry
    from generation.service import GenerationService
    from generation.types import GenerationRequest

    registry = build_registry(
        None,
        gpt_model=str(ROOT / "models" / "gpt"),
        diffuseq_model=spec["model"],
        diffuseq_steps=spec["steps"],
        diffuseq_sampler=spec["sampler"],
        torch_threads=spec["threads"],
    )
    service = GenerationService(
        registry,
        queue_depth=256,
        timeout_s=36000,
        torch_threads=spec["threads"],
        preload=[DIFFUSEQ],
    )
    await service.start()
    runs: dict[str, Any] = {}
    try:
        for users, rounds in spec["plan"]:
            latencies: list[float] = []

            async def user(uid: int, rounds: int = rounds, out: list[float] = latencies) -> None:
                for r in range(rounds):
                    word = WORDS[(uid * 7 + r) % len(WORDS)]
                    t = time.perf_counter()
                    await service.generate(GenerationRequest(word, DIFFUSEQ, seed=uid * 100 + r))
                    out.append(time.perf_counter() - t)

            t0 = time.perf_counter()
            await asyncio.gather(*(user(uid) for uid in range(users)))
            wall = time.perf_counter() - t0
            runs[str(users)] = {
                "jokes_per_s": len(latencies) / wall,
                "p50": percentile(latencies, 50),
                "p95": percentile(latencies, 95),
                "requests": len(latencies),
            }
    finally:
        await service.stop()
    return {"runs": runs, "peak_rss_mb": peak_rss_mb()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.diffuseq", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", default=str(ROOT / "models" / "diffuseq"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", default="10,20,100")
    parser.add_argument("--full-requests", type=int, default=1, help="0 skips the 2000 steps")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        quiet_logs()
        print(json.dumps(child(json.loads(args.child))))
        return 0
    info = machine()
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-dseq-") as tmp:
        folder = Path(args.model)
        label = str(folder)
        if args.model == "random" or not (folder / "config.json").is_file():
            from bench.models import build_diffuseq_like

            quiet_logs()
            folder = build_diffuseq_like(Path(tmp) / "diffuseq")
            label = "random DiffuSeq, trainer preset 'gpu' (8 x 384)"
        rounds = 1 if args.quick else 2
        plans: list[tuple[int, str, list[tuple[int, int]]]] = [
            (int(s), "dpm", [(1, 2 if args.quick else 4)] + [(c, rounds) for c in CONCURRENCY[1:]])
            for s in args.steps.split(",")
        ]
        if args.full_requests:
            plans.append((FULL_STEPS, "ancestral", [(1, args.full_requests)]))
        for steps, sampler, plan in plans:
            print(f"[diffuseq] {steps} steps ({sampler})", file=sys.stderr)
            spec = {
                "model": str(folder),
                "steps": steps,
                "sampler": sampler,
                "threads": args.threads,
                "plan": plan,
            }
            result = run_child("bench.diffuseq", spec, timeout=7200)
            for users, run in result["runs"].items():
                rows.append(
                    [
                        f"{steps} ({sampler})",
                        users,
                        run["requests"],
                        run["jokes_per_s"],
                        run["p50"],
                        run["p95"],
                        result["peak_rss_mb"],
                    ]
                )
    command = "python -m bench.diffuseq " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"`{command.strip()}`\n")
    print(machine_line(info, args.threads))
    print(f"\nModel: {label}.\n")
    header = [
        "steps",
        "concurrent requests",
        "requests",
        "jokes/s",
        "p50 s",
        "p95 s",
        "peak RSS MB",
    ]
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
