"""The simulated users' hidden taste for `bench.feedback_loop`: what they like, which the tuner
never sees except through their votes.

The taste is a judge trained by the project's own trainer (`generation.training.train_judge`,
text features only: it reads no GPT, so it cannot favour either version's model) on ONE half of
the human-rated jokes (split by a hash of the normalised text): CleanComedy gold's humour scores
(`sources="gold"`, the bench's default), or gold and FUN. Why gold alone by default: the shipped
judge learnt gold and FUN, mostly FUN's joke-or-not, so users with a taste from the same data
like what arm A already picks and leave their votes nothing to teach (docs/QUALITY.md). A user
likes a joke with probability sigmoid(logit / temperature), the logit being that judge's: a
temperature below 1 sharpens the taste (people agree more than a calibrated model's mild
probabilities say), 1 keeps the judge's own probabilities. Each vote is a coin thrown with a seed
made of (seed, user, joke id), so a rerun with the same jokes votes the same way.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from generation.training.cleaning import norm_key
from generation.training.corpus import FUN_FILE, GOLD_FILE, load_fun, load_gold

TASTE_FEATURES = "chars+words"


def half_of(text: str) -> int:
    """0 or 1: which half of the human-rated data a text is in (stable across runs)."""
    return hashlib.sha256(norm_key(text).encode()).digest()[0] % 2


def write_half(corpus: Path, out: Path, half: int, sources: str = "gold+fun") -> dict[str, int]:
    """A corpus folder with only `half` of `corpus`'s gold and FUN jokes (`sources`: "gold"
    leaves FUN out); returns the counts."""
    out.mkdir(parents=True, exist_ok=True)
    gold = [(t, s) for t, s in load_gold(corpus / GOLD_FILE) if half_of(t) == half]
    with (out / GOLD_FILE).open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["text", "score"])
        writer.writerows(gold)
    fun = {t: label for t, label in load_fun(corpus / FUN_FILE) if half_of(t) == half}
    fun = fun if "fun" in sources.split("+") else {}
    (out / FUN_FILE).write_text(json.dumps(fun, ensure_ascii=False), encoding="utf-8")
    return {"gold": len(gold), "fun": len(fun)}


def train_taste(corpus: Path, folder: Path, half: int = 0, sources: str = "gold+fun") -> Path:
    """Train the taste judge on `half` of `corpus`'s `sources` into `folder/judge` (kept if
    already there)."""
    from generation.training.train_judge import main as train_judge

    judge = folder / "judge"
    if (judge / "judge.json").is_file():
        return judge
    data = folder / f"corpus-half{half}"
    write_half(corpus, data, half, sources)
    args = ["--corpus", str(data), "--gpt", "", "--out", str(judge), "--repeats", "1"]
    args += ["--features", TASTE_FEATURES, "--candidates", TASTE_FEATURES]
    with contextlib.redirect_stdout(io.StringIO()):
        code = train_judge(args)
    if code != 0:
        raise RuntimeError(f"the taste's judge trainer exited {code}")
    return judge


class Taste:
    """P(like) of a joke for the simulated users, and their (seeded) votes."""

    def __init__(self, judge: Any, temperature: float = 0.5, seed: int = 0) -> None:
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        self.judge = judge
        self.temperature = temperature
        self.seed = seed

    @classmethod
    def load(cls, folder: Path, temperature: float = 0.5, seed: int = 0) -> Taste:
        from generation.judge import Judge

        return cls(Judge.load(folder), temperature, seed)

    def p_like(self, texts: Sequence[str]) -> list[float]:
        logits, _ = self.judge.logits(list(texts), fluency=False)
        return [
            1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x / self.temperature)))) for x in logits
        ]

    def likes(self, user: int, joke_id: int, text: str) -> bool:
        """The user's vote on a joke: True for 👍 (the same every time for this seed)."""
        coin = random.Random(f"{self.seed}:{user}:{joke_id}").random()
        return coin < self.p_like([text])[0]


__all__ = ["TASTE_FEATURES", "Taste", "half_of", "train_taste", "write_half"]
