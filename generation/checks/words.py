"""Words of a joke and whether a Russian reader would know them.

Tokens are runs of letters and digits, joined by single hyphens ("кто-то", "из-за", "Ал-л-л-ло"),
so a hyphenated word is judged as one word, the way a reader sees it. Only all-Cyrillic tokens are
looked up. Tokens with a digit ("5-й", "COVID-19") and all-Latin tokens ("iPhone", "OK") are not:
a Russian dictionary cannot judge them, and the training jokes use both on purpose. Neither are the
pieces of a censored swear word ("бл*дь", "х%й", "на х..."): a reader fills in the letters. A
token that mixes Cyrillic with other letters ("вамTы", Ukrainian "і") is never a Russian word.

The dictionary is pymorphy3's (OpenCorpora). It misses names and slang that jokes live on
("Рабинович", "Холтофф"), so `Lexicon` also takes a set of extra words: the words the training jokes
use often enough (see `generation.training.checks_index`). Extra words are kept lower-cased with
"ё" written
as "е", so either spelling of a word matches; pymorphy itself already matches "е" to "ё".

A hyphenated word is known when the dictionary knows it whole ("ну-ка"), when every part is known
("Иван-дурак", "ой-ой", "Вася-то"), when it is "по-" before an adjective's stem ("по-африкански"),
or when it is a stutter or a drawn-out word: with the hyphens
dropped and each run of a repeated letter shortened to one or two letters it is a known word
("Ал-л-л-ло" -> "алло", "Да-а" -> "да", "Н-нет" -> "нет"). A word without hyphens gets the same
shortening only when a letter runs three or more times ("Нууу", "Аллллло"), since no ordinary word
does that; a doubled letter alone ("Собакаака") is not forgiven.

Look-ups are cached: a joke's words repeat across candidates, and the analyzer's own look-up, while
only microseconds, is the bulk of a check.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pymorphy3

TOKEN_RE = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
_CYRILLIC_RE = re.compile(r"[а-яё]+(?:-[а-яё]+)*")
_LATIN_RE = re.compile(r"[a-z]+(?:-[a-z]+)*")
_LONG_RUN_RE = re.compile(r"(.)\1\1")
# Runs of repeated letters tried when shortening a stutter: each run doubles the variants.
_MAX_RUNS = 4
CACHE_SIZE = 1 << 16
# Symbols that stand for letters in a censored swear word ("бл*дь", "х%й"): a reader reads the word.
CENSOR_MARKS = frozenset("*%$#@№&")
# Words of one or two letters that a careless writer runs into the next or the previous word.
_SHORT_WORDS = """а в и к о с у я не на по за до от из ко со во об он мы вы ты да но же ли бы ну уж
то ни их ей ох ах эх ой"""
SHORT_WORDS = frozenset(_SHORT_WORDS.split())
# Stems that Russian puts before any word to make a new one ("автокредит", "фотосалон").
_COMBINING_STEMS = """авто агро аэро био вело видео гидро евро кибер кино контр мега микро мини мото
нано нейро псевдо полит радио соц спец супер теле термо фото эко экс электро анти ультра гипер"""
COMBINING_STEMS = tuple(_COMBINING_STEMS.split())
_NE_JOINS = frozenset({"ADJF", "ADJS", "PRTF", "PRTS", "NOUN"})
_FUNCTION_POS = frozenset({"NPRO", "PREP", "CONJ", "PRCL"})


@dataclass(frozen=True)
class Token:
    """One word of a text, with where it stands (the doubled-word check needs the gaps).

    ``kind``: "cyrillic" (looked up), "latin", "number" or "censored" (not looked up), "mixed"
    (never a word).
    """

    text: str
    start: int
    end: int
    kind: str

    @property
    def key(self) -> str:
        """The form words are compared and looked up in."""
        return fold(self.text)


def fold(word: str) -> str:
    """Lower case with "ё" as "е": the spelling differences a reader does not notice."""
    return word.lower().replace("ё", "е")


def _kind(text: str, start: int, end: int) -> str:
    key = fold(text[start:end])
    before, after = text[max(0, start - 2) : start], text[end : end + 2]
    if (before[-1:] and before[-1] in CENSOR_MARKS) or (after[:1] and after[0] in CENSOR_MARKS):
        return "censored"
    if len(key) <= 2 and (after.startswith(("..", "…")) or before.endswith(("..", "…"))):
        return "censored"
    if any(ch.isdigit() for ch in key):
        return "number"
    if _CYRILLIC_RE.fullmatch(key):
        return "cyrillic"
    if _LATIN_RE.fullmatch(key):
        return "latin"
    return "mixed"


def tokenize(text: str) -> list[Token]:
    return [
        Token(m.group(0), m.start(), m.end(), _kind(text, m.start(), m.end()))
        for m in TOKEN_RE.finditer(text)
    ]


@functools.cache
def morph_analyzer() -> pymorphy3.MorphAnalyzer:
    """One analyzer per process: loading the dictionary is the largest part of start-up."""
    return pymorphy3.MorphAnalyzer()


def shortened_runs(word: str) -> Iterator[str]:
    """The word with each run of a repeated letter cut to one or to two letters, every way."""
    pieces = [m.group(0) for m in re.finditer(r"(.)\1*", word)]
    runs = [i for i, piece in enumerate(pieces) if len(piece) > 1]
    if not runs or len(runs) > _MAX_RUNS:
        return
    for lengths in itertools.product((1, 2), repeat=len(runs)):
        out = list(pieces)
        for i, n in zip(runs, lengths, strict=True):
            out[i] = pieces[i][0] * n
        yield "".join(out)


class Lexicon:
    """Which words count as Russian: pymorphy3's dictionary plus a shipped set of extra words."""

    def __init__(
        self, extra_words: Iterable[str] = (), morph: pymorphy3.MorphAnalyzer | None = None
    ) -> None:
        self.extra: frozenset[str] = frozenset(fold(w.strip()) for w in extra_words if w.strip())
        self._morph = morph if morph is not None else morph_analyzer()
        # Per instance, so a test's tiny lexicon never answers for the shipped one.
        self.is_known = functools.lru_cache(maxsize=CACHE_SIZE)(self._is_known)
        self._is_spelled_known = functools.lru_cache(maxsize=CACHE_SIZE)(self._spelled_known)

    @classmethod
    def load(cls, path: str | Path) -> Lexicon:
        """Read an extra-words file (one word a line); a missing file raises FileNotFoundError."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"extra words file not found: {path}")
        return cls(path.read_text(encoding="utf-8").splitlines())

    def _is_listed(self, word: str) -> bool:
        return fold(word) in self.extra or self._morph.word_is_known(word)

    def _spelled_known(self, word: str) -> bool:
        """Known as written: listed whole, by hyphen parts, or as a stutter of a listed word."""
        if self._is_listed(word) or self._is_compound(word):
            return True
        hyphenated = "-" in word
        if hyphenated and all(self._is_listed(part) for part in word.split("-")):
            return True
        if word.startswith("по-") and self._is_listed(word[3:] + "й"):
            return True  # "по-африкански": the adverb of any adjective in -ский
        if hyphenated or _LONG_RUN_RE.search(word):
            joined = word.replace("-", "")
            return any(self._is_listed(w) for w in shortened_runs(joined))
        return False

    def _is_compound(self, word: str) -> bool:
        """A word the dictionary lacks only because Russian builds it freely.

        "автокредит", "суперсредство": a combining stem before a known word. "неполиткорректный":
        "не" before a known adjective, participle or noun. "не" before a verb or a pronoun is the
        typo of a missing space ("незнаю", "небыло"), which a reader sees as broken.
        """
        for stem in COMBINING_STEMS:
            rest = word[len(stem) :]
            if word.startswith(stem) and len(rest) >= 3 and self._is_listed(rest):
                return True
        rest = word[2:]
        if not word.startswith("не") or len(rest) < 3 or not self._morph.word_is_known(rest):
            return False
        return all(p.tag.POS in _NE_JOINS for p in self._morph.parse(rest))

    def function_word(self, word: str) -> bool:
        """A pronoun, preposition, conjunction or particle in its likeliest reading.

        Why: people repeat content words with a comma for effect ("Лети, лети!", "Мама, мама!"),
        while a weak model stutters on the short ones ("я, я, я не знаю").
        """
        parses = self._morph.parse(word.lower())
        return bool(parses) and parses[0].tag.POS in _FUNCTION_POS

    def _is_known(self, word: str) -> bool:
        word = word.lower()
        return self._is_spelled_known(word) or self._inflects_extra(word)

    def _inflects_extra(self, word: str) -> bool:
        """A form of an extra word ("зоофила" of "зоофил", "Рабиновичу" of "Рабинович").

        The extra words are surface forms that occur often enough; their rarer case forms do not
        make the cut. pymorphy3 guesses the dictionary form of an unknown word from its ending,
        which is far slower than a dictionary look-up, so this runs last and only for whole words.
        """
        if not self.extra or len(word) < 3 or "-" in word:
            return False
        for parse in self._morph.parse(word):
            lemma = fold(parse.normal_form)
            # The guess must keep the word's stem: pymorphy3 also offers lemmas like "ть".
            if len(lemma) >= 3 and word.startswith(lemma[:-2]) and lemma in self.extra:
                return True
        return False

    def glued_split(self, word: str, min_part: int = 2) -> tuple[str, str] | None:
        """Two known words that the word is made of, if any.

        Why: a model (or a scraper) that drops a space writes "былпрограммистом"; a reader sees two
        words run together, which is a different fault from an invented word. A part of two letters
        must be a common short word ("вамТы"): the dictionary also lists rare short abbreviations,
        which would make almost any invented word look glued. One-letter parts ("иговорит") are
        tried only when asked for: they split too many invented words ("кваре" is not "к варе").
        """
        word = word.lower()
        if "-" in word:
            return None
        for i in range(min_part, len(word) - min_part + 1):
            left, right = word[:i], word[i:]
            if any(len(part) <= 2 and part not in SHORT_WORDS for part in (left, right)):
                continue
            if self._is_spelled_known(left) and self._is_spelled_known(right):
                return left, right
        return None
