"""The service's admission: "busy" at once when the queue is full or the queued work would
outlast the timeout, judged from what recent batches cost."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from generation.registry import MethodRegistry
from generation.types import GenerationBusy, GenerationRequest, GenerationTimeout
from tests.generation_fakes import FakeBackend, fake_registry


async def test_queue_full_raises_busy_at_once(make_service: Any) -> None:
    service = await make_service(fake_registry(FakeBackend(delay=0.3)), queue_depth=2)
    first = asyncio.create_task(service.generate(GenerationRequest("Раз", "fake")))
    second = asyncio.create_task(service.generate(GenerationRequest("Два", "fake")))
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    with pytest.raises(GenerationBusy):
        await service.generate(GenerationRequest("Три", "fake"))
    assert time.perf_counter() - started < 0.05
    await asyncio.gather(first, second)
    assert service.pending == 0
    assert await service.generate(GenerationRequest("Четыре", "fake"))  # room again


async def test_busy_at_once_when_the_queued_work_would_outlast_the_timeout(
    make_service: Any,
) -> None:
    # one row per call, 0.1 s each: with a 1 s timeout about 8 requests fit (ADMIT_FRACTION)
    backend = FakeBackend(delay=0.1)
    service = await make_service(fake_registry(backend), max_batch_size=1, timeout_s=1.0)
    assert service.backlog_s("fake", 1) == 0.0  # nothing measured yet: only queue_depth limits
    await service.generate(GenerationRequest("Первый", "fake"))
    assert 0.1 <= service.backlog_s("fake", 1) < 0.15

    started = time.perf_counter()
    calls = [service.generate(GenerationRequest(f"Слово {i}", "fake")) for i in range(20)]
    tasks = [asyncio.create_task(call) for call in calls]
    await asyncio.sleep(0.02)
    turned_away = [t for t in tasks if t.done() and isinstance(t.exception(), GenerationBusy)]
    assert time.perf_counter() - started < 0.5  # told at once, not after a wait
    results = await asyncio.gather(*tasks, return_exceptions=True)
    served = [r for r in results if isinstance(r, list)]
    assert len(served) + len(turned_away) == 20  # nobody timed out or failed otherwise
    assert 3 <= len(served) <= 9
    assert len(backend.calls) == 1 + len(served)


async def test_an_idle_service_takes_a_request_however_slow_the_last_ones_were(
    make_service: Any,
) -> None:
    backend = FakeBackend(delay=0.3)
    service = await make_service(fake_registry(backend), timeout_s=0.2)
    with pytest.raises(GenerationTimeout):
        await service.generate(GenerationRequest("Долго", "fake"))
    await asyncio.sleep(0.2)  # the worker finishes the abandoned call: 0.3 s a row on record
    assert service.pending == 0 and service.backlog_s("fake", 1) > 0.2
    backend.delay = 0.0
    assert await service.generate(GenerationRequest("Быстро", "fake"))  # not "busy" forever
    assert service.backlog_s("fake", 1) < 0.3


async def test_loading_a_model_on_first_use_is_not_taken_for_its_batch_cost(
    make_service: Any,
) -> None:
    backend = FakeBackend(delay=0.01)

    def slow_load() -> FakeBackend:
        time.sleep(0.5)
        return backend

    registry = MethodRegistry()
    registry.add_backend("lazy", slow_load)
    registry.add_method("lazy", "Lazy", "lazy", {"do_sample": True})
    service = await make_service(registry, preload=[])
    await service.generate(GenerationRequest("Первый", "lazy"))  # loads the model: 0.5 s
    assert service.backlog_s("lazy", 1) == 0.0  # not measured yet
    await service.generate(GenerationRequest("Второй", "lazy"))
    assert 0.005 < service.backlog_s("lazy", 1) < 0.1


async def test_a_short_queue_of_cheap_work_is_admitted_beyond_the_old_fixed_depth(
    make_service: Any,
) -> None:
    backend = FakeBackend(delay=0.01)
    service = await make_service(fake_registry(backend), max_batch_size=4, timeout_s=5.0)
    await service.generate(GenerationRequest("Первый", "fake"))
    results = await asyncio.gather(
        *(service.generate(GenerationRequest(f"Слово {i}", "fake")) for i in range(100)),
        return_exceptions=True,
    )
    assert all(isinstance(r, list) for r in results)  # 100 waiting is fine when each is cheap
