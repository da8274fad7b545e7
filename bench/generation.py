"""Generation throughput: the original per-request pipeline vs our service under concurrency.

    python -m bench.generation [--quick] [--models random,shipped] [--repeats N] [--threads T]
        [--ablation]

For each model — (a) `random`: a GPT-2 with ruGPT3-small's architecture and random weights, built
in a temp folder (bench/models.py), (b) `shipped`: models/gpt — it measures, in one run:

* the original project's way: `transformers.pipeline("text-generation")` called once per request,
  one request after the other, with `num_beams=10, no_repeat_ngram_size=2,
  num_return_sequences=3, max_length=20` (and its ignored top_k/top_p/temperature), first of the
  three returns shown;
* our `GenerationService` with its defaults (int8 weights, the fast KV-cache decoder,
  micro-batching) for `gpt-sample` and `gpt` (beam), with 1, 8 and 32 concurrent users; every user
  sends a request, waits for its joke and sends the next.

Both use the same token budget as the original (`max_length=20`, prompt tokens included) so the
work per joke is the same; `--ablation` adds our service with float32 weights, to show what int8
brings. Each system runs in its own process (peak RSS is its
own); with `--repeats N` the systems are interleaved N times and medians are reported.
Not a test: numbers depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    WORDS,
    command_line,
    machine,
    median,
    peak_rss_mb,
    percentile,
    print_report,
    quiet_logs,
    rss_mb,
    run_child,
)
from bench.models import rows_per_model

ORIGINAL_KWARGS = {
    "max_length": 20,
    "num_return_sequences": 3,
    "num_beams": 10,
    "no_repeat_ngram_size": 2,
    "top_k": 50,
    "top_p": 0.95,
    "temperature": 0.6,
}
CONCURRENCY = (1, 8, 32)
METHODS = ("gpt-sample", "gpt")
HEADER = [
    "model", "system", "concurrent requests", "jokes/s", "p50 s", "p95 s", "peak RSS MB",
    "RSS at end MB", "× original jokes/s", "mean rows per model call",
]  # fmt: skip


# -- children --------------------------------------------------------------------------------------


def child_original(spec: dict[str, Any]) -> dict[str, Any]:
    """The original: one `pipeline(...)` call per request, sequentially."""
    import torch
    from transformers import GenerationConfig, pipeline

    torch.set_num_threads(spec["threads"])
    pipe = pipeline("text-generation", model=spec["model"], tokenizer=spec["model"], device="cpu")
    tok = pipe.tokenizer
    # A plain hub model's generation config: our shipped one carries sampling defaults.
    pipe.model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    pipe(WORDS[0], **ORIGINAL_KWARGS)  # warm-up, as a fair start
    latencies = []
    started = time.perf_counter()
    for index in range(spec["requests"]):
        t = time.perf_counter()
        out = pipe(WORDS[index % len(WORDS)], **ORIGINAL_KWARGS)
        latencies.append(time.perf_counter() - t)
        assert out[0]["generated_text"]
    wall = time.perf_counter() - started
    return {
        "runs": {
            "1": {
                "jokes_per_s": len(latencies) / wall,
                "p50": percentile(latencies, 50),
                "p95": percentile(latencies, 95),
                "requests": len(latencies),
            }
        },
        "peak_rss_mb": peak_rss_mb(),
        "rss_mb": rss_mb(),
    }


def child_service(spec: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_service(spec))


async def _service(spec: dict[str, Any]) -> dict[str, Any]:
    service, ready_s = await _start_service(spec)
    calls = _count_rows(service.registry.backend(spec["method"]))
    runs: dict[str, Any] = {}
    try:
        for users in spec["concurrency"]:
            calls.clear()
            runs[str(users)] = await _users(service, spec, users, calls)
    finally:
        await service.stop()
    return {"runs": runs, "peak_rss_mb": peak_rss_mb(), "rss_mb": rss_mb(), "ready_s": ready_s}


async def _start_service(spec: dict[str, Any]) -> tuple[Any, float]:
    """The service with its defaults, the original's token budget and no best-of-N selector;
    started (models loaded and warmed up). Returns it and how long starting took."""
    from generation.registry import build_registry
    from generation.service import GenerationService

    registry = build_registry(
        None,
        gpt_model=spec["model"],
        enable_diffuseq=False,
        torch_threads=spec["threads"],
        gpt_max_new_tokens=0,  # the original's max_length budget: same work per joke
        gpt_max_length=ORIGINAL_KWARGS["max_length"],
        **spec.get("config", {}),
    )
    service = GenerationService(
        registry, queue_depth=256, timeout_s=3600, torch_threads=spec["threads"]
    )
    started = time.perf_counter()
    await service.start()
    return service, time.perf_counter() - started


def _count_rows(backend: Any) -> list[int]:
    """Wrap `backend.generate` to note the rows of every model call; returns the list."""
    calls: list[int] = []
    original_generate = backend.generate

    def counting(prompts: Any, params: Any, seeds: Any) -> list[str]:
        calls.append(len(prompts))
        return original_generate(prompts, params, seeds)

    backend.generate = counting
    return calls


async def _users(
    service: Any, spec: dict[str, Any], users: int, calls: list[int]
) -> dict[str, Any]:
    """`users` users at once, each sending its requests one after the other."""
    from generation.types import GenerationRequest

    rounds = spec["rounds"] if users > 1 else spec["single_requests"]
    latencies: list[float] = []
    failures = 0

    async def user(uid: int) -> None:
        nonlocal failures
        for r in range(rounds):
            word = WORDS[(uid * 7 + r) % len(WORDS)]
            seed = None if spec["method"] == "gpt" else uid * 1000 + r  # gpt: best beam
            request = GenerationRequest(word, spec["method"], seed=seed)
            t = time.perf_counter()
            try:
                await service.generate(request)
            except Exception:  # counted and reported
                failures += 1
            latencies.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(user(uid) for uid in range(users)))
    wall = time.perf_counter() - t0
    return {
        "jokes_per_s": (len(latencies) - failures) / wall,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "requests": len(latencies),
        "failures": failures,
        "mean_batch": sum(calls) / len(calls) if calls else 0.0,
    }


# -- parent ----------------------------------------------------------------------------------------


def systems(args: argparse.Namespace) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": "original pipeline (beam 10, 3 returns)", "kind": "original"}
    ]
    configs = [("ours", {})]
    if args.ablation:
        configs.append(("ours, float32", {"gpt_quantize": "none"}))
    for label, config in configs:
        for method in METHODS:
            out.append(
                {
                    "name": f"{label}: {method}",
                    "kind": "service",
                    "method": method,
                    "config": config,
                }
            )
    return out


def measure_model(label: str, folder: Path, args: argparse.Namespace) -> list[list[Any]]:
    plan = systems(args)
    results: dict[str, list[dict[str, Any]]] = {system["name"]: [] for system in plan}
    for repeat in range(args.repeats):
        for system in plan:
            spec = {
                "model": str(folder),
                "threads": args.threads,
                "requests": 3 if args.quick else 8,
                "single_requests": 4 if args.quick else 10,
                "rounds": 1 if args.quick else 2,
                "concurrency": list(CONCURRENCY),
            }
            if system["kind"] == "original":
                spec["task"] = "original"
            else:
                spec.update(task="service", method=system["method"], config=system["config"])
            print(f"[{label} {repeat + 1}/{args.repeats}] {system['name']}", file=sys.stderr)
            results[system["name"]].append(run_child("bench.generation", spec))
    original_runs = results[plan[0]["name"]]
    base = median([r["runs"]["1"]["jokes_per_s"] for r in original_runs])
    rows: list[list[Any]] = []
    for system in plan:
        runs = results[system["name"]]
        rss = median([r["peak_rss_mb"] for r in runs])
        rss_end = median([r["rss_mb"] for r in runs])
        levels = ["1"] if system["kind"] == "original" else [str(c) for c in CONCURRENCY]
        for level in levels:
            jps = median([r["runs"][level]["jokes_per_s"] for r in runs])
            rows.append(
                [
                    label,
                    system["name"],
                    level if system["kind"] != "original" else "1 (sequential)",
                    jps,
                    median([r["runs"][level]["p50"] for r in runs]),
                    median([r["runs"][level]["p95"] for r in runs]),
                    rss,
                    rss_end,
                    f"{jps / base:.1f}×" if base else "–",
                    median([r["runs"][level].get("mean_batch", 1.0) for r in runs]),
                ]
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generation", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--models", default="random,shipped")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        quiet_logs()
        spec = json.loads(args.child)
        child = child_original if spec["task"] == "original" else child_service
        print(json.dumps(child(spec)))
        return 0

    info = machine()
    quiet_logs()
    rows = rows_per_model(
        args.models, "bench-gpt-", lambda label, folder: measure_model(label, folder, args)
    )
    print_report(command_line("bench.generation", argv), info, args.threads, HEADER, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
