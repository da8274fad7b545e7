"""`RemoteGenerationService`: the generation service's interface, served by generation servers.

With GENERATION_URL set the bot loads no model: it sends each request to `python -m
generation.server` (or any OpenAI-compatible completions server, vLLM for instance) over HTTP
(generation/openai_api.py), and keeps the interface the bot uses from `GenerationService`:
`start`/`stop`, `generate`, `running`, `pending`, `best_of_n`, `selection_status`, and a
`registry` whose methods are the server's (GET /v1/models at start, retried until a replica
answers), so the method picker, 🔁 variants and experiments work as in-process.

Replicas: GENERATION_URL lists one or more base URLs (or one URL in front of several replicas).
A request goes to the next replica in turn; a replica that fails it (unreachable, 5xx, an answer
that is not a completion) or is busy is passed over for the next, within the request's one time
limit. A replica that failed is asked last for a few seconds. What no replica could serve ends
in the service's own errors, so the bot answers exactly as in-process: GenerationBusy when every
replica was busy, GenerationTimeout when time ran out, else GenerationError (caused by the last
failure, as a model failure is in-process).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from generation.config import GenerationConfig
from generation.experiments import Experiment, ExperimentArms
from generation.openai_api import ReplicaBusy, ReplicaFailure, jokes_of, read_answer
from generation.postprocess import normalize_whitespace
from generation.registry import Method, MethodRegistry, gpt_length_params
from generation.types import (
    GenerationBusy,
    GenerationError,
    GenerationRequest,
    GenerationTimeout,
    Joke,
    MethodInfo,
)

log = logging.getLogger(__name__)

START_WAIT_S = 300.0  # how long `start` keeps asking for the method list before giving up
DOWN_S = 5.0  # a replica that failed is asked last for this long


class RemoteModel:
    """The registry's stand-in for a model served elsewhere: its version, for /stats."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id

    def generate(self, prompts: Sequence[str], params: Any, seeds: Any) -> list[str]:
        raise GenerationError("a remote model is reached through RemoteGenerationService")

    def warmup(self) -> None:
        pass


def _not_loaded() -> RemoteModel:
    raise GenerationError("the generation server has not loaded this model yet")


def registry_of(payload: Any) -> tuple[MethodRegistry, dict[str, Any] | None]:
    """A /v1/models answer as a registry of stand-ins, and its `x_service` (None: a plain
    OpenAI-compatible server, which gets no `x_` fields). A model our server has not loaded yet
    has no version to show (`is_loaded` is False)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not data:
        raise ReplicaFailure("not a model list")
    registry = MethodRegistry()
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ReplicaFailure("a model entry without its id")
        name: str = entry["id"]
        info = entry.get("x_method") if isinstance(entry.get("x_method"), dict) else None
        if info is None:  # a plain server: its model is what it serves
            info = {}
            model_id = entry.get("root") or name
        else:
            model_id = info.get("model_id")
        registry.add_backend(name, RemoteModel(str(model_id)) if model_id else _not_loaded)
        params = info.get("params") if isinstance(info.get("params"), dict) else {}
        registry.add_method(
            name,
            str(info.get("display_name") or name),
            name,
            params,
            deterministic=bool(info.get("deterministic", False)),
            candidates=max(1, int(info.get("candidates") or 1)),
            version_of=info.get("version_of") or None,
            lookup=bool(info.get("lookup", False)),
        )
    service = payload.get("x_service")
    if not isinstance(service, dict):
        return registry, None
    arms = service.get("experiment")
    if isinstance(arms, dict):
        first, second = (str(folder) for folder in arms["folders"])
        experiment = Experiment(str(arms["method"]), (first, second))
        registry.experiment = ExperimentArms(experiment, dict(arms["arms"]))
    return registry, service


def sampling_fields(method: Method, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI sampling fields for a plain server (ours ignores them: a method is its preset):
    the method's preset where the server listed it, else the client's defaults."""
    params = method.params
    fields = dict(defaults)
    if params.get("do_sample", True):
        fields.update({key: params[key] for key in ("temperature", "top_p") if key in params})
    else:
        fields["temperature"] = 0.0  # greedy: the nearest a plain server has to beam search
    if "max_new_tokens" in params:
        fields["max_tokens"] = params["max_new_tokens"]
    return fields


class RemoteGenerationService:
    """`GenerationService`'s interface over HTTP to one or more generation servers."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout_s: float,
        max_chars: int,
        stop_grace_s: float,
        sampling: Mapping[str, Any] | None = None,
        start_wait_s: float = START_WAIT_S,
    ) -> None:
        """`urls`: base URLs (`openai_api.parse_urls`); `sampling`: OpenAI sampling fields for
        methods a plain server lists without their preset."""
        if not urls:
            raise ValueError("at least one generation server URL is needed")
        self.urls = list(urls)
        self.timeout_s = timeout_s
        self.max_chars = max_chars
        self.stop_grace_s = stop_grace_s
        self.sampling = dict(sampling or {})
        self.start_wait_s = start_wait_s
        self.registry = MethodRegistry()
        self.info: dict[str, Any] = {}  # our server's x_service
        self.extended = False  # the servers are ours: they read the x_ fields
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[list[Joke]]] = set()
        self._turn = 0
        self._down_until: dict[str, float] = {}
        self._state = "new"

    @classmethod
    def from_config(
        cls, config: GenerationConfig, urls: Sequence[str], **overrides: Any
    ) -> RemoteGenerationService:
        length = gpt_length_params(config)
        sampling = {
            "temperature": config.gpt_temperature,
            "top_p": config.gpt_top_p,
            "max_tokens": length.get("max_new_tokens", length.get("max_length")),
        }
        kwargs: dict[str, Any] = {
            "timeout_s": config.generation_timeout_s,
            "max_chars": config.max_joke_chars,
            "stop_grace_s": config.shutdown_grace_s,
            "sampling": sampling,
        }
        return cls(urls, **{**kwargs, **overrides})

    # -- what the bot reads ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def pending(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._tasks)

    def methods(self) -> list[MethodInfo]:
        return self.registry.methods()

    @property
    def best_of_n(self) -> bool:
        return bool(self.info.get("best_of_n", False))

    @property
    def selection_status(self) -> str:
        where = f"generation servers: {', '.join(self.urls)}"
        selection = self.info.get("selection")
        return f"{selection} ({where})" if selection else where

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Ask the replicas for their methods until one answers (GenerationError after
        `start_wait_s`)."""
        if self._state != "new":
            raise RuntimeError(f"service cannot start from state {self._state!r}")
        self._state = "starting"
        self._session = aiohttp.ClientSession()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_wait_s
        pause = 0.2
        while True:
            try:
                self.registry, info = await self._fetch_methods()
                self.info, self.extended = info or {}, info is not None
                break
            except ReplicaFailure as error:
                if loop.time() + pause > deadline:
                    await self._close()
                    raise GenerationError(f"no generation server answered: {error}") from error
                log.warning("waiting for a generation server (%s); retry in %.1f s", error, pause)
                await asyncio.sleep(pause)
                pause = min(2 * pause, 5.0)
        self._state = "running"
        log.info("generation servers %s serve %s", self.urls, ", ".join(self.registry.names()))

    async def _fetch_methods(self) -> tuple[MethodRegistry, dict[str, Any] | None]:
        failures = []
        for url in self.urls:
            try:
                assert self._session is not None
                timeout = aiohttp.ClientTimeout(total=10)
                async with self._session.get(f"{url}/v1/models", timeout=timeout) as response:
                    if response.status != 200:
                        raise ReplicaFailure(f"{url}: HTTP {response.status}")
                    payload = await response.json(content_type=None)
                return registry_of(payload)
            except (aiohttp.ClientError, TimeoutError, ValueError, ReplicaFailure) as error:
                failures.append(f"{url}: {type(error).__name__}: {error}")
            except (KeyError, TypeError) as error:
                failures.append(f"{url}: a malformed model list ({error})")
        raise ReplicaFailure("; ".join(failures))

    async def stop(self, grace_s: float | None = None) -> None:
        """Let the requests in flight finish for up to `grace_s`, then fail them with
        GenerationError. Safe to call twice or before `start`."""
        if self._state in ("new", "stopped"):
            self._state = "stopped"
            await self._close()
            return
        self._state = "stopping"
        grace = self.stop_grace_s if grace_s is None else grace_s
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, grace))
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1.0)
        await self._close()
        self._state = "stopped"

    async def _close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- requests --------------------------------------------------------------------------------

    async def generate(
        self, request: GenerationRequest, timeout: float | None = None
    ) -> list[Joke]:
        """As `GenerationService.generate`: jokes best first; UnknownMethod, GenerationBusy,
        GenerationTimeout, NothingFound or GenerationError."""
        if self._state != "running":
            raise GenerationError("the generation service is not running")
        method = self.registry.method(request.method)
        if not normalize_whitespace(request.prompt):
            raise ValueError("empty prompt")
        if request.count < 1:
            raise ValueError("count must be at least 1")
        limit = self.timeout_s if timeout is None else timeout
        task = asyncio.create_task(self._ask(request, method, limit))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the caller gave up
            raise GenerationError("the generation service stopped") from None

    def _body(self, request: GenerationRequest, sent: Mapping[str, Any]) -> dict[str, Any]:
        prompt = normalize_whitespace(request.prompt)
        body = {"model": request.method, "prompt": prompt, "n": request.count, **sent}
        if request.exclude and self.extended:
            body["x_exclude"] = list(request.exclude)
        return body

    async def _ask(self, request: GenerationRequest, method: Method, limit: float) -> list[Joke]:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        deadline = loop.time() + limit
        sent = sampling_fields(method, self.sampling)
        if request.seed is not None:
            sent["seed"] = request.seed
        body = self._body(request, sent)
        busy: list[str] = []
        failure: ReplicaFailure | None = None
        for url in self._order():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                if self.extended:  # our server's admission then judges by the time left
                    body["x_timeout_s"] = remaining
                payload = await self._post(url, body, remaining)
                latency_ms = (time.monotonic() - started) * 1000
                return jokes_of(payload, request, sent, latency_ms, self.max_chars)
            except ReplicaBusy as error:
                busy.append(f"{url}: {error}")
            except ReplicaFailure as error:
                log.warning("generation server %s failed: %s", url, error)
                self._down_until[url] = loop.time() + DOWN_S
                failure = error
        if deadline - loop.time() <= 0:
            raise GenerationTimeout(f"no joke within {limit:g} s")
        if busy:  # a busy replica will serve soon: "busy" says so better than an apology
            raise GenerationBusy("; ".join(busy))
        raise GenerationError(f"no generation server could serve the request: {failure}") from (
            failure
        )

    def _order(self) -> list[str]:
        """This request's replicas: the next in turn first, the ones that failed lately last;
        a single URL (a load balancer in front of replicas) is asked twice."""
        first, self._turn = self._turn, (self._turn + 1) % len(self.urls)
        turn = self.urls[first:] + self.urls[:first]
        now = asyncio.get_running_loop().time()
        order = sorted(turn, key=lambda url: self._down_until.get(url, 0.0) > now)
        return order if len(order) > 1 else order * 2

    async def _post(self, url: str, body: dict[str, Any], remaining: float) -> dict[str, Any]:
        """One replica's answer; its failure as ReplicaFailure, the time running out as
        GenerationTimeout."""
        if self._session is None:
            raise GenerationError("the generation service is not running")
        timeout = aiohttp.ClientTimeout(total=remaining)
        try:
            async with self._session.post(
                f"{url}/v1/completions", json=body, timeout=timeout
            ) as response:
                text = await response.text(errors="replace")
                status, retry_after = response.status, response.headers.get("Retry-After")
        except TimeoutError:
            raise GenerationTimeout(f"{url} gave no answer in time") from None
        except aiohttp.ClientError as error:
            raise ReplicaFailure(f"{type(error).__name__}: {error}") from error
        return read_answer(status, text, retry_after)


__all__ = ["RemoteGenerationService", "RemoteModel", "registry_of", "sampling_fields"]
