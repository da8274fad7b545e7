"""The reader's verdict on one generated joke: is its Russian broken, and is it copied?

A joke is *clean* when a fluent reader finds nothing broken in its form: every word is a Russian
word (see `generation.checks.words`), no word is doubled ("я я"), no dialogue line is empty, no
comma runs into other punctuation (",,", ",?"), and the text ends at a sentence end the model
wrote. Whether the joke makes sense or is funny is not judged here. The form faults are the ones a
reader notices first and a cheap check can see without false alarms.

The user's own words (the prompt) are never faults, whatever they are ("Ал-л-л-ло", "Будте"): the
joke has to start with them. A model that keeps typing after the prompt's last word
("Чайник - Чайникникник") is reported as an echo of it, and an unknown word made of two known ones
("былпрограммистом") as glued words; both are unknown words, named apart because they have
different causes in the models. A capitalised word the dictionary lacks is taken for a name when
it stands inside a sentence, and a short all-capitals one for an abbreviation, as a reader takes
them: names and abbreviations are what the dictionary misses most in jokes people wrote.

Doubled words: the same word twice with only spaces between, or with a comma between when it is a
short function word ("я, я", "что, что"). People repeat content words with a comma for effect
("Лети, лети!") and some particles and interjections too ("Да, да", "Нет, нет", "Ой, ой").
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from generation.checks.copies import CopyIndex
from generation.checks.words import Lexicon, Token, tokenize

UNCHECKED = frozenset({"number", "latin", "censored"})
# What precedes a word that starts a sentence or a line, where a capital letter is no name sign.
_SENTENCE_START = frozenset(".!?…\n-–—:\"«»'(")
MAX_ABBREVIATION = 6
# A shorter starting word ("А", "Ну") begins too many unrelated words to call them its echo.
MIN_ECHO = 3

EXTRA_WORDS_FILE = "extra_words.txt"
COPIES_FILE = "copies.npy"

# Repeated with a comma between for emphasis in ordinary speech ("Да, да, конечно!").
_EMPHATIC_WORDS = """да нет не ну ой ай ах ох эх ух ха хи хе хо ага угу так вот тише стоп давай иди
ладно хорошо конечно скорее быстрее быстро тихо ура браво спасибо помогите караул стой беги мяу гав
ку ква хрю кар тук бах бум дзинь кис цып ам ням чух"""
EMPHATIC = frozenset(_EMPHATIC_WORDS.split())
_GAP_RE = re.compile(r"[^\S\n]*(?:,[^\S\n]*)?")
# A comma run into other punctuation (",,", ", ?"). A comma before an ellipsis (",..") is a pause
# that the training jokes write often, so it is left alone.
# A word's hyphen run into punctuation ("что-то-,") is broken too.
_COMMA_PUNCT_RE = re.compile(r",[^\S\n]*(?:[,!?;:]|\.(?!\.))|(?<=[^\W\d_])-[,!?;:]")
# A dialogue line with a dash and nothing after it but punctuation ("-?", "-."). Silence written
# as dots ("- ...", "- …?") is a stock joke device, so those lines do not count.
_EMPTY_TURN_RE = re.compile(r"^[^\S\n]*[-–—](?:(?!\.\.|…)[^\w\n])*$", re.M)


@dataclass(frozen=True)
class Verdict:
    """What a reader would object to; ``problems`` says it in words, for logs and tests."""

    clean: bool
    copied: bool
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Fit to send: readable and not a training joke."""
        return self.clean and not self.copied


def _prompt_words(prompt: str) -> tuple[frozenset[str], str]:
    """The user's words (whole and by hyphen parts) and the last one, which the model continues."""
    tokens = tokenize(prompt)
    words = {t.key for t in tokens}
    words.update(part for t in tokens for part in t.key.split("-"))
    return frozenset(words), tokens[-1].key if tokens else ""


class JokeChecker:
    """Judges candidates; one per process, its look-ups are cached across jokes."""

    def __init__(self, lexicon: Lexicon, copies: CopyIndex | None = None) -> None:
        self.lexicon = lexicon
        self.copies = copies

    @property
    def has_copy_index(self) -> bool:
        return self.copies is not None

    @classmethod
    def load(cls, folder: str | Path) -> JokeChecker:
        """Read the shipped files: the extra words are required, the copy index is optional.

        Raises FileNotFoundError naming the missing path, so the caller can log one line and run
        without the checks.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"checks folder not found: {folder}")
        lexicon = Lexicon.load(folder / EXTRA_WORDS_FILE)
        copies_path = folder / COPIES_FILE
        copies = CopyIndex.load(copies_path) if copies_path.is_file() else None
        return cls(lexicon, copies)

    def check(self, text: str, prompt: str, *, ended: bool = True) -> Verdict:
        """Judge one candidate that starts with ``prompt``.

        ``ended`` is False when the post-processor had to add the "…" itself: only the caller
        knows, since a model may write a "…" too.
        """
        tokens = tokenize(text)
        problems = self._word_problems(text, tokens, prompt)
        problems += self._doubled_words(text, tokens)
        problems += _punctuation_problems(text)
        if not any(t.kind != "number" for t in tokens):
            problems.append("no words")
        if not ended:
            problems.append("no sentence end")
        problems = list(dict.fromkeys(problems))  # "я я я" is one fault, not two
        clean = not problems
        copied = False
        if self.copies is not None:
            window = self.copies.shared_window(text)
            if window is not None:
                copied = True
                problems.append(f"shares text with a training joke «{window}»")
        return Verdict(clean=clean, copied=copied, problems=tuple(problems))

    def _word_problems(self, text: str, tokens: list[Token], prompt: str) -> list[str]:
        prompt_words, start = _prompt_words(prompt)
        problems: list[str] = []
        seen: set[str] = set()
        for tok in tokens:
            kind, key = tok.kind, tok.key
            if kind in UNCHECKED or key in prompt_words or key in seen:
                continue
            seen.add(key)
            if kind == "cyrillic" and (
                self.lexicon.is_known(key) or _looks_like_name(text, tok) or _abbreviation(tok)
            ):
                continue
            if len(start) >= MIN_ECHO and key.startswith(start) and len(key) > len(start):
                problems.append(f"echo of the starting word «{tok.text}»")
            elif kind == "cyrillic" and self.lexicon.glued_split(key):
                problems.append(f"glued words «{tok.text}»")
            else:
                problems.append(f"unknown word «{tok.text}»")
        return problems

    def _doubled_words(self, text: str, tokens: list[Token]) -> list[str]:
        problems: list[str] = []
        for a, b in itertools.pairwise(tokens):
            if a.key != b.key or a.kind == "number":
                continue
            gap = text[a.end : b.start]
            if not _GAP_RE.fullmatch(gap):
                continue
            if "," in gap and (a.key in EMPHATIC or not self.lexicon.function_word(a.key)):
                continue
            problems.append(f"doubled word «{text[a.start : b.end]}»")
        return problems


def _looks_like_name(text: str, tok: Token) -> bool:
    """A capitalised word inside a sentence: a name the dictionary lacks ("Харламов", "Швондер").

    Why: a reader takes an unfamiliar capitalised word mid-sentence for a name, and names are what
    the dictionary misses most on real jokes. At a sentence start capitals prove nothing, and the
    models' invented words mostly stand there or are lower-case.
    """
    word = tok.text
    if not (word[0].isupper() and word[1:].replace("-", "").islower()):
        return False
    before = text[: tok.start].rstrip(" \t")
    return bool(before) and before[-1] not in _SENTENCE_START


def _abbreviation(tok: Token) -> bool:
    """A short all-capitals word ("АЗС", "МУЗТВ"): read as an abbreviation, not spelled out.

    The dictionary has the common ones ("ГИБДД"), not every brand and office; the models do not
    invent capitalised nonsense of this shape, and a lone capital letter ("Ъ") is not let through.
    """
    return 2 <= len(tok.text) <= MAX_ABBREVIATION and tok.text.isupper() and "-" not in tok.text


def _punctuation_problems(text: str) -> list[str]:
    problems = [f"broken punctuation «{m.group(0)}»" for m in _COMMA_PUNCT_RE.finditer(text)]
    if _EMPTY_TURN_RE.search(text):
        problems.append("empty dialogue line")
    return problems
