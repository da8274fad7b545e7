"""How the judge and its baselines are scored on held-out human labels: per-source AUC (and
Spearman for gold), a baseline's sign fitted on the training part, and paired bootstrap intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from generation.training.judge_data import Example, binary_rows


def source_metrics(logits: np.ndarray, examples: Sequence[Example]) -> dict[str, dict[str, float]]:
    """Per source: AUC of the labels (weighted by votes), and for gold Spearman with the mean
    humour score. Gold's held-out labels are top vs bottom half (`data.gold_examples`)."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    out: dict[str, dict[str, float]] = {}
    for source in sorted({ex.source for ex in examples}):
        members = [i for i, ex in enumerate(examples) if ex.source == source]
        part = [examples[i] for i in members]
        index, labels, weights = binary_rows(part)
        if len(set(labels.tolist())) < 2:
            continue
        scores = logits[members][index]
        result = {
            "n": len(part),
            "auc": float(roc_auc_score(labels, scores, sample_weight=weights)),
        }
        if source == "gold":
            rho = spearmanr(logits[members], [ex.score for ex in part]).statistic
            result["spearman"] = float(rho)
        out[source] = result
    return out


def mean_auc(metrics: dict[str, dict[str, float]]) -> float:
    return float(np.mean([m["auc"] for m in metrics.values()]))


def baseline_metrics(
    name: str, value: Callable[[str], float], train: Sequence[Example], held: Sequence[Example]
) -> dict[str, dict[str, float]]:
    """A one-number score, its sign per source set on the training part."""
    out = {}
    for source in sorted({ex.source for ex in held}):
        tr = [ex for ex in train if ex.source == source]
        he = [ex for ex in held if ex.source == source]
        fitted = source_metrics(np.asarray([value(ex.text) for ex in tr]), tr)
        sign = 1.0 if fitted.get(source, {"auc": 0.5})["auc"] >= 0.5 else -1.0
        got = source_metrics(sign * np.asarray([value(ex.text) for ex in he]), he)
        if source in got:
            out[source] = got[source] | {"sign": sign}
    return {name: out} if out else {}


def paired_bootstrap(
    judge: np.ndarray, other: np.ndarray, part: Sequence[Example], rounds: int = 500
) -> dict[str, Any]:
    """95% interval of AUC(judge) - AUC(other) over resampled held-out jokes: with a few hundred
    jokes an AUC moves by several points by chance, so a win must clear that."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    index, labels, weights = binary_rows(part)
    index = np.asarray(index)
    diffs = []
    for _ in range(rounds):
        pick = rng.integers(0, len(part), len(part))
        counts = np.bincount(pick, minlength=len(part))[index] * weights
        if counts.sum() == 0 or len(set(labels[counts > 0].tolist())) < 2:
            continue
        auc = [roc_auc_score(labels, s[index], sample_weight=counts) for s in (judge, other)]
        diffs.append(auc[0] - auc[1])
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"diff": round(float(np.mean(diffs)), 4), "ci95": [round(low, 4), round(high, 4)]}


def versus_baselines(
    logits: np.ndarray,
    held: Sequence[Example],
    values: dict[str, Callable[[str], float]],
    baselines: dict[str, Any],
) -> dict[str, Any]:
    """The shipped judge minus each baseline, per source, with a bootstrap interval."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        for source, result in baselines.get(name, {}).items():
            members = [i for i, ex in enumerate(held) if ex.source == source]
            part = [held[i] for i in members]
            other = result["sign"] * np.asarray([value(ex.text) for ex in part])
            out[f"{source} vs {name}"] = paired_bootstrap(logits[members], other, part)
    return out
