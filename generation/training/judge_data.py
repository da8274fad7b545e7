"""Labelled examples for the judge: who liked which joke, and how much each vote counts.

Why soft labels: every source says "how likely people are to like this text" in its own way, and
a logistic model trained on weighted (label 1, label 0) pairs learns exactly that probability.
A bot rating with L likes and D dislikes becomes label L / (L + D) with weight L + D; a FUN text
is a joke (1) or not (0); a CleanComedy gold joke's mean humour score becomes its percentile
among the gold jokes of the training part (five raters on a 1..5 scale are not a probability,
but "funnier than most" is what a reader's thumb says), or a hard above/below-median label.

The held-out part of every source is chosen by `generation.training.corpus.split_of` over the
normalised
text, so a joke that is in both gold and FUN (gold was filtered from FUN) lands on the same side
in both, and a rerun always holds out the same jokes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generation.training.cleaning import clean_text, norm_key
from generation.training.corpus import FUN_FILE, GOLD_FILE, load_fun, load_gold, split_of

#: percent of every source kept out of training for evaluation
HELDOUT_PCT = 25
SOURCES = ("gold", "fun", "ratings")
GOLD_LABELS = ("percentile", "median")


@dataclass(frozen=True)
class Example:
    text: str
    label: float  # the share of people who like it, 0..1
    weight: float  # how many votes the label stands for (relative)
    source: str  # one of SOURCES
    heldout: bool
    score: float | None = None  # gold's mean humour score (for Spearman), else None


def is_heldout(text: str, pct: int = HELDOUT_PCT) -> bool:
    return split_of(norm_key(text), valid_pct=0, test_pct=pct) == "test"


def _percentiles(values: Sequence[float]) -> np.ndarray:
    """Mid-rank percentile in [0, 1]: ties share one value, so equal scores get equal labels."""
    from scipy.stats import rankdata

    if len(values) < 2:
        return np.full(len(values), 0.5)
    return (rankdata(values) - 1.0) / (len(values) - 1.0)


def gold_examples(
    rows: Iterable[tuple[str, float]],
    labels: str = "percentile",
    pct: int = HELDOUT_PCT,
    weight: float = 1.0,
) -> list[Example]:
    """Gold jokes with labels from the training part's score distribution only.

    Held-out jokes are labelled above/below the training median (the evaluation's top/bottom
    half), so nothing about the held-out scores leaks into the labels' scale.
    """
    if labels not in GOLD_LABELS:
        raise ValueError(f"unknown gold labels {labels!r}; use one of {GOLD_LABELS}")
    items = [(clean_text(t), float(s)) for t, s in rows]
    items = [(t, s) for t, s in items if t]
    train = [(t, s) for t, s in items if not is_heldout(t, pct)]
    median = float(np.median([s for _, s in train])) if train else 0.0
    ranks = _percentiles([s for _, s in train])
    out = [
        Example(
            t, float(r) if labels == "percentile" else float(s > median), weight, "gold", False, s
        )
        for (t, s), r in zip(train, ranks, strict=True)
    ]
    out += [
        Example(t, float(s > median), 1.0, "gold", True, s) for t, s in items if is_heldout(t, pct)
    ]
    return out


def fun_examples(rows: Iterable[tuple[str, int]], pct: int = HELDOUT_PCT) -> list[Example]:
    out = []
    for raw, label in rows:
        text = clean_text(raw)
        if text:
            out.append(Example(text, float(label), 1.0, "fun", is_heldout(text, pct)))
    return out


def read_ratings(path: Path) -> list[tuple[str, int, int]]:
    """(text, likes, dislikes) of a `python -m storage.export` file; unrated rows skipped."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text, likes, dislikes = record["text"], record["likes"], record["dislikes"]
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{path}:{number}: not an exported rating ({error})") from None
            if isinstance(text, str) and int(likes) + int(dislikes) > 0:
                rows.append((text, int(likes), int(dislikes)))
    return rows


def rating_examples(
    rows: Iterable[tuple[str, int, int]], weight: float = 1.0, pct: int = HELDOUT_PCT
) -> list[Example]:
    """One example per rated joke; repeated texts (the same joke shown twice) pool their votes."""
    votes: dict[str, list[int]] = {}
    texts: dict[str, str] = {}
    for raw, likes, dislikes in rows:
        text = clean_text(raw)
        key = norm_key(text)
        if not key:
            continue
        texts.setdefault(key, text)
        pair = votes.setdefault(key, [0, 0])
        pair[0] += likes
        pair[1] += dislikes
    return [
        Example(texts[k], lk / (lk + dk), weight * (lk + dk), "ratings", is_heldout(texts[k], pct))
        for k, (lk, dk) in votes.items()
    ]


def load_examples(
    corpus: Path,
    ratings: Path | None = None,
    *,
    gold_labels: str = "percentile",
    gold_weight: float = 1.0,
    ratings_weight: float = 1.0,
    pct: int = HELDOUT_PCT,
) -> list[Example]:
    """Every labelled example of the corpus folder (gold + FUN) and of an optional export."""
    out = gold_examples(load_gold(corpus / GOLD_FILE), gold_labels, pct, gold_weight)
    out += fun_examples(load_fun(corpus / FUN_FILE), pct)
    if ratings is not None:
        out += rating_examples(read_ratings(ratings), ratings_weight, pct)
    return out


def binary_rows(examples: Sequence[Example]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Each soft example as up to two weighted hard rows (index, label, weight): what a
    classifier that wants 0/1 labels can fit, and what a weighted AUC is computed over."""
    index, labels, weights = [], [], []
    for i, ex in enumerate(examples):
        for label, share in ((1, ex.label), (0, 1.0 - ex.label)):
            if share * ex.weight > 0:
                index.append(i)
                labels.append(label)
                weights.append(share * ex.weight)
    return index, np.asarray(labels), np.asarray(weights, dtype=np.float64)
