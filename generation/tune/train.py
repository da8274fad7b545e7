"""The DPO training loop: a time budget, a progress bar, and a checkpoint to resume from.

Dropout stays off (the model is in eval mode while it learns): with dropout the policy's
log-probabilities would be noisy against the reference's, and the loss would chase the noise;
TRL's DPO trainer turns it off for the same reason. Without dropout the run is deterministic:
the order of pairs is a seeded permutation per epoch, so a resumed run takes exactly the steps
the interrupted one would have taken.

The schedule (linear warm-up, cosine decay to 10 %) follows the larger of steps done / steps
planned and time spent / `minutes`, as the GPT trainer's does, so a run cut by its time budget
still anneals. Both limits are totals: time spent before a `--resume` counts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from generation.training.common import bf16_autocast, lr_factor, run_progress, save_atomic
from generation.tune.dpo import Keyed, dpo_loss, sequence_logps, stack

MIN_LR_RATIO = 0.1


@dataclass(frozen=True)
class TrainSettings:
    beta: float = 0.1  # the KL anchor: smaller lets the policy drift further from the reference
    lr: float = 1e-5
    batch_size: int = 8  # pairs per step
    epochs: float = 2.0
    minutes: float = 10.0  # time budget for training (evaluation and saving come on top)
    warmup_steps: int = 10
    bf16: bool = False  # torch.autocast("cpu", bfloat16) around the forward pass; see __init__
    seed: int = 0
    grad_clip: float = 1.0
    checkpoint_every_s: float = 120.0


@dataclass
class TrainState:
    """Where a run stands; saved in the checkpoint and restored by `--resume`."""

    step: int = 0
    elapsed: float = 0.0  # seconds trained, over every process of the run
    losses: list[float] = field(default_factory=list)  # per step
    done: bool = False
    stopped_by: str = ""  # "steps" or "time"

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "elapsed": self.elapsed,
            "losses": self.losses,
            "done": self.done,
            "stopped_by": self.stopped_by,
        }


def planned_steps(pairs: int, settings: TrainSettings) -> int:
    return max(1, math.ceil(settings.epochs * pairs / settings.batch_size))


class DpoTrainer:
    """Trains `model` in place on `pairs` (keys into `sequences`) against `ref` log-probs."""

    def __init__(
        self,
        model: Any,
        pairs: Sequence[Keyed],
        sequences: Mapping[str, Sequence[int]],
        ref: Mapping[str, float],
        pad_id: int,
        settings: TrainSettings,
        checkpoint: Path | None = None,
    ) -> None:
        self.model = model.eval()  # dropout off, gradients on (see the module docstring)
        self.pairs, self.sequences, self.ref = list(pairs), sequences, ref
        self.pad_id, self.settings, self.checkpoint = pad_id, settings, checkpoint
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.0)
        self.state = TrainState()
        self.max_steps = planned_steps(len(self.pairs), settings)
        self.extra: dict[str, Any] = {}  # saved with every checkpoint (the caller's run facts)

    # -- checkpoint --------------------------------------------------------------------------

    def save(self) -> None:
        if self.checkpoint is None:
            return
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "train": self.state.as_dict(),
            **self.extra,
        }
        save_atomic(state, self.checkpoint)

    def restore(self, saved: Mapping[str, Any]) -> None:
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.state = TrainState(**saved["train"])

    # -- training ----------------------------------------------------------------------------

    def batch(self, step: int) -> list[Keyed]:
        """The pairs of `step`: a seeded permutation per epoch, so any step can be recomputed."""
        per_epoch = math.ceil(len(self.pairs) / self.settings.batch_size)
        epoch, pos = divmod(step, per_epoch)
        generator = torch.Generator().manual_seed(self.settings.seed * 100_003 + epoch)
        order = torch.randperm(len(self.pairs), generator=generator).tolist()
        start = pos * self.settings.batch_size
        return [self.pairs[i] for i in order[start : start + self.settings.batch_size]]

    def step(self, pairs: Sequence[Keyed]) -> float:
        rows = [self.sequences[c] for c, _ in pairs] + [self.sequences[r] for _, r in pairs]
        ids, mask = stack(rows, self.pad_id)
        with bf16_autocast(torch.device("cpu"), self.settings.bf16):
            logps = sequence_logps(self.model, ids, mask)
        n = len(pairs)
        ref = torch.tensor([self.ref[c] for c, _ in pairs] + [self.ref[r] for _, r in pairs])
        loss, _ = dpo_loss(logps[:n], logps[n:], ref[:n], ref[n:], self.settings.beta)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        self.optimizer.step()
        return loss.item()

    def _set_lr(self) -> None:
        progress = run_progress(
            self.state.step, self.max_steps, self.state.elapsed, self.settings.minutes * 60
        )
        factor = lr_factor(self.state.step, progress, self.settings.warmup_steps, MIN_LR_RATIO)
        for group in self.optimizer.param_groups:
            group["lr"] = self.settings.lr * factor

    def run(self) -> TrainState:
        """Train until the planned steps or the time budget run out (or nothing is left)."""
        budget = self.settings.minutes * 60
        started, offset = time.monotonic(), self.state.elapsed
        last_save = started
        bar = tqdm(
            total=self.max_steps, initial=self.state.step, desc="DPO", unit="step", leave=True
        )
        try:
            while not self.state.done:
                if self.state.step >= self.max_steps or self.state.elapsed >= budget:
                    self.state.done = True
                    self.state.stopped_by = "steps" if self.state.step >= self.max_steps else "time"
                    break
                self._set_lr()
                loss = self.step(self.batch(self.state.step))
                self.state.step += 1
                self.state.losses.append(loss)
                self.state.elapsed = offset + time.monotonic() - started
                bar.set_postfix(
                    loss=f"{loss:.4f}", min=f"{self.state.elapsed / 60:.1f}", refresh=False
                )
                bar.update(1)
                if time.monotonic() - last_save >= self.settings.checkpoint_every_s:
                    self.save()
                    last_save = time.monotonic()
        except KeyboardInterrupt:
            self.save()  # Ctrl+C keeps the work done so far for `--resume`
            raise
        finally:
            bar.close()
        self.save()
        return self.state


__all__ = ["DpoTrainer", "TrainSettings", "TrainState", "planned_steps"]
