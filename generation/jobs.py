"""One request on its way through the worker thread, and how its draw becomes jokes.

The event loop creates a `Job` and waits on its future; the worker fills it in. Everything that
crosses between the two goes through `call_on_loop`, so futures are only touched on their loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from generation.postprocess import clean_joke, model_wrote_sentence_end
from generation.registry import Method
from generation.selection import Candidate, Ranked, Selector, distinct
from generation.types import GenerationRequest, Joke

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    request: GenerationRequest
    method: Method
    prompt: str
    seeds: list[int]
    future: asyncio.Future[list[Joke]]
    loop: asyncio.AbstractEventLoop
    accepted_at: float = field(default_factory=time.monotonic)
    redraws: int = 0  # draws after the first, which had nothing acceptable
    fallback: list[Ranked] = field(default_factory=list)  # the first draw's clean copy, if any
    # the decoding preset of this draw: the method's, widened for a beam search drawn again
    params: Mapping[str, Any] = field(default_factory=dict)
    # Written by the event loop, read by the worker: plain attribute writes are atomic in CPython.
    abandoned: bool = False

    def __post_init__(self) -> None:
        self.params = self.params or self.method.params

    @property
    def may_redraw(self) -> bool:
        """One extra draw for every method, and one more for a method with a redraw preset."""
        return self.redraws < 1 + (self.method.redraw_params is not None)

    @property
    def rows(self) -> int:
        return len(self.seeds)

    def redraw(self) -> None:
        """New seeds. A beam search, which would find the same beams again, first searches
        twice as wide and returns the beams ranked after the ones already seen; the last extra
        draw of a method with a redraw preset uses that preset."""
        self.redraws += 1
        if self.method.redraw_params is not None and not self.may_redraw:
            self.params = self.method.redraw_params
            base = self.request.seed if self.request.seed is not None else random.randrange(2**31)
            self.seeds = [base + self.redraws * self.rows + row for row in range(self.rows)]
            return
        self.seeds = [seed + len(self.seeds) for seed in self.seeds]
        beams = int(self.params.get("num_beams", 1))
        if self.method.deterministic and beams > 1:
            self.params = {**self.params, "num_beams": 2 * beams}

    @property
    def seed_key(self) -> str:
        """How a row's number reads in the joke's params: a beam's rank or a sampling seed."""
        return "seed" if self.params.get("do_sample", True) else "variant"


def row_seeds(request: GenerationRequest, method: Method, rows: int | None = None) -> list[int]:
    """Seeds seed, seed+1, ... (a random base when the request has none, so every joke records
    the seed that reproduces it); variant indices 0, 1, ... for deterministic methods."""
    if method.deterministic:
        base = request.seed or 0
    else:
        base = request.seed if request.seed is not None else random.randrange(2**31)
    return [base + index for index in range(request.count if rows is None else rows)]


def settle(
    future: asyncio.Future[Any], result: Any = None, error: BaseException | None = None
) -> None:
    """Runs on the event loop: complete a future unless its waiter already gave up."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def call_on_loop(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting anymore
        loop.call_soon_threadsafe(callback, *args)


def candidates_of(job: Job, raws: list[str], max_chars: int) -> list[Candidate]:
    """The rows' texts as the bot would send them; unusable rows are logged and left out."""
    key = job.seed_key
    candidates = []
    for raw, seed in zip(raws, job.seeds, strict=True):
        text = clean_joke(raw, job.prompt, max_chars)
        if text:
            candidates.append(Candidate(text, seed, model_wrote_sentence_end(raw, job.prompt)))
        else:
            what = f"{job.method.name}, {key}={seed}"
            log.info("unusable output for %r (%s): %r", job.prompt, what, raw[:200])
    return candidates


def rank_draw(
    job: Job, candidates: list[Candidate], selector: Selector | None
) -> list[Ranked] | None:
    """The draw's acceptable candidates, best first; None: draw once more first.

    Without an active selector every distinct candidate is kept in draw order. With one, a draw
    with nothing fit to show (at best a clean copy of a training joke) is drawn again while the
    job may (`Job.may_redraw`); the last draw falls back to the first clean copy found."""
    if selector is None or not selector.active:
        return [Ranked(candidate) for candidate in distinct(candidates)]
    ranked = selector.rank(job.prompt, candidates, job.method.backend_key)
    if job.may_redraw and all(item.copied for item in ranked):
        log.info("nothing acceptable for %r (%s); drawing again", job.prompt, job.method.name)
        job.fallback = job.fallback or ranked  # the first clean copy found, if any
        return None
    return ranked or job.fallback


def jokes_of(
    job: Job, ranked: list[Ranked], model_id: str, judge_version: str | None
) -> list[Joke]:
    """Joke records for the ranked candidates, each saying what made it."""
    key = job.seed_key
    latency_ms = (time.monotonic() - job.accepted_at) * 1000
    return [
        Joke(
            text=item.candidate.text,
            method=job.method.name,
            model=model_id,
            params={**job.params, key: item.candidate.seed},
            latency_ms=latency_ms,
            rank=rank,
            candidates=len(job.seeds),
            judge_score=item.liked,
            judge_version=judge_version if item.liked is not None else None,
            ended=item.candidate.ended,
        )
        for rank, item in enumerate(ranked)
    ]


__all__ = [
    "Job",
    "call_on_loop",
    "candidates_of",
    "jokes_of",
    "rank_draw",
    "row_seeds",
    "settle",
]
