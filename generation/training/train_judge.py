"""Train the judge and measure it against trivial baselines on held-out human labels.

Run: ``python -m generation.training.train_judge [--ratings ratings.jsonl]`` (see `main` for
options).

Every candidate feature set is a weighted logistic regression over the training parts of all
sources; its regularisation is picked by 5-fold cross-validation on those training parts (mean of
the per-source AUCs), so the held-out parts are only ever used to report. The shipped judge is
the `--features` candidate; `metrics.json` holds the whole comparison, so the choice can be
checked. Baselines (joke length, the GPT's bits per character) get their sign from the training
parts, as a fitted model would.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from generation.judge.features import TextAnalyzer, dense_features, gpt_fingerprint, gpt_pass
from generation.judge.model import FILES, FORMAT, Judge
from generation.training.judge_data import HELDOUT_PCT, Example, binary_rows, load_examples
from generation.training.judge_metrics import (
    baseline_metrics,
    mean_auc,
    source_metrics,
    versus_baselines,
)

#: feature sets compared: (char n-grams, + words, GPT features: "" none, "bpc" its bits per char
#: and the length, "hidden" those and the mean hidden state)
CANDIDATES: dict[str, tuple[bool, bool, str]] = {
    "chars": (True, False, ""),
    "chars+words": (True, True, ""),
    "fluency": (False, False, "bpc"),
    "gpt": (False, False, "hidden"),
    "chars+words+fluency": (True, True, "bpc"),
    "chars+words+gpt": (True, True, "hidden"),
}
C_GRID = (0.1, 0.3, 1.0, 3.0)
GPT_C_GRID = (0.003, 0.01, 0.03, 0.1)


class Features:
    """Fits and applies one candidate's features (tf-idf and/or standardised GPT features)."""

    def __init__(self, name: str, gpt_cache: dict[str, tuple[np.ndarray, float]] | None) -> None:
        text, words, gpt = CANDIDATES[name]
        self.analyzer = TextAnalyzer(words=words) if text else None
        self.uses_gpt, self.gpt_hidden = bool(gpt), gpt == "hidden"
        self.cache = gpt_cache
        self.vectorizer: Any = None
        self.mean = self.scale = np.zeros(0)

    def fit(self, texts: Sequence[str]) -> Features:
        from sklearn.feature_extraction.text import TfidfVectorizer

        if self.analyzer is not None:
            self.vectorizer = TfidfVectorizer(analyzer=self.analyzer, sublinear_tf=True, min_df=2)
            self.vectorizer.fit(texts)
        if self.uses_gpt:
            dense = self._dense(texts)
            self.mean, self.scale = dense.mean(0), dense.std(0) + 1e-6
        return self

    def _dense(self, texts: Sequence[str]) -> np.ndarray:
        if self.cache is None:
            raise ValueError("GPT features need a GPT (--gpt)")
        hidden = np.stack([self.cache[t][0] for t in texts]) if self.gpt_hidden else None
        bpc = np.asarray([self.cache[t][1] for t in texts])
        return dense_features(texts, hidden, bpc)

    def transform(self, texts: Sequence[str]) -> Any:
        from scipy import sparse

        parts = []
        if self.vectorizer is not None:
            parts.append(self.vectorizer.transform(texts))
        if self.uses_gpt:
            parts.append(sparse.csr_matrix((self._dense(texts) - self.mean) / self.scale))
        return sparse.hstack(parts).tocsr()


def fit_logistic(x: Any, examples: Sequence[Example], c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    index, labels, weights = binary_rows(examples)
    model = LogisticRegression(C=c, max_iter=2000, solver="liblinear")
    return model.fit(x[index], labels, sample_weight=weights)


def cross_validate(
    name: str, train: Sequence[Example], cache: Any, grid: Sequence[float]
) -> tuple[float, float]:
    """(C, its AUC): the C of `grid` with the best mean per-source AUC over 5 folds of the
    training part; that AUC is what settings may be chosen by (the held-out parts only report)."""
    from sklearn.model_selection import KFold

    folds = list(KFold(5, shuffle=True, random_state=0).split(np.arange(len(train))))
    best: tuple[float, float] | None = None
    for c in grid:
        logits = np.zeros(len(train))
        for fit_idx, val_idx in folds:
            part = [train[i] for i in fit_idx]
            feats = Features(name, cache).fit([ex.text for ex in part])
            model = fit_logistic(feats.transform([ex.text for ex in part]), part, c)
            held = feats.transform([train[i].text for i in val_idx])
            logits[val_idx] = model.decision_function(held)
        score = mean_auc(source_metrics(logits, train))
        if best is None or score > best[0]:
            best = (score, c)
    assert best is not None
    return best[1], best[0]


def build_judge(feats: Features, model: Any, gpt: Any) -> Judge:
    """The serving form of a fitted text (+GPT) candidate: plain arrays, no sklearn."""
    if feats.vectorizer is None:
        raise ValueError("the shipped judge needs text features")
    vocab = sorted(feats.vectorizer.vocabulary_, key=feats.vectorizer.vocabulary_.get)
    coef = model.coef_[0]
    size = len(vocab)
    assert feats.analyzer is not None
    config = {
        "format": FORMAT,
        "analyzer": {
            "n_min": feats.analyzer.n_min,
            "n_max": feats.analyzer.n_max,
            "words": feats.analyzer.words,
        },
        "vocabulary": vocab,
        "intercept": float(model.intercept_[0]),
        "uses_gpt": feats.uses_gpt,
        "gpt_hidden": feats.gpt_hidden,
        "gpt_fingerprint": gpt_fingerprint(gpt) if gpt is not None else None,
    }
    weights = {"idf": feats.vectorizer.idf_, "coef_text": coef[:size]}
    if feats.uses_gpt:
        weights |= {"coef_dense": coef[size:], "dense_mean": feats.mean, "dense_scale": feats.scale}
    return Judge(config, weights, gpt=gpt if feats.uses_gpt else None)


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------

BROKEN = ("Чайник… мужинистыйрешка… варенщину…", "- Доктор, а я когда. - Когда и потом в потом.")
BROKEN += ("Штирлиц шёл шёл шёл шёл шёл шёл шёл.",)


def gpt_cache(gpt: Any, texts: Sequence[str]) -> dict[str, tuple[np.ndarray, float]]:
    unique = sorted(set(texts))
    hidden, bpc = gpt_pass(gpt, unique, batch_size=32)
    assert hidden is not None
    return {t: (hidden[i], float(bpc[i])) for i, t in enumerate(unique)}


def compare(
    names: Sequence[str], train: list[Example], held: list[Example], cache: Any
) -> tuple[dict[str, Any], dict[str, tuple[Features, Any]]]:
    """Cross-validate, fit and score every candidate; (metrics, fitted) by name."""
    metrics: dict[str, Any] = {}
    fitted = {}
    for name in names:
        started = time.perf_counter()
        text, _, gpt = CANDIDATES[name]
        grid = GPT_C_GRID if gpt == "hidden" and not text else C_GRID
        c, cv_auc = cross_validate(name, train, cache, grid)
        feats = Features(name, cache).fit([ex.text for ex in train])
        model = fit_logistic(feats.transform([ex.text for ex in train]), train, c)
        logits = model.decision_function(feats.transform([ex.text for ex in held]))
        metrics[name] = source_metrics(logits, held) | {"C": c, "cv_mean_auc": round(cv_auc, 4)}
        fitted[name] = (feats, model)
        print(f"{name}: {metrics[name]} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return metrics, fitted


def serving_ms(judge: Judge, texts: Sequence[str], repeats: int, **how: Any) -> float:
    """Median wall time of one `score(texts, **how)` (one torch thread, as the worker)."""
    judge.score(texts, **how)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        judge.score(texts, **how)
        times.append(time.perf_counter() - started)
    return round(float(np.median(times)) * 1000, 2)


def showcase(judge: Judge, held: Sequence[Example]) -> dict[str, Any]:
    """What the judge prefers: the extremes of held-out gold, and broken sentences."""
    gold = [ex for ex in held if ex.source == "gold"]
    liked = [s.liked for s in judge.score([ex.text for ex in gold])]
    order = np.argsort(liked)[::-1]
    pick = lambda i: {"text": gold[i].text, "liked": round(liked[i], 3), "score": gold[i].score}  # noqa: E731
    broken = judge.score(BROKEN)
    return {
        "gold_top": [pick(i) for i in order[:5]],
        "gold_bottom": [pick(i) for i in order[-5:]],
        "broken": [
            {"text": t, "liked": round(s.liked, 3), "bpc": s.bpc}
            for t, s in zip(BROKEN, broken, strict=True)
        ],
    }


def load_gpt(path: str, quantize: str) -> Any:
    if not path:
        return None
    from generation.gpt.backend import GptBackend

    return GptBackend.from_pretrained(path, quantize=quantize)


def run(args: argparse.Namespace) -> dict[str, Any]:
    examples = load_examples(
        args.corpus,
        args.ratings,
        gold_labels=args.gold_labels,
        gold_weight=args.gold_weight,
        ratings_weight=args.ratings_weight,
        pct=args.heldout_pct,
    )
    train = [ex for ex in examples if not ex.heldout]
    held = [ex for ex in examples if ex.heldout]
    gpt = load_gpt(args.gpt, args.quantize)
    cache = gpt_cache(gpt, [ex.text for ex in examples]) if gpt is not None else None
    names = [n for n in args.candidates if gpt is not None or not CANDIDATES[n][2]]
    if args.features not in names:
        names.append(args.features)
    metrics, fitted = compare(names, train, held, cache)
    values: dict[str, Callable[[str], float]] = {"length": len}
    if cache is not None:
        values["bpc"] = lambda t: cache[t][1]
    baselines: dict[str, Any] = {}
    for name, value in values.items():
        baselines |= baseline_metrics(name, value, train, held)
    build_judge(*fitted[args.features], gpt).save(args.out)
    judge = Judge.load(args.out, gpt=gpt)  # measured as served: from the files
    logits, _ = judge.logits([ex.text for ex in held], fluency=False)
    report = {
        "version": judge.version,
        "command": args.command,
        **{k: getattr(args, k) for k in ("features", "gold_labels", "gold_weight", "heldout_pct")},
        "examples": {
            s: {
                "train": sum(ex.source == s for ex in train),
                "heldout": sum(ex.source == s for ex in held),
            }
            for s in sorted({ex.source for ex in examples})
        },
        "shipped": source_metrics(logits, held),
        "candidates": metrics,
        "baselines": baselines,
        "judge_minus_baseline_auc": versus_baselines(logits, held, values, baselines),
    }
    report |= describe(judge, held, args)
    path = args.out / "metrics.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return report


def describe(judge: Judge, held: Sequence[Example], args: argparse.Namespace) -> dict[str, Any]:
    """Serving cost, sizes, the GPT it was measured with, and what it prefers."""
    # the 16 held-out jokes closest to 170 characters, about as long as a generated candidate
    sample = sorted((ex.text for ex in held), key=lambda t: (abs(len(t) - 170), t))[:16]
    timing = {"chars_mean": float(np.mean([len(t) for t in sample]))}
    if not judge.uses_gpt:
        timing["liked"] = serving_ms(judge, sample, args.repeats, fluency=False)
    if judge.gpt is not None:
        timing["liked+bpc"] = serving_ms(judge, sample, max(3, args.repeats // 10), fluency=True)
        _, bpc = judge.logits(sample)  # the judge alone, had the decoder given the bpc
        timing["liked_given_bpc"] = serving_ms(judge, sample, args.repeats, bpc=bpc)
    fingerprint = None if judge.gpt is None else gpt_fingerprint(judge.gpt)
    used = {"path": str(args.gpt), "quantize": args.quantize, "fingerprint": fingerprint}
    return {
        "gpt": used if fingerprint else None,
        "serving_ms_16": timing,
        "sizes_bytes": {name: (args.out / name).stat().st_size for name in FILES},
        "vocabulary": len(judge.vocab),
        "showcase": showcase(judge, held),
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(
        prog="python -m generation.training.train_judge", description=__doc__
    )
    ap.add_argument("--corpus", type=Path, default=Path("../shared/data/jokes"))
    ap.add_argument("--ratings", type=Path, help="a `python -m storage.export` file")
    ap.add_argument("--ratings-weight", type=float, default=1.0, help="weight of one vote")
    ap.add_argument("--gpt", default="models/gpt", help="GPT folder; '' for text features only")
    ap.add_argument("--quantize", default="int8", help="as served (generation.gpt.quantize)")
    ap.add_argument("--out", type=Path, default=Path("models/judge"))
    ap.add_argument("--features", choices=sorted(CANDIDATES), default="chars+words+fluency")
    ap.add_argument("--candidates", nargs="*", choices=sorted(CANDIDATES), default=list(CANDIDATES))
    ap.add_argument("--gold-labels", choices=("percentile", "median"), default="percentile")
    ap.add_argument("--gold-weight", type=float, default=1.0, help="weight of one gold joke")
    ap.add_argument("--heldout-pct", type=int, default=HELDOUT_PCT)
    ap.add_argument("--repeats", type=int, default=50, help="timing repeats")
    args = ap.parse_args(argv)
    args.command = "python -m generation.training.train_judge " + " ".join(argv)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core box; the worker scores with one thread too
    try:
        report = run(args)
    finally:
        torch.set_num_threads(threads)
    print(
        json.dumps(
            {k: report[k] for k in ("version", "shipped", "baselines", "serving_ms_16")},
            ensure_ascii=False,
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
