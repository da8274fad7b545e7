"""Words as dictionary forms, so that «кота», «коту» and «Кот» all find a joke about «кот».

One function turns a text into lemmas for both sides, the index builder and the lookup, so the
two always agree. The lemma of a Cyrillic word is pymorphy3's likeliest dictionary form ("ё"
written as "е", lower case); Latin words and numbers stand for themselves; the pieces of a
censored word are skipped (`generation.checks.words.tokenize` tells them apart).

Why the likeliest reading only: indexing every reading of a word ("стали" is both "стать" and
"сталь") would make a joke about becoming something turn up for a user who asked for steel,
an unrelated joke. A word whose likeliest reading finds nothing may still be looked up by its
other readings (`options`), and only then.

Function words (pronouns, prepositions, conjunctions, particles, interjections) count for "starts
with" («В бар заходит…») but not for "is about": every joke is about «и».
"""

from __future__ import annotations

import functools

from generation.checks.words import fold, morph_analyzer, tokenize

FUNCTION_POS = frozenset({"NPRO", "PREP", "CONJ", "PRCL", "INTJ"})
CACHE_SIZE = 1 << 18


@functools.lru_cache(maxsize=CACHE_SIZE)
def _readings(word: str) -> tuple[tuple[str, bool], ...]:
    """(lemma, is a function word) of each distinct reading of `word`, likeliest first."""
    seen: dict[str, bool] = {}
    for parse in morph_analyzer().parse(word):
        lemma = fold(parse.normal_form)
        seen.setdefault(lemma, parse.tag.POS in FUNCTION_POS)
    return tuple(seen.items()) or ((word, False),)


def words(text: str) -> list[str]:
    """The text's words as looked up: lower case, "ё" as "е"; censored pieces left out."""
    return [token.key for token in tokenize(text) if token.kind != "censored"]


def lemma(word: str) -> tuple[str, bool]:
    """(the likeliest lemma, whether it is a function word) of one folded word."""
    if not word.isalpha() and not word.replace("-", "").isalpha():
        return word, False  # numbers and the like: themselves
    return _readings(word)[0]


def options(word: str) -> list[str]:
    """Every lemma `word` may stand for, likeliest first (the lookup's second try)."""
    if not word.replace("-", "").isalpha():
        return [word]
    return [item for item, _ in _readings(word)]


def lemmas(text: str, limit: int | None = None) -> list[tuple[str, bool]]:
    """(lemma, is a function word) of the text's words in order, the first `limit` only."""
    found = words(text)
    return [lemma(word) for word in (found if limit is None else found[:limit])]


__all__ = ["FUNCTION_POS", "lemma", "lemmas", "options", "words"]
