"""DiffuSeq: clean-candidate rate and call cost for best-of-N, and service throughput.

    python -m bench.diffuseq --quality [--n 4,8,16] [--seeds 16] [--steps-q 10] [--sampler renoise]
        [--no-rules] [--threads 1] [--show 30]
    python -m bench.diffuseq [--quick] [--model models/diffuseq | random] [--threads T]
        [--steps 10,20,100] [--full-requests N]

`--quality` is the service's best-of-N request shape: one backend call of N rows (one starting
word, N seeds) per request, on the 40 words of bench.common.WORDS. Each candidate is checked the
way the service filters (every word known to pymorphy3 or seen 3+ times in the training jokes, no
word twice in a row, a sentence end before the model's end token); the table gives the share of
clean candidates, P(at least one clean of N) over words, and the ms per call of N rows. The first n
rows of a call are the n-row call (rows do not depend on their batch-mates), so one `--seeds`-row
call per word gives every smaller N; calls of each N are also timed on their own.

Without `--quality`:

For each number of denoising steps (10, 20, 100 with `--sampler`, by default the served
`renoise`; 2000 = DiffuSeq's full ancestral chain, measured on `--full-requests` requests only),
N users (1, 8, 32) each send a request and wait for the joke, then send the next; the service
batches what arrives together. Without a shipped models/diffuseq a random-weight model of the
trainer's "gpu" preset is built in a temp folder (speed does not depend on the weights). Each
steps setting runs in its own process. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from collections import Counter
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
_WORD = re.compile(r"[A-Za-zА-Яа-яЁё]+(?:-[A-Za-zА-Яа-яЁё]+)*")
_DOUBLE = re.compile(r"\b(\w+)\s+\1\b", re.IGNORECASE)
_END = re.compile(r"[.!?…][\"»)]*$")


class CleanCheck:
    """The service's filter, approximately, until generation/checks lands: pymorphy3's lexicon
    plus words seen at least 3 times in the training jokes (names, slang, spoken forms)."""

    def __init__(self, corpus: Path) -> None:
        import pymorphy3

        self.morph = pymorphy3.MorphAnalyzer()
        counts: Counter[str] = Counter()
        if corpus.is_file():
            with open(corpus, encoding="utf-8") as fh:
                for line in fh:
                    counts.update(w.casefold() for w in _WORD.findall(json.loads(line)["text"]))
        self.seen = {w for w, c in counts.items() if c >= 3}
        self._known: dict[str, bool] = {}

    def known(self, word: str) -> bool:
        w = word.casefold()
        if w not in self._known:
            ok = w in self.seen or self.morph.word_is_known(w)
            if not ok and "-" in w:  # "кто-нибудь", "Штирлиц-младший"
                ok = all(self.known(p) for p in w.split("-") if p)
            self._known[w] = ok
        return self._known[w]

    def reason(self, text: str, ended: bool) -> str:
        """Why a candidate is rejected, or "" when it is clean."""
        if not ended or "\ufffd" in text or not _END.search(text.rstrip()):
            return "no sentence end" if ended else "ran out of positions"
        if not all(self.known(w) for w in _WORD.findall(text)):
            return "unknown word"
        return "doubled word" if _DOUBLE.search(text) else ""


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


def _quality_params(args: argparse.Namespace) -> dict[str, Any]:
    return {"steps": args.steps_q, "sampler": args.sampler, "mbr": 1, "rules": not args.no_rules}


def _call(backend: Any, word: str, params: dict[str, Any], seeds: list[int]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = backend.generate_detailed([word] * len(seeds), params, seeds)
    return out, time.perf_counter() - t


def quality(args: argparse.Namespace) -> tuple[list[list[Any]], list[str]]:
    """Per N: clean share, P(>= 1 clean of N), p50/p95 ms per call; and best-of-N jokes."""
    import torch

    from generation.diffuseq import DiffuSeqBackend, mbr_select

    torch.set_num_threads(args.threads)
    backend = DiffuSeqBackend.from_pretrained(args.model)
    check = CleanCheck(Path(args.corpus))
    params = _quality_params(args)
    ns = [int(n) for n in args.n.split(",")]
    backend.generate(["Кот"], params, [0])  # warm-up
    clean: dict[str, list[bool]] = {}
    reasons: Counter[str] = Counter()
    best: list[str] = []
    for wi, word in enumerate(WORDS):
        out, _ = _call(backend, word, params, [wi * 1000 + j for j in range(args.seeds)])
        why = [check.reason(o.raw, o.ended) for o in out]
        reasons.update(r or "clean" for r in why)
        clean[word] = [not r for r in why]
        ok = [o.text for o, r in zip(out[: args.pick], why, strict=False) if not r]
        best.append(f"{word}: " + (ok[mbr_select(ok)] if ok else "(none clean)"))
    rows: list[list[Any]] = []
    for n in ns:
        times = [
            _call(backend, w, params, [9_000 + wi * 100 + j for j in range(n)])[1]
            for wi, w in enumerate(WORDS[: args.timed_words])
        ]
        share = sum(sum(v[:n]) for v in clean.values()) / (n * len(clean))
        success = sum(any(v[:n]) for v in clean.values()) / len(clean)
        rows.append([n, share, success, 1000 * percentile(times, 50), 1000 * percentile(times, 95)])
    total = sum(reasons.values())
    notes = [f"{k}: {v / total:.1%}" for k, v in reasons.most_common()]
    return rows, [*notes, "", *best[: args.show]]


def print_quality(args: argparse.Namespace, argv: list[str] | None) -> int:
    quiet_logs()
    info = machine()
    rows, notes = quality(args)
    command = "python -m bench.diffuseq " + " ".join(argv or sys.argv[1:])
    print(f"`{command.strip()}`\n\n{machine_line(info, args.threads)}\n")
    print(f"Preset: {_quality_params(args)}, {len(WORDS)} words, {args.seeds} seeds each.\n")
    header = ["N", "clean candidates", "P(>=1 clean of N)", "p50 ms/call", "p95 ms/call"]
    print(table(header, rows))
    print("\nRejections: " + "; ".join(notes[: notes.index("")]))
    for line in notes[notes.index("") + 1 :]:
        print(repr(line))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.diffuseq", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", default=str(ROOT / "models" / "diffuseq"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", default="10,20,100")
    parser.add_argument("--full-requests", type=int, default=1, help="0 skips the 2000 steps")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--quality", action="store_true", help="best-of-N clean rate and cost")
    parser.add_argument("--n", default="4,8,16", help="--quality: candidates per request")
    parser.add_argument("--seeds", type=int, default=16, help="--quality: rows per word")
    parser.add_argument("--steps-q", type=int, default=10, help="--quality: denoising steps")
    parser.add_argument("--sampler", default="renoise")
    parser.add_argument("--no-rules", action="store_true", help="plain argmax rounding")
    parser.add_argument("--timed-words", type=int, default=10)
    parser.add_argument("--pick", type=int, default=8, help="N of the best-of-N jokes shown")
    parser.add_argument("--show", type=int, default=0, help="print this many best-of-N jokes")
    parser.add_argument(
        "--corpus", default=str(ROOT / "data" / "prepared" / "train.jsonl"), help="seen words"
    )
    return parser.parse_args(argv)


def throughput_rows(args: argparse.Namespace, folder: Path) -> list[list[Any]]:
    """One child process per steps setting; a table row per number of concurrent users."""
    rounds = 1 if args.quick else 2
    users = [(1, 2 if args.quick else 4), *((c, rounds) for c in CONCURRENCY[1:])]
    plans: list[tuple[int, str, list[tuple[int, int]]]] = [
        (int(s), args.sampler, users) for s in args.steps.split(",")
    ]
    if args.full_requests:
        plans.append((FULL_STEPS, "ancestral", [(1, args.full_requests)]))
    rows: list[list[Any]] = []
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
    return rows


def print_throughput(args: argparse.Namespace, argv: list[str] | None) -> int:
    info = machine()
    with tempfile.TemporaryDirectory(prefix="bench-dseq-") as tmp:
        folder = Path(args.model)
        label = str(folder)
        if args.model == "random" or not (folder / "config.json").is_file():
            from bench.models import build_diffuseq_like

            quiet_logs()
            folder = build_diffuseq_like(Path(tmp) / "diffuseq")
            label = "random DiffuSeq, trainer preset 'gpu' (8 x 384)"
        rows = throughput_rows(args, folder)
    command = "python -m bench.diffuseq " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"`{command.strip()}`\n")
    print(machine_line(info, args.threads))
    print(f"\nModel: {label}.\n")
    header = ["steps", "concurrent requests", "requests", "jokes/s", "p50 s", "p95 s"]
    print(table([*header, "peak RSS MB"], rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quality:
        return print_quality(args, argv)
    if args.child:
        quiet_logs()
        print(json.dumps(child(json.loads(args.child))))
        return 0
    return print_throughput(args, argv)


if __name__ == "__main__":
    raise SystemExit(main())
