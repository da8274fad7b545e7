"""The GPT training loop: steps, periodic validation, the best checkpoint and resumable state.

The schedule's progress is the larger of step/``--max-steps`` and elapsed/``--max-minutes``; both
limits are totals for the run, counting what was done before a ``--resume``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from generation.training.common import lr_factor, plot_losses, run_progress, save_atomic
from generation.training.gpt_data import TokenizedSplit, epoch_batches, lm_batch
from generation.training.gpt_model import SAMPLE_PROMPTS, Autocast, evaluate, lm_loss, sample
from generation.training.gpt_model import save_checkpoint as save_model_folder

STATE_FILE = "trainer_state.pt"


@dataclass
class Progress:
    """Where a run stands; saved in trainer_state.pt and restored by ``--resume``."""

    step: int = 0
    epoch: int = 0
    pos: int = 0  # next batch of the epoch
    elapsed: float = 0.0  # seconds trained before this process started
    best: float = math.inf
    history: list[dict[str, Any]] = field(default_factory=list)
    train_curve: list[tuple[int, float]] = field(default_factory=list)
    tokens_seen: int = 0

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Progress:
        return cls(
            step=state["step"],
            epoch=state["epoch"],
            pos=state["pos"],
            elapsed=state["elapsed"],
            best=state["best"],
            history=state["history"],
            train_curve=state["train_curve"],
            tokens_seen=state.get("tokens_seen", 0),
        )


@dataclass
class GPTTrainer:
    """One run: the model, its data and optimizer, and the progress it has made."""

    args: argparse.Namespace
    model: Any
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    train_split: TokenizedSplit
    valid_split: TokenizedSplit
    autocast: Autocast
    save_dtype: torch.dtype
    info: dict[str, Any]  # run facts written with every checkpoint and metrics file
    progress: Progress
    resumed: bool = False

    def __post_init__(self) -> None:
        self.pad_id = self.tokenizer.pad_token_id
        self.max_seconds = self.args.max_minutes * 60 if self.args.max_minutes is not None else None
        self.started = time.monotonic()
        self.last_state_save = time.monotonic()
        self.saved_state_step = -1

    def elapsed(self) -> float:
        return self.progress.elapsed + time.monotonic() - self.started

    def done(self) -> bool:
        p, args = self.progress, self.args
        if args.max_steps is not None and p.step >= args.max_steps:
            return True
        return self.max_seconds is not None and self.elapsed() >= self.max_seconds

    def run(self) -> dict[str, Any]:
        """Train until a limit is reached; returns the metrics also written to metrics.json."""
        p, args = self.progress, self.args
        bar = tqdm(
            total=args.max_steps,
            initial=p.step,
            disable=args.no_progress,
            dynamic_ncols=True,
            mininterval=2.0,
            file=sys.stderr,
        )
        last_eval_step = p.step if self.resumed else -1
        running: list[float] = []
        while not self.done():
            batches = epoch_batches(self.train_split.lengths, args.batch_size, args.seed + p.epoch)
            while p.pos < len(batches) and not self.done():
                idx = batches[p.pos]
                p.pos += 1
                loss, lr = self.train_step(idx)
                bar.update(1)
                if p.step % args.log_every == 0 or p.step == 1:
                    running.append(float(loss))  # one sync per log interval, not per step
                    p.train_curve.append((p.step, sum(running[-10:]) / len(running[-10:])))
                    bar.set_postfix(loss=f"{p.train_curve[-1][1]:.3f}", lr=f"{lr:.2e}", ep=p.epoch)
                if args.eval_every and p.step % args.eval_every == 0:
                    self.run_eval()
                    last_eval_step = p.step
            if p.pos >= len(batches):
                p.epoch, p.pos = p.epoch + 1, 0
        bar.close()
        if last_eval_step != p.step:
            self.run_eval(final=True)
        elif self.saved_state_step != p.step:
            self.save_state()  # the last eval skipped it
        return self.write_metrics()

    def train_step(self, idx: np.ndarray) -> tuple[torch.Tensor, float]:
        """One optimizer step on the rows `idx`; returns the loss (not synced) and the lr."""
        p, args = self.progress, self.args
        x, labels = lm_batch(self.train_split, idx, self.pad_id)
        fraction = run_progress(p.step, args.max_steps, self.elapsed(), self.max_seconds)
        lr = args.lr * lr_factor(p.step, fraction, args.warmup_steps, args.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self.autocast():
            loss = lm_loss(self.model, x, labels)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), args.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        p.step += 1
        p.tokens_seen += int(self.train_split.lengths[idx].sum())  # real tokens, no pads
        return loss.detach(), lr

    def run_eval(self, final: bool = False) -> None:
        """Validate, save the model folder when it is the best so far, print a few samples."""
        p, args = self.progress, self.args
        metrics = evaluate(
            self.model, self.valid_split, self.pad_id, args.eval_batch_size, self.autocast
        )
        recent = [loss for _, loss in p.train_curve[-5:]]
        entry = {
            "step": p.step,
            "epoch": p.epoch,
            "elapsed_s": round(self.elapsed(), 1),
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": round(sum(recent) / len(recent), 4) if recent else None,
            "val_loss": round(metrics["loss"], 4),
            "val_bpc": round(metrics["bpc"], 4),
            "tokens_seen": p.tokens_seen,
        }
        improved = metrics["loss"] < p.best
        if improved:
            p.best = metrics["loss"]
            summary = {**self.info, **entry}
            save_model_folder(self.model, self.tokenizer, args.out, self.save_dtype, summary)
        entry["best"] = improved
        p.history.append(entry)
        tqdm.write(
            f"[eval] step {p.step} val_loss {metrics['loss']:.4f} bpc {metrics['bpc']:.4f}"
            f"{' (best, saved)' if improved else ''}",
            file=sys.stderr,
        )
        prompts = SAMPLE_PROMPTS[: args.samples]
        for text in sample(self.model, self.tokenizer, prompts, seed=p.step):
            tqdm.write("  > " + text.replace("\n", " / "), file=sys.stderr)
        since_save = time.monotonic() - self.last_state_save
        if final or since_save >= args.state_every_minutes * 60:
            self.save_state()
        self.write_metrics()

    def save_state(self) -> None:
        """trainer_state.pt: fp32 weights, optimizer, progress and RNG, for ``--resume``."""
        self.last_state_save = time.monotonic()
        self.saved_state_step = self.progress.step
        state = {
            "config": self.model.config.to_dict(),
            "model": {k: v.detach().to("cpu") for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            **asdict(self.progress),
            "elapsed": self.elapsed(),
            "torch_rng": torch.get_rng_state(),
            "args": {k: str(v) for k, v in vars(self.args).items()},
        }
        save_atomic(state, self.args.run_dir / STATE_FILE)

    def write_metrics(self) -> dict[str, Any]:
        """metrics.json and loss.png in the run dir; returns the metrics."""
        p, wall = self.progress, self.elapsed()
        metrics = {
            **self.info,
            "step": p.step,
            "elapsed_s": round(wall, 1),
            "tokens_seen": p.tokens_seen,
            "tokens_per_s": round(p.tokens_seen / wall, 1) if wall > 0 else None,
            "best_val_loss": p.best if p.best < math.inf else None,
            "best_val_bpc": min((h["val_bpc"] for h in p.history), default=None),
            "history": p.history,
        }
        (self.args.run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        curve = p.train_curve
        plot_losses(
            [
                ([s for s, _ in curve], [v for _, v in curve], "-", "train loss (running mean)"),
                ([h["step"] for h in p.history], [h["val_loss"] for h in p.history], "o-", "valid"),
            ],
            self.args.run_dir / "loss.png",
            ylabel="loss per token (nats)",
        )
        return metrics
