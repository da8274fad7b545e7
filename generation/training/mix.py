"""Put prepared folders side by side into one training folder that
``generation.training.train_gpt`` reads.

Run: ``python -m generation.training.mix --train data/literature --train data/prepared-380
--eval data/prepared-380 --out data/mix-lit``

Why so little code: ``train_gpt`` reads ``<data>/train.jsonl`` and ``<data>/valid.jsonl`` rows of
``{"text", "source"}`` and can already repeat a source's rows (``--oversample koziev=2``). So a
mixed dataset is the concatenation of the train splits — literature rows carry ``source`` prose /
poems / publicism, the jokes keep koziev / humornet / anecapi — and the weights are set at train
time. Validation, test, gold and fun are copied from the jokes folder (``--eval``) unchanged: the
number we select checkpoints on must stay the jokes' validation loss, not the literature's.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from generation.training.corpus import read_jsonl_rows, write_jsonl

EVAL_FILES = ("valid.jsonl", "test.jsonl", "gold.jsonl", "fun.jsonl")


def mix(train_dirs: list[Path], eval_dir: Path, out: Path) -> dict[str, Any]:
    """Write ``out/train.jsonl`` (all train rows, in order) and copy the eval files of ``eval_dir``.

    Order does not matter for training (``train_gpt`` shuffles by length buckets every epoch).
    """
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for folder in train_dirs:
        rows.extend(read_jsonl_rows(folder / "train.jsonl"))
    write_jsonl(out / "train.jsonl", rows)
    copied = []
    for name in EVAL_FILES:
        if (eval_dir / name).exists():
            shutil.copyfile(eval_dir / name, out / name)
            copied.append(name)
    if "valid.jsonl" not in copied:
        raise SystemExit(f"{eval_dir} has no valid.jsonl")
    by_source = Counter(row.get("source", "") for row in rows)
    chars = Counter()
    for row in rows:
        chars[row.get("source", "")] += len(row["text"])
    stats = {
        "train_from": [str(d) for d in train_dirs],
        "eval_from": str(eval_dir),
        "eval_files": copied,
        "train_rows": len(rows),
        "rows_by_source": dict(by_source),
        "chars_by_source": dict(chars),
    }
    (out / "stats.json").write_text(
        json.dumps(stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return stats


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--train", type=Path, action="append", required=True, help="folder with train.jsonl"
    )
    parser.add_argument("--eval", type=Path, required=True, help="folder with valid.jsonl etc.")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    stats = mix(args.train, args.eval, args.out)
    print(json.dumps(stats, ensure_ascii=False, indent=2))
    return stats


if __name__ == "__main__":
    main()
