"""The generation server with the tiny real GPT: what the client gets over HTTP is what the
service gives in-process, and `python -m generation.server` runs as a process of its own."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from generation.config import GenerationConfig
from generation.registry import build_registry
from generation.remote import RemoteGenerationService
from generation.server import start_server
from generation.service import GenerationService
from generation.types import GenerationRequest

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ("text", "method", "model", "params", "rank", "candidates", "judge_score", "ended")


@pytest.fixture
async def gpt_served(
    make_service: Any, tiny_gpt_dir: Path, one_torch_thread: None
) -> AsyncIterator[tuple[GenerationService, RemoteGenerationService]]:
    config = GenerationConfig.defaults(
        gpt_model=str(tiny_gpt_dir),
        enable_diffuseq=False,
        enable_classic=False,
        torch_threads=1,
        gpt_num_beams=2,
        gpt_max_new_tokens=24,
    )
    service = await make_service(build_registry(config), torch_threads=1)
    runner = await start_server(service, "127.0.0.1", 0, grace_s=1)
    host, port = runner.addresses[0][:2]
    remote = RemoteGenerationService.from_config(config, [f"http://{host}:{port}"])
    await remote.start()
    try:
        yield service, remote
    finally:
        await remote.stop()
        await runner.cleanup()


@pytest.mark.parametrize(
    "request_",
    [
        GenerationRequest("Молоко", "gpt-sample", count=2, seed=42),
        GenerationRequest("Кот сказал", "gpt"),
        GenerationRequest("Кот сказал", "gpt", seed=1),  # the next-best beam (🔁)
    ],
)
async def test_a_real_gpt_over_http_writes_what_it_writes_in_process(
    gpt_served: tuple[GenerationService, RemoteGenerationService], request_: GenerationRequest
) -> None:
    service, remote = gpt_served
    assert [info.name for info in remote.methods()] == ["gpt", "gpt-sample"]
    assert remote.registry.method("gpt").deterministic
    assert remote.registry.method("gpt").params == service.registry.method("gpt").params
    over_http = await remote.generate(request_)
    in_process = await service.generate(request_)
    assert [[getattr(j, f) for f in FIELDS] for j in over_http] == [
        [getattr(j, f) for f in FIELDS] for j in in_process
    ]
    assert over_http[0].text.startswith(request_.prompt)
    assert over_http[0].model == service.registry.backend("gpt").model_id


async def read_port(proc: asyncio.subprocess.Process, timeout: float = 120) -> str:
    """The base URL the server logs once it is serving (it was started with --port 0)."""
    assert proc.stdout is not None
    seen = []
    async with asyncio.timeout(timeout):
        while line := (await proc.stdout.readline()).decode():
            seen.append(line)
            found = re.search(r"serving .* on (http://\S+)", line)
            if found:
                return found.group(1)
    raise AssertionError(f"the server did not start: {''.join(seen)[-2000:]}")


async def test_python_m_generation_server_serves_and_stops_on_sigterm(tiny_gpt_dir: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "GPT_MODEL": str(tiny_gpt_dir),
        "ENABLE_DIFFUSEQ": "false",
        "ENABLE_CLASSIC": "false",
        "BEST_OF_N": "false",
        "TORCH_THREADS": "1",
        "GPT_NUM_BEAMS": "2",
        "GPT_MAX_NEW_TOKENS": "24",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "generation.server",
        "--port",
        "0",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        url = await read_port(proc)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/v1/models") as response:
                ids = [entry["id"] for entry in (await response.json())["data"]]
            body = {"model": "gpt-sample", "prompt": "Молоко", "seed": 3}
            async with session.post(f"{url}/v1/completions", json=body) as response:
                assert response.status == 200
                (choice,) = (await response.json())["choices"]
        assert ids == ["gpt", "gpt-sample"]
        assert choice["x_joke"]["text"].startswith("Молоко")
        assert choice["x_joke"]["params"]["seed"] == 3
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
