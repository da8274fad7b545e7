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
from typing import Any, Protocol

from generation.evaluation.outputs import summarize
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


def _single_latencies(
    cfg: SweepConfig,
    backend: Any,
    base: Mapping[str, Any],
    words: Sequence[str],
    progress: Progress,
) -> dict[int, float]:
    """Median latency of one joke alone at each step count but the longest (or the only one)."""
    longest = max(cfg.steps)
    shorter = sorted(s for s in cfg.steps if s != longest)
    latency: dict[int, float] = {}
    for steps in shorter or [longest]:
        progress(f"diffuseq sweep: latency at {steps} steps ...")
        outs = single_calls(
            backend, {**base, "steps": steps}, words[: cfg.sweep_latency_words], cfg.seed
        )
        latency[steps] = statistics.median(o.latency_ms for o in outs)
    return latency


def _step_rows(
    cfg: SweepConfig,
    backend: Any,
    base: Mapping[str, Any],
    words: Sequence[str],
    fluency: Fluency,
    progress: Progress,
) -> list[dict[str, Any]]:
    """One row per step count (plus the like-for-like subset rows), fewest words first."""
    longest = max(cfg.steps)
    shorter = sorted(s for s in cfg.steps if s != longest)
    small = min(cfg.full_steps_words, len(words)) if shorter else len(words)
    latency = _single_latencies(cfg, backend, base, words, progress)
    rows: list[dict[str, Any]] = []
    for steps in cfg.steps:
        chosen = words[:small] if steps == longest else words
        progress(f"diffuseq sweep: {steps} steps x {len(chosen)} words ...")
        groups, per_joke = batched_samples(
            backend, {**base, "steps": steps}, chosen, 1, cfg.seed, batch_rows=20
        )
        outs = [g[0] for g in groups]
        extrapolated = steps not in latency
        ms = latency[shorter[-1]] * steps / shorter[-1] if extrapolated else latency[steps]
        extra = {
            "seconds_per_joke_batched": per_joke,
            "median_latency_ms": ms,
            "latency_extrapolated": extrapolated,
        }
        row = {"sampler": base.get("sampler"), "steps": steps}
        rows.append({**row, **summarize(outs, fluency), **extra, "words": len(outs)})
        if steps != longest and small < len(outs):
            rows.append({**row, **summarize(outs[:small], fluency), **extra, "words": small})
    rows.sort(key=lambda r: (r["words"], -r["steps"]))
    return rows


def _sampler_rows(
    cfg: SweepConfig,
    backend: Any,
    base: Mapping[str, Any],
    words: Sequence[str],
    fluency: Fluency,
    progress: Progress,
) -> list[dict[str, Any]]:
    """The other samplers at the preset's step count, on the same words and seeds."""
    steps = int(base.get("steps", 20))
    rows = []
    for sampler in (x for x in cfg.compare_samplers if x != base.get("sampler")):
        progress(f"diffuseq sweep: sampler {sampler}, {steps} steps x {len(words)} words ...")
        params = {**base, "steps": steps, "sampler": sampler}
        groups, per_joke = batched_samples(backend, params, words, 1, cfg.seed, batch_rows=20)
        outs = [g[0] for g in groups]
        rows.append(
            {
                "sampler": sampler,
                "steps": steps,
                "words": len(outs),
                "seconds_per_joke_batched": per_joke,
                "latency_extrapolated": False,
                **summarize(outs, fluency),
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
    backend = source.backend(DIFFUSEQ)
    base = dict(source.method(DIFFUSEQ).params)
    words = list(words)
    rows = _step_rows(cfg, backend, base, words, fluency, progress)
    return rows + _sampler_rows(cfg, backend, base, words, fluency, progress)


__all__ = ["step_sweep"]
