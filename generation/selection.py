"""Best of N: keep the candidates a reader would accept, show the one the judge likes most.

A small model writes broken Russian in a good share of its samples (non-words, glued words,
doubled words) and a beam search likes to recite training jokes. Drawing several candidates in
one batched call costs little more than one, so the service draws N, drops what the reader's
checks (`generation.checks`) reject, and ranks the rest by the judge (`generation.judge`): its
estimate that people will like the joke, blended with the GPT's fluency (bits per character) as
the tie-breaker. Both scores are standardised within the draw, so `judge_weight` says how much
the judge counts against fluency whatever their scales.

When nothing passes, the least bad candidate is shown only if it is clean (a clean joke that
shares a long span with a training joke); otherwise the caller draws once more, then apologises.
Word salad is never sent.

The checks and the judge are loaded in the generation worker (`load`). If either cannot be
loaded, the selector is inactive: the service draws one candidate per joke and applies only the
post-processor's checks, as before, and `status` says why (shown by `/reload`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One post-processed sample; `seed` is its row seed (sampling) or variant (beam search)."""

    text: str
    seed: int
    ended: bool  # the model wrote a sentence end (the post-processor did not add its "…")


@dataclass(frozen=True, slots=True)
class Ranked:
    """A candidate that may be shown, with what the selector knew about it."""

    candidate: Candidate
    liked: float | None = None  # the judge's estimate that people like it, 0..1
    bpc: float | None = None  # the GPT's bits per character of it (lower = more fluent)
    copied: bool = False  # shown only as the least bad fallback


def _standardised(values: Sequence[float]) -> list[float]:
    if len(values) < 2:
        return [0.0 for _ in values]
    spread = statistics.pstdev(values)
    centre = statistics.fmean(values)
    return [0.0 if spread == 0 else (value - centre) / spread for value in values]


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the judge's GPT pass on one thread: a few short texts are too little work to pay for
    waking a second one (measured in docs/BENCHMARKS.md, best of N)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def distinct(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The first of each text (case and spacing aside): beams often differ in nothing visible."""
    seen: dict[str, Candidate] = {}
    for candidate in candidates:
        seen.setdefault(" ".join(candidate.text.casefold().split()), candidate)
    return list(seen.values())


class Selector:
    """The reader's checks + the judge, applied to one draw of candidates."""

    def __init__(
        self,
        checks_folder: str | Path | None,
        judge_folder: str | Path | None,
        *,
        judge_weight: float = 0.5,
        gpt: Callable[[], Any] | None = None,
        checker: Any = None,
        judge: Any = None,
        own_judges: Mapping[str, tuple[str | Path, Callable[[], Any]]] | None = None,
    ) -> None:
        """`gpt`: returns the loaded GPT backend the judge reads (called in `load`). `checker`
        and `judge`: ready-made parts (both given: active at once, `load` keeps them).
        `own_judges`: {backend key: (judge folder, its GPT backend getter)} for model versions
        that come with a judge of their own (an experiment's tuned arm, generation/experiments.py):
        their candidates are ranked by it, since it learnt what that version's users liked and
        reads that version's GPT; one that cannot be loaded leaves them to the default judge."""
        if not 0.0 <= judge_weight <= 1.0:
            raise ValueError("judge_weight must be between 0 and 1")
        self.checks_folder = checks_folder
        self.judge_folder = judge_folder
        self.judge_weight = judge_weight
        self._gpt = gpt
        self.checker: Any = checker
        self.judge: Any = judge
        self.own_judge_folders = dict(own_judges or {})
        self.own_judges: dict[str, Any] = {}  # backend key -> its loaded judge
        self.problem: str | None = None if self.active else "not loaded yet"

    @property
    def active(self) -> bool:
        return self.checker is not None and self.judge is not None

    @property
    def judge_version(self) -> str | None:
        return getattr(self.judge, "version", None) if self.active else None

    def judge_for(self, backend: str | None = None) -> Any:
        """The judge that ranks `backend`'s candidates: its own, else the default one."""
        return self.own_judges.get(backend or "", self.judge)

    def version_for(self, backend: str | None = None) -> str | None:
        """The version of the judge that ranks `backend`'s candidates (None while inactive)."""
        return getattr(self.judge_for(backend), "version", None) if self.active else None

    @property
    def copy_index(self) -> Any:
        """The training jokes' copy index while the checks are on (beam search avoids it)."""
        return getattr(self.checker, "copies", None) if self.active else None

    @property
    def status(self) -> str:
        """One line for operators: what picks the jokes now."""
        if self.active:
            own = "".join(f"; {key}: {j.version}" for key, j in sorted(self.own_judges.items()))
            return f"best of N, {self.judge_version}{own}"
        return f"one candidate per joke ({self.problem})"

    def load(self) -> bool:
        """Load the checks and the judge (worker thread); False, with one log line, if either
        cannot be loaded. Never raises: the bot works without them."""
        if self.active:
            self._load_own_judges()
            return True
        try:
            from generation.checks import JokeChecker
            from generation.judge import Judge

            if self.checks_folder is None or self.judge_folder is None:
                raise OSError("switched off")
            checker = JokeChecker.load(self.checks_folder)
            judge = Judge.load(self.judge_folder, gpt=self._gpt() if self._gpt else None)
        except Exception as error:  # any failure here must leave the bot serving
            self.checker = self.judge = None
            self.problem = f"{type(error).__name__}: {error}"
            log.warning("best of N is off, one candidate per joke: %s", self.problem)
            return False
        self.checker, self.judge, self.problem = checker, judge, None
        log.info("best of N on: checks from %s, %s", self.checks_folder, judge.version)
        self._load_own_judges()
        return True

    def _load_own_judges(self) -> None:
        from generation.judge import Judge

        for key, (folder, gpt) in self.own_judge_folders.items():
            if key in self.own_judges:
                continue
            try:
                self.own_judges[key] = Judge.load(folder, gpt=gpt())
            except Exception as error:  # that version's jokes are still ranked, by the default
                log.warning(
                    "%s's own judge in %s could not be loaded (%s: %s); the default judge "
                    "ranks its candidates",
                    key,
                    folder,
                    type(error).__name__,
                    error,
                )
                continue
            log.info("%s ranked by its own judge, %s", key, self.own_judges[key].version)

    def rank(
        self, prompt: str, candidates: Sequence[Candidate], backend: str | None = None
    ) -> list[Ranked]:
        """Candidates worth showing, best first; [] when none is (the caller draws again).
        `backend`: the key of the model that drew them (picks its own judge, if it has one).

        Inactive: every candidate, in draw order, as the post-processor left them. A fault in the
        checks or the judge costs no joke: the draw is shown unchecked (checks failed) or in draw
        order (judge failed), with a warning.
        """
        unique = distinct(candidates)
        if not self.active:
            return [Ranked(candidate) for candidate in unique]
        try:
            verdicts = [self.checker.check(c.text, prompt, ended=c.ended) for c in unique]
        except Exception as error:
            log.warning("the checks failed for %r, showing the draw unchecked: %r", prompt, error)
            return [Ranked(candidate) for candidate in unique]
        good = [c for c, v in zip(unique, verdicts, strict=True) if v.clean and not v.copied]
        judge = self.judge_for(backend)
        if good:
            return self._by_judge(judge, good, copied=False)
        clean = [c for c, v in zip(unique, verdicts, strict=True) if v.clean]
        return self._by_judge(judge, clean, copied=True)[:1]

    def _by_judge(
        self, judge: Any, candidates: Sequence[Candidate], *, copied: bool
    ) -> list[Ranked]:
        if not candidates:
            return []
        try:
            with one_torch_thread():
                scores = judge.score([c.text for c in candidates])
        except Exception as error:
            log.warning("the judge failed, showing checked jokes in draw order: %r", error)
            return [Ranked(candidate, copied=copied) for candidate in candidates]
        liked = [float(s.liked) for s in scores]
        bpcs = [s.bpc for s in scores]
        fluency = [-(b if b is not None and math.isfinite(b) else 99.0) for b in bpcs]
        weight = self.judge_weight
        blended = [
            weight * j + (1 - weight) * f
            for j, f in zip(_standardised(liked), _standardised(fluency), strict=True)
        ]
        # the draw order breaks exact ties, so the choice is reproducible
        order = sorted(range(len(candidates)), key=lambda i: (-blended[i], i))
        return [Ranked(candidates[i], liked=liked[i], bpc=bpcs[i], copied=copied) for i in order]


__all__ = ["Candidate", "Ranked", "Selector", "distinct"]
