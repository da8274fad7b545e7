"""The generation service: worker thread, queue limits, timeouts, micro-batching, isolation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from generation import interrupt
from generation.config import GenerationConfig
from generation.registry import MethodRegistry, build_registry
from generation.service import GenerationService
from generation.types import (
    GenerationCancelled,
    GenerationError,
    GenerationRequest,
    GenerationTimeout,
    UnknownMethod,
)
from tests.generation_fakes import FakeBackend, fake_registry

WORKER = "generation-worker"



async def test_models_load_and_run_in_the_worker_thread(make_service: Any) -> None:
    backend = FakeBackend()
    service = await make_service(fake_registry(backend))
    assert backend.warmed
    (joke,) = await service.generate(GenerationRequest("Молоко", "fake", seed=3))
    assert backend.threads == {WORKER}
    assert joke.text == "Молоко и шутка номер 3."
    assert joke.method == "fake" and joke.model == "fake-1"
    assert joke.params == {"do_sample": True, "seed": 3}
    assert joke.latency_ms >= 0


async def test_count_expands_to_rows_with_consecutive_seeds(make_service: Any) -> None:
    backend = FakeBackend()
    service = await make_service(fake_registry(backend))
    jokes = await service.generate(GenerationRequest("Кот", "fake", count=3, seed=10))
    assert [j.params["seed"] for j in jokes] == [10, 11, 12]
    assert backend.calls == [(["Кот"] * 3, [10, 11, 12])]
    # Without a seed a random base is drawn and recorded, so every joke can be reproduced.
    jokes = await service.generate(GenerationRequest("Кот", "fake", count=2))
    assert jokes[1].params["seed"] == jokes[0].params["seed"] + 1


async def test_deterministic_methods_get_variants(make_service: Any) -> None:
    backend = FakeBackend()
    service = await make_service(fake_registry(backend, beam={"do_sample": False}))
    jokes = await service.generate(GenerationRequest("Кот", "beam", count=3))
    assert [j.params["variant"] for j in jokes] == [0, 1, 2]
    assert "seed" not in jokes[0].params


async def test_micro_batching_joins_requests_of_one_method(make_service: Any) -> None:
    backend = FakeBackend()
    registry = fake_registry(backend, a={"do_sample": True}, b={"do_sample": True})
    service = await make_service(registry, batch_window_ms=100, max_batch_size=5)
    requests = [
        GenerationRequest("Раз", "a", seed=1),
        GenerationRequest("Два", "b", seed=2),
        GenerationRequest("Три", "a", count=2, seed=3),
        GenerationRequest("Четыре", "a", count=3, seed=5),  # would make 6 rows: next batch
    ]
    results = await asyncio.gather(*(service.generate(r) for r in requests))
    assert [len(r) for r in results] == [1, 1, 2, 3]
    assert results[2][1].text == "Три и шутка номер 4."
    assert backend.calls[0] == (["Раз", "Три", "Три"], [1, 3, 4])
    assert sorted(backend.calls[1:]) == [(["Два"], [2]), (["Четыре"] * 3, [5, 6, 7])]


async def test_timeout_and_unstarted_work_is_dropped(make_service: Any) -> None:
    backend = FakeBackend(delay=0.3)
    service = await make_service(fake_registry(backend))
    running = asyncio.create_task(service.generate(GenerationRequest("Долго", "fake")))
    await asyncio.sleep(0.05)  # the worker is inside the slow call now
    with pytest.raises(GenerationTimeout):
        await service.generate(GenerationRequest("Брошено", "fake"), timeout=0.05)
    assert await running
    assert await service.generate(GenerationRequest("Потом", "fake"))
    prompts = [p for call, _ in backend.calls for p in call]
    assert prompts == ["Долго", "Потом"]  # the abandoned request never reached the model


async def test_default_timeout_from_constructor(make_service: Any) -> None:
    service = await make_service(fake_registry(FakeBackend(delay=0.3)), timeout_s=0.05)
    with pytest.raises(GenerationTimeout):
        await service.generate(GenerationRequest("Долго", "fake"))


async def test_one_bad_request_does_not_fail_its_batch(make_service: Any) -> None:
    backend = FakeBackend(fail_on="Плохо")
    service = await make_service(fake_registry(backend), batch_window_ms=100)
    results = await asyncio.gather(
        service.generate(GenerationRequest("Хорошо", "fake", seed=1)),
        service.generate(GenerationRequest("Плохо", "fake", seed=2)),
        service.generate(GenerationRequest("Отлично", "fake", seed=3)),
        return_exceptions=True,
    )
    assert results[0][0].text.startswith("Хорошо")
    assert isinstance(results[1], GenerationError)
    assert "model exploded" in str(results[1])
    assert results[2][0].text.startswith("Отлично")
    assert backend.calls[0][0] == ["Хорошо", "Плохо", "Отлично"]  # one batch, then one by one
    assert [c[0] for c in backend.calls[1:]] == [["Хорошо"], ["Плохо"], ["Отлично"]]


async def test_garbage_output_is_an_error(make_service: Any) -> None:
    class Garbage(FakeBackend):
        def generate(self, prompts: Sequence[str], *_: Any) -> list[str]:
            return ["<|endoftext|> ... !!!" for _ in prompts]

    service = await make_service(fake_registry(Garbage()))
    with pytest.raises(GenerationError, match="no usable joke"):
        await service.generate(GenerationRequest("Молоко", "fake"))


async def test_worker_survives_a_broken_backend_result(make_service: Any) -> None:
    class Broken(FakeBackend):
        def generate(self, prompts: Sequence[str], *_: Any) -> list[str]:
            return [None for _ in prompts]  # type: ignore[misc]

    backend = Broken()
    registry = fake_registry(backend)
    registry.add_backend("ok", FakeBackend())
    registry.add_method("ok", "Ok", "ok", {"do_sample": True})
    service = await make_service(registry)
    with pytest.raises(GenerationError):
        await service.generate(GenerationRequest("Молоко", "fake"))
    assert await service.generate(GenerationRequest("Молоко", "ok"))  # the worker lives on


async def test_unknown_method_and_bad_requests(make_service: Any) -> None:
    service = await make_service(fake_registry(FakeBackend()))
    with pytest.raises(UnknownMethod):
        await service.generate(GenerationRequest("Молоко", "nope"))
    with pytest.raises(ValueError):
        await service.generate(GenerationRequest("   ", "fake"))
    with pytest.raises(ValueError):
        await service.generate(GenerationRequest("Молоко", "fake", count=0))


async def test_not_running_before_start_and_after_stop() -> None:
    service = GenerationService(fake_registry(FakeBackend()))
    with pytest.raises(GenerationError, match="not running"):
        await service.generate(GenerationRequest("Молоко", "fake"))
    await service.start()
    assert service.running
    await service.stop()
    await service.stop()  # twice is fine
    with pytest.raises(GenerationError, match="not running"):
        await service.generate(GenerationRequest("Молоко", "fake"))


async def test_stop_finishes_queued_work_within_grace() -> None:
    service = GenerationService(fake_registry(FakeBackend(delay=0.1)), batch_window_ms=0)
    await service.start()
    tasks = [
        asyncio.create_task(service.generate(GenerationRequest(word, "fake")))
        for word in ("Раз", "Два")
    ]
    await asyncio.sleep(0.01)
    await service.stop(grace_s=5)
    results = [await task for task in tasks]
    assert [jokes[0].text.split()[0] for jokes in results] == ["Раз", "Два"]


async def test_stop_fails_what_does_not_finish_within_grace() -> None:
    service = GenerationService(fake_registry(FakeBackend(delay=0.5)), batch_window_ms=0)
    await service.start()
    task = asyncio.create_task(service.generate(GenerationRequest("Долго", "fake")))
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await service.stop(grace_s=0.05)
    assert time.perf_counter() - started < 0.4
    with pytest.raises(GenerationError, match="stopped"):
        await task


class SteppingBackend(FakeBackend):
    """A model call of many steps that checks for an interruption between them, as the real
    decoders do."""

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        self.threads.add(threading.current_thread().name)
        for _ in range(1000):  # 10 s unless interrupted
            interrupt.check()
            time.sleep(0.01)
        return [f"{p} и всё." for p in prompts]


async def test_stop_interrupts_a_model_call_between_steps() -> None:
    service = GenerationService(fake_registry(SteppingBackend()), batch_window_ms=0)
    await service.start()
    task = asyncio.create_task(service.generate(GenerationRequest("Долго", "fake")))
    await asyncio.sleep(0.1)
    worker = next(t for t in threading.enumerate() if t.name == WORKER)
    await service.stop(grace_s=0.05)
    worker.join(timeout=1.0)  # the call stopped at its next step: the thread is done
    assert not worker.is_alive()
    with pytest.raises(GenerationError):
        await task


def test_interruption_is_per_thread() -> None:
    stop = threading.Event()
    stop.set()
    elsewhere: list[BaseException] = []

    def other_thread() -> None:
        try:
            interrupt.check()  # this thread installed nothing: nothing to stop
        except BaseException as error:
            elsewhere.append(error)

    thread = threading.Thread(target=lambda: (interrupt.install(threading.Event()), other_thread()))
    thread.start()
    thread.join()
    interrupt.install(stop)
    try:
        with pytest.raises(GenerationCancelled):
            interrupt.check()
    finally:
        interrupt.install(threading.Event())
    assert elsewhere == []


async def test_start_fails_when_a_required_model_is_missing(tmp_path: Path) -> None:
    registry = build_registry(GenerationConfig.defaults(gpt_model=str(tmp_path / "nope")))
    service = GenerationService(registry)
    with pytest.raises(GenerationError, match="model folder not found"):
        await service.start()
    assert not service.running


# -- with the tiny real GPT --------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt_registry(tiny_gpt_dir: Path) -> MethodRegistry:
    return build_registry(
        GenerationConfig.defaults(
            gpt_model=str(tiny_gpt_dir), enable_diffuseq=False, torch_threads=1
        )
    )


async def test_real_gpt_presets_and_seeds_through_the_service(
    make_service: Any, gpt_registry: MethodRegistry
) -> None:
    service = await make_service(gpt_registry, batch_window_ms=50, torch_threads=1)
    (beam,) = await service.generate(GenerationRequest("Молоко", "gpt"))
    assert beam.text.startswith("Молоко")
    assert beam.params["num_beams"] == 6 and beam.params["do_sample"] is False
    alone = await service.generate(GenerationRequest("Молоко", "gpt-sample", seed=42))
    batched = await asyncio.gather(
        service.generate(GenerationRequest("Кот сказал", "gpt-sample", seed=1, count=2)),
        service.generate(GenerationRequest("Молоко", "gpt-sample", seed=42)),
        service.generate(GenerationRequest("Штирлиц шёл по лесу", "gpt-sample", seed=9)),
    )
    assert batched[1][0].text == alone[0].text
    assert alone[0].params["temperature"] == 0.6 and alone[0].params["seed"] == 42


class RepeatBackend:
    """Runs the real tiny GPT again and again for `seconds`: a slow, real inference."""

    def __init__(self, inner: Any, seconds: float) -> None:
        self.inner, self.seconds, self.model_id = inner, seconds, inner.model_id

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        deadline = time.perf_counter() + self.seconds
        while True:
            out = self.inner.generate(prompts, params, seeds)
            if time.perf_counter() > deadline:
                return out

    def warmup(self) -> None:
        self.inner.warmup()


async def test_event_loop_stays_responsive_during_generation(
    make_service: Any, gpt_registry: MethodRegistry
) -> None:
    registry = MethodRegistry()
    registry.add_backend("slow", RepeatBackend(gpt_registry.backend("gpt"), seconds=0.8))
    registry.add_method("slow", "Slow", "slow", dict(gpt_registry.method("gpt-sample").params))
    service = await make_service(registry, torch_threads=1)

    lags: list[float] = []

    async def heartbeat(stop: asyncio.Event) -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    stop = asyncio.Event()
    beat = asyncio.create_task(heartbeat(stop))
    started = time.perf_counter()
    jokes = await service.generate(GenerationRequest("Молоко", "slow", count=8, seed=1), timeout=30)
    elapsed = time.perf_counter() - started
    stop.set()
    await beat
    assert jokes and elapsed >= 0.8
    assert len(lags) > 30  # it really ticked all along
    assert max(lags) < 0.05, f"event loop lagged {max(lags) * 1000:.0f} ms"


async def test_load_later_models_load_in_the_worker_after_start() -> None:
    """The default model is ready when start() returns; an optional one loads once the worker is
    idle, in the worker, without needing a request; a broken one is dropped."""
    gate = threading.Event()
    main, later = FakeBackend(), FakeBackend()
    loaded_in: list[str] = []

    def slow_loader() -> FakeBackend:
        loaded_in.append(threading.current_thread().name)
        assert gate.wait(5)
        return later

    def broken_loader() -> FakeBackend:
        raise OSError("no such model")

    registry = MethodRegistry()
    registry.add_backend("main", main)
    registry.add_backend("later", slow_loader, optional=True)
    registry.add_backend("broken", broken_loader, optional=True)
    registry.add_method("gpt", "GPT", "main", {"do_sample": True})
    registry.add_method("diffuseq", "DiffuSeq", "later", {"do_sample": True})
    registry.add_method("other", "Other", "broken", {"do_sample": True})
    preload, load_later = registry.startup_order("gpt")
    assert (preload, load_later) == (["gpt"], ["diffuseq", "other"])
    service = GenerationService(
        registry, batch_window_ms=0, preload=preload, load_later=load_later, idle_before_load_s=1
    )
    await service.start()
    try:
        assert main.warmed and not registry.is_loaded("later")
        joke = (await service.generate(GenerationRequest("Кот", "gpt")))[0]
        assert joke.text.startswith("Кот") and not loaded_in  # a waiting user goes first
        for _ in range(200):  # idle for a second: the worker starts loading on its own
            if loaded_in:
                break
            await asyncio.sleep(0.02)
        waiting = asyncio.create_task(service.generate(GenerationRequest("Суп", "diffuseq")))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # waits for the load in progress
        gate.set()
        assert (await asyncio.wait_for(waiting, 5))[0].text.startswith("Суп")
        for _ in range(100):
            if "other" not in registry.names():
                break
            await asyncio.sleep(0.02)
        assert loaded_in == [WORKER] and later.warmed and later.threads == {WORKER}
        assert registry.names() == ["gpt", "diffuseq"]  # the broken optional one is gone
        assert (await service.generate(GenerationRequest("Кот", "gpt")))[0].text
    finally:
        await service.stop(grace_s=2)


def test_startup_order_puts_required_methods_and_the_default_first() -> None:
    registry = MethodRegistry()
    registry.add_backend("main", FakeBackend())
    registry.add_backend("opt", FakeBackend(), optional=True)
    registry.add_method("gpt", "GPT", "main", {})
    registry.add_method("gpt-sample", "GPT (s)", "main", {})
    registry.add_method("diffuseq", "DiffuSeq", "opt", {})
    assert registry.startup_order("gpt") == (["gpt", "gpt-sample"], ["diffuseq"])
    assert registry.startup_order("diffuseq") == (["gpt", "gpt-sample", "diffuseq"], [])
