"""The DiffuSeq training loop: steps with an EMA copy, periodic validation and samples, the best
EMA weights saved as a model folder, and resumable state."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from generation.diffuseq.backend import DiffuSeqBackend
from generation.diffuseq.checkpoint import save_pretrained
from generation.diffuseq.config import DiffuSeqConfig
from generation.diffuseq.diffusion import Batch, Diffusion
from generation.diffuseq.model import DiffuSeqModel
from generation.training.common import (
    bf16_autocast,
    lr_factor,
    plot_losses,
    run_progress,
    save_atomic,
)
from generation.training.diffuseq_data import make_batch

SAMPLE_WORDS = ("Молоко", "Штирлиц", "Доктор", "Жена")
STATE_FILE = "state.pt"


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
    tr = [m for m in metrics if "train_loss" in m]
    va = [m for m in metrics if "val_loss" in m]
    steps = [m["step"] for m in va]
    plot_losses(
        [
            ([m["step"] for m in tr], [m["train_loss"] for m in tr], "-", "train loss"),
            (steps, [m["val_loss"] for m in va], "o-", "valid loss (EMA)"),
            (steps, [m["val_ce"] for m in va], "--", "valid rounding CE"),
            (steps, [m["val_nll"] for m in va], ":", "valid x0 token CE"),
        ],
        path,
        log_y=True,
    )


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


@dataclass
class TrainData:
    """Packed training rows on the device and the fixed validation batch."""

    ids: torch.Tensor
    src_lens: torch.Tensor
    tgt_lens: torch.Tensor
    valid: Batch


@dataclass
class DiffuSeqTrainer:
    """One run: the model, its EMA copy, optimizer and data, and the progress it has made."""

    args: argparse.Namespace
    device: torch.device
    run_dir: Path
    tokenizer: Any
    model: DiffuSeqModel
    ema: DiffuSeqModel
    diffusion: Diffusion
    opt: torch.optim.Optimizer
    data: TrainData
    save_dtype: torch.dtype
    n_params: int
    step: int = 0
    elapsed: float = 0.0
    best_val: float = float("inf")
    metrics: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.samples = DiffuSeqBackend(
            self.ema, self.tokenizer, device=self.device, model_id="diffuseq:training"
        )
        self.autocast = partial(bf16_autocast, self.device, self.args.amp == "bf16")
        self.run_sum: dict[str, float] = {}
        self.run_n = 0

    def resume_from(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.best_val, self.metrics = state["best_val"], state["metrics"]
        torch.set_rng_state(state["rng"])

    def run(self, max_steps: int, max_seconds: float | None) -> None:
        """Train until a limit or Ctrl-C, then evaluate (and save) once more."""
        args = self.args
        gen = torch.Generator(device=self.device)
        gen.manual_seed(args.seed + self.step)
        self.model.train()
        start, elapsed_before = time.time(), self.elapsed
        last_eval_time = self.elapsed
        total = max_steps if max_seconds is None else None
        bar = tqdm(
            total=total, initial=self.step, desc="diffuseq", dynamic_ncols=True, file=sys.stderr
        )
        try:
            while True:
                self.elapsed = elapsed_before + (time.time() - start)
                progress = run_progress(self.step, max_steps, self.elapsed, max_seconds)
                if progress >= 1.0:
                    break
                self.train_step(gen, progress)
                bar.update(1)
                if self.step % 50 == 0:
                    bar.set_postfix(**self.running_means())
                since = self.elapsed - last_eval_time
                if self.step % args.eval_every == 0 or since > args.eval_minutes * 60:
                    self.log_train_row(steps_per_s=round(self.run_n / max(1e-9, since), 3))
                    self.evaluate()
                    last_eval_time = elapsed_before + (time.time() - start)
        except KeyboardInterrupt:
            tqdm.write("interrupted; saving state")
        finally:
            bar.close()
        self.elapsed = elapsed_before + (time.time() - start)
        if self.run_n:
            self.log_train_row()
        self.evaluate()

    def train_step(self, gen: torch.Generator, progress: float) -> None:
        args = self.args
        for group in self.opt.param_groups:
            group["lr"] = args.lr * lr_factor(self.step, progress, args.warmup, args.min_lr_ratio)
        d = self.data
        n = d.ids.shape[0]
        idx = torch.randint(0, n, (args.batch_size,), device=self.device, generator=gen)
        batch = make_batch(d.ids[idx], d.src_lens[idx], d.tgt_lens[idx], args.pad_weight)
        out = self.diffusion.training_losses(
            self.model, batch, autocast=self.autocast, x0_ce_weight=args.x0_ce_weight
        )
        self.opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), args.grad_clip)
        self.opt.step()
        ema_update(self.ema, self.model, min(args.ema, (1 + self.step) / (10 + self.step)))
        self.step += 1
        for k, v in out.items():
            self.run_sum[k] = self.run_sum.get(k, 0.0) + float(v.detach())
        self.run_n += 1

    def running_means(self) -> dict[str, str]:
        n = self.run_n
        return {
            "loss": f"{self.run_sum['loss'] / n:.3f}",
            "ce": f"{self.run_sum['ce'] / n:.3f}",
            "lr": f"{self.opt.param_groups[0]['lr']:.1e}",
        }

    def log_train_row(self, **extra: float) -> None:
        """Append the mean training losses since the last row to the metrics, and reset them."""
        row = {"step": self.step, "lr": self.opt.param_groups[0]["lr"], **extra}
        row.update({f"train_{k}": v / self.run_n for k, v in self.run_sum.items()})
        self.metrics.append(row)
        self.run_sum, self.run_n = {}, 0

    def evaluate(self) -> None:
        """Validation loss of the EMA weights and a few samples; the best EMA weights are saved."""
        args = self.args
        vals = validation_loss(
            self.ema, self.diffusion, self.data.valid, x0_ce_weight=args.x0_ce_weight
        )
        row: dict[str, Any] = {"step": self.step, "elapsed_min": round(self.elapsed / 60, 2)}
        row.update(vals)
        samples = self.samples.generate_detailed(
            list(SAMPLE_WORDS),
            {"steps": args.sample_steps, "sampler": "renoise"},
            [0] * len(SAMPLE_WORDS),
        )
        row["samples"] = [s.text for s in samples]
        tqdm.write(
            f"[step {self.step} | {self.elapsed / 60:.1f} min] val loss {vals['val_loss']:.4f} "
            f"(mse {vals['val_mse']:.4f}, ce {vals['val_ce']:.4f}, tT {vals['val_tT']:.4f}); "
            f"x0 token CE {vals['val_nll']:.3f}"
        )
        for s in samples:
            tqdm.write(f"    {'+' if s.model_started else '-'} {s.text!r}")
        if vals["val_loss"] < self.best_val:
            self.best_val = vals["val_loss"]
            self.save_best()
            row["saved"] = True
        self.metrics.append(row)
        metrics_json = json.dumps(self.metrics, indent=1, ensure_ascii=False)
        (self.run_dir / "metrics.json").write_text(metrics_json)
        plot_curves(self.metrics, self.run_dir / "loss_curve.png")
        self.save_state()
        self.model.train()

    def save_best(self) -> None:
        self.ema.config.train_steps = self.step
        out = save_pretrained(
            self.ema,
            self.tokenizer,
            self.args.out,
            dtype=self.save_dtype,
            metadata={"step": str(self.step)},
        )
        info = {
            "best_val_loss": round(self.best_val, 4),
            "params": self.n_params,
            "device": str(self.device),
        }
        write_model_card(out, self.ema.config, info)

    def save_state(self) -> None:
        state = {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed,
            "best_val": self.best_val,
            "metrics": self.metrics,
            "rng": torch.get_rng_state(),
            "args": vars(self.args),
        }
        save_atomic(state, self.run_dir / STATE_FILE)
