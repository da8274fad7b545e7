"""DiffuSeq at several denoising step counts, and its other samplers: quality against time.

Quality: one sample per word, the words in batches, every step count on the same words and
seeds. The longest chain runs on the first `full_steps_words` words only (it is slow on a CPU);
the shorter ones are also reported on that subset, like for like. Latency: a single word alone
(batch of one), median over `sweep_latency_words` words; for the longest chain it is
extrapolated linearly from the next-longest (every step runs the same network once, so time
grows linearly with steps; the batched time per joke is measured).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from generation.evaluation.outputs import Output, summarize
from generation.evaluation.runs import batched_samples, single_calls
from generation.registry import DIFFUSEQ, MethodRegistry

Fluency = Callable[[Sequence[str]], float]
Progress = Callable[[str], None]


class SweepConfig(Protocol):
    """The fields of `generation.evaluation.pipeline.EvalConfig` the sweep reads."""

    steps: tuple[int, ...]
    full_steps_words: int
    sweep_latency_words: int
    compare_samplers: tuple[str, ...]
    seed: int


@dataclass(frozen=True)
class _Sweep:
    """What every part of the sweep reads: the run's settings, DiffuSeq's backend and preset
    parameters, the words, the fluency scorer and the progress line."""

    cfg: SweepConfig
    backend: Any
    base: Mapping[str, Any]
    words: list[str]
    fluency: Fluency
    progress: Progress

    def one_per_word(
        self, params: Mapping[str, Any], words: Sequence[str]
    ) -> tuple[list[Output], float]:
        """One sample per word, in batches, on the run's seeds; and the seconds per joke."""
        groups, per_joke = batched_samples(
            self.backend, params, words, 1, self.cfg.seed, batch_rows=20
        )
        return [g[0] for g in groups], per_joke


def _single_latencies(sweep: _Sweep, step_counts: Sequence[int]) -> dict[int, float]:
    """Median latency of one joke alone at each of `step_counts`."""
    latency: dict[int, float] = {}
    for steps in step_counts:
        sweep.progress(f"diffuseq sweep: latency at {steps} steps ...")
        words = sweep.words[: sweep.cfg.sweep_latency_words]
        outs = single_calls(sweep.backend, {**sweep.base, "steps": steps}, words, sweep.cfg.seed)
        latency[steps] = statistics.median(o.latency_ms for o in outs)
    return latency


def _step_rows(sweep: _Sweep) -> list[dict[str, Any]]:
    """One row per step count (plus the like-for-like subset rows), fewest words first. Latency
    alone is measured at every step count but the longest (or at the only one)."""
    cfg, words = sweep.cfg, sweep.words
    longest = max(cfg.steps)
    shorter = sorted(s for s in cfg.steps if s != longest)
    small = min(cfg.full_steps_words, len(words)) if shorter else len(words)
    latency = _single_latencies(sweep, shorter or [longest])
    rows: list[dict[str, Any]] = []
    for steps in cfg.steps:
        chosen = words[:small] if steps == longest else words
        sweep.progress(f"diffuseq sweep: {steps} steps x {len(chosen)} words ...")
        outs, per_joke = sweep.one_per_word({**sweep.base, "steps": steps}, chosen)
        extrapolated = steps not in latency
        ms = latency[shorter[-1]] * steps / shorter[-1] if extrapolated else latency[steps]
        extra = {
            "seconds_per_joke_batched": per_joke,
            "median_latency_ms": ms,
            "latency_extrapolated": extrapolated,
        }
        row = {"sampler": sweep.base.get("sampler"), "steps": steps}
        rows.append({**row, **summarize(outs, sweep.fluency), **extra, "words": len(outs)})
        if steps != longest and small < len(outs):
            rows.append({**row, **summarize(outs[:small], sweep.fluency), **extra, "words": small})
    rows.sort(key=lambda r: (r["words"], -r["steps"]))
    return rows


def _sampler_rows(sweep: _Sweep) -> list[dict[str, Any]]:
    """The other samplers at the preset's step count, on the same words and seeds."""
    steps = int(sweep.base.get("steps", 20))
    words = sweep.words
    rows = []
    for sampler in (x for x in sweep.cfg.compare_samplers if x != sweep.base.get("sampler")):
        sweep.progress(f"diffuseq sweep: sampler {sampler}, {steps} steps x {len(words)} words ...")
        params = {**sweep.base, "steps": steps, "sampler": sampler}
        outs, per_joke = sweep.one_per_word(params, words)
        rows.append(
            {
                "sampler": sampler,
                "steps": steps,
                "words": len(outs),
                "seconds_per_joke_batched": per_joke,
                "latency_extrapolated": False,
                **summarize(outs, sweep.fluency),
                "median_latency_ms": None,
            }
        )
    return rows


def step_sweep(
    cfg: SweepConfig,
    source: MethodRegistry,
    words: Sequence[str],
    fluency: Fluency,
    progress: Progress,
) -> list[dict[str, Any]]:
    """DiffuSeq quality, throughput and single-request latency at several step counts, then
    the other samplers at the preset's step count (see the module docstring)."""
    base = dict(source.method(DIFFUSEQ).params)
    sweep = _Sweep(cfg, source.backend(DIFFUSEQ), base, list(words), fluency, progress)
    return _step_rows(sweep) + _sampler_rows(sweep)


__all__ = ["step_sweep"]
