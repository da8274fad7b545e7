"""Writing the tuned model as a new version folder that loads exactly as the base one does.

The folder holds the tuned weights (`save_pretrained`, safetensors) and, copied byte for byte
from the base, the tokenizer, the generation config and every other file the loader reads
(`train_summary.json` marks our own model, so prompts get the bos token). `train_summary.json`
gets one more stage describing the tuning. The content hash (`generation.versions`) covers the
weights, so the new folder always has a version of its own; the model card (README.md) and
`tune.json` are not hashed.

Files appear complete or not at all: everything is written into a hidden sibling folder first
and then moved into place, the model card last.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from generation.gpt.loading import TRAIN_SUMMARY, model_id_of

#: base files not copied: the weights and config (written anew), the card, run artefacts
NOT_COPIED = ("*.safetensors", "*.bin", "config.json", "README.md", "*.png", "*.log", "tune.json")
CARD = "README.md"
FACTS = "tune.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _skipped(path: Path) -> bool:
    return any(path.match(pattern) for pattern in NOT_COPIED)


def round_to(model: Any, dtype: str) -> Any:
    """The model as it will be saved, back in float32: evaluation must see what ships."""
    if DTYPES[dtype] != torch.float32:
        model.to(DTYPES[dtype]).to(torch.float32)
    return model


def _summary(base: Path, stage: dict[str, Any]) -> dict[str, Any]:
    path = base / TRAIN_SUMMARY
    summary: dict[str, Any] = {}
    if path.is_file():
        summary = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(summary.get("stages"), list):
        summary = {"stages": [summary] if summary else []}
    summary["stages"].append(stage)
    return summary


def write_model(model: Any, base: Path, out: Path, dtype: str, stage: dict[str, Any]) -> str:
    """Write the loadable folder `out` (its other content, e.g. a checkpoint, is kept) and
    return its version."""
    staging = out.with_name(f".{out.name}.writing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        model.to(DTYPES[dtype]).save_pretrained(str(staging), safe_serialization=True)
        model.to(torch.float32)
        for path in sorted(base.iterdir()):
            if path.is_file() and not _skipped(path) and path.name != TRAIN_SUMMARY:
                shutil.copy2(path, staging / path.name)  # generation config and tokenizer too
        summary = _summary(base, stage)
        (staging / TRAIN_SUMMARY).write_text(
            json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        out.mkdir(parents=True, exist_ok=True)
        mode = 0o666 & ~_umask()  # as any file the user writes (the weights come out 0600)
        for path in sorted(staging.iterdir()):
            path.chmod(mode)
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model_id_of(out)


def write_facts(out: Path, facts: dict[str, Any], card: str) -> None:
    """`tune.json` (every figure, for programs) and the model card (for people)."""
    tmp = out / f".{FACTS}.tmp"
    tmp.write_text(json.dumps(facts, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, out / FACTS)
    tmp = out / f".{CARD}.tmp"
    tmp.write_text(card, encoding="utf-8")
    os.replace(tmp, out / CARD)


__all__ = ["CARD", "DTYPES", "FACTS", "round_to", "write_facts", "write_model"]
