"""The generation layer: models that write jokes, and the service that runs them off the loop.

Light to import: torch and transformers load only with a backend (`generation.gpt`,
`generation.diffuseq`) or when one is first used. The serving path is this package's top level
plus `gpt/`, `diffuseq/`, `checks/` and `judge/`; `training/` and `evaluation/` are the lab and
serving never imports them. Entry points:

* `generation.config.GenerationConfig` — the typed settings (`settings.Settings.generation()`);
* `generation.registry.build_registry(config)` — the named methods (gpt, gpt-sample, diffuseq);
* `generation.service.GenerationService` — queue, micro-batching, the worker thread;
* `generation.types` — GenerationRequest, Joke, MethodInfo, Backend, the errors;
* `python -m generation` — the command line.
"""

from generation.types import (
    Backend,
    GenerationBusy,
    GenerationError,
    GenerationRequest,
    GenerationTimeout,
    Joke,
    MethodInfo,
    UnknownMethod,
)

__all__ = [
    "Backend",
    "GenerationBusy",
    "GenerationError",
    "GenerationRequest",
    "GenerationTimeout",
    "Joke",
    "MethodInfo",
    "UnknownMethod",
]
