"""`python -m generation.server`: every generation method over HTTP, as OpenAI-style completions.

    python -m generation.server                      # GENERATION_SERVER_HOST:_PORT (settings)
    python -m generation.server --host 0.0.0.0 --port 8100

Why a server: the models are the heavy part of the bot. Served apart, they can run on machines
of their own (several replicas; a GPU for the GPT) while any number of bot replicas point
GENERATION_URL at them. The protocol is the OpenAI completions API (generation/openai_api.py),
so a GPT could equally be served by vLLM; this server wraps the same `GenerationService` the bot
runs in-process, so batching, best of N, admission and what a joke records stay the same:

* POST /v1/completions `{"model": "gpt", "prompt": "Молоко", "n": 1, "seed": 7}`: the whole
  ranked draw as `choices`, each with its `x_joke`. Sampling fields (temperature, top_p, ...)
  are accepted and ignored: a method *is* its decoding preset.
* GET /v1/models: the methods; GET /health: 200 while serving, 503 otherwise.
* Busy (the service's admission): 503 with Retry-After; bad input: 400; an unknown method: 404;
  no joke within the time limit (the server's, or the caller's `x_timeout_s` if shorter): 504;
  a model failure: 500. Errors are OpenAI-style `{"error": {...}}` objects.

A client that disconnects cancels its request; the service drops it if it has not started.
SIGTERM/SIGINT: stop listening, let the requests in flight finish (SHUTDOWN_GRACE_S), stop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import signal
import sys
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from generation.openai_api import (
    BadRequest,
    completion_body,
    error_body,
    model_entry,
    parse_completion,
)
from generation.registry import build_registry
from generation.service import GenerationService
from generation.types import (
    GenerationBusy,
    GenerationError,
    GenerationTimeout,
    NothingFound,
    UnknownMethod,
)

log = logging.getLogger(__name__)

SERVICE = web.AppKey("service", GenerationService)
MAX_BODY = 4 * 1024 * 1024  # a lookup's x_exclude list can be long


def make_app(service: GenerationService) -> web.Application:
    """The HTTP application in front of a started (or starting) service."""
    app = web.Application(client_max_size=MAX_BODY)
    app[SERVICE] = service
    app.router.add_post("/v1/completions", complete)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/health", health)
    return app


def fail(
    status: int,
    message: str,
    kind: str,
    code: str | None = None,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An OpenAI-style error answer."""
    body = error_body(message, kind, code, param)
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


async def complete(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    try:
        ask = parse_completion(await request.json())
    except BadRequest as error:
        return fail(400, str(error), "invalid_request_error", param=error.param)
    except ValueError:  # not JSON, or not UTF-8
        return fail(400, "the body is not valid JSON", "invalid_request_error")
    limit = service.timeout_s if ask.timeout_s is None else min(service.timeout_s, ask.timeout_s)
    try:
        jokes = await service.generate(ask.request, timeout=limit)
    except NothingFound:
        return web.json_response(completion_body(ask.request, [], nothing_found=True))
    except UnknownMethod as error:
        return fail(404, str(error), "invalid_request_error", "model_not_found", param="model")
    except GenerationBusy as error:
        wait = max(1, math.ceil(service.backlog_s()))
        headers = {"Retry-After": str(wait)}
        return fail(503, str(error), "server_busy", "busy", headers=headers)
    except GenerationTimeout as error:
        return fail(504, str(error), "timeout", "timeout")
    except GenerationError as error:
        if not service.running:
            return fail(503, str(error), "server_error", "stopping")
        if error.__cause__ is not None:  # the model itself failed: another replica may not
            log.warning("generation failed: %s", error)
            return fail(500, str(error), "server_error", "model_error")
        return fail(500, str(error), "server_error", "generation_failed")
    except ValueError as error:  # nothing left of the prompt once normalised
        return fail(400, str(error), "invalid_request_error", param="prompt")
    return web.json_response(completion_body(ask.request, jokes), dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def list_models(request: web.Request) -> web.Response:
    return web.json_response(models_body(request.app[SERVICE]), dumps=_dumps)


def models_body(service: GenerationService) -> dict[str, Any]:
    """The listed methods, then an experiment's unlisted versions (`version_of` says whose)."""
    registry = service.registry
    names = registry.names()
    experiment = registry.experiment
    versions = list(experiment.methods.values()) if experiment is not None else []
    data = []
    for name in dict.fromkeys([*names, *versions]):
        try:
            method = registry.method(name)
        except UnknownMethod:  # an optional version that failed to load
            continue
        loaded = registry.is_loaded(method.backend_key)
        data.append(
            model_entry(
                method.name,
                method.display_name,
                method.params,
                registry.backend(name).model_id if loaded else None,
                deterministic=method.deterministic,
                candidates=method.candidates,
                lookup=method.lookup,
                version_of=method.version_of,
            )
        )
    arms = None
    if experiment is not None:
        arms = {
            "method": experiment.method,
            "folders": list(experiment.experiment.folders),
            "arms": dict(experiment.methods),
        }
    info = {"best_of_n": service.best_of_n, "selection": service.selection_status}
    return {"object": "list", "data": data, "x_service": {**info, "experiment": arms}}


async def health(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return web.json_response({"running": service.running}, status=200 if service.running else 503)


async def start_server(
    service: GenerationService, host: str, port: int, *, grace_s: float | None = None
) -> web.AppRunner:
    """Listen on host:port (0: any free port, see `runner.addresses`); `runner.cleanup()` stops
    listening and gives the requests in flight `grace_s` to finish."""
    grace = service.stop_grace_s if grace_s is None else grace_s
    runner = web.AppRunner(
        make_app(service), handler_cancellation=True, shutdown_timeout=grace, access_log=None
    )
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def serve(host: str, port: int) -> None:
    """Load the models (settings as for the bot), serve until SIGTERM/SIGINT, then stop."""
    from settings import get_settings  # entry points read settings; library code takes arguments

    settings = get_settings()
    config = settings.generation()
    registry = build_registry(config)
    preload, load_later = registry.startup_order(settings.default_method)
    service = GenerationService.from_config(
        registry, config, preload=preload, load_later=load_later
    )
    await service.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    runner = None
    try:
        runner = await start_server(service, host, port)
        bound = runner.addresses[0]
        log.info("serving %s on http://%s:%d", ", ".join(registry.names()), bound[0], bound[1])
        await stop.wait()
        log.info("stopping: finishing the requests in flight")
    finally:
        if runner is not None:
            await runner.cleanup()
        await service.stop()


def main(argv: Sequence[str] | None = None) -> int:
    from settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="python -m generation.server",
        description="Serve the joke generation methods over an OpenAI-compatible HTTP API.",
    )
    parser.add_argument("--host", default=settings.generation_server_host)
    parser.add_argument("--port", type=int, default=settings.generation_server_port)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(serve(args.host, args.port))
    except GenerationError as error:
        log.error("cannot start: %s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
