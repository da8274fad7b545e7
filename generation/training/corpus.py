"""Prepare the joke corpus: load the openly licensed raw files, clean, filter, dedup and split.

Run: ``python -m generation.training.corpus --corpus ../shared/data/jokes --out data/prepared``

Why these sources: only the openly licensed files are trained on (Koziev dialogues, CC0; humornet,
MIT; anecapi, MIT). CleanComedy gold (CC BY 4.0) and FUN assessed (MIT) are evaluation sets: they
are written to ``gold.jsonl`` / ``fun.jsonl`` and every training candidate whose normalised key
equals one of their keys is dropped, so evaluation never sees a joke the model was trained on.

Cleaning (one canonical text form for every source) and the obscene filter: ``cleaning``.

Length cut (20..200 characters): the original project trained on jokes shorter than 100
characters, and the bot wants short jokes, but only part of the open data is that short (the
report and ``stats.json`` give the distribution). A 100-character cut would throw away much of an
already small corpus; at 200 characters most of it stays, a joke still fits easily in
n_positions 128, and generation length is capped by ``max_new_tokens`` anyway. Under 20 characters
the records are fragments ("- Да.\\n- Нет.").

Dedup and split: the key is the text lower-cased with "ё"->"е" and only letters and digits kept, so
reposts that differ in punctuation or case collapse. The split is a pure function of that key
(blake2b), so it is stable across runs and sources: 98% train, 1% valid, 1% test by default.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generation.training.cleaning import clean_text, is_obscene, norm_key

MIN_CHARS = 20
MAX_CHARS = 200
SPLITS = ("train", "valid", "test")

KOZIEV_FILE = "koziev_extract_dialogues_from_anekdots.tar.xz"
HUMORNET_FILE = "humornet_anecdotes_dataset.csv"
ANECAPI_FILE = "anecapi_jokes.json"
GOLD_FILE = "clean_comedy_gold_ru.csv"
FUN_FILE = "fun_dataset_assessed.json"


def split_of(key: str, valid_pct: int = 1, test_pct: int = 1) -> str:
    """Deterministic split by a hash of the dedup key."""
    bucket = (
        int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") % 100
    )
    if bucket < test_pct:
        return "test"
    if bucket < test_pct + valid_pct:
        return "valid"
    return "train"


# ---------------------------------------------------------------------------------------------
# Loaders (raw records, not cleaned)
# ---------------------------------------------------------------------------------------------


def load_koziev(path: Path) -> Iterator[str]:
    with tarfile.open(path) as tar:
        member = tar.extractfile("extract_dialogues_from_anekdots.txt")
        if member is None:
            raise ValueError(f"{path}: no extract_dialogues_from_anekdots.txt inside")
        text = member.read().decode("utf-8")
    for rec in re.split(r"\n\s*\n\s*\n", text.replace("\r\n", "\n")):
        if rec.strip():
            yield rec


def load_humornet(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("text"):
                yield row["text"]


def load_anecapi(path: Path) -> Iterator[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in ("modern_jokes", "soviet_jokes"):
        yield from (t for t in data.get(key, []) if isinstance(t, str))


def load_gold(path: Path) -> Iterator[tuple[str, float]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            yield row["text"], float(row["score"])


def load_fun(path: Path) -> Iterator[tuple[str, int]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    for text, label in data.items():
        yield text, int(label)


TRAIN_SOURCES = {
    "koziev": (KOZIEV_FILE, load_koziev),
    "humornet": (HUMORNET_FILE, load_humornet),
    "anecapi": (ANECAPI_FILE, load_anecapi),
}

# ---------------------------------------------------------------------------------------------
# Pipeline
# ---------------------------------------------------------------------------------------------


@dataclass
class PrepareResult:
    splits: dict[str, list[str]]
    gold: list[dict[str, object]]
    fun: list[dict[str, object]]
    stats: dict[str, object] = field(default_factory=dict)
    # the source name of every text in ``splits``, index for index; training may weight by it
    sources: dict[str, list[str]] = field(default_factory=dict)


def _length_hist(lengths: list[int]) -> dict[str, float]:
    if not lengths:
        return {}
    s = sorted(lengths)
    n = len(s)
    out: dict[str, float] = {"n": n, "mean": round(sum(s) / n, 1)}
    for q in (10, 25, 50, 75, 90, 95, 99):
        out[f"p{q}"] = s[min(n - 1, n * q // 100)]
    for cut in (20, 50, 100, 150, 200, 300):
        out[f"lt{cut}"] = round(sum(1 for x in s if x < cut) / n, 3)
    return out


def reject_reason(
    text: str, key: str, seen: set[str], eval_keys: set[str], min_chars: int, max_chars: int
) -> str:
    """Why a cleaned record is not trained on ("" when it is kept); checked in this order."""
    if not key:
        return "empty"
    if is_obscene(text):
        return "obscene"
    if len(text) < min_chars:
        return "too_short"
    if len(text) > max_chars:
        return "too_long"
    if key in eval_keys:
        return "eval_overlap"
    if key in seen:
        return "duplicate"
    return ""


def prepare(
    sources: dict[str, Iterable[str]],
    eval_texts: Iterable[str] = (),
    min_chars: int = MIN_CHARS,
    max_chars: int = MAX_CHARS,
    valid_pct: int = 1,
    test_pct: int = 1,
) -> PrepareResult:
    """Clean, filter, dedup and split training candidates; library form of the CLI.

    ``sources`` maps a source name to its raw records (processed in the given order, so the first
    source wins a duplicate). ``eval_texts`` are raw evaluation jokes whose keys must not be
    trained on.
    """
    eval_keys = {norm_key(clean_text(t)) for t in eval_texts}
    eval_keys.discard("")
    seen: set[str] = set()
    result = PrepareResult(
        splits={s: [] for s in SPLITS}, gold=[], fun=[], sources={s: [] for s in SPLITS}
    )
    filtered: Counter[str] = Counter()
    per_source: dict[str, Counter[str]] = {}
    lengths_before: list[int] = []
    lengths_after: list[int] = []
    for name, records in sources.items():
        counts = per_source.setdefault(name, Counter())
        for raw in records:
            counts["raw"] += 1
            text = clean_text(raw)
            key = norm_key(text)
            if key:
                lengths_before.append(len(text))
            reason = reject_reason(text, key, seen, eval_keys, min_chars, max_chars)
            if reason:
                filtered[reason] += 1
                counts[reason] += 1
                continue
            seen.add(key)
            split = split_of(key, valid_pct, test_pct)
            result.splits[split].append(text)
            result.sources[split].append(name)
            counts[split] += 1
            lengths_after.append(len(text))
    result.stats = {
        "min_chars": min_chars,
        "max_chars": max_chars,
        "split_pct": {"train": 100 - valid_pct - test_pct, "valid": valid_pct, "test": test_pct},
        "per_source": {k: dict(v) for k, v in per_source.items()},
        "filtered": dict(filtered),
        "splits": {k: len(v) for k, v in result.splits.items()},
        "lengths_cleaned_all": _length_hist(lengths_before),
        "lengths_kept": _length_hist(lengths_after),
        "eval_keys": len(eval_keys),
    }
    return result


def prepare_corpus(corpus: Path, **kwargs: int) -> PrepareResult:
    """Read the raw corpus folder and prepare train/valid/test plus the evaluation sets."""
    gold_raw = list(load_gold(corpus / GOLD_FILE))
    fun_raw = list(load_fun(corpus / FUN_FILE))
    sources = {name: loader(corpus / fname) for name, (fname, loader) in TRAIN_SOURCES.items()}
    eval_texts = [t for t, _ in gold_raw] + [t for t, label in fun_raw if label == 1]
    result = prepare(sources, eval_texts, **kwargs)
    result.gold = [{"text": clean_text(t), "score": s} for t, s in gold_raw if clean_text(t)]
    result.fun = [{"text": clean_text(t), "label": lab} for t, lab in fun_raw if clean_text(t)]
    result.stats["gold"] = len(result.gold)
    result.stats["fun"] = len(result.fun)
    return result


def write_jsonl(path: Path, rows: Iterable[dict[str, object]]) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl_texts(path: str | Path) -> list[str]:
    """Read the ``text`` field of every line of a prepared jsonl file."""
    return [row["text"] for row in read_jsonl_rows(path)]


def read_jsonl_rows(path: str | Path) -> list[dict[str, Any]]:
    """Read every line of a prepared jsonl file (``text`` and, for splits, ``source``)."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_prepared(result: PrepareResult, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for split, texts in result.splits.items():
        names = result.sources.get(split) or [""] * len(texts)
        write_jsonl(
            out / f"{split}.jsonl",
            (
                {"text": t, "source": n} if n else {"text": t}
                for t, n in zip(texts, names, strict=True)
            ),
        )
    write_jsonl(out / "gold.jsonl", result.gold)
    write_jsonl(out / "fun.jsonl", result.fun)
    (out / "stats.json").write_text(
        json.dumps(result.stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def format_report(stats: dict[str, object]) -> str:
    lines = ["source      raw     kept  obscene short long  dup  eval"]
    for name, c in stats["per_source"].items():  # type: ignore[union-attr]
        kept = sum(c.get(s, 0) for s in SPLITS)
        lines.append(
            f"{name:<10}{c.get('raw', 0):>6} {kept:>7} {c.get('obscene', 0):>7} "
            f"{c.get('too_short', 0):>5} {c.get('too_long', 0):>5} {c.get('duplicate', 0):>4} "
            f"{c.get('eval_overlap', 0):>5}"
        )
    lines.append(f"splits: {stats['splits']}  gold: {stats.get('gold')}  fun: {stats.get('fun')}")
    lines.append(f"lengths of all cleaned records: {stats['lengths_cleaned_all']}")
    lines.append(
        f"lengths kept ({stats['min_chars']}..{stats['max_chars']} chars): {stats['lengths_kept']}"
    )
    cleaned = stats["lengths_cleaned_all"]
    if cleaned:
        lt100 = cleaned["lt100"]  # type: ignore[index]
        kept = stats["lengths_kept"].get("n", 0) / cleaned["n"]  # type: ignore[index,union-attr]
        lines.append(
            f"length cut: the bot wants short jokes, but <100 chars would keep only {lt100:.0%} "
            f"of the cleaned records; {stats['min_chars']}..{stats['max_chars']} and the other "
            f"filters keep {kept:.0%}."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("../shared/data/jokes"))
    ap.add_argument("--out", type=Path, default=Path("data/prepared"))
    ap.add_argument("--min-chars", type=int, default=MIN_CHARS)
    ap.add_argument("--max-chars", type=int, default=MAX_CHARS)
    ap.add_argument("--valid-pct", type=int, default=1)
    ap.add_argument("--test-pct", type=int, default=1)
    args = ap.parse_args(argv)
    result = prepare_corpus(
        args.corpus,
        min_chars=args.min_chars,
        max_chars=args.max_chars,
        valid_pct=args.valid_pct,
        test_pct=args.test_pct,
    )
    write_prepared(result, args.out)
    print(format_report(result.stats))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
