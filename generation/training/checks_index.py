"""Build the shipped files of the joke checks from the openly licensed training jokes.

Run: ``python -m generation.training.checks_index --corpus ../shared/data/jokes --out
models/checks``

The jokes are read and cleaned exactly as for training (`generation.training.corpus`): the three
open sources,
`clean_text`, and exact duplicates dropped by `norm_key`, so a joke reposted many times does not
make its rare words look common. No length cut, split or obscenity filter is applied: a copy of any
training joke is a copy, and words the jokes use are words.

Extra words are what the dictionary misses but the jokes use at least `MIN_COUNT` times: names
("Рабинович"), slang, accents ("нэт"). Left out are single letters (they come from censored swear
words, "х..", and every real one-letter word is in the dictionary), pieces of censored words, and
words that the jokes more often write as two words ("незнаю" against "не знаю"): those are typos,
and a generated joke that has them reads as broken.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from generation.checks.copies import SHARE, STRIDE, WIDTH, CopyIndex
from generation.checks.verdict import COPIES_FILE, EXTRA_WORDS_FILE
from generation.checks.words import Lexicon, tokenize
from generation.training.cleaning import clean_text, norm_key
from generation.training.corpus import TRAIN_SOURCES

MIN_COUNT = 3
README_FILE = "README.md"
# Measured by hand when the stride was chosen (2026-12-05), against the true longest share
# computed from every window of the same jokes; kept in the README so the choice can be revisited.
TRADE_OFF = """
How the stride was chosen (jokes called copies, against those that really share 40 characters):

| stored windows | size | CleanComedy gold, 1,000 jokes | docs/QUALITY-details.md samples, 60 |
|---|---|---|---|
| 20 chars every 20th (first design) | 3.8 MB | 194 (true 90) | 26 (true 6) |
| 31 chars every 10th (shipped) | 6.5 MB | 99 (true 90) | 10 (true 6) |
| 36 chars every 5th | 12 MB | 92 (true 90) | 8 (true 6) |
| 40 chars at every position (exact) | 55 MB | 90 | 6 |

The four extra samples called copies with the shipped index share 31, 36, 39 and 39 characters.
"""


def training_jokes(corpus: Path) -> list[str]:
    """Cleaned, distinct jokes of the openly licensed sources, in source order."""
    seen: set[str] = set()
    jokes: list[str] = []
    for fname, loader in TRAIN_SOURCES.values():
        for raw in loader(corpus / fname):
            text = clean_text(raw)
            key = norm_key(text)
            if key and key not in seen:
                seen.add(key)
                jokes.append(text)
    return jokes


def unknown_word_counts(jokes: Iterable[str], lexicon: Lexicon) -> Counter[str]:
    """How many times each word the lexicon does not know occurs (hyphen parts counted too)."""
    counts: Counter[str] = Counter()
    for text in jokes:
        for tok in tokenize(text):
            if tok.kind != "cyrillic" or lexicon.is_known(tok.key):
                continue
            counts[tok.key] += 1
            if "-" in tok.key:
                # Short parts are stutters and sound effects ("ес-с-ть"), not words.
                parts = tok.key.split("-")
                counts.update(p for p in parts if len(p) > 2 and not lexicon.is_known(p))
    return counts


def _phrase_counts(jokes: Iterable[str], phrases: set[tuple[str, str]]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for text in jokes:
        tokens = tokenize(text)
        for a, b in itertools.pairwise(tokens):
            pair = (a.key, b.key)
            if pair in phrases and not text[a.end : b.start].strip():
                counts[pair] += 1
    return counts


def extra_words(jokes: list[str], lexicon: Lexicon, min_count: int = MIN_COUNT) -> list[str]:
    """The sorted extra words (see the module docstring); ``lexicon`` should have no extras."""
    counts = unknown_word_counts(jokes, lexicon)
    frequent = {w: n for w, n in counts.items() if n >= min_count and len(w) > 1}
    splits = {w: lexicon.glued_split(w, min_part=1) for w in frequent}
    glued = {s for s in splits.values() if s is not None}
    phrases = _phrase_counts(jokes, glued)
    typos = {w for w, s in splits.items() if s is not None and phrases[s] >= frequent[w]}
    return sorted(set(frequent) - typos)


def write_readme(out: Path, n_jokes: int, n_words: int, n_hashes: int) -> None:
    size = {name: (out / name).stat().st_size for name in (EXTRA_WORDS_FILE, COPIES_FILE)}
    words_row = (
        f"| `{EXTRA_WORDS_FILE}` | {size[EXTRA_WORDS_FILE]:,} bytes | {n_words:,} words that "
        f"pymorphy3's dictionary does not know but the jokes use at least {MIN_COUNT} times "
        '(names, slang), lower-cased, "ё" written as "е", one a line, sorted |'
    )
    copies_row = (
        f"| `{COPIES_FILE}` | {size[COPIES_FILE]:,} bytes | {n_hashes:,} sorted unique uint64: "
        f"the blake2b hash (8 bytes, little-endian) of the {WIDTH}-character window at every "
        f'{STRIDE}th position of each normalised joke (lower case, "ё" as "е", whitespace runs '
        "as one space) |"
    )
    text = f"""# Files of the joke checks (`generation.checks`)

Built by `python -m generation.training.checks_index --corpus ../shared/data/jokes --out
models/checks`
from the {n_jokes:,} distinct cleaned jokes of the openly licensed sources (Koziev CC0, humornet
MIT, anecapi MIT), read and cleaned by `generation.training.corpus`. The files hold words and
hashes, not
jokes.

| file | size | what it is |
|---|---|---|
{words_row}
{copies_row}

A generated joke is called a copy when one of its {WIDTH}-character windows is in `{COPIES_FILE}`.
Every joke that shares {SHARE} characters in a row with a training joke is caught; a hit proves
{WIDTH} shared characters, so a share of {WIDTH} to {SHARE - 1} characters can also be called a
copy. Changing the window or the stride in `generation/checks/copies.py` needs a rebuild.
{TRADE_OFF}"""
    (out / README_FILE).write_text(text, encoding="utf-8")


def build(corpus: Path, out: Path) -> dict[str, float]:
    """Write the extra words, the copy index and the README; return counts for the log."""
    started = time.perf_counter()
    jokes = training_jokes(corpus)
    words = extra_words(jokes, Lexicon())
    index = CopyIndex.build(jokes)
    out.mkdir(parents=True, exist_ok=True)
    (out / EXTRA_WORDS_FILE).write_text("".join(w + "\n" for w in words), encoding="utf-8")
    index.save(out / COPIES_FILE)
    write_readme(out, len(jokes), len(words), len(index))
    return {
        "jokes": len(jokes),
        "extra_words": len(words),
        "hashes": len(index),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Build the files of the joke checks.")
    ap.add_argument("--corpus", type=Path, default=Path("../shared/data/jokes"))
    ap.add_argument("--out", type=Path, default=Path("models/checks"))
    args = ap.parse_args(argv)
    stats = build(args.corpus, args.out)
    print(", ".join(f"{k}: {v:,}" for k, v in stats.items()))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
