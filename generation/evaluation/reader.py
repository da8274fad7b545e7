"""Score shown jokes as a reader would: is the Russian clean, is it copied, would people like it.

Input: the JSON lines `python -m generation --method M --json < words.txt` writes (one per
starting word, `error` where the word got no joke). The checks and the judge are the ones the
service uses (`generation.checks`, `generation.judge`), so a figure here means what the bot does.
A word with no joke counts against the method: the user got an apology, not a joke.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Scored:
    """One starting word's shown joke (text "" when the word got none) and its scores."""

    prompt: str
    text: str
    method: str
    candidates: int
    clean: bool = False
    copied: bool = False
    problems: tuple[str, ...] = ()
    liked: float | None = None
    bpc: float | None = None

    @property
    def ok(self) -> bool:
        return bool(self.text) and self.clean and not self.copied


@dataclass
class Summary:
    """A method's row of the headline table."""

    label: str
    method: str
    candidates: int
    n: int
    ok: float  # clean and not copied
    clean: float
    copied: float
    no_joke: float
    judged: float | None
    bpc: float | None
    problems: dict[str, float] = field(default_factory=dict)


def read_outputs(path: str | Path) -> list[dict[str, Any]]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


class ExactCopies:
    """Whether a text shares 40+ characters with a training joke, exactly (evaluation only).

    The service's copy index is small and misses no such share, but it also flags some shares of
    31-39 characters (stock openings like «приходит к врачу и говорит»). With the corpus at hand,
    the report confirms each flag against the jokes themselves.
    """

    def __init__(self, corpus: Path, min_shared: int = 40) -> None:
        from generation.checks.copies import normalize
        from generation.training.checks_index import training_jokes

        self.normalize = normalize
        self.min_shared = min_shared
        self.text = "\0".join(normalize(joke) for joke in training_jokes(corpus))

    def __call__(self, candidate: str) -> bool:
        norm = self.normalize(candidate)
        n = self.min_shared
        return any(norm[i : i + n] in self.text for i in range(len(norm) - n + 1))


def score(
    rows: Sequence[dict[str, Any]],
    checker: Any,
    judge: Any | None,
    exact: Callable[[str], bool] | None = None,
) -> list[Scored]:
    """Verdicts and judge scores for each row (the first joke of each word); `exact` confirms
    the copy index's flags (see `ExactCopies`)."""
    scored: list[Scored] = []
    seen: set[str] = set()
    for row in rows:
        if row["prompt"] in seen:
            continue  # -n > 1: the first joke of a word is the shown one
        seen.add(row["prompt"])
        text = row.get("text") or ""
        item = Scored(row["prompt"], text, row.get("method", "?"), int(row.get("candidates") or 1))
        if text:
            verdict = checker.check(text, row["prompt"], ended=bool(row.get("ended", True)))
            item.clean, item.copied, item.problems = verdict.clean, verdict.copied, verdict.problems
            if item.copied and exact is not None and not exact(text):
                item.copied = False
                item.problems = tuple(p for p in item.problems if not p.startswith("shares text"))
        scored.append(item)
    shown = [s for s in scored if s.text]
    if judge is not None and shown:
        for item, result in zip(shown, judge.score([s.text for s in shown]), strict=True):
            item.liked, item.bpc = float(result.liked), result.bpc
    return scored


def problem_kind(problem: str) -> str:
    """ "unknown word «кваре»" -> "unknown word": the kind without the quoted example."""
    return problem.split("«")[0].strip()


def summarize(label: str, scored: Sequence[Scored]) -> Summary:
    n = len(scored)

    def share(count: int) -> float:
        return count / n if n else 0.0

    shown = [s for s in scored if s.text]
    liked = [s.liked for s in shown if s.liked is not None]
    bpcs = [s.bpc for s in shown if s.bpc is not None]
    kinds = Counter(kind for s in shown for kind in {problem_kind(p) for p in s.problems})
    return Summary(
        label=label,
        method=scored[0].method if scored else "?",
        candidates=max((s.candidates for s in scored), default=1),
        n=n,
        ok=share(sum(s.ok for s in scored)),
        clean=share(sum(bool(s.text) and s.clean for s in scored)),
        copied=share(sum(bool(s.text) and s.copied for s in scored)),
        no_joke=share(n - len(shown)),
        judged=statistics.fmean(liked) if liked else None,
        bpc=statistics.fmean(bpcs) if bpcs else None,
        problems={kind: share(count) for kind, count in kinds.most_common()},
    )


__all__ = ["ExactCopies", "Scored", "Summary", "problem_kind", "read_outputs", "score", "summarize"]
