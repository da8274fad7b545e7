"""The service's speed levers with the real (tiny) GPT: concurrent requests share model calls,
yet each joke depends only on its own request; a failing request leaves its batch-mates alone;
the OpenMP wait policy is chosen before torch loads. No timing asserts: speed is for bench/."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from generation.registry import GPT, GPT_SAMPLE, MethodRegistry, build_registry
from generation.service import GenerationService
from generation.types import GenerationError, GenerationRequest
from settings import ROOT

WORDS = ["Молоко", "Кот", "Штирлиц шёл", "Доктор", "Вовочка", "Купил слона", "Жена", "Учитель"]


def tiny_registry(folder: Path) -> MethodRegistry:
    return build_registry(
        None,
        gpt_model=str(folder),
        enable_diffuseq=False,
        gpt_num_beams=3,
        gpt_max_new_tokens=16,
        torch_threads=1,
    )


@pytest.fixture
async def service(tiny_gpt_dir: Path) -> AsyncIterator[GenerationService]:
    registry = tiny_registry(tiny_gpt_dir)
    svc = GenerationService(registry, batch_window_ms=50, max_batch_size=32, torch_threads=1)
    await svc.start()
    backend = registry.backend(GPT)
    calls: list[int] = []
    real = backend.generate

    def counting(
        prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        calls.append(len(prompts))
        if any("БУМ" in prompt for prompt in prompts):
            raise RuntimeError("this prompt breaks the model")
        return real(prompts, params, seeds)

    backend.generate = counting  # type: ignore[method-assign]
    svc.calls = calls  # type: ignore[attr-defined]
    try:
        yield svc
    finally:
        await svc.stop(grace_s=5)


async def test_models_are_loaded_and_warm_before_the_first_request(
    service: GenerationService,
) -> None:
    assert service.registry.is_loaded(GPT)
    assert service.calls == []  # type: ignore[attr-defined]  # warm-up ran before the wrapper


@pytest.mark.parametrize("method", [GPT_SAMPLE, GPT])
async def test_concurrent_requests_share_calls_and_match_solo_results(
    service: GenerationService, method: str
) -> None:
    seed = None if method == GPT else 7
    requests = [GenerationRequest(w, method, seed=seed and seed + i) for i, w in enumerate(WORDS)]
    together = await asyncio.gather(*(service.generate(r) for r in requests))
    calls: list[int] = service.calls  # type: ignore[attr-defined]
    assert sum(calls) == len(WORDS) and len(calls) <= 2  # one batch (maybe two if split)
    calls.clear()
    alone = [await service.generate(r) for r in requests]
    assert calls == [1] * len(WORDS)
    assert [[j.text for j in jokes] for jokes in together] == [
        [j.text for j in jokes] for jokes in alone
    ]
    for word, jokes in zip(WORDS, together, strict=True):
        assert jokes[0].text.startswith(word)


async def test_a_failing_request_does_not_fail_its_batch_mates(service: GenerationService) -> None:
    good = [GenerationRequest(w, GPT_SAMPLE, seed=3) for w in WORDS[:4]]
    bad = GenerationRequest("БУМ", GPT_SAMPLE, seed=3)
    results = await asyncio.gather(
        *(service.generate(r) for r in [*good[:2], bad, *good[2:]]), return_exceptions=True
    )
    assert isinstance(results[2], GenerationError)
    oks = [r for i, r in enumerate(results) if i != 2]
    assert all(isinstance(r, list) and r for r in oks)
    solo = [await service.generate(r) for r in good]
    assert [r[0].text for r in oks] == [s[0].text for s in solo]  # type: ignore[index]


def run_python(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()


def test_openmp_threads_sleep_unless_torch_is_loaded_or_the_user_chose() -> None:
    check = (
        "import os, sys; from generation.service import prefer_sleeping_openmp_threads as f; "
        "{before}; print(f(), os.environ.get('OMP_WAIT_POLICY'))"
    )
    assert run_python(check.format(before="pass")) == "True PASSIVE"
    assert run_python(check.format(before="import torch")) == "False None"
    assert run_python(check.format(before="pass"), OMP_WAIT_POLICY="ACTIVE") == "False ACTIVE"
