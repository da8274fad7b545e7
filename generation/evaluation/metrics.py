"""Quality metrics for generated and held-out jokes: pure functions over strings and token ids.

Kept apart from `generation.evaluation.details` (which loads models and runs them) so that every
number in
docs/QUALITY.md comes from a function small enough to check by hand in tests/test_evaluate.py.

* `bits_per_char`: the tokenizer-independent language-model score (total bits / (chars + 1)).
* `UnigramLM`, `KneserNeyTrigramLM`: count-based baselines over the same token ids as the GPT.
* `joke_checks`: the four properties of a usable joke (starts with the word, ends at a sentence
  end, no repeated word 3-gram, 20–200 characters).
* `distinct_n`, `sentence_bleu`, `self_bleu`: diversity of a set of outputs.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

MIN_CHARS = 20
MAX_CHARS = 200

_HSPACE_RE = re.compile(r"[^\S\n]+")
_NEWLINES_RE = re.compile(r"\n+")
_WORD_RE = re.compile(r"\w+(?:-\w+)*")
# The text ends with . ! ? or … (one or more), then optional closing quotes or brackets.
_SENTENCE_END_RE = re.compile(r"[.!?…]+[»\"”’')\]]*\s*$")


# ---------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """The form every model is scored on: spaces/tabs collapsed to one space, every line trimmed,
    runs of line breaks reduced to one, ends stripped.

    The prepared corpus is already in this form (single "\\n" between dialogue turns), so this is
    a no-op there; it makes bits per character well-defined for any input.
    """
    lines = [_HSPACE_RE.sub(" ", line).strip() for line in text.split("\n")]
    return _NEWLINES_RE.sub("\n", "\n".join(line for line in lines if line)).strip()


def words(text: str) -> list[str]:
    """Lower-cased words (letters/digits, inner hyphens kept); punctuation is not a word."""
    return _WORD_RE.findall(text.casefold())


# ---------------------------------------------------------------------------------------------
# Bits per character
# ---------------------------------------------------------------------------------------------


def bits_per_char(bits: Sequence[float], texts: Sequence[str]) -> float:
    """Sum of each joke's bits (its tokens and the final end-of-text token) over the sum of
    (characters + 1): the +1 is the end-of-text "character" the model also has to predict.

    `texts` must be the exact (normalised) strings that were scored.
    """
    if len(bits) != len(texts):
        raise ValueError("one bit total per text")
    chars = sum(len(text) + 1 for text in texts)
    return float(sum(bits)) / chars if chars else float("nan")


# ---------------------------------------------------------------------------------------------
# Count-based baselines over token ids
# ---------------------------------------------------------------------------------------------


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
    Counts are numpy arrays of packed n-gram keys (u·V² + v·V + w), so the ~3M training tokens
    are counted in seconds and queries are vectorised binary searches.
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
            arr = np.asarray([seq[0], *seq], dtype=np.int64)
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
        arr = np.asarray([seq[0], *seq], dtype=np.int64)
        if len(arr) < 3:
            return 0.0
        return float(-np.log2(self.prob(arr[:-2], arr[1:-1], arr[2:])).sum())

    def corpus_bits(self, sequences: Sequence[Sequence[int]]) -> list[float]:
        """Bits per sequence, computed in one vectorised pass."""
        parts, owners = [], []
        for index, seq in enumerate(sequences):
            arr = np.asarray([seq[0], *seq], dtype=np.int64)
            if len(arr) >= 3:
                parts.append(np.stack([arr[:-2], arr[1:-1], arr[2:]]))
                owners.append(np.full(len(arr) - 2, index))
        if not parts:
            return [0.0] * len(sequences)
        cols = np.concatenate(parts, axis=1)
        bits = -np.log2(self.prob(cols[0], cols[1], cols[2]))
        return np.bincount(np.concatenate(owners), weights=bits, minlength=len(sequences)).tolist()


# ---------------------------------------------------------------------------------------------
# Usable-joke checks
# ---------------------------------------------------------------------------------------------


def starts_with_word(text: str, word: str) -> bool:
    """The text begins with `word` (case-insensitive; leading dashes, quotes and spaces skipped),
    followed by a non-letter or the end: "Кот" starts "Кот пришёл", not "Котлета"."""
    target = word.strip().casefold()
    body = text.casefold().lstrip(" \t\n-—–«\"„“'")
    if not target:
        return True
    if not body.startswith(target):
        return False
    rest = body[len(target) :]
    return not rest or not rest[0].isalnum()


def continues_word(text: str, word: str) -> bool:
    """The text begins with `word` glued to more letters: "Муж" -> "Мужчина пришёл" (the model
    took the starting word as the beginning of a longer word)."""
    target = word.strip().casefold()
    body = text.casefold().lstrip(" \t\n-—–«\"„“'")
    return bool(target) and body.startswith(target) and not starts_with_word(text, word)


def word_doubled(text: str, word: str) -> bool:
    """The text begins with the starting word twice ("Кот - Кот, ты где?"): what the user sees
    when a backend's text starts with a dialogue dash before the word and post-processing puts
    the word in front of it again."""
    target = words(word)
    n = len(target)
    return n > 0 and words(text)[: 2 * n] == target * 2


def ends_at_sentence_end(text: str) -> bool:
    """The last character is a sentence terminator (. ! ? …), possibly followed by closing
    quotes or brackets."""
    return bool(_SENTENCE_END_RE.search(text))


def has_repeated_trigram(text: str) -> bool:
    """Some word 3-gram (lower-cased, punctuation ignored) occurs twice."""
    ws = words(text)
    grams = list(zip(ws, ws[1:], ws[2:], strict=False))
    return len(set(grams)) < len(grams)


@dataclass(frozen=True, slots=True)
class JokeChecks:
    starts: bool
    ends: bool
    no_repeat: bool
    length_ok: bool

    @property
    def valid(self) -> bool:
        return self.starts and self.ends and self.no_repeat and self.length_ok


def joke_checks(text: str, word: str, natural_end: bool = True) -> JokeChecks:
    """The four checks of a usable joke. `natural_end=False` marks a text whose final "…" was
    added by post-processing because the model wrote no sentence end: that does not count."""
    return JokeChecks(
        starts=starts_with_word(text, word),
        ends=natural_end and ends_at_sentence_end(text),
        no_repeat=not has_repeated_trigram(text),
        length_ok=MIN_CHARS <= len(text) <= MAX_CHARS,
    )


# ---------------------------------------------------------------------------------------------
# Diversity
# ---------------------------------------------------------------------------------------------


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct word n-grams over all n-grams, pooled across `texts` (Li et al., 2016)."""
    total = 0
    seen: set[tuple[str, ...]] = set()
    for text in texts:
        grams = ngrams(words(text), n)
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def sentence_bleu(
    hypothesis: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 4
) -> float:
    """BLEU-4 of one tokenised hypothesis against tokenised references (Papineni et al., 2002),
    uniform weights, with NLTK's smoothing method 1: a zero n-gram match count becomes 0.1, so a
    short text with no 4-gram match scores low instead of exactly 0.

    Clipped counts take each n-gram's maximum count over the references; the brevity penalty uses
    the reference length closest to the hypothesis length (the shorter one on ties).
    """
    if not hypothesis or not references:
        return 0.0
    log_sum = 0.0
    for n in range(1, max_n + 1):
        hyp = Counter(ngrams(hypothesis, n))
        denom = max(sum(hyp.values()), 1)
        best: Counter[tuple[str, ...]] = Counter()
        for ref in references:
            for gram, count in Counter(ngrams(ref, n)).items():
                best[gram] = max(best[gram], count)
        matched = sum(min(count, best[gram]) for gram, count in hyp.items())
        log_sum += math.log((matched if matched else 0.1) / denom)
    hyp_len = len(hypothesis)
    ref_len = min((abs(len(ref) - hyp_len), len(ref)) for ref in references)[1]
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_sum / max_n)


def self_bleu(groups: Iterable[Sequence[str]]) -> float:
    """Mean BLEU-4 of each text against the other texts of its group (Zhu et al., 2018),
    averaged over all texts of all groups of two or more; higher = more alike."""
    scores: list[float] = []
    for group in groups:
        tokens = [words(text) for text in group]
        if len(tokens) < 2:
            continue
        for i, hyp in enumerate(tokens):
            refs = [ref for j, ref in enumerate(tokens) if j != i]
            scores.append(sentence_bleu(hyp, refs))
    return sum(scores) / len(scores) if scores else 0.0


__all__ = [
    "MAX_CHARS",
    "MIN_CHARS",
    "JokeChecks",
    "KneserNeyTrigramLM",
    "UnigramLM",
    "bits_per_char",
    "continues_word",
    "distinct_n",
    "ends_at_sentence_end",
    "has_repeated_trigram",
    "joke_checks",
    "ngrams",
    "normalize_text",
    "self_bleu",
    "sentence_bleu",
    "starts_with_word",
    "word_doubled",
    "words",
]
