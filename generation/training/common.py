"""What both trainers (train_gpt, train_diffuseq) share: device, learning-rate schedule, bf16
autocast, run progress, atomic state files and the loss plot."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when there is one; an explicit CUDA device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {name} requested but CUDA is not available")
    return torch.device(name)


def lr_factor(step: int, progress: float, warmup: int, min_ratio: float) -> float:
    """Linear warmup, then cosine decay to min_ratio over the run's progress (steps or time)."""
    if step < warmup:
        return (step + 1) / warmup
    p = min(1.0, max(0.0, progress))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p))


def run_progress(
    step: int, max_steps: int | None, elapsed: float, max_seconds: float | None
) -> float:
    """The larger of step/max_steps and elapsed/max_seconds (a limit that is None is ignored), so
    a time-budgeted run still anneals fully before the budget runs out."""
    fraction = 0.0
    if max_steps:
        fraction = max(fraction, step / max_steps)
    if max_seconds:
        fraction = max(fraction, elapsed / max_seconds)
    return fraction


def bf16_autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """A bf16 autocast region on `device`, or a no-op one."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """torch.save through a temporary file, so an interrupted save never leaves half a state."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


# One line of a loss plot: x values, y values, matplotlib format string, legend label.
Curve = tuple[Sequence[float], Sequence[float], str, str]


def plot_losses(
    curves: Sequence[Curve], path: Path, ylabel: str = "loss", log_y: bool = False
) -> None:
    """Write a loss-versus-step plot. A machine without matplotlib still trains and saves."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for xs, ys, fmt, label in curves:
        if len(xs):
            ax.plot(xs, ys, fmt, label=label, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
