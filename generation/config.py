"""The generation layer's typed configuration, built from `settings.Settings`.

Why a separate type: the generation layer is used without the bot (the CLI, benchmarks, the
evaluation, tests), so it takes one typed, immutable object instead of reading the environment
itself. It declares no defaults: `settings.Settings` is the only place a default lives, and
`GenerationConfig.defaults()` reads them from there, untouched by the environment or `.env`.
The choices below are `Literal`s so that a typo in a setting fails at start-up, not mid-request.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

GptDType = Literal["float32", "bfloat16"]
GptQuantize = Literal["int8", "int8-fbgemm", "bf16", "none"]
DiffuSeqSampler = Literal["renoise", "dpm", "ddim", "ancestral"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationConfig:
    """Everything `build_registry` and `GenerationService.from_config` read; the meaning of each
    field is documented once, beside its default in `settings.Settings`."""

    # models
    gpt_model: str
    gpt_tokenizer: str | None
    gpt_dtype: GptDType
    gpt_prepend_bos: bool | None
    gpt_quantize: GptQuantize
    gpt_one_thread_below_rows: int | None
    diffuseq_model: str
    enable_diffuseq: bool
    device: str
    torch_threads: int
    enable_classic: bool
    classic_index: str
    experiment: str | None  # "method:folderA,folderB" (generation/experiments.py)
    # decoding presets
    gpt_max_length: int
    gpt_max_new_tokens: int
    gpt_num_beams: int
    gpt_temperature: float
    gpt_top_p: float
    diffuseq_steps: int
    diffuseq_sampler: DiffuSeqSampler
    diffuseq_mbr: int
    # best of N
    best_of_n: bool
    gpt_candidates: int
    gpt_sample_candidates: int
    diffuseq_candidates: int
    judge_weight: float
    checks_folder: str
    judge_model: str
    # the service
    queue_depth: int
    generation_timeout_s: float
    batch_window_ms: float
    max_batch_size: int
    max_joke_chars: int
    shutdown_grace_s: float

    @classmethod
    def from_settings(cls, settings: Any, /, **overrides: Any) -> GenerationConfig:
        """The generation fields of a `settings.Settings`; keyword overrides win."""
        values = {item.name: getattr(settings, item.name) for item in fields(cls)}
        return cls(**{**values, **overrides})

    @classmethod
    def defaults(cls, **overrides: Any) -> GenerationConfig:
        """The project's defaults (from `settings.Settings`, ignoring the environment)."""
        from settings import Settings  # the composition root; imported late, it imports us

        return cls.from_settings(Settings.model_construct(), **overrides)

    def but(self, **changes: Any) -> GenerationConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)


__all__ = [
    "DiffuSeqSampler",
    "GenerationConfig",
    "GptDType",
    "GptQuantize",
]
