"""The collection of real jokes, searchable by the dictionary forms of their words.

Files (written by `python -m generation.training.classic_index`, read here; the folder's
README says what is in them):

* `jokes.jsonl.xz` — one joke a line, `{"id": "koziev:17", "text": "…"}`; the line number is the
  joke's number below, `id` names the source record (stable across rebuilds of the same files).
* `lemmas.npz` — the lemma vocabulary; `openings`, the lemmas of each joke's first
  `OPENING_WORDS` words (-1 past its end); and `about`, per lemma the jokes that use it as a
  content word, in ascending order, stored as gaps (small numbers compress well).

Why arrays, not the texts: lemmatizing the whole collection takes minutes; reading the arrays
takes a moment, and a lookup is then a few vectorised comparisons and set operations.
"""

from __future__ import annotations

import json
import lzma
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generation.classic import lemmas as lem
from generation.versions import folder_version

JOKES_FILE = "jokes.jsonl.xz"
LEMMAS_FILE = "lemmas.npz"
CONTENT_FILES = (JOKES_FILE, LEMMAS_FILE)
OPENING_WORDS = 5  # the bot's longest prompt (settings.max_prompt_words); longer ones are checked
START = "start"
ABOUT = "about"


def pack(postings: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, gaps) of sorted posting lists: list i is gaps[offsets[i]:offsets[i+1]], each
    list's first value absolute and the rest differences to the value before."""
    offsets = np.zeros(len(postings) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(items) for items in postings])
    gaps = np.zeros(int(offsets[-1]), dtype=np.uint32)
    for i, items in enumerate(postings):
        if len(items):
            values = np.asarray(items, dtype=np.int64)
            gaps[offsets[i] : offsets[i + 1]] = np.diff(values, prepend=0)
    return offsets, gaps


def unpack(offsets: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """The absolute values of `pack`'s lists, concatenated (slice them with `offsets`)."""
    if not len(gaps):
        return gaps.astype(np.int64)
    total = np.cumsum(gaps, dtype=np.int64)
    lengths = np.diff(offsets)
    starts = offsets[:-1][lengths > 0]
    before = total[starts] - gaps[starts]  # the running total before each list begins
    return total - np.repeat(before, lengths[lengths > 0])


class Postings:
    """Lemma -> sorted joke numbers, over a shared vocabulary."""

    def __init__(self, offsets: np.ndarray, gaps: np.ndarray) -> None:
        self.offsets = offsets
        self.values = unpack(offsets, gaps)

    def of(self, lemma_id: int | None) -> set[int]:
        if lemma_id is None:
            return set()
        return set(self.values[self.offsets[lemma_id] : self.offsets[lemma_id + 1]].tolist())


@dataclass(frozen=True, slots=True)
class Found:
    """The jokes that match a prompt: starting with it, and (the others) about it."""

    start: list[int]
    about: list[int]

    def __bool__(self) -> bool:
        return bool(self.start or self.about)


class ClassicIndex:
    """Real jokes found by a prompt's lemmas: those that start with it, then those about it."""

    def __init__(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        vocab: Sequence[str],
        openings: np.ndarray,
        about: Postings,
        version: str = "classic@test",
    ) -> None:
        self.ids = list(ids)
        self.texts = list(texts)
        self.vocab = {word: i for i, word in enumerate(vocab)}
        self.openings = openings
        self.about = about
        self.version = version

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def load(cls, folder: str | Path) -> ClassicIndex:
        """Read an index folder; OSError/ValueError when a file is missing or broken."""
        folder = Path(folder)
        for name in CONTENT_FILES:
            if not (folder / name).is_file():
                raise FileNotFoundError(f"classic index file not found: {folder / name}")
        ids, texts = [], []
        with lzma.open(folder / JOKES_FILE, "rt", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                ids.append(str(record["id"]))
                texts.append(str(record["text"]))
        with np.load(folder / LEMMAS_FILE, allow_pickle=False) as arrays:
            vocab = arrays["vocab"].tobytes().decode("utf-8").split("\n")
            openings = arrays["openings"].astype(np.int64)
            about = Postings(arrays["about_offsets"], arrays["about_gaps"])
        if len(about.offsets) != len(vocab) + 1 or openings.shape != (len(texts), OPENING_WORDS):
            raise ValueError(f"{folder / LEMMAS_FILE} does not fit {JOKES_FILE}")
        if len(about.values) and int(about.values.max()) >= len(texts):
            raise ValueError(f"{folder}: posting lists name jokes that {JOKES_FILE} lacks")
        version = folder_version("classic", folder, patterns=CONTENT_FILES)
        return cls(ids, texts, vocab, openings, about, version)

    # -- matching --------------------------------------------------------------------------------

    def find(self, prompt: str) -> Found:
        """The jokes for `prompt`: by its words' likeliest lemmas, else by any of their lemmas."""
        words = lem.words(prompt)
        if not words:
            return Found([], [])
        readings = [lem.lemma(word) for word in words]
        functions = [function for _, function in readings]
        found = self._find([[lemma] for lemma, _ in readings], functions)
        if not found:
            found = self._find([lem.options(word) for word in words], functions)
        return found

    def _find(self, alternatives: list[list[str]], functions: list[bool]) -> Found:
        start = self._starting(alternatives)
        content = [
            alts for alts, function in zip(alternatives, functions, strict=True) if not function
        ]
        about = self._about(content) - start if content else set()
        return Found(sorted(start), sorted(about))

    def _ids(self, alternatives: Iterable[str]) -> list[int | None]:
        return [self.vocab.get(lemma) for lemma in alternatives]

    def _starting(self, alternatives: list[list[str]]) -> set[int]:
        mask = np.ones(len(self.texts), dtype=bool)
        for column, alts in enumerate(alternatives[:OPENING_WORDS]):
            ids = [i for i in self._ids(alts) if i is not None]
            mask &= np.isin(self.openings[:, column], ids)
        jokes = set(np.flatnonzero(mask).tolist())
        if len(alternatives) <= OPENING_WORDS:
            return jokes
        width = len(alternatives)  # a longer prompt than stored: read the few candidates' words
        return {
            joke
            for joke in jokes
            if _opens_with(
                [lemma for lemma, _ in lem.lemmas(self.texts[joke], width)], alternatives
            )
        }

    def _about(self, content: list[list[str]]) -> set[int]:
        jokes: set[int] | None = None
        for alternatives in content:
            these = set().union(*(self.about.of(i) for i in self._ids(alternatives)))
            jokes = these if jokes is None else jokes & these
            if not jokes:
                return set()
        return jokes or set()


def _opens_with(opening: list[str], alternatives: list[list[str]]) -> bool:
    return len(opening) == len(alternatives) and all(
        lemma in alts for lemma, alts in zip(opening, alternatives, strict=True)
    )


__all__ = [
    "ABOUT",
    "CONTENT_FILES",
    "JOKES_FILE",
    "LEMMAS_FILE",
    "OPENING_WORDS",
    "START",
    "ClassicIndex",
    "Found",
    "Postings",
    "pack",
    "unpack",
]
