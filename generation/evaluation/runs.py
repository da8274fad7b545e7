"""Making the jokes to evaluate: through the real `GenerationService` (what a user gets), or
straight from a backend in batches (throughput) or one at a time (latency of one joke)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from generation.evaluation.outputs import Output
from generation.postprocess import clean_joke
from generation.registry import MethodRegistry
from generation.service import GenerationService
from generation.types import GenerationError, GenerationRequest

log = logging.getLogger(__name__)

#: what a backend made of one row: its raw text and, for DiffuSeq, whether the model wrote the
#: starting word itself
RawRow = tuple[str, bool | None]


def raw_rows(
    backend: Any, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
) -> list[RawRow]:
    """One backend call; backends that can tell (`generate_detailed`) say who wrote the word."""
    if hasattr(backend, "generate_detailed"):
        samples = backend.generate_detailed(prompts, params, seeds)
        return [(s.text, s.model_started) for s in samples]
    return [(raw, None) for raw in backend.generate(prompts, params, seeds)]


class RecordingBackend:
    """Wraps a loaded backend and keeps the raw text of every row it generated (and DiffuSeq's
    `model_started` flag), keyed by (prompt, seed), so the evaluation sees what the service
    post-processed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.rows: dict[tuple[str, int | None], RawRow] = {}

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        rows = raw_rows(self.inner, prompts, params, seeds)
        for prompt, seed, row in zip(prompts, seeds, rows, strict=True):
            self.rows[(prompt, seed)] = row
        return [raw for raw, _ in rows]

    def warmup(self) -> None:
        self.inner.warmup()


def recording_registry(
    source: MethodRegistry, methods: Sequence[str]
) -> tuple[MethodRegistry, dict[str, RecordingBackend]]:
    """A registry with the same methods and presets whose (already loaded) backends record."""
    registry = MethodRegistry()
    recorders: dict[str, RecordingBackend] = {}
    for name in methods:
        method = source.method(name)
        if method.backend_key not in recorders:
            recorders[method.backend_key] = RecordingBackend(source.backend(name))
            registry.add_backend(method.backend_key, recorders[method.backend_key])
        registry.add_method(
            name,
            method.display_name,
            method.backend_key,
            method.params,
            deterministic=method.deterministic,
        )
    return registry, recorders


async def _serve(
    service: GenerationService, requests: Sequence[GenerationRequest], concurrent: bool
) -> list[tuple[str, float]]:
    """(shown text or "", latency ms) per request; a refused request counts as no joke."""

    async def one(request: GenerationRequest) -> tuple[str, float]:
        started = time.monotonic()
        try:
            jokes = await service.generate(request)
            return jokes[0].text, jokes[0].latency_ms
        except GenerationError as error:
            log.info("%s %r: %s", request.method, request.prompt, error)
            return "", (time.monotonic() - started) * 1000

    await service.start()
    try:
        if concurrent:
            return list(await asyncio.gather(*(one(r) for r in requests)))
        return [await one(r) for r in requests]
    finally:
        await service.stop()


async def generate_through_service(
    registry: MethodRegistry,
    method: str,
    words: Sequence[str],
    recorder: RecordingBackend,
    seeds: Sequence[int],
    threads: int | None,
    *,
    concurrent: bool,
) -> list[Output]:
    """One request (count 1) per word through a `GenerationService`.

    concurrent=False: one request at a time, so `latency_ms` is what a single user waits for
    one joke (empty queue, batch of one). concurrent=True: all requests at once, so the service
    batches them as it would under load (up to 32 rows per backend call); the texts are the same
    (every backend's rows are independent of their batch-mates), the latencies include queueing
    and are not reported. Sampling methods get the word's seed from `seeds`; beam search
    (deterministic) gets no seed, i.e. its best beam, as a user's first request does.
    """
    service = GenerationService(
        registry,
        queue_depth=len(words) + 1,
        timeout_s=3600,
        batch_window_ms=5 if concurrent else 0,
        max_batch_size=32,
        torch_threads=threads,
        preload=[method],
    )
    deterministic = registry.method(method).deterministic
    requests = [
        GenerationRequest(prompt=word, method=method, count=1, seed=None if deterministic else seed)
        for word, seed in zip(words, seeds, strict=True)
    ]
    results = await _serve(service, requests, concurrent)
    outputs = []
    for request, (text, latency) in zip(requests, results, strict=True):
        row_seed = 0 if deterministic else request.seed
        raw, started_flag = recorder.rows.get((request.prompt, row_seed), ("", None))
        outputs.append(
            Output.of(
                request.prompt,
                text,
                raw,
                latency_ms=latency,
                seed=row_seed or 0,
                model_started=started_flag,
            )
        )
    return outputs


def batched_samples(
    backend: Any,
    params: Mapping[str, Any],
    words: Sequence[str],
    per_word: int,
    seed: int,
    batch_rows: int = 40,
) -> tuple[list[list[Output]], float]:
    """`per_word` samples for each word straight from the backend in batches (throughput mode),
    post-processed like the service does. Returns the groups and the seconds per joke."""
    # Every row its own seed: rows sharing one would start from the same noise.
    rows = [(w, seed + i * per_word + j) for i, w in enumerate(words) for j in range(per_word)]
    outputs: list[Output] = []
    started = time.perf_counter()
    for start in range(0, len(rows), batch_rows):
        chunk = rows[start : start + batch_rows]
        raws = raw_rows(backend, [w for w, _ in chunk], params, [s for _, s in chunk])
        for (word, s), (raw, flag) in zip(chunk, raws, strict=True):
            outputs.append(Output.of(word, clean_joke(raw, word), raw, seed=s, model_started=flag))
    per_joke = (time.perf_counter() - started) / max(len(rows), 1)
    groups = [outputs[i * per_word : (i + 1) * per_word] for i in range(len(words))]
    return groups, per_joke


def single_calls(
    backend: Any, params: Mapping[str, Any], words: Sequence[str], seed: int
) -> list[Output]:
    """Each word as its own backend call (batch of one): the latency one user would see."""
    outputs = []
    for index, word in enumerate(words):
        started = time.perf_counter()
        sample = backend.generate_detailed([word], params, [seed + index])[0]
        latency = (time.perf_counter() - started) * 1000
        outputs.append(
            Output.of(
                word,
                clean_joke(sample.text, word),
                sample.text,
                latency_ms=latency,
                seed=seed + index,
                model_started=sample.model_started,
            )
        )
    return outputs


__all__ = [
    "RecordingBackend",
    "batched_samples",
    "generate_through_service",
    "raw_rows",
    "recording_registry",
    "single_calls",
]
