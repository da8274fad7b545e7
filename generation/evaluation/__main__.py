"""`python -m generation.evaluation --out docs/QUALITY.md`: every method over the evaluation words,
as served with best of N and with one candidate, scored as a reader would (see `reader`).

Each method runs in its own `python -m generation` process reading the words from standard input,
exactly the served path; its JSON lines are kept in `--runs` for anyone to read or rescore.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from generation.evaluation.reader import ExactCopies, read_outputs, score, summarize
from generation.evaluation.report import existing_notes, render

METHODS = ("gpt", "gpt-sample", "diffuseq")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m generation.evaluation", description=__doc__)
    ap.add_argument("--words", type=Path, default=Path("bench/eval_words.txt"))
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--runs", type=Path, default=Path("runs/eval"), help="where outputs go")
    ap.add_argument("--reuse", action="store_true", help="score existing outputs in --runs")
    ap.add_argument("--no-baseline", action="store_true", help="skip the N = 1 runs")
    ap.add_argument("--samples", type=int, default=10, help="shown jokes per kind of word")
    ap.add_argument("--out", type=Path, default=Path("docs/QUALITY.md"))
    ap.add_argument("--corpus", type=Path, default=Path("../shared/data/jokes"))
    return ap.parse_args(argv)


def generate(method: str, words: Path, out: Path, best_of_n: bool) -> None:
    """One served run: `python -m generation --method M --json < words > out`."""
    env = {**os.environ, "BEST_OF_N": "true" if best_of_n else "false"}
    out.parent.mkdir(parents=True, exist_ok=True)
    with words.open("rb") as stdin, out.open("wb") as stdout:
        command = [sys.executable, "-m", "generation", "--method", method, "--json"]
        subprocess.run(command, stdin=stdin, stdout=stdout, env=env, check=True)


def load_scorers() -> tuple[Any, Any]:
    """The checks and the judge exactly as the service loads them from the settings."""
    from generation.checks import JokeChecker
    from generation.gpt.backend import GptBackend
    from generation.judge import Judge
    from settings import get_settings

    settings = get_settings()
    gpt = GptBackend.from_pretrained(
        settings.gpt_model, tokenizer=settings.gpt_tokenizer, quantize=settings.gpt_quantize
    )
    checker = JokeChecker.load(settings.checks_folder)
    return checker, Judge.load(settings.judge_model, gpt=gpt)


def picks(words: Sequence[str], per_kind: int) -> list[str]:
    """The first test words and the first nouns (the list ends with 50 nouns)."""
    return list(words[:per_kind]) + list(words[-50:][:per_kind])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    words = [w.strip() for w in args.words.read_text(encoding="utf-8").splitlines() if w.strip()]
    runs: list[tuple[str, str, Path, bool]] = []
    for method in args.methods:
        runs.append((method, method, args.runs / f"{method}.jsonl", True))
        if not args.no_baseline:
            runs.append((method, f"{method} (N = 1)", args.runs / f"{method}-n1.jsonl", False))
    for method, label, path, best in runs:
        if not (args.reuse and path.is_file()):
            print(f"{label}: generating for {len(words)} words ...", file=sys.stderr)
            generate(method, args.words, path, best)
    checker, judge = load_scorers()
    exact = ExactCopies(args.corpus)
    rows, samples = [], {}
    for _method, label, path, best in runs:
        scored = score(read_outputs(path), checker, judge, exact)
        rows.append(summarize(label, scored))
        if best:
            samples[label] = scored
    minutes = (time.monotonic() - started) / 60
    fields = {
        "command": "python -m generation.evaluation --out docs/QUALITY.md",
        "timing": (
            f"about 35 minutes on this machine to make the outputs, {minutes:.0f} to score them"
            if args.reuse
            else f"about {minutes:.0f} minutes on this machine"
        ),
        "words": str(len(words)),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "models": f"GPT `models/gpt`, DiffuSeq `models/diffuseq`, judge {judge.version}",
        "notes": existing_notes(args.out),
    }
    args.out.write_text(render(rows, samples, picks(words, args.samples), fields), "utf-8")
    for row in rows:
        print(f"{row.label}: ok {row.ok:.3f} copied {row.copied:.3f} judged {row.judged}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
