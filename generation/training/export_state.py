"""Save the last weights of a ``train_gpt`` run (``trainer_state.pt``) as a loadable model folder.

Run: ``python -m generation.training.export_state runs/gpt-lit/mix --tokenizer models/gpt
--out runs/gpt-lit/mix-last``

Why: ``train_gpt`` keeps only the checkpoint with the best *validation* loss, and in the literature
phase the validation split is the jokes'. While the model is busy learning prose, the joke loss
may be best early (or not move), so the best checkpoint can be the least-read one. The joke-only
phase must start from what the literature phase ended with; ``trainer_state.pt`` (always written
at the end of a run) holds exactly those weights.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from generation.training.gpt_loop import STATE_FILE
from generation.training.gpt_model import DTYPES, save_checkpoint


def export_state(run_dir: Path, tokenizer_dir: Path, out: Path, dtype: str = "float32") -> dict:
    """Write ``out`` from ``run_dir/trainer_state.pt``; returns the summary written with it.

    float32 by default: the folder is an intermediate that the next phase trains on, and rounding
    the master weights to bfloat16 between phases would throw away what small updates changed.
    """
    state: dict[str, Any] = torch.load(run_dir / STATE_FILE, map_location="cpu", weights_only=False)
    model = GPT2LMHeadModel(GPT2Config.from_dict(state["config"]))
    model.load_state_dict(state["model"])
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    last = state["history"][-1] if state["history"] else {}
    summary = {
        "what": f"last weights of {run_dir} (trainer_state.pt), not its best checkpoint",
        "step": state["step"],
        "epoch": state["epoch"],
        "tokens_seen": state.get("tokens_seen", 0),
        "val_loss": last.get("val_loss"),
        "val_bpc": last.get("val_bpc"),
    }
    save_checkpoint(model, tokenizer, out, DTYPES[dtype], summary)
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    args = parser.parse_args(argv)
    summary = export_state(args.run_dir, args.tokenizer, args.out, args.dtype)
    print(json.dumps(summary, ensure_ascii=False))
    return summary


if __name__ == "__main__":
    main()
