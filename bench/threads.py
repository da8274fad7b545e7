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

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import WORDS, machine, machine_line, table
from bench.models import gpt_models

CASES = [("gpt-sample", 1), ("gpt-sample", 8), ("gpt-sample", 32), ("gpt", 1), ("gpt", 8),
         ("gpt", 32)]  # fmt: skip


def measure(folder: Path, label: str, repeats: int) -> list[list[object]]:
    from generation.gpt.backend import GptBackend
    from generation.registry import RegistryConfig, gpt_presets

    backend = GptBackend.from_pretrained(folder, quantize="int8")
    backend.warmup()
    presets = gpt_presets(RegistryConfig(gpt_max_new_tokens=0, gpt_max_length=20))
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
    parser = argparse.ArgumentParser(
        prog="python -m bench.threads",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="random,shipped")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from generation.service import prefer_sleeping_openmp_threads

    prefer_sleeping_openmp_threads()  # as the service does, before torch loads
    import torch

    torch.set_num_threads(args.threads)
    info = machine()
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-threads-") as tmp:
        for label, folder in gpt_models(args.models, Path(tmp)):
            rows += measure(folder, label, args.repeats)
    print(f"`python -m bench.threads --repeats {args.repeats} --models {args.models}`\n")
    print(machine_line(info, args.threads) + "\n")
    header = ["model", "one thread below (rows)", "method", "prompts in one call",
              "all threads s", "default: small calls on one thread s", "speed-up"]  # fmt: skip
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
