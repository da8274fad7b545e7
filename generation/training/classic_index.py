"""Build the `classic` method's index: real jokes of the openly licensed sources, by lemma.

Run: ``python -m generation.training.classic_index --corpus ../shared/data/jokes --out
models/classic``

The jokes are exactly the ones the models are trained on (`generation.training.corpus`): the three
openly licensed sources (Koziev dialogues, CC0; humornet, MIT; anecapi, MIT), `clean_text`, the
obscene filter, 20..200 characters, exact duplicates dropped by `norm_key`, and no joke of the
evaluation sets (CleanComedy gold, FUN) — all splits together, since the bot shows them and the
models are compared against them. Each keeps an id naming its source record, `<source>:<n>`, n
counting the source file's records from 0, so a rebuild of the same files gives the same ids and
the ids stored with people's votes keep their meaning.

Writes `jokes.jsonl.xz`, `lemmas.npz` (`generation.classic.index`), and `README.md` with counts.
"""

from __future__ import annotations

import argparse
import json
import lzma
import time
import zipfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from generation.classic import lemmas as lem
from generation.classic.index import JOKES_FILE, LEMMAS_FILE, OPENING_WORDS, ClassicIndex, pack
from generation.training.cleaning import clean_text, norm_key
from generation.training.corpus import (
    FUN_FILE,
    GOLD_FILE,
    MAX_CHARS,
    MIN_CHARS,
    TRAIN_SOURCES,
    load_fun,
    load_gold,
    reject_reason,
)

README_FILE = "README.md"
MIT_NOTICE = """Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE."""
LICENSES = {
    "koziev": "Koziev/NLP_Datasets, extract_dialogues_from_anekdots (CC0 1.0)",
    "humornet": "EIzharikov/russian_jokes_generator, anecdotes_dataset.csv (MIT)",
    "anecapi": "PyPI anecapi 0.1.0, modern and soviet jokes (MIT)",
}


def eval_texts(corpus: Path) -> list[str]:
    """The evaluation jokes (kept out, as from training); a missing file is none."""
    texts: list[str] = []
    if (corpus / GOLD_FILE).is_file():
        texts += [text for text, _ in load_gold(corpus / GOLD_FILE)]
    if (corpus / FUN_FILE).is_file():
        texts += [text for text, label in load_fun(corpus / FUN_FILE) if label == 1]
    return texts


def collect(
    sources: dict[str, Iterable[str]], eval_jokes: Iterable[str] = ()
) -> tuple[list[tuple[str, str]], dict[str, Counter[str]]]:
    """(id, cleaned text) of every joke kept, in source order, and per source what was dropped."""
    eval_keys = {norm_key(clean_text(text)) for text in eval_jokes} - {""}
    seen: set[str] = set()
    jokes: list[tuple[str, str]] = []
    counts: dict[str, Counter[str]] = {}
    for name, records in sources.items():
        tally = counts.setdefault(name, Counter())
        for number, raw in enumerate(records):
            tally["raw"] += 1
            text = clean_text(raw)
            key = norm_key(text)
            reason = reject_reason(text, key, seen, eval_keys, MIN_CHARS, MAX_CHARS)
            if reason:
                tally[reason] += 1
                continue
            seen.add(key)
            jokes.append((f"{name}:{number}", text))
            tally["kept"] += 1
    return jokes, counts


def lemma_arrays(texts: list[str]) -> tuple[list[str], np.ndarray, list[list[int]]]:
    """(vocabulary, openings, about lists): each joke's first lemmas, and per lemma the jokes
    that use it as a content word."""
    vocab: dict[str, int] = {}
    openings = np.full((len(texts), OPENING_WORDS), -1, dtype=np.int32)
    about: list[list[int]] = []

    def lemma_id(lemma: str) -> int:
        if lemma not in vocab:
            vocab[lemma] = len(vocab)
            about.append([])
        return vocab[lemma]

    for joke, text in enumerate(texts):
        readings = lem.lemmas(text)
        for column, (lemma, _) in enumerate(readings[:OPENING_WORDS]):
            openings[joke, column] = lemma_id(lemma)
        for lemma in sorted({lemma for lemma, function in readings if not function}):
            about[lemma_id(lemma)].append(joke)
    # Common lemmas first: small numbers where they repeat most, which compresses better.
    uses = np.bincount(openings[openings >= 0], minlength=len(vocab))
    uses += np.array([len(jokes) for jokes in about], dtype=np.int64)
    order = sorted(range(len(vocab)), key=lambda i: (-int(uses[i]), i))
    renumber = np.empty(len(vocab) + 1, dtype=np.int32)
    renumber[order] = np.arange(len(vocab), dtype=np.int32)
    renumber[-1] = -1  # padding stays padding
    words = list(vocab)
    return [words[i] for i in order], renumber[openings], [about[i] for i in order]


def write_index(jokes: list[tuple[str, str]], out: Path) -> ClassicIndex:
    """Write the index files for `jokes` ((id, text) pairs) into `out`; returns it loaded."""
    out.mkdir(parents=True, exist_ok=True)
    with lzma.open(out / JOKES_FILE, "wt", encoding="utf-8", preset=9 | lzma.PRESET_EXTREME) as fh:
        for joke_id, text in jokes:
            fh.write(json.dumps({"id": joke_id, "text": text}, ensure_ascii=False) + "\n")
    vocab, openings, about = lemma_arrays([text for _, text in jokes])
    about_offsets, about_gaps = pack(about)
    save_arrays(
        out / LEMMAS_FILE,
        vocab=np.frombuffer("\n".join(vocab).encode("utf-8"), dtype=np.uint8),
        openings=openings,
        about_offsets=about_offsets,
        about_gaps=about_gaps,
    )
    return ClassicIndex.load(out)


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    """`np.savez_compressed` with fixed file times, so the same jokes give the same bytes and the
    same model id (numpy stamps each member with the current time)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def readme(index: ClassicIndex, counts: dict[str, Counter[str]], out: Path) -> str:
    sizes = {name: (out / name).stat().st_size for name in (JOKES_FILE, LEMMAS_FILE)}
    rows = [
        f"| {name} | {LICENSES.get(name, '?')} | {tally['raw']:,} | {tally['kept']:,} | "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(tally.items()) if k not in ("raw", "kept"))
        + " |"
        for name, tally in counts.items()
    ]
    return "\n".join(
        [
            f"# The `classic` index ({index.version})",
            "",
            "Real jokes for the bot's «📚 Из сборника» method, the human baseline the models' like",
            "ratio is compared with. Built by",
            "`python -m generation.training.classic_index --corpus ../shared/data/jokes --out "
            "models/classic`",
            "from the openly licensed sources only, cleaned exactly as for training",
            "(`generation/training/corpus.py`: `clean_text`, the obscene filter, 20..200",
            "characters, duplicates and the evaluation sets' jokes dropped).",
            "",
            "| source | origin (license) | records | kept | dropped |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"- `{JOKES_FILE}` ({sizes[JOKES_FILE] / 1e6:.1f} MB): {len(index):,} jokes, one JSON "
            'object a line: `{"id": "<source>:<record number>", "text": "…"}`.',
            f"- `{LEMMAS_FILE}` ({sizes[LEMMAS_FILE] / 1e6:.1f} MB): {len(index.vocab):,} lemmas "
            "(pymorphy3's likeliest dictionary form of each word, lower case, ё as е), the "
            f"lemmas of each joke's first {OPENING_WORDS} words (`openings`, for «starts with») "
            "and, per lemma, the jokes that use it as a content word (`about`; pronouns, "
            "prepositions, conjunctions, particles and interjections are left out).",
            "",
            "A lookup takes the prompt's words' likeliest lemmas (their other readings only when "
            "those find nothing): jokes whose first words have them come first, then jokes that "
            "use all its content words.",
            "",
            "The method's model id is `classic@` and a hash of these two files "
            "(`generation/versions.py`): a rebuild that changes them changes it.",
            "",
            "## Licenses",
            "",
            "The jokes are the sources' texts, cleaned; `../shared/data/jokes/SOURCES.md` says "
            "where each file came from.",
            "",
            "- koziev: CC0 1.0 Universal (no rights reserved).",
            "- humornet: MIT License, Copyright (c) 2022 fpl-programming.",
            "- anecapi: MIT License, Copyright (c) 2022 suborofu.",
            "",
            "The MIT License's permission notice, for the humornet and anecapi jokes:",
            "",
            *(f"> {line}" if line else ">" for line in MIT_NOTICE.split("\n")),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="the raw jokes folder")
    parser.add_argument("--out", type=Path, default=Path("models/classic"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sources = {name: loader(args.corpus / fname) for name, (fname, loader) in TRAIN_SOURCES.items()}
    jokes, counts = collect(sources, eval_texts(args.corpus))
    index = write_index(jokes, args.out)
    (args.out / README_FILE).write_text(readme(index, counts, args.out), encoding="utf-8")
    took = time.perf_counter() - started
    print(f"{len(index):,} jokes, {len(index.vocab):,} lemmas, {index.version}, {took:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
