"""The generation layer: models that write jokes, and the service that runs them off the loop.

Light to import: the heavy pieces (torch, transformers) load only with `generation.gpt.backend` or
when a
backend is first used. Public entry points:

* `generation.types` — GenerationRequest, Joke, MethodInfo, Backend, the errors;
* `generation.registry.build_registry(settings)` — the named methods (gpt, gpt-sample, diffuseq);
* `generation.service.GenerationService` — queue, micro-batching, worker thread;
* `generation.postprocess.clean_joke` — raw model text to a sendable joke;
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
