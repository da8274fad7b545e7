"""Preference pairs from votes: which joke people preferred to which, on a comparable subject.

Two kinds of pair, each (chosen, rejected):
- "liked": a liked joke (more 👍 than 👎) over a disliked one of the same method;
- "classic": a real joke from the collection (method `classic`, not disliked) over a disliked
  generated joke of any method — the model should write more like what people tell each other;
- "inline": the joke a user picked from an inline answer over the jokes offered beside it (the
  same prompt, shown side by side: the most direct comparison there is).

Why "comparable subject": a vote says "this joke, for this starting word, was good"; comparing a
joke about a cat with one about a tax office teaches length and topic more than humour. So a
rejected joke is paired only with chosen ones that share its starting words (the same prompt) or
enough content lemmas (Jaccard of pymorphy3 lemmas, ignoring function words and the lemmas in more
than a fifth of the file's jokes, which say nothing about the subject). Each rejected joke gets
its `per_joke` most similar partners of each kind, so one disliked joke cannot dominate.

Held out: a joke is held out by a hash of its text, and a pair is held out when either of its
jokes is, so no held-out pair's jokes were both trained on (a pair of two trained jokes would
measure memory, not preference).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from generation.checks.words import fold, morph_analyzer, tokenize
from generation.training.cleaning import norm_key
from generation.tune.ratings import CLASSIC, RatedJoke

#: parts of speech that say nothing about a joke's subject (pymorphy3 tags)
_FUNCTION_POS = frozenset({"NPRO", "PREP", "CONJ", "PRCL", "INTJ", "PRED", "NUMR"})
#: a lemma in more than this share of the file's jokes is too common to mark a subject
COMMON_SHARE = 0.2
#: below this many jokes, document frequency means nothing and no lemma is dropped as common
COMMON_MIN_JOKES = 20


@dataclass(frozen=True)
class Pair:
    chosen: RatedJoke
    rejected: RatedJoke
    kind: str  # "liked", "classic" or "inline"
    similarity: float  # 1.0 for the same prompt, else the Jaccard of content lemmas
    heldout: bool = False


@dataclass(frozen=True)
class PairSettings:
    per_joke: int = 3  # partners of each kind per rejected joke
    min_similarity: float = 0.1  # Jaccard of content lemmas; the same prompt always matches
    heldout: float = 0.1  # share of jokes held out (a pair is held out if either joke is)


def content_lemmas(text: str) -> frozenset[str]:
    """Dictionary forms of the Cyrillic words of 3+ letters that are not function words."""
    morph = morph_analyzer()
    out = set()
    for token in tokenize(text):
        if token.kind != "cyrillic" or len(token.text) < 3:
            continue
        parses = morph.parse(token.text.lower())
        if parses and parses[0].tag.POS in _FUNCTION_POS:
            continue
        out.add(fold(parses[0].normal_form if parses else token.text))
    return frozenset(out)


def _prompt_key(joke: RatedJoke) -> str:
    return norm_key(joke.prompt)


class Similarity:
    """Subject similarity of two jokes: the same prompt, or the Jaccard of their content lemmas."""

    def __init__(self, jokes: Sequence[RatedJoke]) -> None:
        raw = {joke.key: content_lemmas(joke.text) for joke in jokes}
        frequency = Counter(lemma for lemmas in raw.values() for lemma in lemmas)
        common: set[str] = set()
        if len(jokes) >= COMMON_MIN_JOKES:
            common = {lemma for lemma, n in frequency.items() if n > COMMON_SHARE * len(jokes)}
        self.lemmas = {key: lemmas - common for key, lemmas in raw.items()}

    def __call__(self, a: RatedJoke, b: RatedJoke) -> float:
        if _prompt_key(a) and _prompt_key(a) == _prompt_key(b):
            return 1.0
        la, lb = self.lemmas[a.key], self.lemmas[b.key]
        union = la | lb
        return len(la & lb) / len(union) if union else 0.0


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def is_heldout(joke: RatedJoke, share: float) -> bool:
    """Deterministic by the joke's text: a rerun holds out the same jokes."""
    return _stable(norm_key(joke.text)) % 10_000 < share * 10_000


def _partners(
    rejected: RatedJoke,
    candidates: Sequence[RatedJoke],
    similarity: Similarity,
    settings: PairSettings,
) -> list[tuple[float, RatedJoke]]:
    """The `per_joke` most similar candidates at or above the threshold (ties: by text hash)."""
    scored = []
    for chosen in candidates:
        if norm_key(chosen.text) == norm_key(rejected.text):
            continue
        value = similarity(chosen, rejected)
        if value >= settings.min_similarity and value > 0:
            scored.append((value, chosen))
    scored.sort(key=lambda item: (-item[0], _stable(item[1].key)))
    return scored[: settings.per_joke]


def build_pairs(jokes: Sequence[RatedJoke], settings: PairSettings | None = None) -> list[Pair]:
    """Every (chosen, rejected) pair the votes support; see the module docstring."""
    settings = settings or PairSettings()
    similarity = Similarity(jokes)
    liked: dict[str, list[RatedJoke]] = {}
    for joke in jokes:
        if joke.liked:
            liked.setdefault(joke.method, []).append(joke)
    classics = [j for j in jokes if j.method == CLASSIC and not j.disliked]
    pairs = inline_pairs(jokes, settings)
    for rejected in jokes:
        if not rejected.disliked:
            continue
        kinds = [("liked", liked.get(rejected.method, []))]
        if rejected.method != CLASSIC:
            kinds.append(("classic", classics))
        for kind, candidates in kinds:
            for value, chosen in _partners(rejected, candidates, similarity, settings):
                held = _held((chosen, rejected), settings.heldout)
                pairs.append(Pair(chosen, rejected, kind, value, held))
    return _unique(pairs)


def _held(pair: tuple[RatedJoke, RatedJoke], share: float) -> bool:
    return is_heldout(pair[0], share) or is_heldout(pair[1], share)


def inline_pairs(jokes: Sequence[RatedJoke], settings: PairSettings) -> list[Pair]:
    """Each inline pick over every joke offered with it."""
    offers: dict[str, tuple[list[RatedJoke], list[RatedJoke]]] = {}
    for joke in jokes:
        for offer, picked in joke.picks:
            offers.setdefault(offer, ([], []))[0 if picked else 1].append(joke)
    pairs = []
    for picked, passed in offers.values():
        for chosen in picked:
            for rejected in passed:
                if norm_key(chosen.text) != norm_key(rejected.text):
                    held = _held((chosen, rejected), settings.heldout)
                    pairs.append(Pair(chosen, rejected, "inline", 1.0, held))
    return pairs


def _unique(pairs: Sequence[Pair]) -> list[Pair]:
    """The first of each (chosen, rejected): an inline pick may also be a liked-joke pair."""
    seen: set[tuple[str, str]] = set()
    out = []
    for pair in pairs:
        key = (pair.chosen.key, pair.rejected.key)
        if key not in seen:
            seen.add(key)
            out.append(pair)
    return out


def describe_pairs(pairs: Sequence[Pair]) -> dict[str, int]:
    """Counts by kind, by method of the rejected joke, and train / held out."""
    out: Counter[str] = Counter()
    for pair in pairs:
        out[f"kind {pair.kind}"] += 1
        out[f"method {pair.rejected.method}"] += 1
        out["heldout" if pair.heldout else "train"] += 1
        out["same prompt" if pair.similarity >= 1.0 else "shared lemmas"] += 1
    return dict(sorted(out.items()))


__all__ = [
    "Pair",
    "PairSettings",
    "Similarity",
    "build_pairs",
    "content_lemmas",
    "describe_pairs",
    "inline_pairs",
    "is_heldout",
]
