"""The `classic` method: a real joke from the collection instead of a generated one.

Why it exists: people's likes of a real, human-written joke on the same word are the yardstick
for the models' likes. Its jokes are stored and rated like any other (method `classic`, model
`classic@<hash of the index>`, params naming the source joke).

Which joke: one that starts with the user's words, or, when none does, one about them (see
`ClassicIndex.find`), drawn at random among those the asker has not seen (`request.exclude`,
least recently shown first). When every match has been shown, the least recently shown comes
back. When nothing matches, `NothingFound`: the bot says so instead of sending an unrelated joke.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generation.classic.index import ABOUT, START, ClassicIndex
from generation.types import GenerationRequest, Joke, NothingFound


@dataclass(frozen=True, slots=True)
class Pick:
    joke: int  # the joke's number in the index
    match: str  # START or ABOUT


def choose(
    index: ClassicIndex,
    prompt: str,
    exclude: Sequence[str] = (),
    count: int = 1,
    rng: random.Random | None = None,
) -> list[Pick]:
    """Up to `count` different jokes for `prompt`, best first; NothingFound if none matches.

    Unseen jokes that start with the prompt come first, then unseen jokes about it, each tier in
    random order; then, when the unseen ones run out, the seen ones, least recently shown first.
    """
    rng = rng or random.Random()
    found = index.find(prompt)
    if not found:
        raise NothingFound(f"no joke in the collection starts with or is about {prompt!r}")
    shown = {source: order for order, source in enumerate(exclude)}  # higher: shown later
    picks: list[Pick] = []
    seen: list[Pick] = []
    for tier, match in ((found.start, START), (found.about, ABOUT)):
        fresh = [joke for joke in tier if index.ids[joke] not in shown]
        wanted = min(count - len(picks), len(fresh))
        picks += [Pick(joke, match) for joke in rng.sample(fresh, wanted)]
        seen += [Pick(joke, match) for joke in tier if index.ids[joke] in shown]
    if len(picks) < count:
        seen.sort(key=lambda pick: shown[index.ids[pick.joke]])
        picks += seen[: count - len(picks)]
    return picks


class ClassicBackend:
    """The index as a `LookupBackend`: the service calls `lookup`, never the queue."""

    def __init__(self, index: ClassicIndex) -> None:
        self.index = index
        self.model_id = index.version

    @classmethod
    def from_folder(cls, folder: str | Path) -> ClassicBackend:
        return cls(ClassicIndex.load(folder))

    def lookup(self, request: GenerationRequest) -> list[Joke]:
        started = time.monotonic()
        rng = random.Random(request.seed) if request.seed is not None else random.Random()
        picks = choose(self.index, request.prompt, request.exclude, request.count, rng)
        latency_ms = (time.monotonic() - started) * 1000
        return [
            Joke(
                text=self.index.texts[pick.joke],
                method=request.method,
                model=self.model_id,
                params={"source_id": self.index.ids[pick.joke], "match": pick.match},
                latency_ms=latency_ms,
                rank=rank,
            )
            for rank, pick in enumerate(picks)
        ]

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        """The `Backend` form, for callers that batch: one matching joke per prompt, or ""."""
        out = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            try:
                (pick,) = choose(self.index, prompt, rng=random.Random(seed))
            except NothingFound:
                out.append("")
                continue
            out.append(self.index.texts[pick.joke])
        return out

    def warmup(self) -> None:
        """The first look-up loads the dictionary and fills the lemma cache."""
        self.index.find("Кот")


__all__ = ["ClassicBackend", "Pick", "choose"]
