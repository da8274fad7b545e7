"""The real bot with GENERATION_URL: generation servers instead of models in the bot's process.

Two replicas of `generation.server` (fake models behind the real `GenerationService`): one
killed while it writes a joke, or answering 500, and the other answers; a server that answers
garbage or too late gets the user the usual apology with 🔁 and nothing is stored; a minimal
OpenAI-shaped server (plain `choices`, as vLLM answers) works as a backend as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.app import create_app
from generation.server import start_server
from generation.service import GenerationService
from tests.bot_harness import RunningBot
from tests.fault_kit import (
    FAST_BACKOFF,
    FakeModel,
    ask,
    errors,
    fake_registry,
    fake_settings,
    polling,
)
from tests.local_api import LocalBotApi

ROOT = Path(__file__).resolve().parent.parent
USER = 1401
APOLOGY = "Извини, анекдот не сложился"


@dataclass
class Replica:
    url: str
    runner: web.AppRunner
    model: FakeModel


@contextlib.asynccontextmanager
async def replica(model_id: str, delay: float = 0.0) -> AsyncIterator[Replica]:
    """`python -m generation.server` in this process: the fake model named `model_id`; its
    `runner.cleanup()` kills it (what is in flight is cut off: no grace)."""
    model = FakeModel(delay=delay)
    model.model_id = model_id  # type: ignore[misc]
    service = GenerationService(fake_registry(model), batch_window_ms=0)
    await service.start()
    runner = await start_server(service, "127.0.0.1", 0, grace_s=0)
    host, port = runner.addresses[0][:2]
    try:
        yield Replica(f"http://{host}:{port}", runner, model)
    finally:
        await runner.cleanup()
        await service.stop(grace_s=0)


PLAIN_MODELS = {"object": "list", "data": [{"id": "gpt", "object": "model", "owned_by": "vllm"}]}


@dataclass
class OpenAIShaped:
    """A minimal OpenAI-compatible server (no `x_` fields), or one misbehaving as `mode` says:
    plain, 500, garbage, no-choices, bad-joke, unusable, slow."""

    mode: str = "plain"
    bodies: list[dict[str, Any]] = field(default_factory=list)

    async def models(self, request: web.Request) -> web.Response:
        if self.mode == "500":
            return web.Response(status=500, text="Internal Server Error")
        return web.json_response(PLAIN_MODELS)

    async def complete(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        if self.mode == "500":
            return web.Response(status=500, text="Internal Server Error")
        if self.mode == "garbage":
            return web.Response(text="<html>502 Bad Gateway</html>")
        if self.mode == "slow":
            await asyncio.sleep(1.5)
        choices: Any = [{"index": 0, "text": " — сказал кот. И ушёл.", "finish_reason": "stop"}]
        if self.mode == "no-choices":
            choices = None
        if self.mode == "bad-joke":
            choices = [{"index": 0, "text": "x", "x_joke": {"text": 5}}]
        if self.mode == "unusable":
            choices = [{"index": 0, "text": "<|endoftext|>", "finish_reason": "stop"}]
        body = {"id": "cmpl-1", "object": "text_completion", "model": "tiny-vllm"}
        return web.Response(text=json.dumps({**body, "choices": choices}))


@contextlib.asynccontextmanager
async def openai_shaped(server: OpenAIShaped) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/v1/models", server.models)
    app.router.add_post("/v1/completions", server.complete)
    runner = web.AppRunner(app, shutdown_timeout=0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/v1"  # a /v1 suffix is fine too
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def remote_bot(
    api: LocalBotApi, db: Path, urls: list[str], **overrides: Any
) -> AsyncIterator[RunningBot]:
    """The real bot (`create_app`) with GENERATION_URL listing `urls`: it loads no model."""
    settings = fake_settings(api, db, generation_url=",".join(urls), **overrides)
    app = await create_app(settings, backoff=FAST_BACKOFF)
    async with polling(api, db, app) as bot:
        yield bot


def stored(env: RunningBot) -> list[tuple[Any, ...]]:
    return env.rows("SELECT prompt, method, model, candidate_rank, candidates FROM jokes")


class Announcing(FakeModel):
    """Says "writing" on its stdout when it starts a batch (it runs in a replica process)."""

    def generate(self, prompts: Any, params: Any, seeds: Any) -> list[str]:
        print("writing", flush=True)
        return super().generate(prompts, params, seeds)


async def serve_replica(model_id: str, delay: float) -> None:
    """A replica process: the server with `Announcing` as its model; prints its URL."""
    model = Announcing(delay=delay)
    model.model_id = model_id  # type: ignore[misc]
    service = GenerationService(fake_registry(model), batch_window_ms=0)
    await service.start()
    runner = await start_server(service, "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    print(f"http://{host}:{port}", flush=True)
    await asyncio.Event().wait()


REPLICA = "import asyncio, sys, tests.test_generation_server_bot as t; " + (
    "asyncio.run(t.serve_replica(sys.argv[1], float(sys.argv[2])))"
)


@contextlib.asynccontextmanager
async def replica_process(model_id: str, delay: float) -> AsyncIterator[Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        REPLICA,
        model_id,
        str(delay),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def line_of(proc: Any, timeout: float = 30) -> str:
    return (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode().strip()


async def test_a_replica_killed_mid_joke_is_replaced_by_the_other(
    api: LocalBotApi, tmp_path: Path
) -> None:
    async with (
        replica_process("model-A", delay=5.0) as doomed,
        replica("model-B") as second,
    ):
        first_url = await line_of(doomed)
        async with remote_bot(api, tmp_path / "j.db", [first_url, second.url]) as env:
            assert env.app.registry.names() == ["gpt", "gpt-sample"]  # the servers' methods
            api.send_text(USER, "Молоко")
            assert await line_of(doomed, timeout=10) == "writing"
            doomed.kill()  # SIGKILL mid-joke
            joke = await api.wait_for_bot_message(USER, timeout=10)
            assert (joke.text or "").startswith("Молоко — сказал кот.")
            assert "🔁 Ещё" in joke.button_texts
            reply = await ask(env, "Кот", USER)  # A is gone for good: B again
            assert (reply.text or "").startswith("Кот")
            assert stored(env) == [
                ("Молоко", "gpt", "model-B", 0, 1),
                ("Кот", "gpt", "model-B", 0, 1),
            ]
            assert second.model.calls == 2 and errors(env) == 0


async def test_a_replica_answering_500_is_passed_over(api: LocalBotApi, tmp_path: Path) -> None:
    broken = OpenAIShaped("500")
    async with (
        openai_shaped(broken) as first,
        replica("model-B") as second,
        remote_bot(api, tmp_path / "j.db", [first, second.url]) as env,
    ):
        assert env.app.registry.names() == ["gpt", "gpt-sample"]  # the list came from B
        for word in ("Молоко", "Кот", "Пёс"):
            reply = await ask(env, word, USER)
            assert (reply.text or "").startswith(word)
        assert [row[2] for row in stored(env)] == ["model-B"] * 3
        assert 1 <= len(broken.bodies) < 3  # a replica that failed is asked last for a while


async def test_the_method_picker_lists_the_servers_methods(
    api: LocalBotApi, tmp_path: Path
) -> None:
    async with (
        replica("model-A") as only,
        remote_bot(api, tmp_path / "j.db", [only.url]) as env,
    ):
        reply = await ask(env, "/method", USER)
        assert reply.button_texts == ["✅ Фейк", "Фейк (sampling)"]


BROKEN = ["500", "garbage", "no-choices", "bad-joke", "unusable"]


async def test_garbage_answers_get_an_apology_and_nothing_is_stored(
    api: LocalBotApi, tmp_path: Path
) -> None:
    server = OpenAIShaped()
    async with (
        openai_shaped(server) as url,
        remote_bot(api, tmp_path / "j.db", [url]) as env,
    ):
        for mode in BROKEN:
            server.mode = mode
            apology = await ask(env, "Молоко", USER)
            assert APOLOGY in (apology.text or ""), mode
            assert apology.button_texts == ["🔁 Ещё раз"]
            assert env.count("jokes") == 0
        server.mode = "plain"  # the server recovers: 🔁 repeats the word
        api.press_button(USER, apology.message_id, text="🔁 Ещё раз")
        joke = await api.wait_for_bot_message(USER, after=apology.message_id)
        assert joke.text == "Молоко — сказал кот. И ушёл."
        assert errors(env) == 0


async def test_a_server_too_slow_gets_an_apology(api: LocalBotApi, tmp_path: Path) -> None:
    server = OpenAIShaped("slow")
    async with (
        openai_shaped(server) as url,
        remote_bot(api, tmp_path / "j.db", [url], generation_timeout_s=0.5) as env,
    ):
        apology = await ask(env, "Молоко", USER)
        assert APOLOGY in (apology.text or "") and apology.button_texts == ["🔁 Ещё раз"]
        assert env.count("jokes") == 0 and len(server.bodies) == 1


async def test_a_plain_openai_server_is_a_backend(api: LocalBotApi, tmp_path: Path) -> None:
    server = OpenAIShaped()
    async with (
        openai_shaped(server) as url,
        remote_bot(api, tmp_path / "j.db", [url]) as env,
    ):
        joke = await ask(env, "Молоко", USER)
        assert joke.text == "Молоко — сказал кот. И ушёл."
        (sent,) = server.bodies
        assert sent == {
            "model": "gpt",
            "prompt": "Молоко",
            "n": 1,
            "temperature": 0.6,
            "top_p": 0.9,
            "max_tokens": 24,
        }  # no x_ fields: the server did not show it reads them
        rows = env.rows(
            "SELECT method, model, params, candidate_rank, candidates, judge_score, judge_version"
            " FROM jokes"
        )
        assert len(rows) == 1
        method, model, params, rank, candidates, score, version = rows[0]
        assert (method, model, rank, candidates, score, version) == (
            "gpt",
            "tiny-vllm",
            0,
            1,
            None,
            None,
        )
        assert json.loads(params) == {"temperature": 0.6, "top_p": 0.9, "max_tokens": 24}
