"""Which judge weight ranks held-out human ratings best (the JUDGE_WEIGHT default).

    python -m bench.judge_weight

Best of N ranks candidates by w * z(judge logit) + (1 - w) * z(-GPT bits per character)
(generation/selection.py). This scores the judge's held-out jokes (a quarter of CleanComedy gold
and of FUN, never trained on; generation/training/judge_data.py) with the shipped judge and GPT,
and prints
the AUC of that blend for several w: gold top vs bottom half of the humour score, FUN joke vs
non-joke. Not a test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.common import bench_parser

WEIGHTS = (0.0, 0.25, 0.5, 0.7, 0.85, 1.0)


def _z(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / values.std()


def main(argv: list[str] | None = None) -> int:
    bench_parser("bench.judge_weight", __doc__).parse_args(argv)
    from sklearn.metrics import roc_auc_score

    from generation.gpt.backend import GptBackend
    from generation.judge import Judge
    from generation.training.judge_data import load_examples

    torch.set_num_threads(1)
    held = [e for e in load_examples(Path("../shared/data/jokes")) if e.heldout]
    gpt = GptBackend.from_pretrained("models/gpt", quantize="int8")
    judge = Judge.load("models/judge", gpt=gpt)
    scores = []
    for start in range(0, len(held), 32):
        scores += judge.score([e.text for e in held[start : start + 32]])
    liked = np.array([s.liked for s in scores])
    bpc = np.array([s.bpc for s in scores])
    print(f"judge {judge.version}; AUC of the blend by weight w")
    print("| held-out set | jokes | " + " | ".join(f"w = {w}" for w in WEIGHTS) + " |")
    print("|---" * (len(WEIGHTS) + 2) + "|")
    for source in ("gold", "fun"):
        idx = [i for i, e in enumerate(held) if e.source == source]
        labels = np.array([held[i].label >= 0.5 for i in idx], dtype=int)
        logit = _z(np.log(liked[idx] / (1 - liked[idx])))
        fluency = _z(-bpc[idx])
        aucs = [roc_auc_score(labels, w * logit + (1 - w) * fluency) for w in WEIGHTS]
        print(f"| {source} | {len(idx)} | " + " | ".join(f"{a:.3f}" for a in aucs) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
