"""The generation service: one worker thread owns the models; the event loop only waits.

Why this shape:
* Inference takes 0.2–2 s of CPU; run on the event loop it would freeze every other chat. The
  models live in one dedicated thread (torch ops release the GIL), so the bot stays responsive.
* One thread, not a pool: the models are not thread-safe and two generations at once on a
  2-core machine are slower than one after the other. Batching is the real throughput lever:
  requests for the same method that arrive within `batch_window_ms` (up to `max_batch_size`
  rows) run as one backend call, which costs little more than a single row.
* Back-pressure is explicit: a request that would not be served within its timeout, judged
  from what recent batches cost (generation/admission.py), or one beyond `queue_depth` requests
  waiting or running, raises `GenerationBusy` at once, so the bot can say "busy, try again"
  instead of queueing forever or apologising after the whole timeout.
  A caller that stops waiting (timeout, cancellation) marks its work abandoned; the worker drops
  it if it has not started yet.
* One bad request cannot fail its batch-mates: when a batch fails, its requests are retried one
  by one and only the failing one gets `GenerationError`.

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
import contextlib
import logging
import os
import queue
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from generation.admission import ADMIT_FRACTION, BacklogEstimator
from generation.postprocess import (
    DEFAULT_MAX_CHARS,
    clean_joke,
    model_wrote_sentence_end,
    normalize_whitespace,
)
from generation.registry import GPT, Method, MethodRegistry
from generation.selection import Candidate, Ranked, Selector, distinct
from generation.types import (
    GenerationBusy,
    GenerationError,
    GenerationRequest,
    GenerationTimeout,
    Joke,
    MethodInfo,
)

log = logging.getLogger(__name__)

_STOP = object()


def prefer_sleeping_openmp_threads() -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE unless torch (and its OpenMP runtime) is already loaded or
    the variable is set; True if it was set here.

    Why: by default OpenMP worker threads spin between parallel regions. A decoding step is many
    small regions, and on a small machine the bot's event loop, SQLite and the OS need a core now
    and then; a spinning or descheduled worker then stalls every region. Measured on the 2-core
    machine (docs/BENCHMARKS.md): a batch-32 int8 decode took 0.9-1.4 s with 2 threads by default,
    0.30 s with PASSIVE, 0.26 s with 1 thread; with one busy process beside it, 5-12 s by
    default and 0.30-0.35 s with PASSIVE. The runtime reads the variable once, when torch is
    imported, which in the bot happens in the worker thread after `start()`.
    """
    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


@dataclass(eq=False)
class _Job:
    request: GenerationRequest
    method: Method
    prompt: str
    seeds: list[int]
    future: asyncio.Future[list[Joke]]
    loop: asyncio.AbstractEventLoop
    accepted_at: float = field(default_factory=time.monotonic)
    redrawn: bool = False  # its first draw had nothing acceptable
    fallback: list[Ranked] = field(default_factory=list)  # the first draw's clean copy, if any
    # the decoding preset of this draw: the method's, widened for a beam search drawn again
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.params = self.params or self.method.params
    # Written by the event loop, read by the worker: plain attribute writes are atomic in CPython.
    abandoned: bool = False

    @property
    def rows(self) -> int:
        return len(self.seeds)


def _settle(
    future: asyncio.Future[Any], result: Any = None, error: BaseException | None = None
) -> None:
    """Runs on the event loop: complete a future unless its waiter already gave up."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class GenerationService:
    """Queue + micro-batching + one worker thread in front of a `MethodRegistry`."""

    def __init__(
        self,
        registry: MethodRegistry,
        queue_depth: int = 256,
        timeout_s: float = 30.0,
        batch_window_ms: float = 5.0,
        max_batch_size: int = 32,
        *,
        torch_threads: int | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
        stop_grace_s: float = 10.0,
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
        `admit_by_backlog`: False for batch jobs (the CLI), whose whole list is the work."""
        if queue_depth < 1 or max_batch_size < 1:
            raise ValueError("queue_depth and max_batch_size must be at least 1")
        self.registry = registry
        self.queue_depth = queue_depth
        self.timeout_s = timeout_s
        self.batch_window_s = max(0.0, batch_window_ms) / 1000
        self.max_batch_size = max_batch_size
        self.torch_threads = torch_threads
        self.max_chars = max_chars
        self.stop_grace_s = stop_grace_s
        self.preload = None if preload is None else list(preload)
        self.load_later = [name for name in load_later if name not in (self.preload or ())]
        self.idle_before_load_s = idle_before_load_s
        self.selector = selector
        self.admit_by_backlog = admit_by_backlog
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._jobs: set[_Job] = set()  # accepted and not yet settled; touched on the loop only
        self._backlog = BacklogEstimator(max_batch_size)
        self._thread: threading.Thread | None = None
        self._abort = threading.Event()
        self._state = "new"

    @classmethod
    def from_config(
        cls, registry: MethodRegistry, config: object, **overrides: Any
    ) -> GenerationService:
        """Build from a settings-like object (`settings.Settings` field names); overrides win."""
        names = {
            "queue_depth": "queue_depth",
            "timeout_s": "generation_timeout_s",
            "batch_window_ms": "batch_window_ms",
            "max_batch_size": "max_batch_size",
            "torch_threads": "torch_threads",
            "max_chars": "max_joke_chars",
        }
        kwargs = {a: getattr(config, attr) for a, attr in names.items() if hasattr(config, attr)}
        if getattr(config, "best_of_n", False):
            kwargs["selector"] = Selector(
                getattr(config, "checks_folder", None),
                getattr(config, "judge_model", None),
                judge_weight=float(getattr(config, "judge_weight", 0.5)),
                gpt=lambda: registry.backend(GPT),
            )
        kwargs.update(overrides)
        return cls(registry, **kwargs)

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
            target=self._run, args=(loop, ready), name="generation-worker", daemon=True
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
        self._queue.put(_STOP)
        thread = self._thread
        if thread is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, thread.join, max(0.0, grace))
            if thread.is_alive():
                self._abort.set()
                log.warning("generation worker still busy after %.1f s; abandoning its work", grace)
        for job in list(self._jobs):
            _settle(job.future, error=GenerationError("the generation service stopped"))
        self._state = "stopped"

    # -- requests --------------------------------------------------------------------------------

    async def generate(
        self, request: GenerationRequest, timeout: float | None = None
    ) -> list[Joke]:
        """Jokes for `request`, best first: at least one; with best of N, every acceptable
        candidate of the draw (the first `request.count` are the answer), else up to `count`.

        Raises UnknownMethod, GenerationBusy (queue full), GenerationTimeout, GenerationError.
        """
        if self._state != "running":
            raise GenerationError("the generation service is not running")
        method = self.registry.method(request.method)
        prompt = normalize_whitespace(request.prompt)
        if not prompt:
            raise ValueError("empty prompt")
        if request.count < 1:
            raise ValueError("count must be at least 1")
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
        job = _Job(
            request=request,
            method=method,
            prompt=prompt,
            seeds=self.row_seeds(request, method, rows),
            future=loop.create_future(),
            loop=loop,
        )
        self._jobs.add(job)
        job.future.add_done_callback(lambda _: self._jobs.discard(job))
        self._queue.put(job)
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
        return self._backlog.backlog_s(work)

    def rows_for(self, request: GenerationRequest, method: Method) -> int:
        """Rows one request draws: its count, or its method's N when best of N is on."""
        return max(request.count, method.candidates) if self.best_of_n else request.count

    @staticmethod
    def row_seeds(request: GenerationRequest, method: Method, rows: int | None = None) -> list[int]:
        if method.deterministic:
            base = request.seed or 0
        else:
            base = request.seed if request.seed is not None else random.randrange(2**31)
        return [base + index for index in range(request.count if rows is None else rows)]

    # -- worker thread ---------------------------------------------------------------------------

    def _run(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            self._prepare()
        except BaseException as error:
            log.exception("generation worker failed to start")
            failure = error if isinstance(error, GenerationError) else GenerationError(str(error))
            self._call(loop, _settle, ready, None, failure)
            return
        self._call(loop, _settle, ready, None, None)
        try:
            self._serve()
        except BaseException:  # pragma: no cover - a bug in the loop itself; keep it visible
            log.exception("generation worker crashed")
            raise

    def _prepare(self) -> None:
        if self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)
        started = time.perf_counter()
        backends = self.registry.load_all(self.preload)
        if self.selector is not None:
            self.selector.load()
        for key, backend in backends.items():
            warm = time.perf_counter()
            backend.warmup()
            log.info(
                "warmed up %s (%s) in %.2f s", key, backend.model_id, time.perf_counter() - warm
            )
        log.info(
            "generation ready in %.2f s: %s",
            time.perf_counter() - started,
            [m.name for m in self.registry.methods()],
        )

    def _load_later(self) -> None:
        """Load and warm up the next `load_later` method's model, if any is left (worker)."""
        name = self.load_later.pop(0)
        started = time.perf_counter()
        try:
            if self.registry.is_loaded(self.registry.method(name).backend_key):
                return  # shared with a method loaded before
            backend = self.registry.backend(name)
            backend.warmup()
        except Exception:  # an optional model that failed: the registry has dropped its methods
            log.warning("could not load %s in the background", name, exc_info=True)
            return
        log.info("loaded %s in the background in %.2f s", name, time.perf_counter() - started)

    def _serve(self) -> None:
        pending: deque[_Job] = deque()
        stopping = False
        while True:
            if self._abort.is_set():
                return
            if not pending:
                if stopping:
                    return
                if self.load_later:
                    try:
                        item = self._queue.get(timeout=self.idle_before_load_s)
                    except queue.Empty:
                        self._load_later()
                        continue
                else:
                    item = self._queue.get()
                if item is _STOP:
                    stopping = True
                    continue
                pending.append(item)
            stopping = self._gather(pending, stopping)
            batch = self._select(pending)
            try:
                pending.extendleft(reversed(self._execute(batch)))
            except Exception as error:  # a bug outside the model call: fail the batch, go on
                log.exception("generation batch crashed")
                for job in batch:
                    self._fail(job, error)

    def _gather(self, pending: deque[_Job], stopping: bool) -> bool:
        """Pull queued jobs into `pending`; wait out the first job's batching window."""
        first = pending[0]
        deadline = first.accepted_at + self.batch_window_s
        while True:
            same = sum(j.rows for j in pending if j.method.name == first.method.name)
            if same >= self.max_batch_size:
                return stopping
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0 and not stopping:
                    item = self._queue.get(timeout=remaining)
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                return stopping
            if item is _STOP:
                stopping = True
            else:
                pending.append(item)

    def _select(self, pending: deque[_Job]) -> list[_Job]:
        """Take the oldest job and same-method jobs after it that fit into one batch."""
        first = pending[0]
        batch: list[_Job] = []
        rows = 0
        keep: deque[_Job] = deque()
        for job in pending:
            if job.abandoned:
                continue  # its waiter is gone; nothing to report
            fits = not batch or rows + job.rows <= self.max_batch_size
            if job.method.name == first.method.name and job.params == first.params and fits:
                batch.append(job)
                rows += job.rows
            else:
                keep.append(job)
        pending.clear()
        pending.extend(keep)
        return batch

    def _execute(self, batch: list[_Job]) -> list[_Job]:
        """Run one batch; returns the jobs to draw again (nothing acceptable in their draw)."""
        if not batch:
            return []
        method = batch[0].method
        prompts = [job.prompt for job in batch for _ in job.seeds]
        seeds = [seed for job in batch for seed in job.seeds]
        # a call that first loads the model says nothing about what the next batches will cost
        typical = self.registry.is_loaded(method.backend_key)
        started = time.perf_counter()
        try:
            raws = self._backend_call(method, prompts, seeds, batch[0].params)
        except Exception as error:
            if len(batch) == 1:
                log.exception("generation failed: %s %r", method.name, batch[0].prompt)
                self._fail(batch[0], error)
                return []
            log.warning("batch of %d failed (%s); retrying one by one", len(batch), error)
            again: list[_Job] = []
            for job in batch:
                if not job.abandoned and not self._abort.is_set():
                    again += self._execute([job])
            return again
        took = time.perf_counter() - started
        if typical:
            self._backlog.record(method.name, len(prompts), took)
        log.debug("%s: %d rows in %.3f s", method.name, len(prompts), took)
        offset = 0
        again: list[_Job] = []
        for job in batch:
            if not self._finish(job, raws[offset : offset + job.rows]):
                again.append(job)
            offset += job.rows
        return again

    def _backend_call(
        self, method: Method, prompts: list[str], seeds: list[int], params: Mapping[str, Any]
    ) -> list[str]:
        backend = self.registry.backend(method.name)
        raws = backend.generate(prompts, params, seeds)
        if len(raws) != len(prompts):
            raise GenerationError(f"backend returned {len(raws)} texts for {len(prompts)} prompts")
        return list(raws)

    def _finish(self, job: _Job, raws: list[str]) -> bool:
        """Settle `job` from its rows' texts; False if it should be drawn again instead."""
        backend = self.registry.backend(job.method.name)
        key = "variant" if job.method.deterministic else "seed"
        candidates = []
        for raw, seed in zip(raws, job.seeds, strict=True):
            text = clean_joke(raw, job.prompt, self.max_chars)
            if text:
                candidates.append(Candidate(text, seed, model_wrote_sentence_end(raw, job.prompt)))
            else:
                what = f"{job.method.name}, {key}={seed}"
                log.info("unusable output for %r (%s): %r", job.prompt, what, raw[:200])
        best_of_n = self.best_of_n
        ranked = self.selector.rank(job.prompt, candidates) if best_of_n and self.selector else []
        if not best_of_n:
            ranked = [Ranked(candidate) for candidate in distinct(candidates)]
        elif not job.redrawn and all(item.copied for item in ranked):
            # nothing fit to show, at best a clean copy of a training joke: draw once more first
            log.info("nothing acceptable for %r (%s); drawing again", job.prompt, job.method.name)
            job.fallback = ranked
            self._prepare_redraw(job)
            return False
        elif not ranked:
            ranked = job.fallback  # the first draw's clean copy, if it had one
        version = self.selector.judge_version if best_of_n and self.selector else None
        latency_ms = (time.monotonic() - job.accepted_at) * 1000
        jokes = [
            Joke(
                text=item.candidate.text,
                method=job.method.name,
                model=backend.model_id,
                params={**job.params, key: item.candidate.seed},
                latency_ms=latency_ms,
                rank=rank,
                candidates=len(job.seeds),
                judge_score=item.liked,
                judge_version=version if item.liked is not None else None,
                ended=item.candidate.ended,
            )
            for rank, item in enumerate(ranked)
        ]
        if jokes:
            self._call(job.loop, _settle, job.future, jokes, None)
        else:
            self._fail(job, GenerationError("the model produced no usable joke"))
        return True

    @staticmethod
    def _prepare_redraw(job: _Job) -> None:
        """New seeds; a beam search, which would find the same beams again, searches twice as
        wide and returns the beams ranked after the ones already seen."""
        job.redrawn = True
        job.seeds = [seed + len(job.seeds) for seed in job.seeds]
        beams = int(job.params.get("num_beams", 1))
        if job.method.deterministic and beams > 1:
            job.params = {**job.params, "num_beams": 2 * beams}

    def _fail(self, job: _Job, error: BaseException) -> None:
        if not isinstance(error, GenerationError):
            wrapped = GenerationError(f"generation failed: {type(error).__name__}: {error}")
            wrapped.__cause__ = error
            error = wrapped
        self._call(job.loop, _settle, job.future, None, error)

    @staticmethod
    def _call(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting anymore
            loop.call_soon_threadsafe(callback, *args)


__all__ = ["GenerationService", "prefer_sleeping_openmp_threads"]
