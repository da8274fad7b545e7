"""Small decoding steps on one thread or on all: `GPT_ONE_THREAD_BELOW_ROWS` A/B.

    python -m bench.threads [--repeats 3] [--models random,shipped] [--threads 2]

One process (so one OpenMP wait policy: the service's PASSIVE unless OMP_WAIT_POLICY is set)
loads each model with int8 weights and the fast decoder, then times `gpt-sample` and `gpt` (beam
10) for 1, 8 and 32 prompts with the original's token budget (`max_length=20`), switching
`one_thread_below_rows` between 0 (every step on all threads, the old behaviour) and the default
(model calls with fewer rows than the model's size gives run on one thread), interleaved, medians
over the repeats. The two settings give the same jokes (tests/test_quantize.py), so only time is
compared. Not a test.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from bench.common import WORDS, bench_parser, machine, print_report
from bench.models import ORIGINAL_BUDGET, gpt_presets_with, rows_per_model, served_gpt

CASES = [("gpt-sample", 1), ("gpt-sample", 8), ("gpt-sample", 32), ("gpt", 1), ("gpt", 8),
         ("gpt", 32)]  # fmt: skip
HEADER = ["model", "one thread below (rows)", "method", "prompts in one call", "all threads s",
          "default: small calls on one thread s", "speed-up"]  # fmt: skip


def measure(label: str, folder: Path, repeats: int) -> list[list[object]]:
    backend = served_gpt(folder)
    presets = gpt_presets_with(**ORIGINAL_BUDGET)
    default = backend.fast.one_thread_below_rows
    settings = (0, default)
    rows: list[list[object]] = []
    for method, count in CASES:
        words = (WORDS * 8)[:count]
        times: dict[int, list[float]] = {below: [] for below in settings}
        for repeat in range(repeats):
            for below in settings:
                backend.fast.one_thread_below_rows = below
                seeds = list(range(repeat * count, (repeat + 1) * count))
                started = time.perf_counter()
                backend.generate(words, presets[method], seeds)
                times[below].append(time.perf_counter() - started)
        before, after = (statistics.median(times[below]) for below in settings)
        print(f"[{label}] {method} x{count}: {before:.3f} s -> {after:.3f} s", file=sys.stderr)
        rows.append([label, default, method, count, before, after, f"{before / after:.2f}×"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser("bench.threads", __doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="random,shipped")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from generation.openmp import prefer_sleeping_openmp_threads

    prefer_sleeping_openmp_threads()  # as the service does, before torch loads
    import torch

    torch.set_num_threads(args.threads)
    info = machine()
    rows = rows_per_model(
        args.models,
        "bench-threads-",
        lambda label, folder: measure(label, folder, args.repeats),
    )
    command = f"python -m bench.threads --repeats {args.repeats} --models {args.models}"
    print_report(command, info, args.threads, HEADER, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
