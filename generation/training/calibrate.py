"""Temperature calibration of a trained causal LM, folded into its weights.

    python -m generation.training.calibrate models/gpt --data data/prepared-380 [--split valid]
    [--out DIR]

Why: a model trained for many epochs (and fine-tuned on repeated data) ends up overconfident:
on held-out jokes, dividing its logits by one scalar T > 1 lowers the bits it needs, the same
fix as post-hoc temperature scaling of classifiers (Guo et al., 2017, "On Calibration of Modern
Neural Networks"). T is fitted on the validation split only (never on test or the gold jokes),
by a grid search over the bits per character, and then folded into the weights, so that
`from_pretrained`, every decoder (transformers' `generate`, our KV-cache loop, int8) and any
other tool see the calibrated model without knowing about it:

- tied input/output embeddings (GPT-2): the final layer norm's weight and bias are divided by T,
  which divides the hidden state the output layer sees, and so the logits, exactly by T;
- an untied output layer: its weight (and bias) are divided by T.

The fit is written to `calibration.json` next to the weights (temperature, split, bits per
character before and after). Calibrating an already calibrated folder multiplies the two
temperatures there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from generation.evaluation.corpus import read_jokes
from generation.gpt.scoring import context_length, encode_jokes, next_token_logits

log = logging.getLogger(__name__)

GRID: tuple[float, ...] = tuple(float(t) for t in np.round(np.arange(0.70, 1.6001, 0.01), 2))
RECORD = "calibration.json"
# Files of a model folder that `save_pretrained` does not write but the folder needs.
_CARRIED = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "train_summary.json",
    "README.md",
)


@dataclass
class Calibration:
    """One fit: the temperature chosen and what it changed on the data it was fitted on."""

    temperature: float
    bpc_before: float
    bpc_after: float
    jokes: int
    characters: int
    skipped: int  # sequences longer than the model's context (not scored)


@torch.inference_mode()
def bits_by_temperature(
    model: Any,
    sequences: Sequence[Sequence[int]],
    temperatures: Sequence[float],
    batch_size: int = 32,
    pad_id: int = 0,
) -> np.ndarray:
    """Total -log2 p of all scored tokens under logits / T, for each T (one model pass)."""
    inverse = torch.tensor([1.0 / t for t in temperatures])[:, None, None, None]
    totals = np.zeros(len(temperatures))
    for _, logits, targets, mask in next_token_logits(model, sequences, batch_size, pad_id):
        for k in range(len(temperatures)):  # one T at a time: a (T, B, L, V) tensor is too big
            logp = torch.log_softmax(logits * inverse[k, 0], dim=-1)
            picked = logp.gather(-1, targets[..., None]).squeeze(-1)
            totals[k] -= float((picked * mask).sum()) / np.log(2)
    return totals


def fit_temperature(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    grid: Sequence[float] = GRID,
    batch_size: int = 32,
) -> Calibration:
    """The grid temperature with the fewest bits per character on `texts` (1.0 is always a
    candidate, so the fit never makes these texts worse)."""
    candidates = sorted({1.0, *grid})
    sequences = encode_jokes(tokenizer, texts)
    kept = [i for i, s in enumerate(sequences) if len(s) <= context_length(model)]
    chars = sum(len(texts[i]) + 1 for i in kept)
    if not kept:
        raise ValueError("no text fits the model's context")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    bits = bits_by_temperature(model, [sequences[i] for i in kept], candidates, batch_size, pad)
    best = int(np.argmin(bits))
    if best in (0, len(candidates) - 1):
        log.warning("the best temperature %.2f is at the edge of the grid", candidates[best])
    return Calibration(
        temperature=candidates[best],
        bpc_before=float(bits[candidates.index(1.0)] / chars),
        bpc_after=float(bits[best] / chars),
        jokes=len(kept),
        characters=chars,
        skipped=len(sequences) - len(kept),
    )


def _final_norm(model: Any) -> torch.nn.Module:
    base = getattr(model, "base_model", model)
    for name in ("ln_f", "norm", "final_layer_norm"):
        module = getattr(base, name, None)
        if isinstance(module, torch.nn.LayerNorm) and module.weight is not None:
            return module
    raise ValueError(
        f"{type(model).__name__}: tied output embeddings and no final LayerNorm to fold a "
        "temperature into"
    )


@torch.no_grad()
def fold_temperature(model: Any, temperature: float) -> None:
    """Make the model's logits exactly `logits / temperature` by scaling its weights in place."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    scale = 1.0 / temperature
    output = model.get_output_embeddings()
    tied = output.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    layer = _final_norm(model) if tied else output
    layer.weight.mul_(scale)
    if getattr(layer, "bias", None) is not None:
        layer.bias.mul_(scale)


def calibrate_folder(
    model_dir: Path, texts: Sequence[str], out: Path, source: str, grid: Sequence[float] = GRID
) -> tuple[Calibration, float]:
    """Fit on `texts`, fold, save to `out` in the folder's stored dtype; returns the fit and the
    bits per character of the saved model re-loaded (the dtype round-trip rounds the scaled
    weights)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    stored = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
    stored_dtype = stored.dtype
    model = stored.float().eval()
    fit = fit_temperature(model, tokenizer, texts, grid)
    log.info(
        "T = %.2f: %.4f -> %.4f bits/char on %d jokes",
        fit.temperature,
        fit.bpc_before,
        fit.bpc_after,
        fit.jokes,
    )
    fold_temperature(model, fit.temperature)
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != model_dir.resolve():
        for name in _CARRIED:
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, out / name)
    model.to(stored_dtype).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)

    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    saved_bpc = fit_temperature(reloaded, tokenizer, texts, grid=(1.0,)).bpc_after

    previous = model_dir / RECORD
    earlier = json.loads(previous.read_text()) if previous.is_file() else None
    record = {
        "temperature": fit.temperature * (earlier["temperature"] if earlier else 1.0),
        "this_fit": asdict(fit),
        "bpc_as_saved": saved_bpc,
        "fitted_on": source,
        "grid": [min(grid), max(grid), len(grid)],
        "date": dt.date.today().isoformat(),
        "earlier": earlier,
    }
    (out / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return fit, saved_bpc


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m generation.training.calibrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", type=Path, help="model folder (weights + tokenizer)")
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="prepared data folder (python -m generation.training.corpus)",
    )
    parser.add_argument(
        "--split",
        default="valid",
        choices=("valid",),
        help="fit on this split only; test and gold stay held out",
    )
    parser.add_argument(
        "--out", type=Path, help="where to write the calibrated model (default: in place)"
    )
    parser.add_argument("--threads", type=int, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    texts = read_jokes(args.data / f"{args.split}.jsonl")
    out = args.out or args.model
    fit, saved = calibrate_folder(args.model, texts, out, f"{args.data}/{args.split}.jsonl")
    print(
        f"temperature {fit.temperature:.2f}: {fit.bpc_before:.4f} -> {fit.bpc_after:.4f} "
        f"bits/char on {fit.jokes} {args.split} jokes ({saved:.4f} as saved) -> {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
