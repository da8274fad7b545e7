"""Count-based language models over the GPT's token ids: the baselines its bits per character
are compared with in docs/QUALITY-details.md.

Both see exactly what the GPT is scored on: `<|endoftext|> joke <|endoftext|>` token ids, every
token after the leading end-of-text one predicted. Their smoothing is tuned on the valid split.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from generation.gpt.scoring import bits_per_char

UNIGRAM_K_GRID = (0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


class UnigramLM:
    """p(w) = (count(w) + k) / (N + kV): add-k smoothed token frequencies, k tuned on valid.

    Events are every predicted token: the joke's tokens and its final end-of-text token (the
    leading end-of-text token is context, not an event), exactly what the GPT is scored on.
    """

    def __init__(self, sequences: Iterable[Sequence[int]], vocab_size: int, k: float = 1.0):
        self.vocab_size = vocab_size
        counts = np.zeros(vocab_size, dtype=np.float64)
        for seq in sequences:
            np.add.at(counts, np.asarray(seq[1:], dtype=np.int64), 1)
        self.counts = counts
        self.total = float(counts.sum())
        self.k = k

    def probs(self) -> np.ndarray:
        return (self.counts + self.k) / (self.total + self.k * self.vocab_size)

    def sequence_bits(self, seq: Sequence[int]) -> float:
        """-log2 p of tokens 1..end of `seq` (position 0 is the leading end-of-text token)."""
        logp = np.log2(self.probs())
        return float(-logp[np.asarray(seq[1:], dtype=np.int64)].sum())


def _group_count(keys: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Unique sorted keys, their summed weights and their multiplicities."""
    uniq, inverse, mult = np.unique(keys, return_inverse=True, return_counts=True)
    if weights is None:
        return uniq, mult.astype(np.float64), mult.astype(np.float64)
    sums = np.bincount(inverse, weights=weights, minlength=len(uniq))
    return uniq, sums, mult.astype(np.float64)


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[keys == query] for each query, 0 where the key is absent (keys sorted)."""
    if len(keys) == 0:
        return np.zeros(len(query), dtype=np.float64)
    pos = np.searchsorted(keys, query)
    pos = np.minimum(pos, len(keys) - 1)
    return np.where(keys[pos] == query, values[pos], 0.0)


def _padded(seq: Sequence[int]) -> np.ndarray:
    """The sequence with a second copy of its leading end-of-text token in front."""
    return np.asarray([seq[0], *seq], dtype=np.int64)


class KneserNeyTrigramLM:
    """Interpolated Kneser-Ney trigram model over token ids (one discount per order).

    p3(w|u,v) = max(c(uvw) - D3, 0)/c(uv·) + D3·N1+(uv·)/c(uv·) · p2(w|v)
    p2(w|v)   = max(N1+(·vw) - D2, 0)/N1+(·v·) + D2·T(v)/N1+(·v·) · p1(w)
    p1(w)     = max(N1+(·w) - D1, 0)/N1+(··) + D1·T/N1+(··) · 1/V
    where lower orders use continuation counts (how many distinct left contexts a suffix has), an
    unseen context falls through to the next order, and the base is uniform over the vocabulary,
    so every token has a non-zero probability and each conditional sums to 1 (tested).

    Each joke is padded on the left with a second copy of its leading end-of-text token, so the
    first joke token is predicted from the history (eot, eot), which occurs nowhere else.
    Counts are numpy arrays of packed n-gram keys (u·V² + v·V + w), so counting the training
    split is array work rather than a Python loop, and queries are vectorised binary searches.
    (NLTK's `nltk.lm.KneserNeyInterpolated` scores one n-gram at a time in Python, far too slow
    for every token of the held-out sets in each step of the discount search.)
    """

    def __init__(
        self,
        sequences: Iterable[Sequence[int]],
        vocab_size: int,
        discounts: tuple[float, float, float] = (0.75, 0.75, 0.75),
    ) -> None:
        V = self.vocab_size = vocab_size
        self.discounts = discounts
        chunks = []
        for seq in sequences:
            arr = _padded(seq)
            if len(arr) >= 3:
                chunks.append(arr[:-2] * V * V + arr[1:-1] * V + arr[2:])
        tri = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
        # Trigram counts and, per history uv, the total count and the number of distinct w.
        self.k3, self.c3, _ = _group_count(tri)
        self.ctx3, self.ctx3_total, self.ctx3_types = _group_count(self.k3 // V, self.c3)
        # Bigram continuation counts N1+(·vw): distinct u per (v, w).
        self.k2, self.n2, _ = _group_count(self.k3 % (V * V))
        self.ctx2, self.ctx2_total, self.ctx2_types = _group_count(self.k2 // V, self.n2)
        # Unigram continuation counts N1+(·w): distinct v per w.
        self.k1, self.n1, _ = _group_count(self.k2 % V)
        self.n1_total = float(self.n1.sum())
        self.n1_types = float(len(self.k1))

    def prob(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        """p(w | u, v) for arrays of equal length (or broadcastable)."""
        V = self.vocab_size
        d3, d2, d1 = self.discounts
        u, v, w = np.broadcast_arrays(
            np.asarray(u, dtype=np.int64),
            np.asarray(v, dtype=np.int64),
            np.asarray(w, dtype=np.int64),
        )
        u, v, w = u.ravel(), v.ravel(), w.ravel()
        # Unigram (continuation) interpolated with uniform.
        if self.n1_total > 0:
            n1 = _lookup(self.k1, self.n1, w)
            p = np.maximum(n1 - d1, 0) / self.n1_total + d1 * self.n1_types / self.n1_total / V
        else:
            p = np.full(len(w), 1.0 / V)
        # Bigram (continuation).
        tot2 = _lookup(self.ctx2, self.ctx2_total, v)
        typ2 = _lookup(self.ctx2, self.ctx2_types, v)
        n2 = _lookup(self.k2, self.n2, v * V + w)
        seen2 = tot2 > 0
        safe2 = np.where(seen2, tot2, 1.0)
        p = np.where(seen2, np.maximum(n2 - d2, 0) / safe2 + d2 * typ2 / safe2 * p, p)
        # Trigram (raw counts).
        ctx = u * V + v
        tot3 = _lookup(self.ctx3, self.ctx3_total, ctx)
        typ3 = _lookup(self.ctx3, self.ctx3_types, ctx)
        c3 = _lookup(self.k3, self.c3, ctx * V + w)
        seen3 = tot3 > 0
        safe3 = np.where(seen3, tot3, 1.0)
        return np.where(seen3, np.maximum(c3 - d3, 0) / safe3 + d3 * typ3 / safe3 * p, p)

    def sequence_bits(self, seq: Sequence[int]) -> float:
        arr = _padded(seq)
        if len(arr) < 3:
            return 0.0
        return float(-np.log2(self.prob(arr[:-2], arr[1:-1], arr[2:])).sum())

    def corpus_bits(self, sequences: Sequence[Sequence[int]]) -> list[float]:
        """Bits per sequence, computed in one vectorised pass."""
        parts, owners = [], []
        for index, seq in enumerate(sequences):
            arr = _padded(seq)
            if len(arr) >= 3:
                parts.append(np.stack([arr[:-2], arr[1:-1], arr[2:]]))
                owners.append(np.full(len(arr) - 2, index))
        if not parts:
            return [0.0] * len(sequences)
        cols = np.concatenate(parts, axis=1)
        bits = -np.log2(self.prob(cols[0], cols[1], cols[2]))
        return np.bincount(np.concatenate(owners), weights=bits, minlength=len(sequences)).tolist()


def tune_unigram(
    train: Sequence[Sequence[int]],
    valid: Sequence[Sequence[int]],
    vocab: int,
    valid_texts: Sequence[str],
) -> UnigramLM:
    """The add-k unigram model whose k (from a fixed grid) scores valid best."""
    lm = UnigramLM(train, vocab)
    best = None
    for k in UNIGRAM_K_GRID:
        lm.k = k
        score = bits_per_char([lm.sequence_bits(s) for s in valid], valid_texts)
        if best is None or score < best[0]:
            best = (score, k)
    lm.k = best[1] if best else 1.0
    return lm


def tune_kneser_ney(
    train: Sequence[Sequence[int]],
    valid: Sequence[Sequence[int]],
    vocab: int,
    valid_texts: Sequence[str],
) -> KneserNeyTrigramLM:
    """Coordinate search of the three discounts on valid (two sweeps over a 0.05 grid)."""
    lm = KneserNeyTrigramLM(train, vocab)
    grid = [round(x, 2) for x in np.arange(0.3, 1.0001, 0.05)]
    discounts = list(lm.discounts)

    def score(ds: Sequence[float]) -> float:
        lm.discounts = (ds[0], ds[1], ds[2])
        return bits_per_char(lm.corpus_bits(valid), valid_texts)

    for _ in range(2):
        for order in (0, 1, 2):
            trials = []
            for value in grid:
                ds = list(discounts)
                ds[order] = value
                trials.append((score(ds), value))
            discounts[order] = min(trials)[1]
    lm.discounts = (discounts[0], discounts[1], discounts[2])
    return lm


__all__ = ["KneserNeyTrigramLM", "UnigramLM", "tune_kneser_ney", "tune_unigram"]
