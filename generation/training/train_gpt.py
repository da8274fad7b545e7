"""Train a small GPT-2 on the prepared jokes.

Run (CPU smoke): ``python -m generation.training.train_gpt --data data/prepared --tokenizer
data/prepared/tokenizer --out models/gpt --run-dir runs/gpt --n-layer 2 --n-embd 128 --n-head 4
--max-minutes 2``; on a GPU add ``--device cuda`` and a real size (see ``--help``).

Sequence format: every training example is one joke, ``<|endoftext|> joke <|endoftext|>``,
right-padded with ``<pad>`` (label -100). The bot prompts with ``<|endoftext|> prompt`` and stops at
``<|endoftext|>``, so generation sees exactly what training saw: a joke starting at position 0 after
the bos token. Jokes are not packed: with absolute positions, packing would train jokes at arbitrary
offsets while the bot always starts at 0. Right padding under a causal mask means real tokens never
attend to pads, so no attention mask is passed and SDPA keeps its fast causal kernel. Data layout
and length bucketing: ``gpt_data``.

Optimisation: AdamW (betas 0.9/0.95, weight decay on matrices only), linear warmup then cosine decay
to ``--min-lr-ratio`` of the peak over the run's progress (``gpt_loop``). bf16 autocast on CUDA and
CPU (``--precision fp32`` turns it off), gradient clipping at ``--grad-clip``.

Fine-tuning: ``--init-from models/gpt`` starts from a saved model folder (its size wins over the
size flags; a fresh optimizer and schedule), and ``--oversample humornet=4`` repeats one source's
train jokes (the ``source`` field that ``generation.training.corpus`` writes) to shift the data
mix, e.g. toward narrative jokes when the open data is mostly dialogue.

Outputs: the best checkpoint by validation loss goes to ``--out`` (``save_pretrained`` with
safetensors in ``--save-dtype``, tokenizer files, a GenerationConfig with bos/eos/pad ids, and
``train_summary.json``); ``--run-dir`` gets ``trainer_state.pt`` (fp32 weights, optimizer, step,
elapsed time, RNG and epoch position, for ``--resume``), ``args.json``, ``metrics.json`` and
``loss.png``. A run refuses to start if the saved weights would exceed ``--max-weights-mb``.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from generation.training.common import bf16_autocast, resolve_device
from generation.training.corpus import read_jsonl_rows, read_jsonl_texts
from generation.training.gpt_data import TokenizedSplit, oversampled, tokenize_split
from generation.training.gpt_loop import STATE_FILE, GPTTrainer, Progress
from generation.training.gpt_model import (
    DTYPES,
    SAMPLE_PROMPTS,
    load_model,
    make_optimizer,
    n_params,
    weights_mb,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Train a small GPT-2 on the prepared jokes")
    ap.add_argument("--data", type=Path, default=Path("data/prepared"))
    ap.add_argument("--tokenizer", type=Path, default=Path("data/prepared/tokenizer"))
    ap.add_argument("--out", type=Path, default=Path("models/gpt"))
    ap.add_argument("--run-dir", type=Path, default=Path("runs/gpt"))
    ap.add_argument("--resume", type=Path, default=None, help="run dir with trainer_state.pt")
    ap.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="fine-tune from this model folder (its size wins over the size flags)",
    )
    ap.add_argument(
        "--oversample",
        action="append",
        default=[],
        metavar="SOURCE=K",
        help="repeat a source's train jokes K times ('source' of train.jsonl); repeatable",
    )
    _add_model_args(ap)
    _add_optimisation_args(ap)
    _add_runtime_args(ap)
    args = ap.parse_args(argv)
    if args.max_steps is None and args.max_minutes is None:
        args.max_steps = 1000
    return args


def _add_model_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--n-layer", type=int, default=8)
    ap.add_argument("--n-embd", type=int, default=384)
    ap.add_argument("--n-head", type=int, default=6)
    ap.add_argument("--n-positions", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.1)


def _add_optimisation_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup-steps", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--eval-every", type=int, default=500, help="steps between validations")
    ap.add_argument("--eval-batch-size", type=int, default=256)
    ap.add_argument("--log-every", type=int, default=20)


def _add_runtime_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--save-dtype", choices=["bfloat16", "float32"], default="bfloat16")
    ap.add_argument("--max-weights-mb", type=float, default=40.0)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--samples", type=int, default=len(SAMPLE_PROMPTS), help="samples per eval")
    ap.add_argument(
        "--state-every-minutes",
        type=float,
        default=2.0,
        help="min minutes between trainer_state.pt saves at evals (always saved at the end)",
    )
    ap.add_argument("--no-progress", action="store_true")


def setup_runtime(args: argparse.Namespace) -> torch.device:
    """Seed, threads and the device (TF32 matmuls on CUDA)."""
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def load_tokenizer(path: Path) -> Any:
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    pad_id = tokenizer.pad_token_id
    if pad_id is None or tokenizer.eos_token_id is None or pad_id == tokenizer.eos_token_id:
        raise SystemExit("the tokenizer needs distinct eos and pad tokens")
    return tokenizer


def load_splits(
    args: argparse.Namespace, tokenizer: Any, max_len: int, device: torch.device
) -> tuple[TokenizedSplit, TokenizedSplit]:
    """Train (with ``--oversample`` applied) and valid splits, tokenized onto the device."""
    train_texts = oversampled(read_jsonl_rows(args.data / "train.jsonl"), args.oversample)
    valid_texts = read_jsonl_texts(args.data / "valid.jsonl")
    return (
        tokenize_split(train_texts, tokenizer, max_len, device),
        tokenize_split(valid_texts, tokenizer, max_len, device),
    )


def run_info(
    model: Any, size_mb: float, args: argparse.Namespace, device: torch.device, splits: tuple
) -> dict[str, Any]:
    """The facts of a run, printed at the start and saved with every checkpoint."""
    train_split, valid_split = splits
    cfg = model.config
    return {
        "device": str(device),
        "params": n_params(model),
        "weights_mb": round(size_mb, 2),
        "save_dtype": args.save_dtype,
        "vocab_size": cfg.vocab_size,
        "n_layer": cfg.n_layer,
        "n_embd": cfg.n_embd,
        "n_head": cfg.n_head,
        "n_positions": cfg.n_positions,
        "train_jokes": len(train_split.lengths),
        "train_tokens": int(train_split.lengths.sum()),
        "valid_jokes": len(valid_split.lengths),
        "truncated_train": train_split.truncated,
        "torch": torch.__version__,
    }


def build_trainer(args: argparse.Namespace) -> GPTTrainer:
    """Everything a run needs, from a fresh start, ``--init-from`` or ``--resume``."""
    device = setup_runtime(args)
    tokenizer = load_tokenizer(args.tokenizer)
    state: dict[str, Any] | None = None
    if args.resume is not None:
        state = torch.load(args.resume / STATE_FILE, map_location="cpu", weights_only=False)
    model = load_model(args, tokenizer, state)
    save_dtype = DTYPES[args.save_dtype]
    size_mb = weights_mb(model, save_dtype)
    if size_mb > args.max_weights_mb:
        raise SystemExit(
            f"saved weights would be {size_mb:.1f} MB in {args.save_dtype}, over "
            f"--max-weights-mb {args.max_weights_mb}; shrink n_embd/n_layer or the vocab"
        )
    model.to(device)
    model.train()
    splits = load_splits(args, tokenizer, model.config.n_positions, device)
    optimizer = make_optimizer(model, args, device)
    progress = Progress()
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        progress = Progress.from_state(state)
        torch.set_rng_state(state["torch_rng"])
    args.run_dir.mkdir(parents=True, exist_ok=True)
    args_json = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    (args.run_dir / "args.json").write_text(json.dumps(args_json, indent=2) + "\n")
    info = run_info(model, size_mb, args, device, splits)
    print(json.dumps(info, ensure_ascii=False), flush=True)
    autocast = partial(bf16_autocast, device, args.precision == "bf16")
    return GPTTrainer(
        args, model, tokenizer, optimizer, *splits, autocast, save_dtype, info, progress,
        resumed=state is not None,
    )  # fmt: skip


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run training; returns the metrics dict also written to ``run_dir/metrics.json``."""
    t_start = time.monotonic()
    trainer = build_trainer(args)
    metrics = trainer.run()
    metrics["total_wall_s"] = round(time.monotonic() - t_start, 1)
    print(
        f"done: step {metrics['step']}, best val_loss {metrics['best_val_loss']:.4f}, "
        f"bpc {metrics['best_val_bpc']}, {metrics['tokens_per_s']} tokens/s, "
        f"weights {trainer.info['weights_mb']:.1f} MB -> {args.out}",
        flush=True,
    )
    return metrics


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return train(parse_args(argv))


if __name__ == "__main__":
    main()
