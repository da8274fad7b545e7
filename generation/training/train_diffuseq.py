"""Train DiffuSeq on the prepared joke corpus.

    python -m generation.training.train_diffuseq --data data/prepared --tokenizer
    data/prepared/tokenizer \
        --out models/diffuseq [--device auto|cpu|cuda] [--max-minutes M] [--max-steps N] \
        [--resume RUN_DIR]

The run directory (runs/diffuseq/<time> by default) holds state.pt (model, EMA, optimizer, step;
what --resume reads), args.json, metrics.json and loss_curve.png. The EMA weights of the best
validation loss are saved to --out in the layout `DiffuSeqBackend.from_pretrained` reads.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from generation.diffuseq.backend import DiffuSeqBackend
from generation.diffuseq.checkpoint import save_pretrained
from generation.diffuseq.config import PRESETS, DiffuSeqConfig
from generation.diffuseq.data import (
    build_tensors,
    choose_seq_len,
    ensure_special_tokens,
    make_batch,
    needed_length,
    read_texts,
    tokenize_pairs,
)
from generation.diffuseq.diffusion import Batch, Diffusion
from generation.diffuseq.model import DiffuSeqModel, count_parameters

SAMPLE_WORDS = ("Молоко", "Штирлиц", "Доктор", "Жена")
# Per-preset training defaults; explicit command-line values win.
TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "tiny": {"batch_size": 32, "lr": 1e-3, "warmup": 50, "eval_every": 100},
    "cpu": {"batch_size": 32, "lr": 5e-4, "warmup": 300, "eval_every": 1000},
    "gpu": {"batch_size": 256, "lr": 6e-4, "warmup": 500, "eval_every": 1000},
}
SIZE_LIMIT_BYTES = 40 * 1024 * 1024


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
    ap.add_argument("--sample-steps", type=int, default=20)
    ap.add_argument("--amp", default="bf16", choices=["bf16", "off"])
    ap.add_argument("--save-dtype", default="auto", choices=["auto", "float32", "float16"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--compile", action="store_true", help="torch.compile the denoiser (CUDA)")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")
    return torch.device(name)


def lr_factor(step: int, progress: float, warmup: int, min_ratio: float) -> float:
    """Linear warmup, then cosine decay to min_ratio over the run's progress (steps or time)."""
    if step < warmup:
        return (step + 1) / warmup
    p = min(1.0, max(0.0, progress))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    ep = list(ema.parameters())
    mp = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ep, mp, 1.0 - decay)


@torch.no_grad()
def validation_loss(
    model: DiffuSeqModel,
    diffusion: Diffusion,
    batch: Batch,
    chunk: int = 128,
    x0_ce_weight: float = 0.0,
) -> dict[str, float]:
    """Loss on a fixed validation slice at fixed, evenly spread t and fixed noise (comparable
    across evaluations). `x0_ce_weight` must be the training one for val and train loss to be
    the same quantity."""
    model.eval()
    n = batch.ids.shape[0]
    g = torch.Generator(device=batch.ids.device)
    g.manual_seed(1234)
    t_all = torch.linspace(0, diffusion.T - 1, n, device=batch.ids.device).long()
    sums: dict[str, float] = {}
    for i in range(0, n, chunk):
        sl = slice(i, i + chunk)
        sub = Batch(batch.ids[sl], batch.src_mask[sl], batch.weights[sl])
        out = diffusion.training_losses(
            model, sub, t=t_all[sl], generator=g, x0_ce_weight=x0_ce_weight
        )
        m = sub.ids.shape[0]
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v) * m
    return {f"val_{k}": v / n for k, v in sums.items()}


def plot_curves(metrics: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tr = [m for m in metrics if "train_loss" in m]
    va = [m for m in metrics if "val_loss" in m]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if tr:
        ax.plot([m["step"] for m in tr], [m["train_loss"] for m in tr], label="train loss", lw=1)
    if va:
        ax.plot(
            [m["step"] for m in va], [m["val_loss"] for m in va], "o-", label="valid loss (EMA)"
        )
        ax.plot([m["step"] for m in va], [m["val_ce"] for m in va], "--", label="valid rounding CE")
        ax.plot([m["step"] for m in va], [m["val_nll"] for m in va], ":", label="valid x0 token CE")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_model_card(out: Path, cfg: DiffuSeqConfig, info: dict[str, Any]) -> None:
    lines = [
        "# DiffuSeq joke model (funny-and-tochka)",
        "",
        "Sequence-to-sequence diffusion over learned token embeddings (DiffuSeq, with the",
        "DiffuSeq-v2 soft absorbing state). Source: the starting word; target: the whole joke.",
        "Load with `generation.diffuseq.DiffuSeqBackend.from_pretrained(folder)`.",
        "",
        "| key | value |",
        "|---|---|",
    ]
    for k, v in {**asdict(cfg), **info}.items():
        lines.append(f"| {k} | {v} |")
    (out / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for the fp32 parts (rounding head)
    resume_state: dict[str, Any] | None = None
    if args.resume:
        run_dir = Path(args.resume)
        resume_state = torch.load(run_dir / "state.pt", map_location="cpu", weights_only=False)
        saved = resume_state["args"]
        # Keep the architecture and data choices of the run; budgets may change on resume.
        for k in (
            "preset",
            "emb_dim",
            "hidden",
            "layers",
            "heads",
            "ffn",
            "seq_len",
            "batch_size",
            "lr",
            "warmup",
            "eval_every",
            "max_src_len",
            "gamma",
            "pad_weight",
            "x0_ce_weight",
            "diffusion_steps",
            "dropout",
        ):
            if k in saved:
                setattr(args, k, saved[k])
    else:
        run_dir = Path(args.run_dir or f"runs/diffuseq/{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.mkdir(parents=True, exist_ok=True)
    preset = args.preset or ("cpu" if device.type == "cpu" else "gpu")
    args.preset = preset
    for k, v in PRESETS[preset].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    for k, v in TRAIN_DEFAULTS[preset].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    max_steps = args.max_steps or 100_000
    max_seconds = args.max_minutes * 60 if args.max_minutes else None
    torch.manual_seed(args.seed)

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    roles = ensure_special_tokens(tokenizer)
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
    tr_ids, tr_src, tr_tgt = tr_ids.to(device), tr_src.to(device), tr_tgt.to(device)
    val_batch = make_batch(va_ids.to(device), va_src.to(device), va_tgt.to(device), args.pad_weight)

    cfg = DiffuSeqConfig(
        vocab_size=len(tokenizer),
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
    model = DiffuSeqModel(cfg).to(device)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    diffusion = Diffusion(cfg.diffusion_steps, cfg.schedule, cfg.gamma)
    opt = torch.optim.AdamW(
        model.parameters(), lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.98)
    )
    n_params = count_parameters(model)
    save_dtype = {"float32": torch.float32, "float16": torch.float16}.get(args.save_dtype)
    if save_dtype is None:
        save_dtype = torch.float32 if n_params * 4 < SIZE_LIMIT_BYTES * 0.95 else torch.float16

    step, elapsed_before, best_val = 0, 0.0, float("inf")
    metrics: list[dict[str, Any]] = []
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
        ema.load_state_dict(resume_state["ema"])
        opt.load_state_dict(resume_state["opt"])
        step = resume_state["step"]
        elapsed_before = resume_state["elapsed"]
        best_val = resume_state["best_val"]
        metrics = resume_state["metrics"]
        torch.set_rng_state(resume_state["rng"])
    (run_dir / "args.json").write_text(
        json.dumps(
            {
                **vars(args),
                "device_used": str(device),
                "params": n_params,
                "train_examples": int(tr_ids.shape[0]),
                "config": asdict(cfg),
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    tqdm.write(
        f"device={device} preset={preset} params={n_params / 1e6:.2f}M vocab={cfg.vocab_size} "
        f"batch={args.batch_size} lr={args.lr} run_dir={run_dir} out={args.out}"
    )

    if args.compile:
        model.compile()  # in place: state_dict keys stay unchanged
    use_amp = args.amp == "bf16"

    def autocast() -> contextlib.AbstractContextManager[Any]:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp)

    sampler_backend = DiffuSeqBackend(ema, tokenizer, device=device, model_id="diffuseq:training")

    def save_state() -> None:
        state = {
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "opt": opt.state_dict(),
            "step": step,
            "elapsed": elapsed,
            "best_val": best_val,
            "metrics": metrics,
            "rng": torch.get_rng_state(),
            "args": vars(args),
        }
        tmp = run_dir / "state.pt.tmp"
        torch.save(state, tmp)
        tmp.replace(run_dir / "state.pt")

    def evaluate() -> None:
        nonlocal best_val
        vals = validation_loss(ema, diffusion, val_batch, x0_ce_weight=args.x0_ce_weight)
        row = {"step": step, "elapsed_min": round(elapsed / 60, 2), **vals}
        samples = sampler_backend.generate_detailed(
            list(SAMPLE_WORDS),
            {"steps": args.sample_steps, "sampler": "renoise"},
            [0] * len(SAMPLE_WORDS),
        )
        row["samples"] = [s.text for s in samples]
        tqdm.write(
            f"[step {step} | {elapsed / 60:.1f} min] val loss {vals['val_loss']:.4f} "
            f"(mse {vals['val_mse']:.4f}, ce {vals['val_ce']:.4f}, tT {vals['val_tT']:.4f}); "
            f"x0 token CE {vals['val_nll']:.3f}"
        )
        for s in samples:
            tqdm.write(f"    {'+' if s.model_started else '-'} {s.text!r}")
        if vals["val_loss"] < best_val:
            best_val = vals["val_loss"]
            ema.config.train_steps = step
            out = save_pretrained(
                ema, tokenizer, args.out, dtype=save_dtype, metadata={"step": str(step)}
            )
            write_model_card(
                out,
                ema.config,
                {"best_val_loss": round(best_val, 4), "params": n_params, "device": str(device)},
            )
            row["saved"] = True
        metrics.append(row)
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, ensure_ascii=False))
        plot_curves(metrics, run_dir / "loss_curve.png")
        save_state()
        model.train()

    n_train = tr_ids.shape[0]
    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed + step)
    model.train()
    start = time.time()
    elapsed = elapsed_before
    last_eval_time = elapsed
    run_sum: dict[str, float] = {}
    run_n = 0
    total = max_steps if max_seconds is None else None
    bar = tqdm(total=total, initial=step, desc="diffuseq", dynamic_ncols=True, file=sys.stderr)
    try:
        while True:
            elapsed = elapsed_before + (time.time() - start)
            progress = step / max_steps
            if max_seconds is not None:
                progress = max(progress, elapsed / max_seconds)
            if progress >= 1.0:
                break
            for group in opt.param_groups:
                group["lr"] = args.lr * lr_factor(step, progress, args.warmup, args.min_lr_ratio)
            idx = torch.randint(0, n_train, (args.batch_size,), device=device, generator=gen)
            batch = make_batch(tr_ids[idx], tr_src[idx], tr_tgt[idx], args.pad_weight)
            out = diffusion.training_losses(
                model, batch, autocast=autocast, x0_ce_weight=args.x0_ce_weight
            )
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            if args.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            opt.step()
            ema_update(ema, model, min(args.ema, (1 + step) / (10 + step)))
            step += 1
            for k, v in out.items():
                run_sum[k] = run_sum.get(k, 0.0) + float(v.detach())
            run_n += 1
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(
                    loss=f"{run_sum['loss'] / run_n:.3f}",
                    ce=f"{run_sum['ce'] / run_n:.3f}",
                    lr=f"{opt.param_groups[0]['lr']:.1e}",
                )
            due = step % args.eval_every == 0 or (elapsed - last_eval_time) > args.eval_minutes * 60
            if due:
                metrics.append(
                    {
                        "step": step,
                        "lr": opt.param_groups[0]["lr"],
                        "steps_per_s": round(run_n / max(1e-9, elapsed - last_eval_time), 3),
                        **{f"train_{k}": v / run_n for k, v in run_sum.items()},
                    }
                )
                run_sum, run_n = {}, 0
                evaluate()
                last_eval_time = elapsed_before + (time.time() - start)
    except KeyboardInterrupt:
        tqdm.write("interrupted; saving state")
    finally:
        bar.close()
    elapsed = elapsed_before + (time.time() - start)
    if run_n:
        metrics.append(
            {
                "step": step,
                "lr": opt.param_groups[0]["lr"],
                **{f"train_{k}": v / run_n for k, v in run_sum.items()},
            }
        )
    evaluate()
    tqdm.write(
        f"done: {step} steps in {elapsed / 60:.1f} min ({step / max(elapsed, 1e-9):.2f} steps/s "
        f"overall); best val loss {best_val:.4f}; model in {args.out}; run in {run_dir}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
