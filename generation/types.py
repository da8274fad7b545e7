"""The public vocabulary of the generation layer: what a caller asks for and what it gets back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    prompt: str
    method: str
    count: int = 1
    seed: int | None = None
    # Lookup methods (stored jokes, `LookupBackend`): the ids of the jokes the asker has seen,
    # least recently shown first; they are skipped while others match. Models ignore it.
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Joke:
    """One finished joke. `params` are the exact decoding parameters, the row's seed (sampling) or
    variant index (beam search) included, so that the joke can be reproduced; `latency_ms` is the
    time from the service accepting the request to the joke being ready (queue wait included)."""

    text: str
    method: str
    model: str
    params: Mapping[str, Any]
    latency_ms: float
    # Best of N (generation.selection): this joke's place in the judge's order (0 = shown first)
    # out of `candidates` drawn, the judge's estimate that people like it and the judge's version
    # (None when the judge was not used).
    rank: int = 0
    candidates: int = 1
    judge_score: float | None = None
    judge_version: str | None = None
    ended: bool = True  # the model wrote its sentence end (the post-processor added no "…")


class Backend(Protocol):
    """A loaded model that turns a batch of prompts into raw texts.

    Backends are synchronous and run in the generation worker's thread; they never see asyncio.
    One call gets prompts that may differ, each with its own seed, and returns one raw text per
    prompt (the prompt included, special tokens removed). Post-processing is shared and lives in
    `generation.postprocess`.

    Seeds: a sampling backend must give the same text for the same (prompt, params, seed) whatever
    else is in the batch (a per-row random generator, not the global one); `None` means "any".
    A deterministic decoder (beam search) reads the seed as a variant index instead: 0 or `None`
    is its best result, 1 the second best, and so on, so that n rows of one prompt can differ.
    `params` are the method's decoding preset (see `generation.registry`), the same for all rows.
    """

    model_id: str

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]: ...

    def warmup(self) -> None: ...


class LookupBackend(Backend, Protocol):
    """A backend that answers from stored jokes instead of writing them (`generation.classic`).

    A lookup costs next to nothing, so the service calls `lookup` directly: no queue, no batches,
    no best of N, no post-processing (the stored jokes are clean already).
    """

    def lookup(self, request: GenerationRequest) -> list[Joke]: ...


class GenerationError(Exception):
    """A generation failed for a reason the user cannot fix (a model error)."""


class NothingFound(GenerationError):
    """A lookup method has no joke for this prompt: the caller should say so, not apologise."""


class GenerationBusy(GenerationError):
    """The queue is full; the caller should ask the user to try again shortly."""


class GenerationTimeout(GenerationError):
    """The generation did not finish within its time limit."""


class GenerationCancelled(GenerationError):
    """The service is stopping and a model call was interrupted between two steps."""


class UnknownMethod(GenerationError):
    """The request named a method that is not registered."""


@dataclass(slots=True)
class MethodInfo:
    """What the bot's method picker shows: a stable name, a display name, the decoding preset."""

    name: str
    display_name: str
    params: dict[str, Any] = field(default_factory=dict)
