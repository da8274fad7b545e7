"""A ratings file made from human-rated jokes, to smoke-test tuning before the bot has votes.

Run: `python -m generation.tune.synthetic --corpus ../shared/data/jokes --out /tmp/ratings.jsonl`

Not people's votes on our bot's jokes, so nothing tuned on it is meant to ship: it only has the
export's format and a real signal, so that `python -m generation.tune` can be run end to end.
- CleanComedy gold: five people scored each joke 1..5; a score of 4-5 becomes a 👍, 1-2 a 👎.
  A third of the jokes (by a hash of the text) are written as method `classic`, the rest as `gpt`.
- FUN: texts that are not jokes become disliked `gpt` rows (two 👎), jokes liked ones (two 👍).
The prompt is the text's first word of four or more letters, as a user might type it.
`--bad-lines` appends a broken line, an unknown method and a duplicate id, to show the skips.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from generation.training.cleaning import clean_text
from generation.training.corpus import FUN_FILE, GOLD_FILE, load_fun

_WORD = re.compile(r"[^\W\d_]{4,}")
RATERS = ("score1", "score2", "score3", "score4", "score5")


def _bucket(text: str, n: int) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big") % n


def _row(number: int, text: str, method: str, likes: int, dislikes: int) -> dict[str, Any]:
    match = _WORD.search(text)  # the first word of 4+ letters: a word a user might type
    return {
        "id": number,
        "prompt": match.group(0) if match else "",
        "text": text,
        "method": method,
        "model": "synthetic",
        "params": {},
        "likes": likes,
        "dislikes": dislikes,
        "created_at": "2026-01-01T00:00:00+00:00",
        "candidate_rank": None,
        "candidates": None,
        "judge_score": None,
        "judge_version": None,
    }


def gold_rows(path: Path, limit: int) -> Iterator[tuple[str, str, int, int]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for count, record in enumerate(csv.DictReader(fh)):
            if count >= limit:
                return
            text = clean_text(record["text"])
            scores = [int(float(record[k])) for k in RATERS if record.get(k)]
            likes, dislikes = sum(s >= 4 for s in scores), sum(s <= 2 for s in scores)
            if text and likes + dislikes:
                method = "classic" if _bucket(text, 3) == 0 else "gpt"
                yield text, method, likes, dislikes


def fun_rows(path: Path, limit: int) -> Iterator[tuple[str, str, int, int]]:
    for count, (raw, label) in enumerate(load_fun(path)):
        if count >= limit:
            return
        text = clean_text(raw)
        if text:
            yield text, "gpt", 2 * label, 2 * (1 - label)


def write(corpus: Path, out: Path, limit: int, bad_lines: bool) -> int:
    rows = [*gold_rows(corpus / GOLD_FILE, limit), *fun_rows(corpus / FUN_FILE, limit)]
    lines = [json.dumps(_row(i, *row), ensure_ascii=False) for i, row in enumerate(rows, 1)]
    if bad_lines and lines:
        lines.append('{"id": 0, "text": "a broken line')
        lines.append(json.dumps(_row(len(rows) + 1, "Кот ушёл.", "poetry", 1, 0)))
        lines.append(lines[0])  # the same id again: a duplicate vote
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m generation.tune.synthetic", description=__doc__)
    ap.add_argument("--corpus", type=Path, default=Path("../shared/data/jokes"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=400, help="rows read from each source")
    ap.add_argument("--bad-lines", action="store_true")
    args = ap.parse_args(argv)
    count = write(args.corpus, args.out, args.limit, args.bad_lines)
    print(f"wrote {count} lines to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
