"""The generation service: one worker thread owns the models; the event loop only waits.

Why this shape:
* Inference takes a noticeable share of a second of CPU; run on the event loop it would freeze
  every other chat. The models live in one dedicated thread (generation/worker.py; torch ops
  release the GIL), so the bot stays responsive, and requests are micro-batched there.
* Back-pressure is explicit: a request that would not be served within its timeout, judged
  from what recent batches cost (generation/admission.py), or one beyond `queue_depth` requests
  waiting or running, raises `GenerationBusy` at once, so the bot can say "busy, try again"
  instead of queueing forever or apologising after the whole timeout.
  A caller that stops waiting (timeout, cancellation) marks its work abandoned; the worker drops
  it if it has not started yet.

Best of N (generation/selection.py): with the reader's checks and the judge loaded, a request
draws max(count, N) rows, N being its method's `candidates`, all in the same batched call; the
answer is every acceptable candidate, best first (the caller shows the first `count`; the bot keeps
the rest for 🔁). A sampling draw with nothing acceptable is drawn once more with new seeds.

Seeds: a request's rows get seeds seed, seed+1, ... (a random base seed when the request has none,
so every joke records the seed that reproduces it). Deterministic methods (beam search) get
variant indices 0, 1, ... instead (offset by the request's seed, if any).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Collection
from typing import Any

from generation.admission import ADMIT_FRACTION
from generation.config import GenerationConfig
from generation.experiments import own_judges
from generation.jobs import Job, row_seeds, settle
from generation.lookup import look_up
from generation.openmp import prefer_sleeping_openmp_threads
from generation.postprocess import normalize_whitespace
from generation.registry import GPT, Method, MethodRegistry
from generation.selection import Selector
from generation.types import (
    GenerationBusy,
    GenerationError,
    GenerationRequest,
    GenerationTimeout,
    Joke,
    MethodInfo,
)
from generation.worker import STOP, Worker

log = logging.getLogger(__name__)


class GenerationService:
    """Queue + micro-batching + one worker thread in front of a `MethodRegistry`."""

    def __init__(
        self,
        registry: MethodRegistry,
        queue_depth: int | None = None,
        timeout_s: float | None = None,
        batch_window_ms: float | None = None,
        max_batch_size: int | None = None,
        *,
        torch_threads: int | None = None,
        max_chars: int | None = None,
        stop_grace_s: float | None = None,
        preload: Collection[str] | None = None,
        load_later: Collection[str] = (),
        idle_before_load_s: float = 0.5,
        selector: Selector | None = None,
        admit_by_backlog: bool = True,
    ) -> None:
        """`preload`: methods whose models `start()` loads and warms up (default: all); others
        load on first use, in the worker. `load_later`: methods whose models the worker loads and
        warms up after `start()` returned, once it has had no request for `idle_before_load_s`
        (so a user already waiting is served first; a request for one of them before that loads
        it on the spot). `torch_threads`: set in the worker before loading. `selector`: best of N
        (loaded in the worker at start; without one, or if it cannot load, one row per joke).
        `admit_by_backlog`: False for batch jobs (the CLI), whose whole list is the work.
        Numbers left None take the project's defaults (`settings.Settings`)."""
        defaults = GenerationConfig.defaults()
        queue_depth = defaults.queue_depth if queue_depth is None else queue_depth
        timeout_s = defaults.generation_timeout_s if timeout_s is None else timeout_s
        if batch_window_ms is None:
            batch_window_ms = defaults.batch_window_ms
        max_batch_size = defaults.max_batch_size if max_batch_size is None else max_batch_size
        max_chars = defaults.max_joke_chars if max_chars is None else max_chars
        if stop_grace_s is None:
            stop_grace_s = defaults.shutdown_grace_s
        if queue_depth < 1 or max_batch_size < 1:
            raise ValueError("queue_depth and max_batch_size must be at least 1")
        self.registry = registry
        self.queue_depth = queue_depth
        self.timeout_s = timeout_s
        self.stop_grace_s = stop_grace_s
        self.selector = selector
        self.admit_by_backlog = admit_by_backlog
        preload = None if preload is None else list(preload)
        self._worker = Worker(
            registry,
            selector=selector,
            max_batch_size=max_batch_size,
            batch_window_s=max(0.0, batch_window_ms) / 1000,
            max_chars=max_chars,
            torch_threads=torch_threads,
            preload=preload,
            load_later=[name for name in load_later if name not in (preload or ())],
            idle_before_load_s=idle_before_load_s,
        )
        self._jobs: set[Job] = set()  # accepted and not yet settled; touched on the loop only
        self._thread: threading.Thread | None = None
        self._state = "new"

    @classmethod
    def from_config(
        cls, registry: MethodRegistry, config: GenerationConfig, **overrides: Any
    ) -> GenerationService:
        """Build from the typed configuration; keyword overrides win."""
        kwargs: dict[str, Any] = {
            "queue_depth": config.queue_depth,
            "timeout_s": config.generation_timeout_s,
            "batch_window_ms": config.batch_window_ms,
            "max_batch_size": config.max_batch_size,
            "torch_threads": config.torch_threads or None,
            "max_chars": config.max_joke_chars,
            "stop_grace_s": config.shutdown_grace_s,
        }
        if config.best_of_n:
            kwargs["selector"] = Selector(
                config.checks_folder,
                config.judge_model,
                judge_weight=config.judge_weight,
                gpt=lambda: registry.backend(GPT),
                own_judges=own_judges(registry),
            )
        return cls(registry, **{**kwargs, **overrides})

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def pending(self) -> int:
        """Requests accepted and not finished (waiting or running)."""
        return len(self._jobs)

    def methods(self) -> list[MethodInfo]:
        return self.registry.methods()

    @property
    def selection_status(self) -> str:
        """How jokes are picked now, for operators (/reload)."""
        return self.selector.status if self.selector else "one candidate per joke (no selector)"

    @property
    def best_of_n(self) -> bool:
        return self.selector is not None and self.selector.active

    async def start(self) -> None:
        """Start the worker; return once every model is loaded and warmed up.

        Raises GenerationError if a required model cannot be loaded (the worker then exits).
        """
        if self._state != "new":
            raise RuntimeError(f"service cannot start from state {self._state!r}")
        self._state = "starting"
        prefer_sleeping_openmp_threads()
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(
            target=self._worker.run, args=(loop, ready), name="generation-worker", daemon=True
        )
        self._thread.start()
        try:
            await ready
        except BaseException:
            self._state = "stopped"
            raise
        self._state = "running"

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop taking requests, let queued and running ones finish for up to `grace_s`, then
        fail whatever is left with GenerationError. Safe to call twice or before `start`."""
        if self._state in ("new", "stopped"):
            self._state = "stopped"
            return
        self._state = "stopping"
        grace = self.stop_grace_s if grace_s is None else grace_s
        self._worker.queue.put(STOP)
        thread = self._thread
        if thread is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, thread.join, max(0.0, grace))
            if thread.is_alive():
                self._worker.abort.set()
                log.warning("generation worker still busy after %.1f s; abandoning its work", grace)
        for job in list(self._jobs):
            settle(job.future, error=GenerationError("the generation service stopped"))
        self._state = "stopped"

    # -- requests --------------------------------------------------------------------------------

    async def generate(
        self, request: GenerationRequest, timeout: float | None = None
    ) -> list[Joke]:
        """Jokes for `request`, best first: at least one; with best of N, every acceptable
        candidate of the draw (the first `request.count` are the answer), else up to `count`.

        Raises UnknownMethod, GenerationBusy (queue full), GenerationTimeout, GenerationError
        (NothingFound: a lookup method has no joke for the prompt).
        """
        if self._state != "running":
            raise GenerationError("the generation service is not running")
        method = self.registry.method(request.method)
        prompt = normalize_whitespace(request.prompt)
        if not prompt:
            raise ValueError("empty prompt")
        if request.count < 1:
            raise ValueError("count must be at least 1")
        if method.lookup:  # stored jokes: no queue, no model (generation/lookup.py)
            limit = self.timeout_s if timeout is None else timeout
            return await look_up(self.registry, request, method, limit)
        if len(self._jobs) >= self.queue_depth:
            raise GenerationBusy(f"{len(self._jobs)} generations pending")
        limit = self.timeout_s if timeout is None else timeout
        # With nothing queued a request always goes in, however slow the last ones were: the
        # estimate only changes when work runs, and it must not lock everyone out for good.
        rows = self.rows_for(request, method)
        queued = self._jobs and self.admit_by_backlog
        backlog = self.backlog_s(method.name, rows) if queued else 0.0
        if backlog > ADMIT_FRACTION * limit:
            raise GenerationBusy(f"about {backlog:.1f} s of work ahead; the limit is {limit:g} s")
        loop = asyncio.get_running_loop()
        job = Job(
            request=request,
            method=method,
            prompt=prompt,
            seeds=self.row_seeds(request, method, rows),
            future=loop.create_future(),
            loop=loop,
        )
        self._jobs.add(job)
        job.future.add_done_callback(lambda _: self._jobs.discard(job))
        self._worker.queue.put(job)
        try:
            return await asyncio.wait_for(job.future, limit)
        except TimeoutError:
            job.abandoned = True
            raise GenerationTimeout(f"no joke within {limit:g} s") from None
        except asyncio.CancelledError:
            job.abandoned = True
            raise

    def backlog_s(self, method: str | None = None, rows: int = 0) -> float:
        """Expected seconds to serve the accepted requests, plus `rows` more of `method`
        (generation/admission.py; 0 until the first batches have been timed)."""
        work = [(job.method.name, job.rows) for job in self._jobs]
        if method is not None and rows:
            work.append((method, rows))
        return self._worker.backlog.backlog_s(work)

    def rows_for(self, request: GenerationRequest, method: Method) -> int:
        """Rows one request draws: its count, or its method's N when best of N is on."""
        return max(request.count, method.candidates) if self.best_of_n else request.count

    row_seeds = staticmethod(row_seeds)


__all__ = ["GenerationService", "prefer_sleeping_openmp_threads"]
