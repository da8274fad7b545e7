"""The generation worker: the one thread that owns the models.

Why one thread, not a pool: the models are not thread-safe, and two generations at once on a
small CPU are slower than one after the other. Batching is the throughput lever instead: jobs
for the same method that arrive within the batching window (up to `max_batch_size` rows) run as
one backend call. One bad request cannot fail its batch-mates: a failed batch is retried one job
at a time, and only the failing job gets `GenerationError`.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping
from typing import Any

from generation import interrupt
from generation.admission import BacklogEstimator
from generation.jobs import Job, call_on_loop, candidates_of, jokes_of, rank_draw, settle
from generation.registry import Method, MethodRegistry
from generation.selection import Selector
from generation.types import GenerationError

log = logging.getLogger(__name__)

#: put on the queue by `GenerationService.stop()`: finish what is queued, then exit
STOP = object()


class Worker:
    """Loads the models, then serves jobs from `queue` in batches until STOP or `abort`."""

    def __init__(
        self,
        registry: MethodRegistry,
        *,
        selector: Selector | None,
        max_batch_size: int,
        batch_window_s: float,
        max_chars: int,
        torch_threads: int | None,
        preload: Collection[str] | None,
        load_later: list[str],
        idle_before_load_s: float,
    ) -> None:
        self.registry = registry
        self.selector = selector
        self.max_batch_size = max_batch_size
        self.batch_window_s = batch_window_s
        self.max_chars = max_chars
        self.torch_threads = torch_threads
        self.preload = preload
        self.load_later = load_later
        self.idle_before_load_s = idle_before_load_s
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.abort = threading.Event()
        self.backlog = BacklogEstimator(max_batch_size)

    def run(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        interrupt.install(self.abort)
        try:
            self._prepare()
        except BaseException as error:
            # The caller of start() reports the failure (the bot: one "Cannot start" line); the
            # traceback is for whoever runs with DEBUG logging.
            expected = isinstance(error, GenerationError)
            if expected:
                log.debug("generation worker failed to start", exc_info=True)
            else:
                log.exception("generation worker failed to start")
            failure = error if expected else GenerationError(str(error))
            call_on_loop(loop, settle, ready, None, failure)
            return
        call_on_loop(loop, settle, ready, None, None)
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
            if name in self.registry:  # not dropped: the registry has not said why in its line
                log.warning("could not load %s in the background", name, exc_info=True)
            return
        log.info("loaded %s in the background in %.2f s", name, time.perf_counter() - started)

    def _serve(self) -> None:
        pending: deque[Job] = deque()
        stopping = False
        while True:
            if self.abort.is_set():
                return
            if not pending:
                if stopping:
                    return
                if self.load_later:
                    try:
                        item = self.queue.get(timeout=self.idle_before_load_s)
                    except queue.Empty:
                        self._load_later()
                        continue
                else:
                    item = self.queue.get()
                if item is STOP:
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

    def _gather(self, pending: deque[Job], stopping: bool) -> bool:
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
                    item = self.queue.get(timeout=remaining)
                else:
                    item = self.queue.get_nowait()
            except queue.Empty:
                return stopping
            if item is STOP:
                stopping = True
            else:
                pending.append(item)

    def _select(self, pending: deque[Job]) -> list[Job]:
        """Take the oldest job and same-method jobs after it that fit into one batch."""
        first = pending[0]
        batch: list[Job] = []
        rows = 0
        keep: deque[Job] = deque()
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

    def _execute(self, batch: list[Job]) -> list[Job]:
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
            again: list[Job] = []
            for job in batch:
                if not job.abandoned and not self.abort.is_set():
                    again += self._execute([job])
            return again
        took = time.perf_counter() - started
        if typical:
            self.backlog.record(method.name, len(prompts), took)
        log.debug("%s: %d rows in %.3f s", method.name, len(prompts), took)
        offset = 0
        again: list[Job] = []
        for job in batch:
            if not self._finish(job, raws[offset : offset + job.rows]):
                again.append(job)
            offset += job.rows
        return again

    def _backend_call(
        self, method: Method, prompts: list[str], seeds: list[int], params: Mapping[str, Any]
    ) -> list[str]:
        backend = self.registry.backend(method.name)
        avoid_copies = getattr(backend, "avoid_copies", None)
        if avoid_copies is not None:
            avoid_copies(self.selector.copy_index if self.selector is not None else None)
        raws = backend.generate(prompts, params, seeds)
        if len(raws) != len(prompts):
            raise GenerationError(f"backend returned {len(raws)} texts for {len(prompts)} prompts")
        return list(raws)

    def _finish(self, job: Job, raws: list[str]) -> bool:
        """Settle `job` from its rows' texts; False if it should be drawn again instead."""
        candidates = candidates_of(job, raws, self.max_chars)
        ranked = rank_draw(job, candidates, self.selector)
        if ranked is None:
            job.redraw()
            return False
        active = self.selector is not None and self.selector.active
        backend = job.method.backend_key
        version = self.selector.version_for(backend) if active and self.selector else None
        model_id = self.registry.backend(job.method.name).model_id
        jokes = jokes_of(job, ranked, model_id, version)
        if jokes:
            call_on_loop(job.loop, settle, job.future, jokes, None)
        else:
            self._fail(job, GenerationError("the model produced no usable joke"))
        return True

    def _fail(self, job: Job, error: BaseException) -> None:
        if not isinstance(error, GenerationError):
            wrapped = GenerationError(f"generation failed: {type(error).__name__}: {error}")
            wrapped.__cause__ = error
            error = wrapped
        call_on_loop(job.loop, settle, job.future, None, error)


__all__ = ["STOP", "Worker"]
