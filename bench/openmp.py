"""How OpenMP worker threads wait, and what it does to decoding: quiet and next to a busy process.

    python -m bench.openmp

For each setting (the service's default OMP_WAIT_POLICY=PASSIVE, GOMP_SPINCOUNT=10000, libgomp's
own default) a fresh process loads the shipped GPT (int8, 2 threads) and times a `gpt-sample`
batch of 32 words with 20 new tokens (median of 5) and one word alone (median of 8); then the same
with one `while True: pass` process beside it. The runtime reads these variables when torch loads,
hence one process per setting. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench.common import WORDS, bench_parser, machine, print_report
from bench.models import gpt_presets_with, served_gpt
from settings import ROOT

SETTINGS = {
    "OMP_WAIT_POLICY=PASSIVE (default)": {"OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
    "libgomp's default": {},
}
HEADER = [
    "OpenMP waiting", "quiet: batch 32 s", "quiet: 1 word s",
    "busy neighbour: batch 32 s", "busy neighbour: 1 word s",
]  # fmt: skip


def child() -> None:
    import torch

    torch.set_num_threads(2)
    backend = served_gpt(ROOT / "models" / "gpt")
    params = dict(gpt_presets_with(gpt_max_new_tokens=20)["gpt-sample"])
    words = (WORDS * 4)[:32]
    batch, single = [], []
    for r in range(5):
        started = time.perf_counter()
        backend.generate(words, params, list(range(r * 32, r * 32 + 32)))
        batch.append(time.perf_counter() - started)
    for r in range(8):
        started = time.perf_counter()
        backend.generate([WORDS[r]], params, [r])
        single.append(time.perf_counter() - started)
    print(json.dumps({"batch": statistics.median(batch), "single": statistics.median(single)}))


def measure(extra: dict[str, str]) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(extra)
    out = subprocess.run(
        [sys.executable, "-m", "bench.openmp", "--child"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser("bench.openmp", __doc__)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child()
        return 0
    info = machine()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for load in ("quiet", "busy"):
        busy = None
        if load == "busy":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for name, extra in SETTINGS.items():
                print(f"[{load}] {name}", file=sys.stderr)
                results.setdefault(name, {})[load] = measure(extra)
        finally:
            if busy is not None:
                busy.kill()
    rows = [
        [name, r["quiet"]["batch"], r["quiet"]["single"], r["busy"]["batch"], r["busy"]["single"]]
        for name, r in results.items()
    ]
    print_report("python -m bench.openmp", info, 2, HEADER, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
