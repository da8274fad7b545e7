"""How the sampling preset and N trade clean jokes against the judge's score and time.

    python -m bench.clean_rate [--words 50] [--settings 0.8/0.95 0.7/0.9 0.6/0.9 0.5/0.8]

For every temperature / top-p setting it draws 8 samples for each of `--words` evaluation words
(every 5th line of bench/eval_words.txt) with the shipped GPT as served (int8, one thread), checks
each as the service does (generation.checks) and reports: the share of samples that are clean,
copied, and fit to show (clean and not copied); for N = 2, 4, 6, 8 the share of words with at
least one fit sample among the first N (before the service's one redraw), and the judge's mean
score of the one it would show; and the time of one draw of 8 rows. Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

SAMPLES = 8
NS = (2, 4, 6, 8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.clean_rate", description=__doc__)
    ap.add_argument("--words", type=int, default=50)
    ap.add_argument("--settings", nargs="+", default=["0.8/0.95", "0.7/0.9", "0.6/0.9", "0.5/0.8"])
    args = ap.parse_args(argv)

    from generation.checks import JokeChecker
    from generation.gpt.backend import GptBackend
    from generation.judge import Judge
    from generation.postprocess import clean_joke, model_wrote_sentence_end

    torch.set_num_threads(1)
    lines = Path("bench/eval_words.txt").read_text(encoding="utf-8").split()
    words = lines[::5][: args.words]
    gpt = GptBackend.from_pretrained("models/gpt", quantize="int8")
    checker = JokeChecker.load("models/checks")
    judge = Judge.load("models/judge", gpt=gpt)
    print(f"{len(words)} words, {SAMPLES} samples each; judge {judge.version}")
    print("| T / top-p | clean | copied | fit | " + " | ".join(f"N={n}: words / judged" for n in NS)
          + " | s per draw of 8 |")  # fmt: skip
    print("|---" * (5 + len(NS)) + "|")
    for setting in args.settings:
        temperature, top_p = (float(x) for x in setting.split("/"))
        params = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0,
                  "no_repeat_ngram_size": 2, "max_new_tokens": 48}  # fmt: skip
        fits: list[list[tuple[str, bool]]] = []
        clean = copied = 0
        draw_s = []
        for index, word in enumerate(words):
            seeds = [index * SAMPLES + k for k in range(SAMPLES)]
            started = time.perf_counter()
            raws = gpt.generate([word] * SAMPLES, params, seeds)
            draw_s.append(time.perf_counter() - started)
            row = []
            for raw in raws:
                text = clean_joke(raw, word)
                verdict = checker.check(text, word, ended=model_wrote_sentence_end(raw, word))
                clean += verdict.clean
                copied += verdict.copied
                row.append((text, verdict.ok))
            fits.append(row)
        total = len(words) * SAMPLES
        fit = sum(ok for row in fits for _, ok in row)
        cells = []
        for n in NS:
            shown = []
            for row in fits:
                good = [text for text, ok in row[:n] if ok]
                if good:
                    shown.append(max(s.liked for s in judge.score(good)))
            cells.append(f"{len(shown) / len(words):.0%} / {statistics.fmean(shown):.3f}")
        head = f"| {setting} | {clean / total:.0%} | {copied / total:.1%} | {fit / total:.0%} | "
        tail = f" | {statistics.median(draw_s):.2f} |"
        print(head + " | ".join(cells) + tail, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
