"""What the `gpt` method writes and shows, saved to compare code versions: a speed-up must not
change a joke.

    python -m bench.gpt_outputs --out /tmp/before.json [--words 60] [--judge-pass]
    python -m bench.gpt_outputs --out /tmp/after.json --compare /tmp/before.json

For the first `--words` evaluation words (`bench/eval_words.txt`) and the bench's `WORDS`, the
served `gpt` draw (six beams, the copy guard on, as the service builds it) and what the selector
ranks from it (texts, the judge's estimate, bits per character), plus `gpt-sample` rows of fixed
seeds for the first 30 words and one batched beam call of eight words. `--judge-pass`: the judge
scores every candidate with its own GPT pass instead of reading the search's log-probabilities
(`generation.gpt.written`), the way to see what that reading changes. Not a test: it loads the
shipped models and takes a minute or two.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.common import WORDS
from settings import ROOT

EVAL_WORDS = ROOT / "bench" / "eval_words.txt"


def collect(words: list[str], judge_pass: bool) -> dict[str, Any]:
    from generation.jobs import Job, candidates_of, rank_draw
    from generation.registry import GPT, GPT_SAMPLE, build_registry
    from generation.selection import Selector
    from generation.types import GenerationRequest
    from settings import Settings

    config = Settings().generation(enable_diffuseq=False)
    registry = build_registry(config)
    selector = Selector(
        config.checks_folder, config.judge_model, judge_weight=config.judge_weight,
        gpt=lambda: registry.backend(GPT),
    )  # fmt: skip
    backend = registry.backend(GPT)
    if not selector.load():
        raise SystemExit(f"best of N is off: {selector.problem}")
    selector.judge.reuse_search = not judge_pass
    backend.warmup()
    backend.avoid_copies(selector.copy_index)
    method = registry.method(GPT)
    seeds = list(range(method.candidates))
    out: dict[str, Any] = {"gpt": {}, "sample": {}}
    for word in words:
        raws = backend.generate([word] * len(seeds), method.params, seeds)
        job = Job(GenerationRequest(word, GPT), method, word, seeds, None, None)  # type: ignore[arg-type]
        ranked = rank_draw(job, candidates_of(job, raws, config.max_joke_chars), selector) or []
        shown = [[r.candidate.text, r.liked, r.bpc] for r in ranked]
        out["gpt"][word] = {"raws": raws, "ranked": shown}
    sample = registry.method(GPT_SAMPLE)
    for i, word in enumerate(words[:30]):
        row_seeds = [1000 + 6 * i + j for j in range(6)]
        out["sample"][word] = backend.generate([word] * 6, sample.params, row_seeds)
    out["batched"] = backend.generate(words[:8], method.params, [0] * 8)
    return out


def _texts(ranked: list[list[Any]]) -> list[str]:
    return [r[0] for r in ranked]


def compare(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    words = [w for w in new["gpt"] if w in old["gpt"]]
    a, b = new["gpt"], old["gpt"]
    raws = [w for w in words if a[w]["raws"] != b[w]["raws"]]
    shown = [w for w in words if _texts(a[w]["ranked"])[:1] != _texts(b[w]["ranked"])[:1]]
    order = [w for w in words if _texts(a[w]["ranked"]) != _texts(b[w]["ranked"])]
    scores = [w for w in words if a[w]["ranked"] != b[w]["ranked"]]
    sample = [w for w in new["sample"] if new["sample"][w] != old["sample"].get(w)]
    return [
        f"words: {len(words)}",
        f"gpt candidates (raw texts) differ: {len(raws)} {raws[:8]}",
        f"shown joke differs: {len(shown)} {shown[:8]}",
        f"ranking differs: {len(order)} {order[:8]}",
        f"judge scores not bit-equal: {len(scores)}",
        f"gpt-sample rows differ: {len(sample)} of {len(new['sample'])}",
        f"batched beam call equal: {new['batched'] == old['batched']}",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gpt_outputs", description=__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--compare", type=Path, help="an earlier --out file")
    ap.add_argument("--words", type=int, default=60, help="evaluation words (then WORDS)")
    ap.add_argument("--judge-pass", action="store_true")
    args = ap.parse_args(argv)
    lines = EVAL_WORDS.read_text(encoding="utf-8").splitlines()
    evaluation = [w.strip() for w in lines if w.strip()][: args.words]
    words = list(dict.fromkeys(evaluation + list(WORDS)))
    result = collect(words, args.judge_pass)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=0), encoding="utf-8")
    if args.compare:
        old = json.loads(args.compare.read_text(encoding="utf-8"))
        print("\n".join(compare(result, old)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
