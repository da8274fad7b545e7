"""Model weights on 4 KB pages or on 2 MB transparent huge pages: a lever tried and not taken.

    python -m bench.huge_pages [--repeats 5] [--models random,shipped] [--requests 20]

glibc reads `GLIBC_TUNABLES` only when a process starts, so every measurement is a fresh process:
`glibc.malloc.hugetlb=0` (4 KB pages, the default) and `=1` (glibc backs its large allocations,
the int8 kernels' packed weights among them, with transparent huge pages; glibc >= 2.35, kernel
THP in "madvise" or "always" mode), taking turns, `--repeats` processes each. A process loads the
model as the bot does (int8, the fast decoder, 2 threads, OMP_WAIT_POLICY=PASSIVE), warms up, then
times `--requests` single `gpt-sample` requests one after another and one batch of 32, with the
original's token budget (`max_length=20`). Reported: medians over the processes of each one's
p50, the batch time, RSS and how much of the process sits on huge pages (AnonHugePages). The page
size changes no result, only time. Not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import WORDS, bench_parser, machine, median, print_report, run_child
from bench.models import ORIGINAL_BUDGET, gpt_presets_with, rows_per_model, served_gpt

SETTINGS = {
    "4 KB pages (default)": "glibc.malloc.hugetlb=0",
    "2 MB pages": "glibc.malloc.hugetlb=1",
}
HEADER = ["model", "pages", "1 request p50 s", "32 requests s", "RSS MB", "on huge pages MB",
          "single-request speed-up"]  # fmt: skip


def _smaps_kb(field: str) -> int:
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(spec: dict[str, Any]) -> dict[str, Any]:
    from generation.openmp import prefer_sleeping_openmp_threads

    prefer_sleeping_openmp_threads()  # as the service does, before torch loads
    import torch

    torch.set_num_threads(2)
    backend = served_gpt(spec["model"])
    params = gpt_presets_with(**ORIGINAL_BUDGET)["gpt-sample"]
    single: list[float] = []
    for r in range(spec["requests"]):
        started = time.perf_counter()
        backend.generate([WORDS[r % len(WORDS)]], params, [r])
        single.append(time.perf_counter() - started)
    words = (WORDS * 8)[:32]
    started = time.perf_counter()
    backend.generate(words, params, list(range(32)))
    batch = time.perf_counter() - started
    return {
        "single_p50": statistics.median(single),
        "batch32": batch,
        "rss_mb": _smaps_kb("Rss") / 1024,
        "huge_mb": _smaps_kb("AnonHugePages") / 1024,
    }


def measure(label: str, folder: Path, args: argparse.Namespace) -> list[list[object]]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SETTINGS}
    spec = {"model": str(folder), "requests": args.requests}
    for repeat in range(args.repeats):
        for name, tunable in SETTINGS.items():
            result = run_child("bench.huge_pages", spec, env={"GLIBC_TUNABLES": tunable})
            runs[name].append(result)
            print(f"[{label}] {repeat + 1}/{args.repeats} {name}: {result}", file=sys.stderr)
    rows: list[list[object]] = []
    base = median([r["single_p50"] for r in runs["4 KB pages (default)"]])
    for name in SETTINGS:
        p50 = median([r["single_p50"] for r in runs[name]])
        rows.append([
            label, name, p50, median([r["batch32"] for r in runs[name]]),
            median([r["rss_mb"] for r in runs[name]]), median([r["huge_mb"] for r in runs[name]]),
            f"{base / p50:.2f}×",
        ])  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        print(json.dumps(child(json.loads(argv[1]))))
        return 0
    parser = bench_parser("bench.huge_pages", __doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="random,shipped")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args(argv)
    info = machine()
    rows = rows_per_model(
        args.models, "bench-huge-pages-", lambda label, folder: measure(label, folder, args)
    )
    command = (
        f"python -m bench.huge_pages --repeats {args.repeats} --models {args.models} "
        f"--requests {args.requests}"
    )
    print_report(command, info, 2, HEADER, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
