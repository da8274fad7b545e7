"""The whole details evaluation, stage by stage: load the served methods, score held-out jokes,
generate through the service, measure diversity and DiffuSeq's step sweep. Returns a `Report`;
writing it is `generation.evaluation.details_markdown`'s job."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from generation.config import GenerationConfig
from generation.evaluation.bpc import evaluate_bpc, fluency_scorer
from generation.evaluation.corpus import COMMON_NOUNS, mixed_words, read_jokes, starting_words
from generation.evaluation.metrics import self_bleu
from generation.evaluation.outputs import Output, summarize
from generation.evaluation.runs import (
    RecordingBackend,
    batched_samples,
    generate_through_service,
    recording_registry,
)
from generation.evaluation.sweep import step_sweep
from generation.registry import (
    DIFFUSEQ,
    GPT,
    GPT_SAMPLE,
    MethodRegistry,
    build_registry,
)

STEP_SWEEP = (2000, 100, 20, 10)
Fluency = Callable[[Sequence[str]], float]
Progress = Callable[[str], None]


@dataclass
class EvalConfig:
    data: Path = Path("data/prepared")
    gpt: Path = Path("models/gpt")
    diffuseq: Path | None = Path("models/diffuseq")
    words: int = 200
    nouns: int = len(COMMON_NOUNS)
    latency_words: int = 20
    diversity_words: int = 30
    samples_per_word: int = 5
    sweep_words: int = 20
    full_steps_words: int = 2
    sweep_latency_words: int = 3
    steps: tuple[int, ...] = STEP_SWEEP
    bpc_limit: int | None = None
    threads: int = 2
    seed: int = 1000
    quick: bool = False
    methods: tuple[str, ...] = (GPT, GPT_SAMPLE, DIFFUSEQ)
    compare_samplers: tuple[str, ...] = ("renoise", "dpm")
    gpt_quantize: str | None = None  # None: the registry's default (what the bot uses)
    diffuseq_sampler: str | None = None
    diffuseq_steps: int | None = None

    @classmethod
    def quick_config(cls, **overrides: Any) -> EvalConfig:
        values: dict[str, Any] = {
            "words": 10,
            "nouns": 5,
            "latency_words": 4,
            "diversity_words": 4,
            "sweep_words": 4,
            "full_steps_words": 1,
            "sweep_latency_words": 1,
            "bpc_limit": 200,
            "quick": True,
        }
        values.update(overrides)
        return cls(**values)


@dataclass
class Report:
    config: dict[str, Any]
    machine: dict[str, Any]
    bpc: dict[str, Any]
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    main: dict[str, dict[str, Any]] = field(default_factory=dict)
    diversity: dict[str, dict[str, Any]] = field(default_factory=dict)
    sweep: list[dict[str, Any]] = field(default_factory=list)
    samples: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    nouns: list[str] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: 1-minute load average after each stage: latencies on a shared CPU depend on it.
    load: dict[str, float] = field(default_factory=dict)


def _load() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def cpu_name() -> str:
    """The CPU's model name (Linux), else what `platform` knows: figures are only comparable
    on the same chip, so every report names it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int) -> dict[str, Any]:
    cpu = cpu_name()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_avg_1m_at_start": load,
    }


def model_info(folder: Path | None) -> dict[str, Any]:
    if folder is None or not folder.exists():
        return {}
    info: dict[str, Any] = {"path": str(folder)}
    weights = folder / "model.safetensors"
    if weights.exists():
        info["weights_mb"] = round(weights.stat().st_size / 2**20, 2)
    for name in ("train_summary.json", "config.json"):
        path = folder / name
        if path.exists():
            with contextlib.suppress(ValueError):
                info[name] = json.loads(path.read_text(encoding="utf-8"))
    return info


def registry_config(cfg: EvalConfig) -> GenerationConfig:
    """The bot's registry on the CPU in float32, with the run's overrides of its presets."""
    overrides = {
        "gpt_quantize": cfg.gpt_quantize,
        "diffuseq_sampler": cfg.diffuseq_sampler,
        "diffuseq_steps": cfg.diffuseq_steps,
    }
    return GenerationConfig.defaults(
        **{k: v for k, v in overrides.items() if v is not None},
        gpt_model=str(cfg.gpt),
        device="cpu",
        gpt_dtype="float32",
        torch_threads=cfg.threads,
        diffuseq_model=str(cfg.diffuseq) if cfg.diffuseq else "",
        enable_diffuseq=bool(cfg.diffuseq),
    )


def _sample_picks(
    outputs: Sequence[Output], words: Sequence[str], nouns: Sequence[str]
) -> list[Output]:
    """20 unedited outputs: the first 10 test words and the first 10 nouns (no selection)."""
    first = list(outputs[: min(10, len(words))])
    return first + list(outputs[len(words) : len(words) + 20 - len(first)])


def _through_service(
    registry: MethodRegistry,
    method: str,
    words: Sequence[str],
    recorder: RecordingBackend,
    seeds: dict[str, int],
    cfg: EvalConfig,
    concurrent: bool,
) -> list[Output]:
    return asyncio.run(
        generate_through_service(
            registry,
            method,
            words,
            recorder,
            [seeds[w] for w in words],
            cfg.threads,
            concurrent=concurrent,
        )
    )


@dataclass(frozen=True)
class _Stages:
    """What the generation stages read: the run's settings, the loaded methods, the report they
    fill in (its words and nouns chosen), the fluency scorer and the progress line."""

    cfg: EvalConfig
    source: MethodRegistry
    methods: Sequence[str]
    report: Report
    fluency: Fluency
    progress: Progress


def _main_rows(stages: _Stages) -> None:
    """Each method, one joke per word through the service (batched), then the latency run."""
    cfg, source, report, progress = stages.cfg, stages.source, stages.report, stages.progress
    methods = stages.methods
    words, nouns = report.words, report.nouns
    all_words = words + nouns
    registry, recorders = recording_registry(source, methods)
    seeds = {word: cfg.seed + index for index, word in enumerate(all_words)}
    latency_words = mixed_words(words, nouns, cfg.latency_words)
    for method in methods:
        recorder = recorders[source.method(method).backend_key]
        progress(f"{method}: {len(all_words)} words through the service, batched ...")
        outputs = _through_service(registry, method, all_words, recorder, seeds, cfg, True)
        progress(f"{method}: latency, {len(latency_words)} requests one at a time ...")
        timed = _through_service(registry, method, latency_words, recorder, seeds, cfg, False)
        row = summarize(outputs, stages.fluency)
        by_word = {o.word: o.text for o in outputs}
        row["median_latency_ms"] = statistics.median(o.latency_ms for o in timed)
        row["latency_n"] = len(timed)
        same = sum(o.text == by_word[o.word] for o in timed)
        row["same_text_alone_and_batched"] = same / len(timed)
        row["by_source"] = {
            "test words": summarize(outputs[: len(words)]),
            "common nouns": summarize(outputs[len(words) :]),
        }
        report.main[method] = row
        picks = _sample_picks(outputs, words, nouns)
        report.samples[method] = [{"word": o.word, "text": o.text} for o in picks]
        report.load[method] = _load()
        progress(f"{method}: valid {row['valid']:.3f}, median {row['median_latency_ms']:.0f} ms")


def _diversity_rows(stages: _Stages) -> None:
    """Several samples per word, gpt-sample vs diffuseq, straight from the backends in batches."""
    cfg, source, report = stages.cfg, stages.source, stages.report
    div_words = mixed_words(report.words, report.nouns, cfg.diversity_words)
    for method in (m for m in (GPT_SAMPLE, DIFFUSEQ) if m in stages.methods):
        stages.progress(f"{method}: {cfg.samples_per_word} samples x {len(div_words)} words ...")
        groups, per_joke = batched_samples(
            source.backend(method),
            source.method(method).params,
            div_words,
            cfg.samples_per_word,
            cfg.seed + 10_000,
        )
        row = summarize([o for g in groups for o in g], stages.fluency)
        row["self_bleu"] = self_bleu([[o.text for o in g if o.text] for g in groups])
        row["seconds_per_joke_batched"] = per_joke
        row["words"] = len(div_words)
        report.diversity[method] = row


def run(cfg: EvalConfig, progress: Progress = print) -> Report:
    """Run every part of the evaluation and return the report (nothing is written here)."""
    started = time.perf_counter()
    torch.set_num_threads(max(1, cfg.threads))
    registry_cfg = registry_config(cfg)
    source = build_registry(registry_cfg)
    methods = [m for m in cfg.methods if m in source.names()]
    source.load_all(methods)
    methods = [m for m in methods if m in source.names()]  # a failed optional backend drops out
    gpt_backend = source.backend(GPT)
    tokenizer = gpt_backend.tokenizer
    # Bits per character of the checkpoint as trained (float32), and of the weights the backend
    # serves when it quantizes them (GPT_QUANTIZE), so the cost of quantizing is visible.
    model = AutoModelForCausalLM.from_pretrained(str(cfg.gpt), dtype=torch.float32).eval()
    scored = {"gpt": model}
    quantize = str(registry_cfg.gpt_quantize or "none")
    if quantize != "none":
        scored[f"gpt-{quantize}"] = gpt_backend.model
    report = Report(
        config={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        machine=machine_info(cfg.threads),
        bpc={},
        presets={m: dict(source.method(m).params) for m in methods},
        models={"gpt": model_info(cfg.gpt), "diffuseq": model_info(cfg.diffuseq)},
    )
    report.models["gpt"]["served"] = {
        "quantize": registry_cfg.gpt_quantize,
    }
    progress("bits per character ...")
    bpc = evaluate_bpc(scored, tokenizer, cfg.data, cfg.bpc_limit)
    report.bpc = asdict(bpc)
    progress(f"bpc: {json.dumps(bpc.bpc)}")
    fluency = fluency_scorer(model, tokenizer)
    report.nouns = list(COMMON_NOUNS[: cfg.nouns])
    report.words = starting_words(read_jokes(cfg.data / "test.jsonl"), cfg.words, report.nouns)
    stages = _Stages(cfg, source, methods, report, fluency, progress)
    _main_rows(stages)
    _diversity_rows(stages)
    if DIFFUSEQ in methods:
        sweep_words = mixed_words(report.words, report.nouns, cfg.sweep_words)
        report.sweep = step_sweep(cfg, source, sweep_words, fluency, progress)
        report.load["diffuseq sweep"] = _load()
    report.seconds = time.perf_counter() - started
    return report


__all__ = ["STEP_SWEEP", "EvalConfig", "Report", "machine_info", "model_info", "run"]
