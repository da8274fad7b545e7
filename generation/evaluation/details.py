"""Evaluate the joke models and write docs/QUALITY-details.md (or a JSON report).

    python -m generation.evaluation.details [--data data/prepared] [--gpt models/gpt]
        [--diffuseq models/diffuseq] [--out docs/QUALITY-details.md | report.json] [--words N]
        [--quick]

What it measures (details and the reasons behind each choice are in the report it writes):

1. Bits per character of held-out jokes (test split, CleanComedy gold) under our GPT and two
   count-based baselines over the same token ids (add-k unigram, interpolated Kneser-Ney
   trigram, both tuned on valid): `generation.evaluation.bpc`.
2. For starting words (first words of held-out test jokes + common nouns), each method's outputs
   as the bot sends them, produced through the real `GenerationService` one request at a time:
   the valid-joke rate (`generation.evaluation.metrics.joke_checks`), distinct-1/2 and the
   median latency per joke (`generation.evaluation.runs`).
3. Diversity across several samples per word (distinct-n, self-BLEU) for gpt-sample and diffuseq,
   and DiffuSeq at several denoising step counts (`generation.evaluation.sweep`).
4. Unedited sample outputs.

This module only reads the command line; `generation.evaluation.pipeline.run` does the work and
`generation.evaluation.details_markdown` writes the page, keeping the text between
`<!-- notes:start -->` and `<!-- notes:end -->` of an existing report.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from generation.evaluation.corpus import COMMON_NOUNS
from generation.evaluation.details_markdown import (
    DEFAULT_COMMAND,
    existing_notes,
    load_report,
    render_markdown,
    write_report,
)
from generation.evaluation.pipeline import STEP_SWEEP, EvalConfig, run

#: the config fields an option sets only when given (otherwise the full or quick default holds)
_SIZES = {
    "words": "starting words from test jokes",
    "nouns": f"common nouns, at most {len(COMMON_NOUNS)}",
    "diversity_words": "words for the diversity samples",
    "sweep_words": "words for the step sweep",
    "full_steps_words": "words for the longest chain",
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=DEFAULT_COMMAND, description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data/prepared"))
    ap.add_argument("--gpt", type=Path, default=Path("models/gpt"))
    ap.add_argument("--diffuseq", type=Path, default=Path("models/diffuseq"), help="'' to skip")
    ap.add_argument(
        "--out",
        type=Path,
        default=Path("docs/QUALITY-details.md"),
        help=".md (+ .json beside it) or .json",
    )
    for name, what in _SIZES.items():
        flag = "--" + name.replace("_", "-")
        default = getattr(EvalConfig, name)
        ap.add_argument(flag, type=int, default=None, help=f"{what} ({default})")
    steps = ",".join(map(str, STEP_SWEEP))
    ap.add_argument("--steps", default=None, help=f"comma-separated step counts ({steps})")
    ap.add_argument("--methods", default=None, help="comma-separated (gpt,gpt-sample,diffuseq)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--gpt-quantize", default=None, help="override GPT_QUANTIZE (int8, none, ...)")
    ap.add_argument("--diffuseq-sampler", default=None, help="override DIFFUSEQ_SAMPLER")
    ap.add_argument("--diffuseq-steps", type=int, default=None, help="override DIFFUSEQ_STEPS")
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="small subsets: a smoke run in minutes")
    ap.add_argument(
        "--render",
        type=Path,
        default=None,
        help="re-render --out (markdown) from a saved report JSON without running any model",
    )
    ap.add_argument("--command", default=None, help="with --render: the command of that run")
    return ap.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    overrides: dict[str, Any] = {
        "data": args.data,
        "gpt": args.gpt,
        "diffuseq": args.diffuseq if str(args.diffuseq) not in ("", ".") else None,
        "threads": args.threads,
        "gpt_quantize": args.gpt_quantize,
        "diffuseq_sampler": args.diffuseq_sampler,
        "diffuseq_steps": args.diffuseq_steps,
        "seed": args.seed,
    }
    for name in _SIZES:
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.steps:
        overrides["steps"] = tuple(int(x) for x in args.steps.split(","))
    if args.methods:
        overrides["methods"] = tuple(x.strip() for x in args.methods.split(","))
    if "nouns" in overrides:
        overrides["nouns"] = max(0, min(overrides["nouns"], len(COMMON_NOUNS)))
    return EvalConfig.quick_config(**overrides) if args.quick else EvalConfig(**overrides)


def rerender(saved: Path, out: Path, command: str | None) -> None:
    """`out` rendered again from a saved report JSON, without running any model."""
    report, command = load_report(saved, command)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(report, command, existing_notes(out)), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    if args.render is not None:
        rerender(args.render, args.out, args.command)
        print(f"rendered {args.out} from {args.render}")
        return 0
    cfg = config_from_args(args)
    args_text = " ".join(sys.argv[1:] if argv is None else argv)

    def progress(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    report = run(cfg, progress)
    write_report(report, args.out, f"{DEFAULT_COMMAND} {args_text}".strip())
    progress(f"wrote {args.out} in {report.seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
