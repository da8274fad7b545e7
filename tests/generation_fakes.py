"""A fake model backend and a service fixture, shared by the generation service's tests."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from generation.registry import MethodRegistry
from generation.service import GenerationService


class FakeBackend:
    """Records its calls; sleeps `delay`; fails any batch holding a prompt in `fail_on`."""

    model_id = "fake-1"

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.calls: list[tuple[list[str], list[int | None]]] = []
        self.threads: set[str] = set()
        self.warmed = False

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        self.threads.add(threading.current_thread().name)
        self.calls.append((list(prompts), list(seeds)))
        time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in prompts:
            raise RuntimeError("model exploded")
        pairs = zip(prompts, seeds, strict=True)
        return [f"{p} и шутка номер {s}. Хвост без конца" for p, s in pairs]

    def warmup(self) -> None:
        self.threads.add(threading.current_thread().name)
        self.warmed = True


def fake_registry(backend: FakeBackend, **methods: dict[str, Any]) -> MethodRegistry:
    registry = MethodRegistry()
    registry.add_backend("fake", backend)
    for name, params in (methods or {"fake": {"do_sample": True}}).items():
        registry.add_method(name, name.title(), "fake", params)
    return registry


@pytest.fixture
async def make_service() -> AsyncIterator[Any]:
    services: list[GenerationService] = []

    async def make(registry: MethodRegistry, **kwargs: Any) -> GenerationService:
        kwargs.setdefault("batch_window_ms", 0)
        service = GenerationService(registry, **kwargs)
        services.append(service)
        await service.start()
        return service

    yield make
    for service in services:
        await service.stop(grace_s=2)


# -- the reader's checks and the judge, for end-to-end tests of best of N -----------------------


@dataclass(frozen=True)
class Verdict:
    clean: bool
    copied: bool


class AcceptAll:
    """Checks that pass every candidate."""

    def check(self, text: str, prompt: str, *, ended: bool = True) -> Verdict:
        return Verdict(clean=True, copied=False)


@dataclass(frozen=True)
class Score:
    liked: float
    bpc: float | None


class LongerIsFunnier:
    """A judge that likes longer jokes: its order is easy to predict in a test."""

    def __init__(self, version: str = "judge@e2e000") -> None:
        self.version = version

    def score(self, texts: Sequence[str]) -> list[Score]:
        return [Score(liked=min(1.0, len(t) / 200), bpc=None) for t in texts]
