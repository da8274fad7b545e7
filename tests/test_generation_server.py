"""The generation server over real HTTP, with fake backends behind the real `GenerationService`:
the OpenAI-shaped answers, the errors (400, 404, 503 + Retry-After, 504, 500), and the client
(`RemoteGenerationService`) turning them back into the service's jokes and errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest

from generation.experiments import Experiment, ExperimentArms
from generation.openai_api import parse_urls
from generation.registry import MethodRegistry
from generation.remote import RemoteGenerationService
from generation.server import start_server
from generation.service import GenerationService
from generation.types import (
    GenerationBusy,
    GenerationError,
    GenerationRequest,
    GenerationTimeout,
    Joke,
    NothingFound,
    UnknownMethod,
)
from tests.generation_fakes import FakeBackend

LIMITS: dict[str, Any] = {"timeout_s": 5, "max_chars": 1000, "stop_grace_s": 1}


class Shelf:
    """A lookup backend: one stored joke per word, none for «Пусто»; records what it skipped."""

    model_id = "shelf-1"

    def __init__(self) -> None:
        self.excluded: list[tuple[str, ...]] = []

    def generate(self, prompts: Sequence[str], params: Any, seeds: Any) -> list[str]:
        raise AssertionError("a lookup backend is never batched")

    def warmup(self) -> None:
        pass

    def lookup(self, request: GenerationRequest) -> list[Joke]:
        self.excluded.append(request.exclude)
        if request.prompt == "Пусто":
            raise NothingFound("nothing")
        return [Joke(f"{request.prompt} из сборника.", request.method, self.model_id, {}, 0.0)]


def registry_with(backend: FakeBackend, shelf: Shelf | None = None) -> MethodRegistry:
    registry = MethodRegistry()
    registry.add_backend("fake", backend)
    registry.add_method("fake", "Фейк", "fake", {"do_sample": True, "temperature": 0.5})
    registry.add_method("beam", "Лучи", "fake", {"do_sample": False}, candidates=3)
    registry.add_backend("shelf", shelf or Shelf())
    registry.add_method("shelf", "Сборник", "shelf", {}, lookup=True)
    return registry


class Served:
    def __init__(self, service: GenerationService, url: str, session: aiohttp.ClientSession):
        self.service, self.url, self.session = service, url, session

    async def post(self, body: Any, raw: bool = False) -> tuple[int, Any, Any]:
        kwargs = {"data": body} if raw else {"json": body}
        async with self.session.post(f"{self.url}/v1/completions", **kwargs) as response:
            return response.status, await response.json(), response.headers


async def until(condition: Any, timeout: float = 5.0) -> None:
    """Wait for `condition()` to hold (a request reaching the model, say)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def serve(service: GenerationService) -> AsyncIterator[str]:
    runner = await start_server(service, "127.0.0.1", 0, grace_s=1)
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
async def served(make_service: Any, backend: FakeBackend) -> AsyncIterator[Served]:
    service = await make_service(registry_with(backend), queue_depth=1)
    async for url in serve(service):
        async with aiohttp.ClientSession() as session:
            yield Served(service, url, session)


@pytest.fixture
async def client(served: Served) -> AsyncIterator[RemoteGenerationService]:
    remote = RemoteGenerationService(
        [served.url], timeout_s=5, max_chars=1000, stop_grace_s=1, start_wait_s=5
    )
    await remote.start()
    yield remote
    await remote.stop()


async def test_models_list_every_method_with_its_preset(served: Served) -> None:
    async with served.session.get(f"{served.url}/v1/models") as response:
        assert response.status == 200
        body = await response.json()
    assert body["object"] == "list"
    assert [entry["id"] for entry in body["data"]] == ["fake", "beam", "shelf"]
    beam = body["data"][1]["x_method"]
    assert beam["display_name"] == "Лучи" and beam["deterministic"] is True
    assert beam["candidates"] == 3 and beam["model_id"] == "fake-1"
    assert body["data"][2]["x_method"]["lookup"] is True
    assert body["x_service"] == {
        "best_of_n": False,
        "selection": "one candidate per joke (no selector)",
        "experiment": None,
    }
    async with served.session.get(f"{served.url}/health") as response:
        assert response.status == 200


async def test_completion_is_the_services_draw_with_its_records(served: Served) -> None:
    status, body, _ = await served.post({"model": "fake", "prompt": "Молоко", "n": 2, "seed": 7})
    assert status == 200 and body["object"] == "text_completion" and body["model"] == "fake"
    direct = await served.service.generate(GenerationRequest("Молоко", "fake", count=2, seed=7))
    assert [c["x_joke"]["text"] for c in body["choices"]] == [joke.text for joke in direct]
    first = body["choices"][0]
    assert first["index"] == 0 and first["finish_reason"] == "stop"
    assert "Молоко" + first["text"] == first["x_joke"]["text"]  # OpenAI's text: the continuation
    records = [c["x_joke"] for c in body["choices"]]
    assert [r["params"] for r in records] == [
        {"do_sample": True, "temperature": 0.5, "seed": 7},
        {"do_sample": True, "temperature": 0.5, "seed": 8},
    ]
    assert [(r["rank"], r["candidates"], r["model"]) for r in records] == [
        (0, 2, "fake-1"),
        (1, 2, "fake-1"),
    ]
    assert records[0]["judge_score"] is None and records[0]["judge_version"] is None


BAD_BODIES: list[tuple[Any, str | None]] = [
    ([], None),
    ({"prompt": "Кот"}, "model"),
    ({"model": "fake"}, "prompt"),
    ({"model": "fake", "prompt": "   "}, "prompt"),
    ({"model": "fake", "prompt": ["Кот", "Пёс"]}, "prompt"),
    ({"model": "fake", "prompt": "Кот" * 400}, "prompt"),
    ({"model": "fake", "prompt": "Кот", "n": 0}, "n"),
    ({"model": "fake", "prompt": "Кот", "n": 1000}, "n"),
    ({"model": "fake", "prompt": "Кот", "n": True}, "n"),
    ({"model": "fake", "prompt": "Кот", "seed": -1}, "seed"),
    ({"model": "fake", "prompt": "Кот", "seed": "7"}, "seed"),
    ({"model": "fake", "prompt": "Кот", "stream": True}, "stream"),
    ({"model": "fake", "prompt": "Кот", "x_exclude": "a"}, "x_exclude"),
    ({"model": "fake", "prompt": "Кот", "x_timeout_s": 0}, "x_timeout_s"),
]


@pytest.mark.parametrize(("body", "param"), BAD_BODIES)
async def test_bad_input_is_a_400_saying_what_is_wrong(
    served: Served, backend: FakeBackend, body: Any, param: str | None
) -> None:
    status, answer, _ = await served.post(body)
    assert status == 400
    assert answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["param"] == param and answer["error"]["message"]
    assert backend.calls == []


async def test_not_json_and_unknown_methods(served: Served) -> None:
    status, answer, _ = await served.post(b"{not json", raw=True)
    assert status == 400 and answer["error"]["type"] == "invalid_request_error"
    status, answer, _ = await served.post({"model": "nope", "prompt": "Кот"})
    assert status == 404 and answer["error"]["code"] == "model_not_found"


async def test_busy_is_a_503_with_retry_after(served: Served, backend: FakeBackend) -> None:
    backend.delay = 0.5
    first = asyncio.create_task(served.post({"model": "fake", "prompt": "Кот"}))
    await until(lambda: backend.calls)  # queue_depth=1: the first request fills it
    status, answer, headers = await served.post({"model": "fake", "prompt": "Пёс"})
    assert status == 503 and answer["error"]["code"] == "busy"
    assert int(headers["Retry-After"]) >= 1
    assert (await first)[0] == 200


async def test_the_callers_time_limit_is_honoured(served: Served, backend: FakeBackend) -> None:
    backend.delay = 0.6
    body = {"model": "fake", "prompt": "Кот", "x_timeout_s": 0.1}
    status, answer, _ = await served.post(body)
    assert status == 504 and answer["error"]["code"] == "timeout"


async def test_a_model_failure_is_a_500(served: Served, backend: FakeBackend) -> None:
    backend.fail_on = "Бум"
    status, answer, _ = await served.post({"model": "fake", "prompt": "Бум"})
    assert status == 500 and answer["error"]["code"] == "model_error"


async def test_the_client_gets_what_the_service_would_give(
    served: Served, client: RemoteGenerationService
) -> None:
    assert [info.name for info in client.methods()] == ["fake", "beam", "shelf"]
    assert (
        client.registry.method("beam").deterministic
        and client.registry.method("beam").lookup is False
    )
    assert client.registry.backend("fake").model_id == "fake-1"
    request = GenerationRequest("Молоко", "fake", count=2, seed=11)
    remote = await client.generate(request)
    direct = await served.service.generate(request)
    fields = ("text", "method", "model", "params", "rank", "candidates", "judge_score", "ended")
    assert [[getattr(j, f) for f in fields] for j in remote] == [
        [getattr(j, f) for f in fields] for j in direct
    ]
    assert all(joke.latency_ms > 0 for joke in remote)


async def test_the_client_maps_the_errors_back(
    served: Served, client: RemoteGenerationService, backend: FakeBackend
) -> None:
    with pytest.raises(UnknownMethod):
        await client.generate(GenerationRequest("Кот", "nope"))
    with pytest.raises(NothingFound):
        await client.generate(GenerationRequest("Пусто", "shelf", exclude=("a", "b")))
    (joke,) = await client.generate(GenerationRequest("Кот", "shelf", exclude=("c",)))
    assert joke.text == "Кот из сборника." and joke.model == "shelf-1"
    backend.fail_on = "Бум"
    with pytest.raises(GenerationError) as failed:
        await client.generate(GenerationRequest("Бум", "fake"))
    assert failed.value.__cause__ is not None  # a model failure, as in-process (bot/arms.py)
    backend.fail_on, backend.delay = None, 0.5
    calls = len(backend.calls)
    first = asyncio.create_task(client.generate(GenerationRequest("Кот", "fake")))
    await until(lambda: len(backend.calls) > calls)
    with pytest.raises(GenerationBusy):
        await client.generate(GenerationRequest("Пёс", "fake"))
    assert (await first)[0].text.startswith("Кот")
    with pytest.raises(GenerationTimeout):
        await client.generate(GenerationRequest("Кот", "fake"), timeout=0.1)


async def test_shelf_sees_the_excluded_ids(make_service: Any) -> None:
    shelf = Shelf()
    service = await make_service(registry_with(FakeBackend(), shelf))
    async for url in serve(service):
        remote = RemoteGenerationService([url], timeout_s=5, max_chars=1000, stop_grace_s=1)
        await remote.start()
        await remote.generate(GenerationRequest("Кот", "shelf", exclude=("x1", "x2")))
        await remote.stop()
    assert shelf.excluded == [("x1", "x2")]


async def test_stop_fails_what_is_in_flight(
    client: RemoteGenerationService, backend: FakeBackend
) -> None:
    backend.delay = 1.0
    waiting = asyncio.create_task(client.generate(GenerationRequest("Кот", "fake")))
    await until(lambda: backend.calls)
    assert client.pending == 1
    await client.stop(grace_s=0)
    with pytest.raises(GenerationError, match="stopped"):
        await waiting
    assert not client.running
    with pytest.raises(GenerationError, match="not running"):
        await client.generate(GenerationRequest("Кот", "fake"))


async def test_start_waits_for_a_server_coming_up(make_service: Any) -> None:
    with socket.socket() as probe:  # a port nobody listens on yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    remote = RemoteGenerationService([f"http://127.0.0.1:{port}"], **LIMITS)
    starting = asyncio.create_task(remote.start())
    await asyncio.sleep(0.5)
    assert not starting.done()
    service = await make_service(registry_with(FakeBackend()))
    runner = await start_server(service, "127.0.0.1", port)
    try:
        await asyncio.wait_for(starting, 5)
        assert remote.running and remote.registry.names() == ["fake", "beam", "shelf"]
        await remote.stop()
    finally:
        await runner.cleanup()


async def test_start_gives_up_when_nobody_answers() -> None:
    remote = RemoteGenerationService(
        ["http://127.0.0.1:9"], timeout_s=1, max_chars=100, stop_grace_s=0, start_wait_s=0.5
    )
    with pytest.raises(GenerationError, match="no generation server answered"):
        await remote.start()
    assert not remote.running


async def test_an_experiment_reaches_the_client(make_service: Any) -> None:
    registry = registry_with(FakeBackend())
    registry.add_backend("fake[B]", FakeBackend())
    registry.add_method("fake[B]", "Фейк", "fake[B]", {"do_sample": True}, version_of="fake")
    arms = {"A": "fake", "B": "fake[B]"}
    registry.experiment = ExperimentArms(Experiment("fake", ("models/a", "models/b")), arms)
    service = await make_service(registry)
    async for url in serve(service):
        remote = RemoteGenerationService([url], timeout_s=5, max_chars=1000, stop_grace_s=1)
        await remote.start()
        (joke,) = await remote.generate(GenerationRequest("Кот", "fake[B]"))
        await remote.stop()
    assert remote.registry.names() == ["fake", "beam", "shelf"]  # the version is unlisted
    assert remote.registry.method("fake[B]").version_of == "fake"
    assert remote.registry.experiment == registry.experiment
    assert joke.method == "fake[B]" and joke.model == "fake-1"
    assert remote.extended and not RemoteGenerationService(["http://x"], **LIMITS).extended


def test_generation_urls_are_checked() -> None:
    assert parse_urls(" http://a:1/v1/ , https://b,http://a:1") == ("http://a:1", "https://b")
    assert parse_urls("") == ()
    with pytest.raises(ValueError, match="http"):
        parse_urls("gen1:8100")
