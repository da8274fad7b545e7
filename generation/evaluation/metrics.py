"""Quality metrics over strings: pure functions, each small enough to check by hand in
tests/test_evaluate.py, so every figure of docs/QUALITY-details.md can be traced to one.

* `normalize_text`, `words`: the form texts are scored in, and what counts as a word.
* `joke_checks`: the four properties of a usable joke (starts with the word, ends at a sentence
  end, no repeated word 3-gram, 20–200 characters), plus two failure shapes worth counting
  (`continues_word`, `word_doubled`).
* `distinct_n`, `sentence_bleu`, `self_bleu`: diversity of a set of outputs (BLEU is NLTK's).

Bits per character lives with the GPT scoring code (`generation.gpt.scoring`), the count-based
baselines in `generation.evaluation.baselines`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nltk.translate.bleu_score import SmoothingFunction
from nltk.translate.bleu_score import sentence_bleu as nltk_sentence_bleu
from nltk.util import ngrams

MIN_CHARS = 20
MAX_CHARS = 200

_HSPACE_RE = re.compile(r"[^\S\n]+")
_NEWLINES_RE = re.compile(r"\n+")
_WORD_RE = re.compile(r"\w+(?:-\w+)*")
# The text ends with . ! ? or … (one or more), then optional closing quotes or brackets.
_SENTENCE_END_RE = re.compile(r"[.!?…]+[»\"”’')\]]*\s*$")
_LEADING_JUNK = " \t\n-—–«\"„“'"
# NLTK's method 1: a zero n-gram match count becomes 0.1, so a short text with no 4-gram match
# scores low instead of exactly 0.
_SMOOTHING = SmoothingFunction(epsilon=0.1).method1


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
# Usable-joke checks
# ---------------------------------------------------------------------------------------------


def starts_with_word(text: str, word: str) -> bool:
    """The text begins with `word` (case-insensitive; leading dashes, quotes and spaces skipped),
    followed by a non-letter or the end: "Кот" starts "Кот пришёл", not "Котлета"."""
    target = word.strip().casefold()
    body = text.casefold().lstrip(_LEADING_JUNK)
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
    body = text.casefold().lstrip(_LEADING_JUNK)
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
    grams = list(ngrams(words(text), 3))
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


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct word n-grams over all n-grams, pooled across `texts` (Li et al., 2016)."""
    total = 0
    seen: set[tuple[str, ...]] = set()
    for text in texts:
        grams = list(ngrams(words(text), n))
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def sentence_bleu(hypothesis: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """BLEU-4 of one tokenised hypothesis against tokenised references (Papineni et al., 2002):
    NLTK's, uniform weights, smoothing method 1. A hypothesis sharing no word with any reference
    scores 0 (NLTK's rule); so does an empty one or one without references."""
    if not hypothesis or not references:
        return 0.0
    return float(
        nltk_sentence_bleu(
            [list(ref) for ref in references], list(hypothesis), smoothing_function=_SMOOTHING
        )
    )


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
    "continues_word",
    "distinct_n",
    "ends_at_sentence_end",
    "has_repeated_trigram",
    "joke_checks",
    "normalize_text",
    "self_bleu",
    "sentence_bleu",
    "starts_with_word",
    "word_doubled",
    "words",
]
