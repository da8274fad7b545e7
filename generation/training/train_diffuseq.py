"""Train DiffuSeq on the prepared joke corpus.

    python -m generation.training.train_diffuseq --data data/prepared --tokenizer
    data/prepared/tokenizer \\
        --out models/diffuseq [--device auto|cpu|cuda] [--max-minutes M] [--max-steps N] \\
        [--resume RUN_DIR]

The run directory (runs/diffuseq/<time> by default) holds state.pt (model, EMA, optimizer, step;
what --resume reads), args.json, metrics.json and loss_curve.png. The EMA weights of the best
validation loss are saved to --out in the layout `DiffuSeqBackend.from_pretrained` reads.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from generation.diffuseq.config import PRESETS, DiffuSeqConfig
from generation.diffuseq.diffusion import Diffusion
from generation.diffuseq.model import DiffuSeqModel, count_parameters
from generation.training.common import resolve_device
from generation.training.diffuseq_data import (
    build_tensors,
    choose_seq_len,
    ensure_special_tokens,
    make_batch,
    needed_length,
    read_texts,
    tokenize_pairs,
)
from generation.training.diffuseq_loop import STATE_FILE, DiffuSeqTrainer, TrainData

# Per-preset training defaults; explicit command-line values win.
TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "tiny": {"batch_size": 32, "lr": 1e-3, "warmup": 50, "eval_every": 100},
    "cpu": {"batch_size": 32, "lr": 5e-4, "warmup": 300, "eval_every": 1000},
    "gpu": {"batch_size": 256, "lr": 6e-4, "warmup": 500, "eval_every": 1000},
}
SIZE_LIMIT_BYTES = 40 * 1024 * 1024
# The architecture and data choices of a run, kept on --resume; budgets may change.
RESUME_KEYS = (
    "preset", "emb_dim", "hidden", "layers", "heads", "ffn", "seq_len", "batch_size", "lr",
    "warmup", "eval_every", "max_src_len", "gamma", "pad_weight", "x0_ce_weight",
    "diffusion_steps", "dropout",
)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default="data/prepared", help="folder with train.jsonl, valid.jsonl")
    ap.add_argument("--tokenizer", default="data/prepared/tokenizer")
    ap.add_argument("--out", default="models/diffuseq")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget")
    ap.add_argument("--max-steps", type=int, default=None, help="default 100000")
    ap.add_argument("--resume", default=None, help="run dir to continue (reads its state.pt)")
    ap.add_argument("--run-dir", default=None, help="default runs/diffuseq/<time>")
    _add_model_args(ap)
    _add_optimisation_args(ap)
    ap.add_argument("--sample-steps", type=int, default=20)
    ap.add_argument("--amp", default="bf16", choices=["bf16", "off"])
    ap.add_argument("--save-dtype", default="auto", choices=["auto", "float32", "float16"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--compile", action="store_true", help="torch.compile the denoiser (CUDA)")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def _add_model_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--preset", default=None, choices=sorted(PRESETS), help="cpu or gpu by device")
    for name in ("emb-dim", "hidden", "layers", "heads", "ffn"):
        ap.add_argument(f"--{name}", type=int, default=None)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seq-len", type=int, default=0, help="0 = from the data (p90, 48..64)")
    ap.add_argument("--max-src-len", type=int, default=8)
    ap.add_argument("--diffusion-steps", type=int, default=2000)
    ap.add_argument("--gamma", type=float, default=0.5, help="v2 discrete-noise rate")
    ap.add_argument("--pad-weight", type=float, default=0.05)
    ap.add_argument(
        "--x0-ce-weight",
        type=float,
        default=1.0,
        help="weight of the cross-entropy on the predicted x0 (0 = DiffuSeq's loss; the shipped "
        "model used 1)",
    )


def _add_optimisation_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--eval-every", type=int, default=None)
    ap.add_argument("--eval-minutes", type=float, default=10.0, help="also evaluate this often")
    ap.add_argument("--val-size", type=int, default=512)
    ap.add_argument("--max-train", type=int, default=None, help="use only the first N jokes")


def prepare_run(
    args: argparse.Namespace, device: torch.device
) -> tuple[Path, dict[str, Any] | None]:
    """The run dir and, on --resume, its saved state; fills the preset's defaults into `args`."""
    state: dict[str, Any] | None = None
    if args.resume:
        run_dir = Path(args.resume)
        state = torch.load(run_dir / STATE_FILE, map_location="cpu", weights_only=False)
        saved = state["args"]
        for k in RESUME_KEYS:
            if k in saved:
                setattr(args, k, saved[k])
    else:
        run_dir = Path(args.run_dir or f"runs/diffuseq/{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.mkdir(parents=True, exist_ok=True)
    args.preset = args.preset or ("cpu" if device.type == "cpu" else "gpu")
    for defaults in (PRESETS[args.preset], TRAIN_DEFAULTS[args.preset]):
        for k, v in defaults.items():
            if getattr(args, k) is None:
                setattr(args, k, v)
    return run_dir, state


def load_data(
    args: argparse.Namespace, tokenizer: Any, roles: dict[str, int], device: torch.device
) -> TrainData:
    """Tokenize and pack the train and validation jokes; sets `args.seq_len` when it is 0."""
    data = Path(args.data)
    train_texts = read_texts(data / "train.jsonl", args.max_train)
    valid_texts = read_texts(data / "valid.jsonl", args.val_size)
    t0 = time.time()
    train_pairs = tokenize_pairs(tokenizer, train_texts, args.max_src_len)
    valid_pairs = tokenize_pairs(tokenizer, valid_texts, args.max_src_len)
    lengths = [needed_length(p) for p in train_pairs]
    if not args.seq_len:
        args.seq_len = choose_seq_len(lengths)
    covered = sum(n <= args.seq_len for n in lengths) / max(1, len(lengths))
    srt = sorted(lengths)
    pct = {q: srt[min(len(srt) - 1, int(q * len(srt)))] for q in (0.5, 0.75, 0.9, 0.95, 0.99)}
    tqdm.write(
        f"tokenized {len(train_pairs)} train / {len(valid_pairs)} valid jokes in "
        f"{time.time() - t0:.1f}s; length quantiles {pct}; seq_len={args.seq_len} keeps "
        f"{covered:.1%} of the jokes (longer ones are dropped, not cut)"
    )
    tr_ids, tr_src, tr_tgt = build_tensors(train_pairs, args.seq_len, **roles)
    va_ids, va_src, va_tgt = build_tensors(valid_pairs, args.seq_len, **roles)
    if tr_ids.shape[0] == 0 or va_ids.shape[0] == 0:
        raise SystemExit("no training or validation jokes fit into seq_len")
    valid = make_batch(va_ids.to(device), va_src.to(device), va_tgt.to(device), args.pad_weight)
    return TrainData(tr_ids.to(device), tr_src.to(device), tr_tgt.to(device), valid)


def model_config(
    args: argparse.Namespace, vocab_size: int, roles: dict[str, int]
) -> DiffuSeqConfig:
    return DiffuSeqConfig(
        vocab_size=vocab_size,
        seq_len=args.seq_len,
        max_src_len=args.max_src_len,
        emb_dim=args.emb_dim,
        hidden=args.hidden,
        layers=args.layers,
        heads=args.heads,
        ffn=args.ffn,
        dropout=args.dropout,
        diffusion_steps=args.diffusion_steps,
        gamma=args.gamma,
        pad_weight=args.pad_weight,
        **roles,
    )


def build_trainer(
    args: argparse.Namespace, device: torch.device, run_dir: Path, state: dict[str, Any] | None
) -> DiffuSeqTrainer:
    """Tokenizer, data, model with its EMA copy and optimizer; restored from `state` if given."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    roles = ensure_special_tokens(tokenizer)
    data = load_data(args, tokenizer, roles, device)
    cfg = model_config(args, len(tokenizer), roles)
    model = DiffuSeqModel(cfg).to(device)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(
        model.parameters(), lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.98)
    )
    n_params = count_parameters(model)
    save_dtype = {"float32": torch.float32, "float16": torch.float16}.get(args.save_dtype)
    if save_dtype is None:
        save_dtype = torch.float32 if n_params * 4 < SIZE_LIMIT_BYTES * 0.95 else torch.float16
    diffusion = Diffusion(cfg.diffusion_steps, cfg.schedule, cfg.gamma)
    trainer = DiffuSeqTrainer(
        args, device, run_dir, tokenizer, model, ema, diffusion, opt, data, save_dtype, n_params
    )
    if state is not None:
        trainer.resume_from(state)
    return trainer


def write_args(trainer: DiffuSeqTrainer) -> None:
    args, cfg = trainer.args, trainer.model.config
    facts = {
        "device_used": str(trainer.device),
        "params": trainer.n_params,
        "train_examples": int(trainer.data.ids.shape[0]),
        "config": asdict(cfg),
    }
    text = json.dumps({**vars(args), **facts}, indent=2, ensure_ascii=False)
    (trainer.run_dir / "args.json").write_text(text)
    tqdm.write(
        f"device={trainer.device} preset={args.preset} params={trainer.n_params / 1e6:.2f}M "
        f"vocab={cfg.vocab_size} batch={args.batch_size} lr={args.lr} "
        f"run_dir={trainer.run_dir} out={args.out}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for the fp32 parts (rounding head)
    run_dir, state = prepare_run(args, device)
    max_steps = args.max_steps or 100_000
    max_seconds = args.max_minutes * 60 if args.max_minutes else None
    torch.manual_seed(args.seed)
    trainer = build_trainer(args, device, run_dir, state)
    write_args(trainer)
    if args.compile:
        trainer.model.compile()  # in place: state_dict keys stay unchanged
    trainer.run(max_steps, max_seconds)
    elapsed, step = trainer.elapsed, trainer.step
    tqdm.write(
        f"done: {step} steps in {elapsed / 60:.1f} min ({step / max(elapsed, 1e-9):.2f} steps/s "
        f"overall); best val loss {trainer.best_val:.4f}; model in {args.out}; run in {run_dir}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
